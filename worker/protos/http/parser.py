"""HTTP/1.0 and HTTP/1.1 message parser (RFC 9112, message syntax and framing).

Theory of operation
-------------------
One :class:`HttpParser` reads one direction of a TCP connection. ``feed``
appends bytes to a buffer and returns every message that is complete; the
rest stays buffered. The state machine is a table from :class:`State` to a
step method; a step consumes bytes and moves on, or reports that it needs
more data. Lines end with CRLF (a bare LF is tolerated).

Framing (RFC 9112 section 6.3, with Packetbeat's choices):

- a response to HEAD, and 1xx, 204 and 304 responses end with the header
  section; the parser learns request methods through
  :meth:`HttpParser.push_request_method` (the plugin calls it with each
  request seen in the other direction);
- ``Transfer-Encoding`` ending in ``chunked``: chunks, then trailer fields;
- ``Content-Length``: that many bytes;
- a request with neither has no body;
- a response with neither is delimited by the connection close
  (:meth:`HttpParser.on_fin`).

Bodies are saved only when the plugin wants them (content type matches an
``include_*body_for`` entry, or a url-encoded form whose fields become the
request parameters), and only up to ``max_message_size`` bytes of message;
bigger messages are cut, not lost: the rest is counted, not stored.

A gap (lost bytes) inside a length-delimited or close-delimited body, or
inside one chunk, is survivable (:meth:`HttpParser.on_gap` notes the loss on
the message); anywhere else the parser cannot find the next message boundary.

Correlation key: none; HTTP/1.x answers requests in order, so the plugin pairs
requests and responses with two FIFOs (``trans.py``).

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import enum
import functools
import re

from worker.plugin import ParseError as _BaseParseError

MAX_PENDING_METHODS = 1024
MAX_CHUNK_LINE = 4096          # chunk size plus extensions


class ParseError(_BaseParseError):
    """The bytes are not HTTP/1.x. ``messages`` holds the messages that were
    complete before the error was found (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class HttpMessage:
    """One parsed message. A plain class with slots (an extension type when
    compiled, parser.pxd) that behaves as the ``@dataclass(slots=True)`` it
    replaces: keyword or positional fields, repr, equality."""
    __slots__ = (
        "ts", "is_request", "size", "notes", "version", "method", "uri", "status_code",
        "status_phrase", "headers", "raw_headers", "body", "content_length", "has_content_length",
        "content_type", "encodings", "chunked", "connection", "save_body", "send_body",
        "body_truncated")

    def __init__(self, ts, is_request, size=0, notes=None, version=b"", method=b"", uri=b"",
                 status_code=0, status_phrase=b"", headers=None, raw_headers=b"", body=b"",
                 content_length=0, has_content_length=False, content_type=b"", encodings=None,
                 chunked=False, connection=b"", save_body=False, send_body=False,
                 body_truncated=False):
        self.ts = ts                         # ns, packet where the message began
        self.is_request = is_request
        self.size = size                     # bytes on the wire, framing included
        self.notes = notes if notes is not None else []
        self.version = version               # b"1.1"
        self.method = method
        self.uri = uri
        self.status_code = status_code
        self.status_phrase = status_phrase
        self.headers = headers if headers is not None else {}   # lower-case names; repeats joined by ", "
        self.raw_headers = raw_headers       # start line .. empty line
        self.body = body                     # saved body (de-chunked, possibly cut)
        self.content_length = content_length     # declared length, or body bytes counted
        self.has_content_length = has_content_length
        self.content_type = content_type
        self.encodings = encodings if encodings is not None else []   # content codings, then transfer codings
        self.chunked = chunked
        self.connection = connection
        self.save_body = save_body           # body bytes were kept
        self.send_body = send_body           # content type matched include_*body_for
        self.body_truncated = body_truncated     # saved body cut at max_message_size

    def _values(self) -> tuple:
        return (self.ts, self.is_request, self.size, self.notes, self.version, self.method, self.uri,
                self.status_code, self.status_phrase, self.headers, self.raw_headers, self.body,
                self.content_length, self.has_content_length, self.content_type, self.encodings,
                self.chunked, self.connection, self.save_body, self.send_body, self.body_truncated)

    def __repr__(self) -> str:
        return "HttpMessage(%s)" % ", ".join("%s=%r" % kv for kv in zip(_FIELD_NAMES_OF_MESSAGE, self._values()))

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


_FIELD_NAMES_OF_MESSAGE = ("ts", "is_request", "size", "notes", "version", "method", "uri",
                           "status_code", "status_phrase", "headers", "raw_headers", "body",
                           "content_length", "has_content_length", "content_type", "encodings",
                           "chunked", "connection", "save_body", "send_body", "body_truncated")


def _blank_message(ts, is_request: bool) -> HttpMessage:
    """A message with every field at its default (without the keyword
    handling of ``HttpMessage(...)``: this runs once per message)."""
    m = HttpMessage.__new__(HttpMessage)
    m.ts = ts
    m.is_request = is_request
    m.size = 0
    m.notes = []
    m.version = m.method = m.uri = m.status_phrase = m.raw_headers = m.body = b""
    m.content_type = m.connection = b""
    m.status_code = 0
    m.headers = {}
    m.content_length = 0
    m.has_content_length = m.chunked = m.save_body = m.send_body = m.body_truncated = False
    m.encodings = []
    return m


class State(enum.IntEnum):
    START = 0
    HEADERS = 1
    BODY_LENGTH = 2
    BODY_CLOSE = 3
    CHUNK_SIZE = 4
    CHUNK_DATA = 5
    CHUNK_END = 6
    TRAILERS = 7


# The same states as plain ints (C ints when compiled: no enum look-ups on the hot path)
_START = 0
_HEADERS = 1
_BODY_LENGTH = 2
_BODY_CLOSE = 3
_CHUNK_SIZE = 4
_CHUNK_DATA = 5
_CHUNK_END = 6
_TRAILERS = 7


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_END_OF_SECTION = re.compile(rb"\n\r?\n")
_LINE_SPLIT = re.compile(rb"\r?\n")
_FIRST_WORD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z/]*")   # a method, or HTTP/x.y
MAX_FIRST_WORD = 32
_HEX = frozenset(b"0123456789abcdefABCDEF")
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
_KNOWN_METHODS = frozenset((b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH",
                            b"CONNECT", b"TRACE"))          # tokens: no need to check them
