"""PostgreSQL frontend/backend protocol, version 3 (PostgreSQL documentation,
chapter "Frontend/Backend Protocol": "Message Flow" and "Message Formats").

Theory of operation
-------------------
One :class:`PgsqlParser` reads one direction of a TCP connection:
``PgsqlParser(client=True)`` the frontend (client -> server) side,
``client=False`` the backend side. ``feed`` appends bytes to a buffer and
returns every message it can complete; the rest stays buffered.

Framing: a typed message is one type byte, a big-endian int32 length that
counts itself and the body (so >= 4), and the body. The untyped messages a
frontend sends first (StartupMessage, SSLRequest, GSSENCRequest,
CancelRequest) are an int32 length and an int32 code; every typed message
starts with an ASCII letter or digit, and a length below 16 MiB starts with
a zero byte, so a zero byte at a message boundary means "untyped". The
one-byte answer to SSLRequest/GSSENCRequest (``N``, ``S`` or ``G``) is read
only when :meth:`PgsqlParser.expect_ssl_answer` said one is due. ``S``/``G``
mean the rest of the stream is encrypted: the parser ignores it.

What comes out (:class:`PgsqlMessage`, ``kind``):

- frontend: ``REQUEST`` per statement executed: each statement of a simple
  Query (``Q``; the text is split on ``;`` outside quotes, comments and
  dollar quotes, as Packetbeat splits it, each part with the whole message's
  size), each extended-protocol Execute (``E``; the statement text is joined
  from the Parse that created the statement and the Bind that created the
  portal; its size counts the Parse/Bind/Describe before it and a Sync right
  after it). A Sync closing messages that executed nothing (Parse/Describe
  only: a statement being prepared) gives a ``hidden`` REQUEST, published
  only if the server answers it with an error. Statements starting with
  ``SET `` run through the extended protocol are hidden too (as Packetbeat).
  ``SYNC`` for each point the backend answers with ReadyForQuery (Query,
  Sync, StartupMessage, FunctionCall); ``SSL_REQUEST`` for SSLRequest and
  GSSENCRequest. CopyData/CopyDone/CopyFail bytes are added to the COPY
  request they belong to.
- backend: ``RESPONSE`` per statement answered: from its first message
  (ParseComplete, BindComplete, RowDescription, DataRow, CopyIn/OutResponse,
  ...) to CommandComplete, EmptyQueryResponse, ErrorResponse or
  PortalSuspended; rows are counted and the first ``max_rows`` kept (column
  text cut at ``max_row_length`` bytes per row). NoticeResponse,
  ParameterStatus, NotificationResponse and the authentication exchange are
  read and skipped: they answer no statement. ``READY`` for ReadyForQuery,
  carrying the unfinished response (e.g. the ParseComplete of a prepare),
  if any. ``SSL_ANSWER`` for the one-byte answer.

Every message's ``ts`` is that of the packet where its first byte arrived.

Bounds: an incomplete message is buffered up to ``MAX_MESSAGE_SIZE`` bytes;
a longer one is not buffered: its first ``KEEP_PREFIX`` bytes are kept, the
rest counted and skipped, and it is handled as a partial message (a DataRow
is counted, a query text is cut). A gap (lost bytes) inside a message whose
length is known is survivable the same way (:meth:`PgsqlParser.on_gap`),
with a "Packet loss" note; anywhere else the message boundary is lost.
Named statements and portals are remembered up to ``MAX_NAMES`` each.

Correlation key: none. The backend answers in order; ``trans.py`` pairs
requests and responses with one FIFO and resynchronises at every
ReadyForQuery.

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import re
import struct

from worker.plugin import ParseError as _BaseParseError
from worker.protos.sqltext import remember

MAX_MESSAGE_SIZE = 10 * 1024 * 1024     # as Packetbeat's tcp.TCPMaxDataInStream
MAX_LENGTH = 0x3FFFFFFF                 # PostgreSQL's own limit (MaxAllocSize)
KEEP_PREFIX = 64 * 1024                 # bytes kept of a message too big to buffer
MAX_NAMES = 1024                        # named statements / portals remembered

# message kinds
REQUEST = 0
SYNC = 1
SSL_REQUEST = 2
RESPONSE = 3
READY = 4
SSL_ANSWER = 5

# untyped frontend message codes
_SSL_CODE = 80877103
_GSSENC_CODE = 80877104
_CANCEL_CODE = 80877102

_HDR = struct.Struct("!BI")
_II = struct.Struct("!II")

NOTE_LOSS_REQUEST = "Packet loss while capturing the request"
NOTE_LOSS_RESPONSE = "Packet loss while capturing the response"

_FRONTEND_TYPES = frozenset(b"BCDEFHPQSXcdfp")
_BACKEND_TYPES = frozenset(b"123ACDEGHIKNRSTVWZcdnstv")
# backend messages that answer no statement: skipped
_ASYNC = frozenset(b"ANSKRVv")
# backend messages that end the answer to one statement
_ENDS = frozenset(b"CIEs")
# the valid types as 256-entry tables (a C array look-up when compiled)
_FRONTEND_OK = bytes(1 if i in _FRONTEND_TYPES else 0 for i in range(256))
_BACKEND_OK = bytes(1 if i in _BACKEND_TYPES else 0 for i in range(256))


class ParseError(_BaseParseError):
    """The bytes are not PostgreSQL protocol v3. ``messages`` holds the
    messages completed before the error was found (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class PgsqlMessage:
    """One message. A plain class with slots (an extension type when compiled,
    parser.pxd) that behaves as the ``@dataclass(slots=True)`` it replaces:
    keyword or positional fields, repr, equality."""
    __slots__ = ("ts", "is_request", "kind", "size", "notes", "query", "hidden", "fields", "formats",
                 "num_fields", "num_rows", "rows", "is_error", "error_code", "error_message",
                 "error_severity", "partial", "ssl")

    def __init__(self, ts, is_request, kind=REQUEST, size=0, notes=None, query=b"", hidden=False,
                 fields=None, formats=None, num_fields=0, num_rows=0, rows=None, is_error=False,
                 error_code=b"", error_message=b"", error_severity=b"", partial=None, ssl=b""):
        self.ts = ts                          # ns, packet where the message began
        self.is_request = is_request
        self.kind = kind
        self.size = size                      # bytes on the wire
        self.notes = notes if notes is not None else []
        # request
        self.query = query
        self.hidden = hidden                  # published only when answered by an error
        # response
        self.fields = fields if fields is not None else []      # RowDescription column names
        self.formats = formats if formats is not None else []   # their format codes (0 text)
        self.num_fields = num_fields
        self.num_rows = num_rows
        self.rows = rows if rows is not None else []            # first max_rows rows, cut
        self.is_error = is_error
        self.error_code = error_code
        self.error_message = error_message
        self.error_severity = error_severity
        self.partial = partial                # READY: the unfinished response
        self.ssl = ssl                        # SSL_ANSWER: b"N", b"S" or b"G"

    def _values(self) -> tuple:
        return (self.ts, self.is_request, self.kind, self.size, self.notes, self.query, self.hidden,
                self.fields, self.formats, self.num_fields, self.num_rows, self.rows, self.is_error,
                self.error_code, self.error_message, self.error_severity, self.partial, self.ssl)

    def __repr__(self) -> str:
        return "PgsqlMessage(%s)" % ", ".join("%s=%r" % kv for kv in zip(MESSAGE_FIELDS, self._values()))

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


MESSAGE_FIELDS = ("ts", "is_request", "kind", "size", "notes", "query", "hidden", "fields", "formats",
                  "num_fields", "num_rows", "rows", "is_error", "error_code", "error_message",
                  "error_severity", "partial", "ssl")


def _message(ts, is_request: bool, kind: int, size: int) -> PgsqlMessage:
    """A message with every other field at its default (without the keyword
    handling of ``PgsqlMessage(...)``: this runs once per message)."""
    m = PgsqlMessage.__new__(PgsqlMessage)
    m.ts = ts
    m.is_request = is_request
    m.kind = kind
    m.size = size
    m.notes = []
    m.query = m.error_code = m.error_message = m.error_severity = m.ssl = b""
    m.hidden = m.is_error = False
    m.fields = []
    m.formats = []
    m.rows = []
    m.num_fields = m.num_rows = 0
    m.partial = None
    return m


_SYNC_MARK = PgsqlMessage(0, True, SYNC)          # markers carry nothing: shared
_READY_MARK = PgsqlMessage(0, False, READY)


# --------------------------------------------------------------------------- SQL text

_SQL_SPECIAL = re.compile(rb"""[;'"]|--|/\*|\$(?:[A-Za-z_\x80-\xff][A-Za-z_0-9\x80-\xff]*)?\$""")
_IDENT_CHAR = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$")


def split_statements(query: bytes) -> list[bytes]:
    """The statements of a simple-Query text, stripped, empty ones left out.

    Like Packetbeat's ``pgsqlQueryParser`` but a ``;`` inside a string,
    quoted identifier, comment or dollar-quoted body does not split (the
    server would not split there either)."""
    if b";" not in query:
        q = query.strip()
        return [q] if q else []
    out: list[bytes] = []
    n = len(query)
    start = pos = 0
    search = _SQL_SPECIAL.search
    while pos < n:
        m = search(query, pos)
        if m is None:
            break
        tok = m.group()
        s, e = m.span()
        if tok == b";":
            piece = query[start:s].strip()
            if piece:
                out.append(piece)
            start = pos = e
        elif tok == b"'":
            escapes = s > 0 and query[s - 1] in b"eE" and (s < 2 or query[s - 2] not in _IDENT_CHAR)
            pos = _end_of_quoted(query, e, 39, escapes)
        elif tok == b'"':
            pos = _end_of_quoted(query, e, 34, False)
        elif tok == b"--":
            nl = query.find(b"\n", e)
            pos = n if nl < 0 else nl + 1
        elif tok == b"/*":
            pos = _end_of_comment(query, e)
        else:                                   # $tag$ ... $tag$
            end = query.find(tok, e)
            pos = n if end < 0 else end + len(tok)
    piece = query[start:].strip()
    if piece:
        out.append(piece)
    return out


def _end_of_quoted(q: bytes, pos: int, quote: int, backslash: bool) -> int:
    n = len(q)
    qb = bytes((quote,))
    while True:
        end = q.find(qb, pos)
        if end < 0:
            return n
        if backslash:
            k = end - 1
            while k >= pos and q[k] == 92:      # count backslashes before the quote
                k -= 1
            if (end - 1 - k) % 2:
                pos = end + 1
                continue
        if end + 1 < n and q[end + 1] == quote:  # doubled quote: escaped
            pos = end + 2
            continue
        return end + 1


def _end_of_comment(q: bytes, pos: int) -> int:
    depth = 1
    n = len(q)
    while depth:
        a = q.find(b"/*", pos)
        b = q.find(b"*/", pos)
        if b < 0:
            return n
        if 0 <= a < b:
            depth += 1
            pos = a + 2
        else:
            depth -= 1
            pos = b + 2
    return pos


def _cstring(buf, start: int, end: int) -> tuple[bytes, int]:
    """The NUL-terminated string at ``start`` (before ``end``) and the
    offset after its NUL."""
    z = buf.find(b"\0", start, end)
    if z < 0:
        raise ParseError("string not terminated")
    return buf[start:z], z + 1


# --------------------------------------------------------------------------- parser

class PgsqlParser:
    """Sans-I/O parser of one direction. ``feed`` returns complete messages."""

    __slots__ = ("client", "max_rows", "max_row_length", "_buf", "_buf_ts", "_out",
                 "_encrypted", "_expect_ssl", "_big", "_resp",
                 "_statements", "_portals", "_group_size", "_group_ts", "_group_query",
                 "_bump", "_copy_target", "_pending_notes", "_described")

    def __init__(self, client: bool, max_rows: int = 10, max_row_length: int = 1024):
        self.client = client
        self.max_rows = max_rows
        self.max_row_length = max_row_length
        self._buf = bytearray()
        self._buf_ts = 0            # ts of the packet where the buffered bytes began
        self._out: list[PgsqlMessage] = []
        self._encrypted = False
        self._expect_ssl = False
        # a message too big to buffer, or cut by a gap: [type, length, ts, prefix, left, lost]
        self._big: list | None = None
        # backend: the response being assembled
        self._resp: PgsqlMessage | None = None
        # backend: a ParameterDescription was read in this response (a Describe of a statement)
        self._described = False
        # frontend: extended-protocol bookkeeping
        self._statements: dict[bytes, bytes] = {}
        self._portals: dict[bytes, tuple[bytes, bytes | None]] = {}
        self._group_size = 0        # bytes of Parse/Bind/Describe/Close not yet executed
        self._group_ts = 0
        self._group_query = b""     # text of the last Parse of the group
        self._bump: PgsqlMessage | None = None      # request a following Sync/Flush belongs to
        self._copy_target: PgsqlMessage | None = None
        self._pending_notes: list[str] = []

    # ------------------------------------------------------------------ API

    @property
    def encrypted(self) -> bool:
        return self._encrypted

    def expect_ssl_answer(self) -> None:
        """The frontend sent SSLRequest/GSSENCRequest: a one-byte answer is due."""
        self._expect_ssl = True

    def stop(self) -> None:
        """Ignore the rest of the stream (it is encrypted)."""
        self._encrypted = True
        self._buf = bytearray()
        self._big = None

    def reset(self) -> None:
        """Forget buffered bytes and the message being assembled (after a
        ParseError), keeping statement names and SSL state."""
        self._buf = bytearray()
        self._big = None
        self._resp = None
        self._described = False
        self._group_size = 0
        self._group_query = b""
        self._bump = None
        self._copy_target = None

    def feed(self, data, ts: int) -> list[PgsqlMessage]:
        if self._encrypted:
            return []
        self._out = out = []
        if self._big is not None:
            data = self._feed_big(data)
            if not data:
                return out
        buf = self._buf
        if buf:
            carry = len(buf)
            buf += data
            if not self._ready(buf):
                return out              # the first message is still incomplete: nothing copied
            whole = bytes(buf)
        else:
            carry = 0
            whole = bytes(data)
        try:
            off = self._parse(whole, carry, ts)
        except ParseError as e:
            e.messages = out
            raise
        except (IndexError, struct.error, ValueError) as e:     # malformed body
            raise ParseError("malformed message: %s" % e, out) from None
        if carry:
            if off:
                del buf[:off]
                if buf:
                    self._buf_ts = ts
        elif off < len(whole) and not self._encrypted:
            self._buf = bytearray(whole[off:])
            self._buf_ts = ts
        return out

    def _ready(self, buf) -> bool:
        """Whether :meth:`_parse` would do anything with ``buf`` (bytes carried
        from earlier segments plus the new one): False while the first message
        is incomplete, so that a long message arriving in many segments is not
        copied once per segment."""
        n = len(buf)
        if self._expect_ssl:
            return True
        if n < 5:
            return False
        t = buf[0]
        if t == 0:
            return n >= 8 or not self.client
        if not (_FRONTEND_OK if self.client else _BACKEND_OK)[t]:
            return True                 # _parse raises
        length = (buf[1] << 24) | (buf[2] << 16) | (buf[3] << 8) | buf[4]
        return length < 4 or length >= MAX_MESSAGE_SIZE or n > length

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. True when parsing can go on: the gap falls
        inside a message whose length is known (the message is then handled
        as partial, with a loss note)."""
        self._out = []
        if self._encrypted or nbytes <= 0:
            return True
        big = self._big
        if big is not None:
            if nbytes > big[4]:
                return False
            big[4] -= nbytes
            big[5] = True
            if big[4] == 0:
                self._finish_big()
            return True
        buf = self._buf
        if len(buf) < 5 or buf[0] == 0:
            return False
        t, length = _HDR.unpack_from(buf, 0)
        left = length + 1 - len(buf)
        if length < 4 or left <= 0 or nbytes > left:
            return False
        self._big = [t, length, self._buf_ts, bytes(buf[5:5 + KEEP_PREFIX]), left - nbytes, True]
        self._buf = bytearray()
        if self._big[4] == 0:
            self._finish_big()
        return True

    def drain(self) -> list[PgsqlMessage]:
        """Messages completed outside ``feed`` (by ``on_gap``)."""
        out, self._out = self._out, []
        return out

    def flush(self) -> PgsqlMessage | None:
        """End of the connection: the unfinished backend response, if any."""
        resp, self._resp = self._resp, None
        return resp

    # ------------------------------------------------------------------ framing

    def _parse(self, buf, carry: int, ts: int) -> int:
        off = 0
        n = len(buf)
        if self._expect_ssl and n:
            self._expect_ssl = False
            t = buf[0]
            if t in b"NSG":
                self._out.append(PgsqlMessage(ts, False, SSL_ANSWER, 1, ssl=bytes((t,))))
                if t != 78:                     # S or G: encrypted from here on
                    self._encrypted = True
                    return n
                off = 1
        client = self.client
        valid = _FRONTEND_OK if client else _BACKEND_OK
        buf_ts = self._buf_ts
        while n - off >= 5:
            t = buf[off]
            length = (buf[off + 1] << 24) | (buf[off + 2] << 16) | (buf[off + 3] << 8) | buf[off + 4]
            # the first message may have begun in an earlier packet
            mts = buf_ts if off < carry else ts
            if t == 0:
                if not client:
                    raise ParseError("backend message without a type")
                if n - off < 8:
                    break
                length, code = _II.unpack_from(buf, off)
                if length < 8 or length > 10000:
                    raise ParseError("bad startup packet length %d" % length)
                if n - off < length:
                    break
                self._untyped(code, mts, length)
                off += length
                continue
            if not valid[t]:
                raise ParseError("invalid message type %r" % chr(t))
            if length < 4 or length > MAX_LENGTH:
                raise ParseError("invalid message length %d" % length)
            end = off + 1 + length
            if length >= MAX_MESSAGE_SIZE:
                # too big to buffer: keep a prefix, skip the rest (whatever the segmentation)
                self._big = [t, length, mts, buf[off + 5:min(end, off + 5 + KEEP_PREFIX)],
                             max(0, end - n), False]
                if end > n:
                    return n
                self._finish_big()
                off = end
                continue
            if end > n:
                break
            if client:
                self._frontend(t, buf, off + 5, end, mts, False, 0, False)
            else:
                self._backend(t, buf, off + 5, end, mts, False, 0, False)
            off = end
        return off

    def _feed_big(self, data):
        big = self._big
        take = min(big[4], len(data))
        room = KEEP_PREFIX - len(big[3])
        if room > 0:
            big[3] += bytes(data[:min(room, take)])
        big[4] -= take
        if big[4] == 0:
            self._finish_big()
        return data[take:]

    def _finish_big(self) -> None:
        t, length, mts, prefix, _left, lost = self._big
        self._big = None
        # a partial body: handlers read what is there and take the size from ``length``
        if self.client:
            self._frontend(t, prefix, 0, len(prefix), mts, True, length + 1, lost)
        else:
            self._backend(t, prefix, 0, len(prefix), mts, True, length + 1, lost)

    # ------------------------------------------------------------------ frontend

    def _untyped(self, code: int, ts: int, length: int) -> None:
        if code == _SSL_CODE or code == _GSSENC_CODE:
            self._out.append(PgsqlMessage(ts, True, SSL_REQUEST, length))
        elif code >> 16 == 3:                   # StartupMessage, protocol 3.x
            self._out.append(_SYNC_MARK)
        elif code != _CANCEL_CODE:
            raise ParseError("unknown startup code %d" % code)

    def _frontend(self, t: int, buf, start: int, end: int, ts: int, partial: bool,
                  size: int = 0, lost: bool = False) -> None:
        if not size:
            size = end - start + 5
        if lost:
            self._pending_notes.append(NOTE_LOSS_REQUEST)
        out = self._out
        if t == 81:                                     # Q: simple query
            z = buf.find(b"\0", start, end)
            if z < 0:
                if not partial:
                    raise ParseError("query not terminated")
                z = end
            stmts = split_statements(buf[start:z]) or [b""]
            notes = self._take_notes()
            target = None
            for q in stmts:
                m = _message(ts, True, REQUEST, size)
                m.notes = list(notes)
                m.query = q
                out.append(m)
                if target is None and q[:1] in (b"c", b"C") and q[:4].lower() == b"copy":
                    target = m
            self._copy_target = target or out[-1]
            self._bump = None
            out.append(_SYNC_MARK)
            return
        if t == 100 or t == 99 or t == 102:             # d/c/f: CopyData, CopyDone, CopyFail
            target = self._copy_target
            if target is not None:
                target.size += size
                if self._pending_notes:
                    target.notes.extend(self._take_notes())
            if t != 100:
                self._copy_target = None
            return
        if t == 80 or t == 66 or t == 68 or t == 67:    # P: Parse, B: Bind, D: Describe, C: Close
            # gathered into the request of the Execute (or Sync) that follows
            if not self._group_size:
                self._group_ts = ts
            self._group_size += size
            if t == 80:
                name, p = _cstring(buf, start, end)
                z = buf.find(b"\0", p, end)
                if z < 0:
                    if not partial:
                        raise ParseError("statement not terminated")
                    z = end
                query = buf[p:z]
                self._group_query = query
                remember(self._statements, name, query, MAX_NAMES)
            elif t == 66:
                if not partial:
                    portal, p = _cstring(buf, start, end)
                    stmt, _ = _cstring(buf, p, end)
                    remember(self._portals, portal, (stmt, self._statements.get(stmt)), MAX_NAMES)
            elif t == 67 and not partial and end - start >= 2:
                name, _ = _cstring(buf, start + 1, end)
                (self._statements if buf[start] == 83 else self._portals).pop(name, None)
            self._bump = None
            return
        if t == 69:                                     # E: Execute
            gsize = self._group_size
            mts = self._group_ts if gsize else ts
            portal = b""
            if not partial or buf.find(b"\0", start, end) >= 0:
                portal, _ = _cstring(buf, start, end)
            stmt, query = self._portals.get(portal, (b"", None))
            if query is None:
                query = b"EXECUTE " + (stmt or b"<unnamed>")
            notes = self._take_notes()
            m = _message(mts, True, REQUEST, gsize + size)
            m.notes = notes
            m.query = query.strip()
            m.hidden = query.startswith(b"SET ")
            out.append(m)
            self._group_size = 0
            self._group_query = b""
            self._bump = m
            self._copy_target = m
            return
        if t == 83 or t == 72:                          # S: Sync, H: Flush
            if self._group_size:
                # Parse/Describe/Close with no Execute: a statement being prepared
                notes = self._take_notes()
                m = _message(self._group_ts, True, REQUEST, self._group_size + size)
                m.notes = notes
                m.query = self._group_query.strip()
                m.hidden = True
                out.append(m)
                self._group_size = 0
                self._group_query = b""
                self._bump = None
            elif self._bump is not None:
                self._bump.size += size
                if t == 83:
                    self._bump = None
            if t == 83:
                out.append(_SYNC_MARK)
            return
        if t == 70:                                     # F: FunctionCall, answered by ReadyForQuery
            out.append(_SYNC_MARK)
            self._bump = None
            return
        # X Terminate, p password/SASL: nothing to report

    def _take_notes(self) -> list[str]:
        notes, self._pending_notes = self._pending_notes, []
        return notes

    # ------------------------------------------------------------------ backend

    def _backend(self, t: int, buf, start: int, end: int, ts: int, partial: bool,
                 size: int = 0, lost: bool = False) -> None:
        if t == 65 or t == 78 or t == 83 or t == 75 or t == 82 or t == 86 or t == 118:    # _ASYNC
            return
        if t == 90:                                     # Z: ReadyForQuery
            resp, self._resp = self._resp, None
            self._described = False
            if resp is None:
                self._out.append(_READY_MARK)
            else:
                m = _message(ts, False, READY, 0)
                m.partial = resp
                self._out.append(m)
            return
        resp = self._resp
        if resp is None:
            resp = self._resp = _message(ts, False, RESPONSE, 0)
        resp.size += size or (end - start + 5)
        if lost:
            resp.notes.append(NOTE_LOSS_RESPONSE)
        if t == 68:                                     # D: DataRow
            resp.num_rows += 1
            if len(resp.rows) < self.max_rows and not partial:
                resp.rows.append(self._row(resp, buf, start, end))
            return
        if t == 84:                                     # T: RowDescription
            if not partial:
                self._row_description(resp, buf, start, end)
            if self._described:
                self._end_describe(resp)
            return
        if t == 116:                                    # t: ParameterDescription
            self._described = True
            return
        if t == 110 and self._described:                # n: NoData
            self._end_describe(resp)
            return
        if t == 67 or t == 73 or t == 69 or t == 115:                                      # _ENDS
            if t == 69:                                 # E: ErrorResponse
                resp.is_error = True
                _error_fields(resp, buf, start, end)
            self._resp = None
            self._out.append(resp)
        # 1 2 3 t n G H W c d: part of the answer, nothing to read

    def _end_describe(self, resp: PgsqlMessage) -> None:
        """ParameterDescription then RowDescription / NoData: the whole answer to a
        statement's Describe (a prepare). It ends here even without a ReadyForQuery
        (drivers such as asyncpg prepare with Parse/Describe/Flush and execute
        later with Bind/Execute/Sync, whose answer must not be merged into it)."""
        self._described = False
        self._resp = None
        self._out.append(resp)

    def _row_description(self, resp: PgsqlMessage, buf, start: int, end: int) -> None:
        count = (buf[start] << 8) | buf[start + 1]
        off = start + 2
        names: list[bytes] = []
        formats: list[int] = []
        for _ in range(count):
            z = buf.find(b"\0", off, end)
            if z < 0:
                raise ParseError("RowDescription: column name not terminated")
            names.append(buf[off:z])
            off = z + 19
            if off > end:
                raise ParseError("RowDescription shorter than its column count")
            formats.append((buf[off - 2] << 8) | buf[off - 1])
        if off != end:
            raise ParseError("RowDescription longer than its column count")
        resp.fields = names
        resp.formats = formats
        resp.num_fields = count

    def _row(self, resp: PgsqlMessage, buf, start: int, end: int) -> list[bytes]:
        count = (buf[start] << 8) | buf[start + 1]
        if not resp.fields and not resp.num_fields:
            resp.num_fields = count
        off = start + 2
        formats = resp.formats
        nformats = len(formats)
        row: list[bytes] = []
        room = self.max_row_length
        for i in range(count):
            if off + 4 > end:
                raise ParseError("DataRow shorter than its column count")
            clen = (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]
            if clen >= 0x80000000:
                clen -= 0x100000000     # int32
            off += 4
            value = b""
            if clen > 0:
                if off + clen > end:
                    raise ParseError("DataRow column longer than the message")
                if i >= nformats or formats[i] == 0:
                    value = buf[off:off + min(clen, room)] if room > 0 else b""
                off += clen
            elif clen < -1:
                raise ParseError("DataRow: bad column length %d" % clen)
            if room > 0:
                row.append(value)
                room -= len(value)
        if off != end:
            raise ParseError("DataRow longer than its column count")
        return row


def _error_fields(resp: PgsqlMessage, buf, start: int, end: int) -> None:
    off = start
    while off < end:
        code = buf[off]
        if code == 0:
            break
        z = buf.find(b"\0", off + 1, end)
        if z < 0:
            break                                   # cut (partial message): keep what was read
        if code == 77:                              # M
            resp.error_message = buf[off + 1:z]
        elif code == 67:                            # C
            resp.error_code = buf[off + 1:z]
        elif code == 83:                            # S
            resp.error_severity = buf[off + 1:z]
        off = z + 1
