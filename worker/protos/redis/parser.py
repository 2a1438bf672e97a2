"""Redis serialization protocol parser: RESP2 and RESP3
(https://redis.io/docs/latest/develop/reference/protocol-spec/).

Theory of operation
-------------------
One :class:`RedisParser` reads one direction of a TCP connection. ``feed``
appends bytes to a buffer and returns every message that is complete; the
rest stays buffered. The parser is resumable: open aggregates (arrays, maps,
sets, pushes, attributes, streamed strings and aggregates) are a small stack
of frames, so a reply split over many segments is scanned once, not again
from its start on every segment (Packetbeat's parser restarts; the result is
the same). A bulk string whose bytes have not all arrived sets a "need"
mark, and nothing is parsed until the buffer reaches it.

Framing: every RESP value starts with a type byte and a line ending in CRLF.

- RESP2: ``+`` simple string, ``-`` error, ``:`` integer, ``$`` bulk string
  (``$-1`` = nil), ``*`` array (``*-1`` = nil);
- RESP3: ``_`` null, ``#`` boolean, ``,`` double, ``(`` big number, ``!``
  blob error, ``=`` verbatim string, ``%`` map, ``~`` set, ``>`` push,
  ``|`` attribute (metadata before the value it describes: parsed and left
  out of the value), streamed strings (``$?`` then ``;len`` chunks, ``;0``)
  and streamed aggregates (``*?``/``%?``/``~?`` ... ``.``).
- Client -> server: a request is an array (``*``); any other first byte
  starts an *inline command*, one line split like ``redis-cli`` does (quotes
  and escapes), as the Redis server reads it. Empty arrays and empty inline
  lines are no commands (the server does not answer them) and are skipped.

Values are rendered as Packetbeat 8.x renders them (``redis_parse.go``): a
request is its elements joined by spaces (``set key value``); a reply is its
text, ``nil`` for nulls, ``[a, b, c]`` for arrays (nested likewise); RESP3
adds ``{k: v, ...}`` for maps, ``[...]`` for sets and pushes, ``true`` /
``false``, the verbatim text without its ``txt:`` prefix. Only a top-level
error (``-`` or ``!``) marks the message as an error, as in Packetbeat.

Bounds: a message may not exceed ``max_message_size`` buffered bytes
(Packetbeat's 10 MiB stream limit), aggregates nest at most ``MAX_DEPTH``
deep, inline commands are at most 64 KiB (the server's limit).

Correlation key: none; Redis answers commands in order, so the plugin pairs
requests and responses with two FIFOs (``trans.py``). RESP3 pushes and pub/sub
messages are flagged (``push``, ``kind``) for the correlator to set aside.

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

from worker.plugin import ParseError as _BaseParseError

MAX_DEPTH = 64
INLINE_MAX = 64 * 1024          # PROTO_INLINE_MAX_SIZE
MAX_NUMBER_LINE = 20            # digits (and sign) of a length or count

NIL = b"nil"
_NO_VALUE = object()            # an attribute closed: nothing for the enclosing aggregate
EMPTY_ARRAY = b"[]"
EMPTY_MAP = b"{}"

# type bytes
_SIMPLE = 0x2B      # +
_ERROR = 0x2D       # -
_INT = 0x3A         # :
_BULK = 0x24        # $
_ARRAY = 0x2A       # *
_NULL = 0x5F        # _
_BOOL = 0x23        # #
_DOUBLE = 0x2C      # ,
_BIGNUM = 0x28      # (
_BLOBERR = 0x21     # !
_VERBATIM = 0x3D    # =
_MAP = 0x25         # %
_SET = 0x7E         # ~
_PUSH = 0x3E        # >
_ATTR = 0x7C        # |
_CHUNK = 0x3B       # ;
_END = 0x2E         # .


# Reply shapes of the publish/subscribe protocol (first element, lower case).
PUBSUB_CONFIRMS = frozenset((b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe",
                             b"ssubscribe", b"sunsubscribe"))
PUBSUB_MESSAGES = frozenset((b"message", b"pmessage", b"smessage"))
_PUBSUB_KINDS = PUBSUB_CONFIRMS | PUBSUB_MESSAGES


class ParseError(_BaseParseError):
    """The bytes are not RESP. ``messages`` holds the messages that were
    complete before the error was found (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class RedisMessage:
    """One message of either direction (a plain class with slots rather than a
    dataclass: compiled, it is an extension type, and the parser builds it
    without a Python ``__init__``, see :func:`_new_message`)."""
    __slots__ = ("ts", "is_request", "size", "notes", "is_error", "message", "args", "inline",
                 "push", "kind", "count", "channel")

    def __init__(self, ts: int, is_request: bool, size: int = 0, notes: list | None = None,
                 is_error: bool = False, message: bytes = b"", args: list | None = None,
                 inline: bool = False, push: bool = False, kind: bytes = b"", count: int = -1,
                 channel: bytes = b""):
        self.ts = ts                    # ns, packet where the message began
        self.is_request = is_request
        self.size = size                # bytes on the wire
        self.notes = notes if notes is not None else []
        self.is_error = is_error        # reply is a top-level error
        self.message = message          # request: command line; reply: rendered value
        self.args = args if args is not None else []   # request: its elements, command first
        self.inline = inline            # request sent as an inline command
        self.push = push                # reply is a RESP3 push ('>')
        self.kind = kind                # reply: pub/sub shape (b"message", b"subscribe", ...)
        self.count = count              # reply: the subscription count of a (un)subscribe confirmation
        self.channel = channel          # reply: the channel or pattern a confirmation names

    def __repr__(self) -> str:
        return "RedisMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in RedisMessage.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in RedisMessage.__slots__)

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


def _new_message(ts, is_request: bool, size: int) -> RedisMessage:
    """``RedisMessage(ts, is_request, size)`` without the keyword parsing of
    ``__init__`` (compiled: a C-level allocation and field stores)."""
    m = RedisMessage.__new__(RedisMessage)
    m.ts = ts
    m.is_request = is_request
    m.size = size
    m.notes = []
    m.is_error = False
    m.message = b""
    m.args = []
    m.inline = False
    m.push = False
    m.kind = b""
    m.count = -1
    m.channel = b""
    return m


def _pubsub(msg: RedisMessage, items: list) -> None:
    """Flag a top-level aggregate reply shaped as a pub/sub message or
    (un)subscribe confirmation."""
    if 3 <= len(items) <= 4:
        kind = items[0].lower()
        if kind in _PUBSUB_KINDS:
            msg.kind = kind
            if kind in PUBSUB_CONFIRMS and len(items) == 3 and items[2].isdigit():
                msg.count = int(items[2])
                msg.channel = items[1]


def _digits(data: bytes, a: int, b: int) -> int:
    """The decimal number of 1 to 9 ASCII digits in ``data[a:b]``, else -1
    (``s.isdigit() and len(s) <= 9`` without the slice)."""
    if b <= a or b - a > 9:
        return -1
    v = 0
    while a < b:
        c = data[a]
        if c < 0x30 or c > 0x39:
            return -1
        v = v * 10 + (c - 0x30)
        a += 1
    return v


def _crlf(data: bytes, pos: int, n: int) -> int:
    """``data.find(b"\r\n", pos)`` for ``n == len(data)`` (the first 32
    bytes in a C loop once compiled: most lines are short)."""
    stop = pos + 32
    while pos + 1 < n:
        if data[pos] == 0x0D and data[pos + 1] == 0x0A:
            return pos
        pos += 1
        if pos == stop:
            return data.find(b"\r\n", pos)
    return -1


_NIL_BULK = -2      # _bulk_end: the header was ``$-1``


def _bulk_end(data: bytes, p: int, e: int, n: int) -> int:
    """The bulk string whose header line ``$<length>`` is ``data[p:e]`` (its
    CRLF at ``e``; its bytes start at ``e + 2``): the offset of the CRLF that
    ends its bytes; ``_NIL_BULK`` for ``$-1``; -1 when the length is not 1 to 9
    digits or its bytes and CRLF have not all arrived (for the general parser)."""
    ln = _digits(data, p + 1, e)
    if ln < 0:
        if e == p + 3 and data[p + 1] == 0x2D and data[p + 2] == 0x31:
            return _NIL_BULK
        return -1
    end = e + 2 + ln
    if end + 2 > n or data[end] != 0x0D or data[end + 1] != 0x0A:
        return -1
    return end


def _number(buf: bytearray, a: int, b: int) -> int:
    """The decimal integer in ``buf[a:b]`` (a length or a count)."""
    if 0 < b - a <= 9:
        # short ones (almost all) read in place: [-]digits
        i = a + 1 if buf[a] == 0x2D else a
        if i < b:
            v = 0
            j = i
            while j < b:
                c = buf[j]
                if c < 0x30 or c > 0x39:
                    break
                v = v * 10 + (c - 0x30)
                j += 1
            else:
                return -v if i > a else v
    s = buf[a:b]
    if 0 < len(s) <= MAX_NUMBER_LINE:
        if s.isdigit():
            return int(s)
        if s[0] == 0x2D and s[1:].isdigit():
            return -int(s[1:])
    raise ParseError("bad length or count %r" % bytes(s[:MAX_NUMBER_LINE + 2]))


def _render(t: int, items: list[bytes]) -> bytes:
    if t == _MAP:
        if len(items) % 2:
            raise ParseError("map with an odd number of elements")
        return b"{" + b", ".join([items[i] + b": " + items[i + 1]
                                  for i in range(0, len(items), 2)]) + b"}"
    return b"[" + b", ".join(items) + b"]"


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACE = frozenset(b" \t\n\r\v\f")
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


def split_inline(line: bytes) -> tuple[list[bytes], bool]:
    """Arguments of an inline command, split as the server's ``sdssplitargs``
    does (double quotes with ``\\xHH`` and C escapes, single quotes).
    Returns (args, ok); ``ok`` is False for unbalanced quotes, which the
    server refuses (the args are then the whitespace-separated words)."""
    if b'"' not in line and b"'" not in line:
        return line.split(), True
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args, True
        cur = bytearray()
        quote = 0                   # the open quote: 0x22 ", 0x27 ', or none
        while True:
            if i >= n:
                if quote:
                    return line.split(), False
                break
            c = line[i]
            if quote:
                if c == quote:
                    # a closing quote must end the argument
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return line.split(), False
                    i += 1
                    break
                if c == 0x5C and quote == 0x22 and i + 3 < n and line[i + 1] == 0x78 \
                        and line[i + 2] in _HEXDIGITS and line[i + 3] in _HEXDIGITS:
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and quote == 0x22 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x5C and i + 1 < n and line[i + 1] == 0x27:      # \' in single quotes
                    i += 1
                    cur.append(0x27)
                else:
                    cur.append(c)
            elif c in _SPACE:
                i += 1
                break
            elif c == 0x22 or c == 0x27:
                quote = c
            else:
                cur.append(c)
            i += 1
        args.append(bytes(cur))


class RedisParser:
    """Sans-I/O RESP parser for one direction (``is_request``: client -> server)."""

    __slots__ = ("is_request", "max_message_size", "_buf", "_pos", "_start", "_need",
                 "_scan", "_stack", "_ts", "skipped")

    def __init__(self, is_request: bool, max_message_size: int = 10 * 1024 * 1024):
        self.is_request = is_request
        self.max_message_size = max_message_size
        self.skipped = 0            # empty commands (``*0``, ``*-1``, empty inline lines)
        self.reset()

    def reset(self) -> None:
        """Forget everything buffered (after a ParseError, or a gap)."""
        self._buf = bytearray()
        self._pos = 0               # next byte to parse
        self._start = 0             # first byte of the message being parsed
        self._need = 0              # do not parse before the buffer holds this many bytes
        self._scan = 0              # where to resume looking for the end of a line
        self._stack: list[list] = []   # open aggregates: [type, remaining, items, streamed]
        self._ts: int | None = None  # ts of the message being parsed

    @property
    def buffered(self) -> int:
        """Bytes of the incomplete message held."""
        return len(self._buf) - self._start

    def feed(self, data, ts: int) -> list[RedisMessage]:
        """Append ``data`` (bytes-like) received at ``ts`` (ns); return the
        messages it completes."""
        if not data:
            return []
        out: list[RedisMessage] = []
        buf = self._buf
        if not buf:
            # Nothing pending: whole simple messages are taken straight from
            # the segment; the general parser gets what is left, if anything.
            data = bytes(data)
            pos = self._fast(data, ts, out)
            if pos == len(data):
                return out
            if pos:
                data = data[pos:]
        if self._ts is None:
            self._ts = ts
        buf += data
        if len(buf) >= self._need:
            try:
                self._run(ts, out)
            except ParseError as e:
                e.messages = out
                raise
        if len(buf) - self._start > self.max_message_size:
            raise ParseError("message larger than %d bytes" % self.max_message_size, out)
        if self._start:
            del buf[:self._start]
            self._pos -= self._start
            self._scan = max(0, self._scan - self._start)
            self._need = max(0, self._need - self._start)
            self._start = 0
        return out

    def _fast(self, data: bytes, ts: int, out: list) -> int:
        """Complete common messages at the start of ``data`` (requests that
        are arrays of bulk strings; replies that are simple strings, errors,
        integers or bulk strings). Returns the offset of the first byte not
        consumed: anything else, or an incomplete message, is left to the
        general parser, which starts over at that message."""
        pos = 0
        n = len(data)
        if self.is_request:
            while pos < n and data[pos] == 0x2A:
                eol = _crlf(data, pos, n)
                if eol < 0:
                    return pos
                cnt = _digits(data, pos + 1, eol)
                if cnt < 0 or (cnt == 0 and eol == pos + 2):       # not a count, or *0
                    return pos
                p = eol + 2
                args = []
                while cnt:
                    if p >= n or data[p] != 0x24:
                        return pos
                    e = _crlf(data, p, n)
                    if e < 0:
                        return pos
                    end = _bulk_end(data, p, e, n)
                    if end < 0:                 # $-1 too: the general parser
                        return pos
                    args.append(data[e + 2:end])
                    p = end + 2
                    cnt -= 1
                msg = _new_message(ts, True, p - pos)
                msg.args = args
                msg.message = b" ".join(args)
                out.append(msg)
                pos = p
            return pos
        while pos < n:
            t = data[pos]
            eol = _crlf(data, pos, n)
            if eol < 0:
                return pos
            if t == _SIMPLE or t == _INT or t == _ERROR:
                msg = _new_message(ts, False, eol + 2 - pos)
                msg.message = data[pos + 1:eol]
                if t == _ERROR:
                    msg.is_error = True
                pos = eol + 2
            elif t == _BULK:
                end = _bulk_end(data, pos, eol, n)
                if end >= 0:
                    msg = _new_message(ts, False, end + 2 - pos)
                    msg.message = data[eol + 2:end]
                    pos = end + 2
                elif end == _NIL_BULK:
                    msg = _new_message(ts, False, eol + 2 - pos)
                    msg.message = NIL
                    pos = eol + 2
                else:
                    return pos
            elif t == _ARRAY or t == _PUSH:
                # a flat aggregate of simple strings, errors, integers and bulk strings
                cnt = _digits(data, pos + 1, eol)
                if cnt <= 0:                    # *0, *-1, *?, ...: the general parser
                    return pos
                p = eol + 2
                items = []
                while cnt:
                    if p >= n:
                        return pos
                    et = data[p]
                    e = _crlf(data, p, n)
                    if e < 0:
                        return pos
                    if et == _SIMPLE or et == _INT or et == _ERROR:
                        items.append(data[p + 1:e])
                        p = e + 2
                    elif et == _BULK:
                        end = _bulk_end(data, p, e, n)
                        if end >= 0:
                            items.append(data[e + 2:end])
                            p = end + 2
                        elif end == _NIL_BULK:
                            items.append(NIL)
                            p = e + 2
                        else:
                            return pos
                    else:
                        return pos
                    cnt -= 1
                msg = _new_message(ts, False, p - pos)
                msg.message = b"[" + b", ".join(items) + b"]"
                msg.push = t == _PUSH
                _pubsub(msg, items)
                pos = p
            else:
                return pos
            out.append(msg)
        return pos

    # ------------------------------------------------------------------ parsing

    def _run(self, ts: int, out: list) -> None:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        stack = self._stack
        is_request = self.is_request
        find = buf.find
        scan = max(self._scan, pos)
        self._need = 0
        while pos < n:
            t = buf[pos]
            if is_request and not stack and t != _ARRAY:
                # an inline command: one line ending in LF
                eol = find(b"\n", scan)
                if eol < 0:
                    if n - pos > INLINE_MAX:
                        raise ParseError("inline command longer than %d bytes" % INLINE_MAX)
                    scan = n
                    break
                line = bytes(buf[pos:eol])
                pos = scan = eol + 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                args, ok = split_inline(line)
                if not args:
                    self.skipped += 1
                    self._message_done(pos, n, ts)
                    continue
                msg = self._request(args, pos)
                msg.inline = True
                if not ok:
                    msg.notes.append("unbalanced quotes in inline command")
                out.append(msg)
                self._message_done(pos, n, ts)
                continue
            eol = find(b"\r\n", scan)
            if eol < 0:
                scan = n - 1 if n > pos else pos
                break
            nxt = eol + 2
            if t == _SIMPLE or t == _ERROR or t == _INT or t == _DOUBLE or t == _BIGNUM:
                value = bytes(buf[pos + 1:eol])
            elif t == _BULK or t == _BLOBERR or t == _VERBATIM:
                if eol - pos == 2 and buf[pos + 1] == 0x3F and t == _BULK:      # $? streamed
                    if len(stack) >= MAX_DEPTH:
                        raise ParseError("nesting deeper than %d" % MAX_DEPTH)
                    stack.append([_CHUNK, -1, [], True])
                    pos = scan = nxt
                    continue
                length = _number(buf, pos + 1, eol)
                if length < 0:
                    if t != _BULK or length != -1:
                        raise ParseError("bad blob length %d" % length)
                    value = NIL
                else:
                    end = nxt + length
                    if end + 2 > n:
                        self._need = end + 2
                        scan = pos
                        break
                    if buf[end] != 0x0D or buf[end + 1] != 0x0A:
                        raise ParseError("blob not followed by CRLF")
                    value = bytes(buf[nxt:end])
                    if t == _VERBATIM:
                        if length < 4 or value[3] != 0x3A:
                            raise ParseError("verbatim string without a format")
                        value = value[4:]
                    nxt = end + 2
            elif t == _ARRAY or t == _MAP or t == _SET or t == _PUSH or t == _ATTR:
                if eol - pos == 2 and buf[pos + 1] == 0x3F and t != _ATTR and t != _PUSH:   # streamed
                    if len(stack) >= MAX_DEPTH:
                        raise ParseError("nesting deeper than %d" % MAX_DEPTH)
                    stack.append([t, -1, [], True])
                    pos = scan = nxt
                    continue
                count = _number(buf, pos + 1, eol)
                if count > 0:
                    if len(stack) >= MAX_DEPTH:
                        raise ParseError("nesting deeper than %d" % MAX_DEPTH)
                    stack.append([t, count * 2 if t == _MAP or t == _ATTR else count, [], False])
                    pos = scan = nxt
                    continue
                if count == 0:
                    if t == _ATTR:
                        pos = scan = nxt
                        continue
                    value = EMPTY_MAP if t == _MAP else EMPTY_ARRAY
                elif count == -1 and t == _ARRAY:
                    value = NIL
                else:
                    raise ParseError("bad aggregate count %d" % count)
                if is_request and not stack:
                    # *0 / *-1: no command, the server ignores it
                    self.skipped += 1
                    pos = scan = nxt
                    self._message_done(pos, n, ts)
                    continue
            elif t == _NULL:
                if eol != pos + 1:
                    raise ParseError("null with a value")
                value = NIL
            elif t == _BOOL:
                if eol != pos + 2 or buf[pos + 1] not in (0x74, 0x66):
                    raise ParseError("bad boolean")
                value = b"true" if buf[pos + 1] == 0x74 else b"false"
            elif t == _CHUNK:
                if not stack or stack[-1][0] != _CHUNK:
                    raise ParseError("string chunk outside a streamed string")
                length = _number(buf, pos + 1, eol)
                if length < 0:
                    raise ParseError("bad chunk length")
                frame = stack[-1]
                if length:
                    end = nxt + length
                    if end + 2 > n:
                        self._need = end + 2
                        scan = pos
                        break
                    if buf[end] != 0x0D or buf[end + 1] != 0x0A:
                        raise ParseError("chunk not followed by CRLF")
                    frame[2].append(bytes(buf[nxt:end]))
                    pos = scan = end + 2
                    continue
                stack.pop()
                value = b"".join(frame[2])
            elif t == _END:
                if eol != pos + 1 or not stack or not stack[-1][3] or stack[-1][0] == _CHUNK:
                    raise ParseError("end marker outside a streamed aggregate")
                frame = stack.pop()
                value = self._close(frame, stack, out, nxt, ts)
                if value is None:               # a top-level aggregate became a message
                    pos = scan = nxt
                    self._message_done(pos, n, ts)
                    continue
            else:
                raise ParseError("unexpected type byte 0x%02x" % t)
            pos = scan = nxt
            # deliver ``value`` to the enclosing aggregates, closing the full ones
            while stack:
                frame = stack[-1]
                if frame[0] == _CHUNK:
                    raise ParseError("value inside a streamed string")
                frame[2].append(value)
                if frame[3]:
                    break
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                value = self._close(frame, stack, out, pos, ts)
                if value is None:               # a top-level aggregate became a message
                    self._message_done(pos, n, ts)
                    break
                if value is _NO_VALUE:          # an attribute: the value it describes follows
                    break
            else:
                # a complete top-level reply
                top = t
                msg = _new_message(self._ts, False, pos - self._start)
                msg.message = value
                if top == _ERROR or top == _BLOBERR:
                    msg.is_error = True
                out.append(msg)
                self._message_done(pos, n, ts)
        self._pos = pos
        self._scan = scan

    def _close(self, frame: list, stack: list, out: list, pos: int, ts: int):
        """A complete aggregate: its rendered value for the parent; None for
        a top-level aggregate (this method turns it into a message);
        ``_NO_VALUE`` for an attribute (metadata, left out of the value)."""
        t, _rem, items, _streamed = frame
        if t == _ATTR:
            return _NO_VALUE
        if stack:
            return _render(t, items)
        if self.is_request:
            if items:
                out.append(self._request(items, pos))
            else:
                self.skipped += 1            # an empty streamed array: no command
            return None
        msg = _new_message(self._ts, False, pos - self._start)
        msg.message = _render(t, items)
        msg.push = t == _PUSH
        _pubsub(msg, items)
        out.append(msg)
        return None

    def _request(self, args: list[bytes], pos: int) -> RedisMessage:
        msg = _new_message(self._ts, True, pos - self._start)
        msg.args = args
        msg.message = b" ".join(args)
        return msg

    def _message_done(self, pos: int, n: int, ts: int) -> None:
        """A message (or a skipped empty command) ended just before ``pos``:
        the next one begins in the current segment, if any byte is left."""
        self._start = pos
        self._ts = ts if pos < n else None

    # ------------------------------------------------------------------ stream events

    def on_gap(self, nbytes: int) -> bool:
        """Bytes were lost: RESP cannot find the next message boundary
        (Packetbeat drops the connection). Forget the partial message."""
        self.reset()
        return False

    def flush(self) -> int:
        """The connection is forgotten: the number of bytes of an incomplete
        message dropped with it (nothing can be made of them)."""
        n = self.buffered
        self.reset()
        return n