_VERSIONS = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}


def _is_token(b: bytes) -> bool:
    return _TOKEN.fullmatch(b) is not None


@functools.lru_cache(maxsize=1024)
def _field_name(raw: bytes) -> bytes | None:
    """Lower-cased field name of the bytes before a colon, or None when they
    are not a token (memoised: a capture repeats a handful of names)."""
    name = raw.rstrip(b" \t")
    return name.lower() if _TOKEN.fullmatch(name) is not None else None


# Field names that change how the message is framed or described.
_CONTENT_LENGTH = 1
_CONTENT_TYPE = 2
_TRANSFER_ENCODING = 3
_CONTENT_ENCODING = 4
_CONNECTION = 5
_SPECIAL_FIELDS = {
    b"content-length": _CONTENT_LENGTH,
    b"content-type": _CONTENT_TYPE,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"content-encoding": _CONTENT_ENCODING,
    b"connection": _CONNECTION,
}

# Field line -> (lower-cased name, value without surrounding blanks), for the
# lines of a CRLF-only header section that are plain fields (not folds, not
# errors). Bounded: lines of up to _LINE_FIELDS_LINE_MAX bytes are added until
# it holds _LINE_FIELDS_MAX of them (at most ~1 MB).
_LINE_FIELDS: dict = {}
_LINE_FIELDS_MAX = 4096
_LINE_FIELDS_LINE_MAX = 256

# Status line -> (version, status code, phrase), bounded as above.
_STATUS_LINES: dict = {}


def _parse_version(v: bytes) -> bytes:
    # HTTP-version = "HTTP/" DIGIT "." DIGIT
    known = _VERSIONS.get(v)
    if known is not None:
        return known
    if len(v) == 8 and v[:5] == b"HTTP/" and v[5:6].isdigit() and v[6:7] == b"." and v[7:8].isdigit():
        return v[5:]
    raise ParseError("bad HTTP version %r" % v[:16])


def _bad_target(uri: bytes) -> bool:
    """``_BAD_TARGET.search(uri) is not None`` (a control byte, space or DEL
    in a request target); compiled, a C loop over the bytes instead."""
    if not _COMPILED:
        return _BAD_TARGET.search(uri) is not None
    for c in uri:
        if c <= 0x20 or c == 0x7F:
            return True
    return False


def _bslice(b: bytes, i: int, j: int) -> bytes:
    """``b[i:j]`` (compiled, for 0 <= i <= j <= len(b): one allocation, no slice object)."""
    if _COMPILED and 0 <= i <= j <= len(b):
        return _bslice_c(b, i, j)
    return b[i:j]


def _baslice(b: bytearray, i: int, j: int) -> bytes:
    """``bytes(b[i:j])`` of a bytearray (compiled, for 0 <= i <= j <= len(b): one copy)."""
    if _COMPILED and 0 <= i <= j <= len(b):
        return _baslice_c(b, i, j)
    return bytes(b[i:j])


def _space(b: bytes, last: bool) -> int:
    """``b.find(b" ")``, or ``b.rfind(b" ")`` when ``last`` (compiled: a C loop)."""
    if _COMPILED:
        return _space_c(b, last)
    return b.rfind(b" ") if last else b.find(b" ")


def _all_hex(b: bytes) -> bool:
    """Every byte of ``b`` is a hex digit (compiled: a C loop)."""
    if _COMPILED:
        return _all_hex_c(b)
    return all(c in _HEX for c in b)


def _count_lf(b: bytes) -> int:
    """``b.count(b"\\n")`` (compiled: memchr in a C loop)."""
    if _COMPILED:
        return _count_lf_c(b)
    return b.count(b"\n")


def _find_end(b: bytearray, start: int) -> int:
    """``b.find(b"\\r\\n\\r\\n", start)`` for ``start >= 0`` (compiled: memchr in a C loop)."""
    if _COMPILED:
        return _find_end_c(b, start)
    return b.find(b"\r\n\r\n", start)


def _probe():
    pass


# True when this module runs compiled (setup.py): functions are then Cython's, not CPython's.
_COMPILED = type(_probe).__name__ != "function"


def _contains_any(ctype: bytes, subs: tuple) -> bool:
    for sub in subs:
        if sub in ctype:
            return True
    return False


def _comma_list(value: bytes) -> list[bytes]:
    return [p.strip().lower() for p in value.split(b",") if p.strip()]


class HttpParser:
    """Sans-I/O parser of one direction of an HTTP/1.x connection."""
    # slots: an idle connection holds two parsers; an instance dict costs more
    __slots__ = ("max_message_size", "request_body_for", "response_body_for", "_methods", "_ready",
                 "_buf", "_pos", "_scan", "_ts", "_state", "_msg", "_msg_start", "_start_done",
                 "_fields", "_body_seen", "_chunk_left", "_saved", "_save_limit")

    def __init__(self, max_message_size: int = 10 * 1024 * 1024,
                 request_body_for: tuple[bytes, ...] = (),
                 response_body_for: tuple[bytes, ...] = ()):
        self.max_message_size = max_message_size
        self.request_body_for = request_body_for
        self.response_body_for = response_body_for
        # request methods seen in the other direction, oldest first (a plain
        # list: a deque costs ~600 bytes per idle connection)
        self._methods: list[bytes] = []
        self._ready: list[HttpMessage] = []
        self._reset_stream()

    # ------------------------------------------------------------------ API

    @property
    def state(self) -> State:
        return State(self._state)

    def reset(self) -> None:
        """Forget buffered bytes, the message in progress and the pending
        request methods (resynchronise after an error or a lost header)."""
        self._methods.clear()
        self._ready = []
        self._reset_stream()

    def head_in_progress(self) -> HttpMessage | None:
        """The message whose header section is complete and whose body is still
        arriving (None between messages or inside a header section)."""
        return self._msg if self._state >= _BODY_LENGTH else None

    def push_request_method(self, method: bytes) -> None:
        """A request was seen in the other direction: its response comes in
        this one, in order (a response to HEAD has no body)."""
        methods = self._methods
        methods.append(bytes(method))
        if len(methods) > MAX_PENDING_METHODS:
            del methods[0]

    def feed(self, data, ts: int) -> list[HttpMessage]:
        """Append ``data`` (bytes or memoryview) captured at ``ts`` (ns) and
        return every message it completes."""
        out = self._ready          # may hold messages completed by on_gap
        self._ts = ts
        if not self._buf and self._state >= _BODY_LENGTH and self._body_only(len(data)):
            self._ready = []
            return out
        if data:
            self._buf += data
        buf = self._buf
        try:
            while self._pos < len(buf):
                if not self._step():
                    break
        except ParseError as e:
            e.messages = out
            self._ready = []
            raise
        finally:
            self._compact()
        self._ready = []
        return out

    def _step(self) -> bool:
        st = self._state
        if st == _START:
            return self._start()
        if st == _HEADERS:
            return self._headers()
        if st == _BODY_LENGTH:
            return self._body_length()
        if st == _BODY_CLOSE:
            return self._body_close()
        if st == _CHUNK_SIZE:
            return self._chunk_size()
        if st == _CHUNK_DATA:
            return self._chunk_data()
        if st == _CHUNK_END:
            return self._chunk_end()
        return self._trailers()

    def _body_only(self, n: int) -> bool:
        """Fast path: ``n`` new bytes, nothing buffered, inside a body that is
        not kept, and they do not reach the end of the body (or of the chunk):
        count them without buffering. False (nothing done) otherwise."""
        msg = self._msg
        if msg.save_body:
            return False
        st = self._state
        if st == _BODY_LENGTH:
            if n >= msg.content_length - self._body_seen:
                return False
            self._body_seen += n
        elif st == _CHUNK_DATA:
            if n >= self._chunk_left:
                return False
            self._chunk_left -= n
            msg.content_length += n
        elif st == _BODY_CLOSE:
            msg.content_length += n
        else:
            return False
        msg.size += n
        return True

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. True: the parser goes on (the loss is noted
        on the message; a message the gap completes is returned by the next
        :meth:`drain` or ``feed``). False: the message boundary is lost and
        the caller should :meth:`reset`."""
        st = self._state
        msg = self._msg
        if st == _START:
            return True        # between messages: nothing in progress
        if st == _BODY_LENGTH:
            self._note_loss()
            take = min(nbytes, msg.content_length - self._body_seen)
            self._body_seen += take
            msg.size += take
            self._hole_in_body()
            if self._body_seen >= msg.content_length:
                self._finish()
            return True
        if st == _BODY_CLOSE:
            self._note_loss()
            msg.content_length += nbytes
            msg.size += nbytes
            self._hole_in_body()
            return True
        if st == _CHUNK_DATA and nbytes < self._chunk_left:
            self._note_loss()
            self._chunk_left -= nbytes
            msg.content_length += nbytes
            msg.size += nbytes
            self._hole_in_body()
            return True
        if st != _HEADERS:
            self._note_loss()   # inside chunk framing: the message is kept, cut here
        return False

    def on_fin(self) -> list[HttpMessage]:
        """The sender closed its side: a close-delimited body ends here, and
        any message whose header section was complete is returned as it is."""
        if self._state not in (_START, _HEADERS):
            self._finish()
        out = self._ready
        self._ready = []
        self._reset_stream()
        return out

    def flush(self) -> list[HttpMessage]:
        """The connection is forgotten: same as :meth:`on_fin`."""
        return self.on_fin()

    def nothing_to_flush(self) -> bool:
        """True when :meth:`flush` would return no message: nothing completed
        waits, and no message is past its header section."""
        return (self._state == _START or self._state == _HEADERS) and not self._ready

    def drain(self) -> list[HttpMessage]:
        """Messages completed outside ``feed`` (by :meth:`on_gap`)."""
        out = self._ready
        self._ready = []
        return out

    # ------------------------------------------------------------ internals

    def _reset_stream(self) -> None:
        self._buf = bytearray()
        self._pos = 0          # parse offset in _buf
        self._scan = 0         # where the next line-end search resumes
        self._ts = 0
        self._new_message()

    def _new_message(self) -> None:
        self._state = _START
        self._msg: HttpMessage | None = None     # made by _start
        self._msg_start = 0     # offset in _buf of the start line (HEADERS state)
        self._start_done = False
        self._fields: list[tuple[bytes, bytes]] = []
        self._body_seen = 0
        self._chunk_left = 0
        self._saved: bytearray | None = None     # made when the body is kept
        self._save_limit = 0

    def _compact(self) -> None:
        # keep the unfinished header section whole: it becomes raw_headers
        keep = self._msg_start if self._state == _HEADERS else self._pos
        if keep:
            if keep >= len(self._buf):          # everything consumed (the common case)
                self._buf.clear()
                self._pos = self._scan = self._msg_start = 0
                return
            del self._buf[:keep]
            self._pos -= keep
            self._scan = max(0, self._scan - keep)
            self._msg_start = 0

    def _line(self, origin: int, limit: int) -> tuple[int, int] | None:
        """(end of the line's content, start of the next line), or None.
        ParseError when the bytes from ``origin`` to the end of the line (or
        of the data, for an incomplete line) exceed ``limit``: the rule does
        not depend on how the bytes were split."""
        buf = self._buf
        i = buf.find(b"\n", max(self._scan, self._pos))
        if i < 0:
            self._scan = len(buf)
            if len(buf) - origin > limit:
                raise ParseError("line or header section longer than %d bytes" % limit)
            return None
        if i + 1 - origin > limit:
            raise ParseError("line or header section longer than %d bytes" % limit)
        self._scan = i + 1
        end = i - 1 if i > self._pos and buf[i - 1] == 0x0D else i
        return end, i + 1

    def _note_loss(self) -> None:
        note = ("Packet loss while capturing the request" if self._msg.is_request
                else "Packet loss while capturing the response")
        if note not in self._msg.notes:
            self._msg.notes.append(note)

    def _hole_in_body(self) -> None:
        if self._msg.save_body:          # lost bytes cannot be stored
            self._msg.body_truncated = True

    def _save(self, data) -> None:
        room = self._save_limit - len(self._saved)
        if len(data) > room:
            self._msg.body_truncated = True
            data = data[:max(room, 0)]
        if len(data):
            self._saved += data

    def _finish(self) -> None:
        msg = self._msg
        if msg.save_body:
            msg.body = bytes(self._saved)
        self._ready.append(msg)
        self._new_message()

    # ---------------------------------------------------------------- steps

    def _start(self) -> bool:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        # RFC 9112 2.2: empty lines before a start line are ignored
        while pos < n and buf[pos] in (0x0D, 0x0A):
            pos += 1
        self._pos = pos
        if pos >= n:
            return False
        self._msg = _blank_message(self._ts, True)
        self._msg_start = self._scan = pos
        self._state = _HEADERS
        return self._headers()

    def _headers(self) -> bool:
        # The start line is judged as soon as it is complete (its first word
        # even before), the header fields once the whole section is there.
        # Each check looks at a prefix that is the same however the bytes
        # were split, so the outcome never depends on segmentation.
        buf = self._buf
        start = self._msg_start
        limit = self.max_message_size
        if not self._start_done:
            i = buf.find(b"\n", max(self._scan, start))
            if i < 0:
                self._scan = len(buf)
                word = bytes(buf[start:start + MAX_FIRST_WORD + 1]).split(b" ", 1)[0]
                if len(word) > MAX_FIRST_WORD or not _FIRST_WORD.fullmatch(word):
                    raise ParseError("not an HTTP start line: %r" % word[:32])
                if len(buf) - start > limit:
                    raise ParseError("start line longer than %d bytes" % limit)
                return False
            if i > start and buf[i - 1] == 0x0D and self._whole_section(i):
                return True
            line = bytes(buf[start:i])
            self._start_line(line[:-1] if line.endswith(b"\r") else line)
            self._start_done = True
            self._scan = i
        m = _END_OF_SECTION.search(buf, max(self._scan - 2, start))
        if m is None:
            self._scan = len(buf)
            if len(buf) - start > limit:
                raise ParseError("header section longer than %d bytes" % limit)
            return False
        end = m.end()
        if end - start > limit:
            raise ParseError("header section longer than %d bytes" % limit)
        section = bytes(buf[start:m.start()])
        if section.endswith(b"\r"):
            section = section[:-1]
        for line in _LINE_SPLIT.split(section)[1:]:
            self._field_line(line, self._fields)
        self._pos = self._scan = end
        self._end_of_headers()
        return True

    def _whole_section(self, i: int) -> bool:
        """Fast path: the whole header section is buffered and every line of
        it ends with CRLF (the common case). Same checks, in the same order,
        as the general path; False (nothing consumed) when it does not apply.
        ``i`` is the offset of the LF ending the start line."""
        buf = self._buf
        start = self._msg_start
        e = _find_end(buf, i - 1)
        if e < 0:
            return False
        end = e + 4
        raw = _baslice(buf, start, end)        # start line .. empty line (raw_headers)
        lines = raw.split(b"\r\n")             # ... then b"", b"" for the empty line
        nlines = len(lines) - 2
        if _count_lf(raw) != nlines + 1:
            return False                       # a bare LF somewhere: general path
        self._start_line(lines[0])
        self._start_done = True
        if end - start > self.max_message_size:
            raise ParseError("header section longer than %d bytes" % self.max_message_size)
        msg = self._msg
        if nlines > 1:
            # field lines repeat across messages (Host, User-Agent, Server, ...):
            # each distinct line is split and judged once (bounded table)
            cache = _LINE_FIELDS
            headers: dict = {}
            fields: list = []
            repeated = False
            for k in range(1, nlines):
                line = lines[k]
                f = cache.get(line)
                if f is None:
                    colon = line.find(b":")
                    name = _field_name(_bslice(line, 0, colon)) if colon > 0 and line[0] not in (0x20, 0x09) else None
                    if name is None:
                        self._field_line(line, fields)   # folded line, or the error it raises
                        repeated = True                  # the map is rebuilt from the fields
                        continue
                    f = (name, _bslice(line, colon + 1, len(line)).strip(b" \t"))
                    if len(line) <= _LINE_FIELDS_LINE_MAX and len(cache) < _LINE_FIELDS_MAX:
                        cache[line] = f
                fields.append(f)
                if not repeated:
                    name = f[0]
                    if name in headers:
                        repeated = True
                    else:
                        headers[name] = f[1]
            self._pos = self._scan = end
            msg.raw_headers = raw
            msg.size = end - start
            self._msg_start = end
            if repeated:
                te_present = self._apply_fields(fields)
            else:
                msg.headers = headers
                te_present = self._framing(headers)
        else:
            self._pos = self._scan = end
            msg.raw_headers = raw
            msg.size = end - start
            self._msg_start = end
            te_present = False
        self._pick_body_mode(te_present)
        return True

    def _start_line(self, line: bytes) -> None:
        msg = self._msg
        known = _STATUS_LINES.get(line)
        if known is not None:
            msg.is_request = False
            msg.version, msg.status_code, msg.status_phrase = known
            return
        if line.startswith(b"HTTP/"):
            msg.is_request = False
            parts = line.split(b" ", 2)
            msg.version = _parse_version(parts[0])
            if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
                raise ParseError("bad status line %r" % line[:64])
            msg.status_code = int(parts[1])
            msg.status_phrase = parts[2].strip(b" \t") if len(parts) == 3 else b""
            if len(line) <= _LINE_FIELDS_LINE_MAX and len(_STATUS_LINES) < _LINE_FIELDS_MAX:
                _STATUS_LINES[line] = (msg.version, msg.status_code, msg.status_phrase)
            return
        sp1 = _space(line, False)
        sp2 = _space(line, True)
        if sp1 <= 0 or sp2 == sp1:
            raise ParseError("not an HTTP start line: %r" % line[:64])
        method = _bslice(line, 0, sp1)
        if method not in _KNOWN_METHODS and (len(method) > MAX_FIRST_WORD or not _is_token(method)):
            raise ParseError("bad method %r" % method[:32])
        uri = _bslice(line, sp1 + 1, sp2).strip(b" ")
        if not uri or _bad_target(uri):
            raise ParseError("bad request target %r" % uri[:64])
        msg.method = method
        msg.uri = uri
        msg.version = _parse_version(_bslice(line, sp2 + 1, len(line)))

    @staticmethod
    def _field_line(line: bytes, fields: list[tuple[bytes, bytes]]) -> None:
        if line[0] in (0x20, 0x09):
            # obs-fold (RFC 9112 5.2): continuation of the previous value
            if not fields:
                raise ParseError("folded line before any header field")
            name, value = fields[-1]
            cont = line.strip(b" \t")
            fields[-1] = (name, value + b" " + cont if value and cont else value or cont)
            return
        colon = line.find(b":")
        if colon <= 0:
            raise ParseError("header line without a name: %r" % line[:64])
        name = line[:colon].rstrip(b" \t")
        if not _is_token(name):
            raise ParseError("bad header name %r" % name[:64])
        fields.append((name.lower(), line[colon + 1:].strip(b" \t")))

    def _end_of_headers(self) -> None:
        msg = self._msg
        msg.raw_headers = bytes(self._buf[self._msg_start:self._pos])
        msg.size = len(msg.raw_headers)
        self._msg_start = self._pos
        te_present = self._apply_fields(self._fields)
        self._fields = []
        self._pick_body_mode(te_present)

    def _apply_fields(self, fields: list[tuple[bytes, bytes]]) -> bool:
        msg = self._msg
        if not fields:
            return False
        headers = dict(fields)
        if len(headers) == len(fields):
            msg.headers = headers              # no repeated name: nothing to join
            return self._framing(headers)
        headers = msg.headers
        content_codings: list[bytes] = []
        transfer_codings: list[bytes] = []
        te_present = False
        special = _SPECIAL_FIELDS.get
        for name, value in fields:
            if name in headers:
                headers[name] = headers[name] + b", " + value
            else:
                headers[name] = value
            kind = special(name)
            if kind is None:
                continue
            if kind == _CONTENT_LENGTH:
                self._content_length(value)
            elif kind == _CONTENT_TYPE:
                msg.content_type = value
            elif kind == _TRANSFER_ENCODING:
                te_present = True
                transfer_codings.extend(_comma_list(value))
            elif kind == _CONTENT_ENCODING:
                content_codings.extend(_comma_list(value))
            else:
                msg.connection = value.lower()
        if transfer_codings and transfer_codings[-1] == b"chunked":
            msg.chunked = True
            transfer_codings.pop()
        if content_codings or transfer_codings:
            # content codings were applied first, transfer codings after them
            msg.encodings = [c for c in content_codings + transfer_codings if c != b"identity"]
        return te_present

    def _framing(self, headers: dict[bytes, bytes]) -> bool:
        """_apply_fields for a header map without repeated names."""
        msg = self._msg
        v = headers.get(b"content-length")
        if v is not None:
            self._content_length(v)
        v = headers.get(b"content-type")
        if v is not None:
            msg.content_type = v
        v = headers.get(b"connection")
        if v is not None:
            msg.connection = v.lower()
        te = headers.get(b"transfer-encoding")
        ce = headers.get(b"content-encoding")
        if te is None and ce is None:
            return False
        transfer_codings = _comma_list(te) if te is not None else []
        if transfer_codings and transfer_codings[-1] == b"chunked":
            msg.chunked = True
            transfer_codings.pop()
        content_codings = _comma_list(ce) if ce is not None else []
        if content_codings or transfer_codings:
            msg.encodings = [c for c in content_codings + transfer_codings if c != b"identity"]
        return te is not None

    def _content_length(self, value: bytes) -> None:
        msg = self._msg
        if value.isdigit():
            v = value                          # the common case: one plain number
        else:
            vals = {v.strip(b" \t") for v in value.split(b",")}
            v = vals.pop() if len(vals) == 1 else b""
        if not v.isdigit() or len(v) > 18:
            raise ParseError("bad Content-Length %r" % value[:64])
        n = int(v)
        if msg.has_content_length and n != msg.content_length:
            raise ParseError("conflicting Content-Length headers")
        msg.content_length = n
        msg.has_content_length = True

    def _pick_body_mode(self, te_present: bool) -> None:
        msg = self._msg
        if not msg.is_request:
            code = msg.status_code
            interim = 100 <= code < 200 and code != 101
            method = self._methods.pop(0) if not interim and self._methods else b""
            if (100 <= code < 200 or code == 204 or code == 304 or method == b"HEAD"
                    or (method == b"CONNECT" and 200 <= code < 300)):
                self._finish()
                return
        body_for = self.request_body_for if msg.is_request else self.response_body_for
        ctype = msg.content_type
        if body_for and _contains_any(ctype, body_for):
            msg.send_body = msg.save_body = True
        elif msg.is_request and ctype and b"urlencoded" in ctype:
            msg.save_body = True
        if msg.save_body:
            self._save_limit = max(0, self.max_message_size - len(msg.raw_headers))
            self._saved = bytearray()
        if msg.chunked:
            msg.content_length = 0        # counts the chunk data from now on
            self._state = _CHUNK_SIZE
        elif te_present:
            if msg.is_request:
                raise ParseError("request with a Transfer-Encoding other than chunked")
            msg.content_length = 0
            self._state = _BODY_CLOSE
        elif msg.has_content_length:
            if msg.content_length == 0:
                self._finish()
            else:
                self._state = _BODY_LENGTH
        elif msg.is_request:
            self._finish()
        else:
            self._state = _BODY_CLOSE

    def _body_length(self) -> bool:
        msg = self._msg
        take = min(len(self._buf) - self._pos, msg.content_length - self._body_seen)
        if msg.save_body:
            self._save(memoryview(self._buf)[self._pos:self._pos + take])
        self._pos += take
        self._body_seen += take
        msg.size += take
        if self._body_seen >= msg.content_length:
            self._finish()
            return True
        return False

    def _body_close(self) -> bool:
        msg = self._msg
        take = len(self._buf) - self._pos
        if msg.save_body:
            self._save(memoryview(self._buf)[self._pos:])
        self._pos += take
        msg.content_length += take
        msg.size += take
        return False

    def _chunk_size(self) -> bool:
        got = self._line(self._pos, MAX_CHUNK_LINE)
        if got is None:
            return False
        end, nxt = got
        line = bytes(self._buf[self._pos:end])
        digits = line.split(b";", 1)[0].strip(b" \t")
        if not digits or len(digits) > 15 or not _all_hex(digits):
            raise ParseError("bad chunk size line %r" % line[:64])
        size = int(digits, 16)
        self._msg.size += nxt - self._pos
        self._pos = nxt
        if size == 0:
            self._state = _TRAILERS
        else:
            self._chunk_left = size
            self._state = _CHUNK_DATA
        return True

    def _chunk_data(self) -> bool:
        msg = self._msg
        take = min(len(self._buf) - self._pos, self._chunk_left)
        if msg.save_body:
            self._save(memoryview(self._buf)[self._pos:self._pos + take])
        self._pos += take
        self._chunk_left -= take
        msg.content_length += take
        msg.size += take
        if self._chunk_left == 0:
            self._state = _CHUNK_END
            return True
        return False

    def _chunk_end(self) -> bool:
        buf = self._buf
        p = self._pos
        if buf[p] == 0x0A:
            n = 1
        elif buf[p] == 0x0D:
            if p + 1 >= len(buf):
                return False
            if buf[p + 1] != 0x0A:
                raise ParseError("chunk data not followed by CRLF")
            n = 2
        else:
            raise ParseError("chunk data not followed by CRLF")
        self._pos += n
        self._msg.size += n
        self._scan = self._pos
        self._state = _CHUNK_SIZE
        return True

    def _trailers(self) -> bool:
        got = self._line(self._pos, self.max_message_size)
        if got is None:
            return False
        end, nxt = got
        line = bytes(self._buf[self._pos:end])
        self._msg.size += nxt - self._pos
        self._pos = nxt
        if line:
            self._field_line(line, self._fields)
            return True
        # trailer fields join the header map; they never change the framing
        headers = self._msg.headers
        for name, value in self._fields:
            headers[name] = headers[name] + b", " + value if name in headers else value
        self._fields = []
        self._finish()
        return True
