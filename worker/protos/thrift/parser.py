"""Thrift RPC message parser: the binary protocol (strict and old non-strict
message headers), the compact protocol, over the unframed ("socket" /
buffered) and the framed transports.

Specs: Apache Thrift ``doc/specs/thrift-binary-protocol.md``,
``thrift-compact-protocol.md`` and ``thrift-rpc.md``; rendering as Packetbeat
8's ``packetbeat/protos/thrift/thrift.go``.

Theory of operation
-------------------
One :class:`ThriftParser` reads one direction of a TCP connection. ``feed``
appends bytes to a buffer and returns every message that is complete. The
parser is resumable: the message being read is a small stack of open
structs, lists, sets and maps (:class:`_Frame`), and every primitive (a
field header, a number, a string, a collection header) is read whole or not
at all, so a message spread over many segments is read once, not again from
its start on every segment. A string whose bytes have not all arrived sets a
"need" mark and nothing is parsed until the buffer reaches it. Most messages
arrive whole: once a message's header is read, one recursive pass over the
buffer (``_fast_body``) reads it at once; only when a byte is missing does the
resumable reader start over and keep the state. Both give the same result
(the fuzz tests compare whole and split feeds).

Framing
-------
- unframed ("socket"): a message follows the previous one directly; it ends
  with the STOP of its top-level struct.
- framed: each message is preceded by its length (4 bytes, big endian). The
  length bounds the message: a message overrunning its frame is an error; a
  frame larger than ``max_message_size`` is not decoded (its header is read,
  the rest skipped); bytes lost inside a frame whose length is known can be
  skipped (:meth:`ThriftParser.on_gap`), so parsing resumes at the next frame.
- detection: unless ``transport`` / ``protocol`` are forced, the first
  message of a direction decides: ``80 01 00 0T`` is a strict binary header,
  ``82 T1`` a compact one, a length followed by either is a frame, a short
  length followed by a method name and a message type is an old non-strict
  binary header (framed or not). The choice is kept until the parser is
  reset.

Message: a header (type CALL/REPLY/EXCEPTION/ONEWAY, method name, seqid),
then a struct: the arguments of a call, the result of a reply (field 0 the
return value, other ids the declared exceptions), a TApplicationException
(1: message, 2: type) for an EXCEPTION message.

Values are rendered as Packetbeat renders them: numbers in decimal (bytes,
i16 and i32 as unsigned, as Packetbeat prints them; i64 signed), doubles in
Go's shortest ``'f'`` form, booleans ``true``/``false``, strings quoted like
Go's ``strconv.Quote`` (or as hex when they are not UTF-8), truncated to
``string_max_size`` bytes plus ``...``, ``"*"`` when obfuscated; lists
``[a, b]``, sets ``{a, b}`` (nothing at all when empty), maps ``{k: v}``,
structs ``(1: a, 2: b)``; collections and structs show at most
``collection_max_size`` items then ``...``. A struct with
``drop_after_n_struct_fields`` fields or more is an error (Packetbeat's
guard against misreading a stream). UUIDs (Thrift 0.19+) are shown in their
8-4-4-4-12 form.

Correlation key: the seqid of the message (with the method name), see
``trans.py``. Bounds: ``max_message_size`` buffered bytes per message,
nesting depth ``MAX_DEPTH``. Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import math
import struct
from decimal import Decimal

from worker.plugin import ParseError as _BaseParseError

MAX_DEPTH = 64
MAX_DETECT_NAME = 256          # longest method name an old non-strict header may have when detecting

# message types
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4

# wire types (binary protocol numbering; compact types are mapped onto them)
T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64 = 0, 2, 3, 4, 6, 8, 10
T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST, T_UUID = 11, 12, 13, 14, 15, 16
_BINARY_TYPES = frozenset((T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64, T_STRING, T_STRUCT,
                           T_MAP, T_SET, T_LIST, T_UUID))
# compact type -> binary type (1/2 are booleans true/false in field headers)
_COMPACT_TYPES = {1: T_BOOL, 2: T_BOOL, 3: T_BYTE, 4: T_I16, 5: T_I32, 6: T_I64, 7: T_DOUBLE,
                  8: T_STRING, 9: T_LIST, 10: T_SET, 11: T_MAP, 12: T_STRUCT, 13: T_UUID}
_FIXED_BINARY = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8, T_UUID: 16}
_FIXED_COMPACT = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_UUID: 16}
# the same as byte tables indexed by type (0: not fixed / not known), which
# the compiled module reads as C arrays (parser.pxd)
_FIXED_B = bytes(_FIXED_BINARY.get(t, 0) for t in range(256))
_FIXED_C = bytes(_FIXED_COMPACT.get(t, 0) for t in range(256))
_BINARY_OK = bytes(1 if t in _BINARY_TYPES else 0 for t in range(256))
_COMPACT_OF = bytes(_COMPACT_TYPES.get(t, 0) for t in range(16))

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_DBL = struct.Struct(">d")
_DBL_LE = struct.Struct("<d")

BINARY = "binary"
COMPACT = "compact"
SOCKET = "socket"
FRAMED = "framed"

NOTE_TOO_LARGE = "Message too large (%d bytes): not decoded"
_LOSS_NOTES = ("Packet loss while capturing the response", "Packet loss while capturing the request")


class ParseError(_BaseParseError):
    """The bytes are not Thrift. ``messages`` holds the messages that were
    complete before the error was found (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class ThriftMessage:
    """One message (a plain class rather than a dataclass: compiled, it is an
    extension type whose construction costs no Python ``__init__``)."""
    __slots__ = ("ts", "is_request", "size", "notes", "mtype", "method", "seqid", "fields",
                 "nfields", "transport", "protocol", "decoded", "direction", "oneway")

    def __init__(self, ts: int, is_request: bool, size: int = 0, notes: list | None = None,
                 mtype: int = 0, method: str = "", seqid: int = 0, oneway: bool = False):
        self.ts = ts                    # ns, packet where the message began
        self.is_request = is_request    # CALL or ONEWAY
        self.size = size                # message bytes (a frame's length, without its 4-byte header)
        self.notes = notes if notes is not None else []
        self.mtype = mtype              # CALL, REPLY, EXCEPTION, ONEWAY
        self.method = method            # as sent (truncated to string_max_size like Packetbeat)
        self.seqid = seqid
        self.fields = []                # top-level fields: [(id, rendered value or None)]
        self.nfields = 0                # top-level fields read (``fields`` may hold fewer)
        self.transport = ""             # socket / framed
        self.protocol = ""              # binary / compact
        self.decoded = True             # False: header only (too large, packet loss)
        self.direction = 0              # set by the plugin: 0 client -> server, 1 the reverse
        self.oneway = oneway            # a call that gets no reply (ONEWAY, IDL, or presumed)

    def __repr__(self) -> str:
        return "ThriftMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


# ---------------------------------------------------------------- rendering

def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` of a valid UTF-8 text."""
    if s.isprintable() and s.isascii() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            c = ord(ch)
            esc = _GO_ESCAPES.get(c)
            if esc is not None:
                out.append(esc)
            elif c < 0x20 or c == 0x7F:
                out.append("\\x%02x" % c)
            elif c < 0x10000:
                out.append("\\u%04x" % c)
            else:
                out.append("\\U%08x" % c)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def go_float(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)``: shortest digits, no exponent."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    r = repr(x)
    if r.endswith(".0"):
        return r[:-2]
    if "e" not in r:
        return r
    return format(Decimal(r).normalize(), "f")


def _uuid_text(b: bytes) -> str:
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def format_struct(items: list, nfields: int, limit: int, names: dict | None = None) -> str:
    """``(1: a, 2: b, ...)``: at most ``limit`` fields, then ``...``; field ids
    replaced by ``names`` where known."""
    parts = []
    for i, (fid, text) in enumerate(items):
        if i == limit:
            break
        if names:
            name = names.get(fid)
            parts.append((name if name is not None else str(fid)) + ": " + text)
        else:
            parts.append(str(fid) + ": " + text)
    if nfields > limit:
        parts.append("...")
    return "(" + ", ".join(parts) + ")"


# ---------------------------------------------------------------- the parse stack

_STRUCT, _LIST, _SET, _MAP = 0, 1, 2, 3


class _Frame:
    """One open struct or collection of the message being read."""
    __slots__ = ("kind", "render", "items", "count", "remaining", "etype", "vtype",
                 "fid", "ftype", "last_fid", "key")

    def __init__(self, kind: int, render: bool):
        self.kind = kind
        self.render = render        # False: read, not shown (past a limit, or capture_reply off)
        self.items: list = []       # struct: [(fid, text)]; list/set: [text]; map: ["k: v"]
        self.count = 0              # struct fields / elements read
        self.remaining = 0          # collection elements still to read
        self.etype = 0              # element (map: key) type
        self.vtype = 0              # map value type
        self.fid = 0                # struct: id of the field whose value is being read
        self.ftype = 0              # struct: its type (0: next comes a field header)
        self.last_fid = 0           # compact: previous field id (deltas)
        self.key = None             # map: the key read, waiting for its value


class _Incomplete(Exception):
    """Not enough bytes: ``need`` is the buffer length to wait for."""
    __slots__ = ("need",)

    def __init__(self, need: int):
        self.need = need


_NEED_MORE = _Incomplete(0)


def _i32(buf, p: int) -> int:
    """The big-endian signed 32-bit integer at ``p``."""
    v = _u32(buf, p)
    return v - 0x100000000 if v & 0x80000000 else v


def _u32(buf, p: int) -> int:
    """The big-endian unsigned 32-bit integer at ``p``."""
    b0 = buf[p]
    b1 = buf[p + 1]
    b2 = buf[p + 2]
    b3 = buf[p + 3]
    return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3


def _fast_varint(buf, p: int, end: int) -> tuple:
    """(value, position after) of the varint at ``p`` (a tenth byte, whose bits
    go past 64, is added by :func:`_varint_wide`, in Python integers)."""
    result = 0
    shift = 0
    while True:
        if p >= end:
            raise _NEED_MORE
        b = buf[p]
        p += 1
        if shift == 63:
            return _varint_wide(result, b, p)
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, p
        shift += 7


def _varint_wide(result, b: int, p: int) -> tuple:
    if b & 0x80:
        raise ParseError("varint too long")
    return result | ((b & 0x7F) << 63), p


def _skip_strings(buf, p: int, end: int, n: int, compact: bool) -> tuple:
    """Skip up to ``n`` complete strings from ``p``: (position after, how many)."""
    k = 0
    if compact:
        while k < n:
            q = p
            ln = shift = 0
            wide = False                # bits at 2**35 and above: the length is too large
            while True:
                if q >= end:
                    return p, k
                b = buf[q]
                q += 1
                if shift < 35:
                    ln |= (b & 0x7F) << shift
                elif b & 0x7F:
                    wide = True
                if not b & 0x80:
                    break
                shift += 7
                if shift >= 70:
                    raise ParseError("varint too long")
            if wide or ln >= 0x80000000:
                raise ParseError("bad string length")
            q += ln
            if q > end:
                return p, k
            p = q
            k += 1
        return p, k
    while k < n:
        if p + 4 > end:
            return p, k
        ln = _i32(buf, p)
        if ln < 0:
            raise ParseError("bad string length %d" % ln)
        q = p + 4 + ln
        if q > end:
            return p, k
        p = q
        k += 1
    return p, k


class ThriftParser:
    """Sans-I/O Thrift parser for one direction of a connection."""

    __slots__ = ("transport", "protocol", "forced_transport", "forced_protocol",
                 "string_max_size", "collection_max_size", "max_fields", "obfuscate",
                 "capture_reply", "max_message_size",
                 "_buf", "_start", "_pos", "_end", "_need", "_skip", "_ts",
                 "_msg", "_stack", "_frame_end", "_gap_msg", "too_large")

    def __init__(self, transport: str = "", protocol: str = "", *, string_max_size: int = 200,
                 collection_max_size: int = 15, drop_after_n_struct_fields: int = 500,
                 obfuscate_strings: bool = False, capture_reply: bool = True,
                 max_message_size: int = 10 * 1024 * 1024):
        self.forced_transport = transport
        self.forced_protocol = protocol
        self.string_max_size = string_max_size
        self.collection_max_size = collection_max_size
        self.max_fields = drop_after_n_struct_fields
        self.obfuscate = obfuscate_strings
        self.capture_reply = capture_reply
        self.max_message_size = max_message_size
        self.too_large = 0          # frames over max_message_size (header only)
        self._skip = 0
        self._gap_msg: ThriftMessage | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything buffered and the detected framing (after a
        ParseError or a gap)."""
        self.transport = self.forced_transport
        self.protocol = self.forced_protocol
        self._buf = bytearray()
        self._skip = 0
        self._new_message()

    def _new_message(self) -> None:
        self._start = 0             # first byte of the message (its frame header, if framed)
        self._pos = 0               # next byte to read
        self._end = -1              # framed: end of the frame; -1 unframed
        self._need = 0
        self._ts: int | None = None
        self._msg: ThriftMessage | None = None
        self._stack: list[_Frame] = []
        self._frame_end = -1

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._start

    # ------------------------------------------------------------ feeding

    def feed(self, data, ts: int) -> list[ThriftMessage]:
        """Append ``data`` (bytes-like) received at ``ts`` (ns); return the
        messages it completes."""
        if self._skip:
            n = len(data)
            if n <= self._skip:
                self._skip -= n
                return []
            data = data[self._skip:]
            self._skip = 0
        if not data:
            return []
        buf = self._buf
        if len(buf) == self._start and self._ts is None:
            self._ts = ts
        buf += data
        out: list[ThriftMessage] = []
        if len(buf) < self._need:
            return out
        try:
            while len(buf) > self._start:
                msg = self._step()
                if msg is None:
                    break
                out.append(msg)
                rest = self._pos < len(buf)
                self._compact()
                self._ts = ts if rest else None
                if self._skip:
                    break
        except ParseError as e:
            e.messages = out
            raise
        if len(buf) - self._start > self.max_message_size and self._need > len(buf):
            raise ParseError("message larger than %d bytes" % self.max_message_size, out)
        return out

    def _compact(self) -> None:
        pos = self._pos
        if pos >= len(self._buf):
            self._buf.clear()
        else:
            del self._buf[:pos]
        self._new_message()

    def _step(self) -> ThriftMessage | None:
        """Go on with the message being read: the message when it completes,
        None when more bytes are needed (``_need`` set)."""
        buf = self._buf
        try:
            if self._msg is None:
                if not self.transport or not self.protocol:
                    self._detect()
                if self.transport == FRAMED and self._frame_end < 0:
                    self._read_frame_header()
                self._read_message_header()
                length = self._frame_end - self._start - 4
                if self._frame_end >= 0 and length > self.max_message_size:
                    # not decoded: the header only, the rest of the frame skipped
                    self.too_large += 1
                    msg = self._msg
                    msg.decoded = False
                    msg.notes.append(NOTE_TOO_LARGE % length)
                    self._stack.clear()
                    return self._finish()
                # the whole message is mostly there: read it in one go; when it
                # is not (a frame known to be incomplete is not tried), the
                # resumable reader below starts over
                try:
                    if 0 <= self._end and len(buf) < self._end:
                        raise _NEED_MORE
                    self._fast_body()
                except _Incomplete:
                    msg = self._msg
                    self._stack.append(_Frame(_STRUCT, msg.is_request or self.capture_reply))
                else:
                    return self._finish()
            self._read_body()
            return self._finish()
        except _Incomplete as e:
            need = e.need
            if self._end >= 0 and need > self._end:
                raise ParseError("message overruns its frame") from None
            if self._msg is None and self._frame_end >= 0 and self._end < 0 and need - self._start > 65536:
                raise ParseError("no message header at the start of a large frame") from None
            self._need = need if need > len(buf) else len(buf) + 1
            return None

    def _finish(self) -> ThriftMessage:
        msg = self._msg
        assert msg is not None
        if self._frame_end >= 0:
            msg.size = self._frame_end - self._start - 4
            if self._frame_end > len(self._buf):
                # a frame too large to decode: skip the rest of it
                self._skip = self._frame_end - len(self._buf)
                self._pos = len(self._buf)
            else:
                self._pos = self._frame_end
        else:
            msg.size = self._pos - self._start
        self._need = 0
        return msg

    # ------------------------------------------------------------ detection

    def _detect(self) -> None:
        """Decide framing and protocol from the first bytes of a message."""
        buf = self._buf
        p = self._start
        n = len(buf) - p
        if n < 2:
            raise _Incomplete(p + 2)
        unframed = self.transport in ("", SOCKET)
        framed = self.transport in ("", FRAMED)
        if unframed:
            kind = self._header_kind(p)
            if kind:
                self._set_mode(SOCKET, kind)
                return
        if framed:
            if n < 6:
                raise _Incomplete(p + 6)
            length = _U32.unpack_from(buf, p)[0]
            if 0 < length < 0x80000000:
                kind = self._header_kind(p + 4)
                if kind:
                    self._set_mode(FRAMED, kind)
                    return
        # old non-strict binary headers: name length, name, type, seqid
        if self.protocol in ("", BINARY):
            if unframed and self._nonstrict_at(p):
                self._set_mode(SOCKET, "nonstrict")
                return
            if framed and 0 < _U32.unpack_from(buf, p)[0] < 0x80000000:
                if n < 8:
                    raise _Incomplete(p + 8)
                if self._nonstrict_at(p + 4):
                    self._set_mode(FRAMED, "nonstrict")
                    return
        raise ParseError("not a Thrift message header")

    def _header_kind(self, q: int) -> str:
        """``"binary"`` / ``"compact"`` when a strict binary or compact
        message header starts at ``q``, else ``""``; waits for its first bytes."""
        buf = self._buf
        if len(buf) < q + 2:
            raise _Incomplete(q + 2)
        b0, b1 = buf[q], buf[q + 1]
        if b0 == 0x80 and b1 == 0x01 and self.protocol in ("", BINARY):
            if len(buf) < q + 4:
                raise _Incomplete(q + 4)
            if buf[q + 2] == 0 and 1 <= buf[q + 3] <= 4:
                return BINARY
        elif b0 == 0x82 and (b1 & 0x1F) == 1 and 1 <= (b1 >> 5) <= 4 and self.protocol in ("", COMPACT):
            return COMPACT
        return ""

    def _nonstrict_at(self, q: int) -> bool:
        buf = self._buf
        if len(buf) < q + 4:
            raise _Incomplete(q + 4)
        ln = _U32.unpack_from(buf, q)[0]
        if not 0 < ln <= MAX_DETECT_NAME:
            return False
        name = bytes(buf[q + 4:q + 4 + ln])
        if not all(0x21 <= c < 0x7F for c in name):
            return False
        if len(buf) < q + 4 + ln + 1:
            # plausible so far: one more byte may tell
            raise _Incomplete(len(buf) + 1)
        return 1 <= buf[q + 4 + ln] <= 4

    def _set_mode(self, transport: str, kind: str) -> None:
        self.transport = transport
        self.protocol = COMPACT if kind == COMPACT else BINARY

    # ------------------------------------------------------------ headers

    def _read_frame_header(self) -> None:
        buf = self._buf
        p = self._start
        if len(buf) < p + 4:
            raise _Incomplete(p + 4)
        length = _I32.unpack_from(buf, p)[0]
        if length <= 0:
            raise ParseError("bad frame length %d" % length)
        self._frame_end = p + 4 + length
        self._pos = p + 4
        # a frame too large to decode: its header is read from what is there
        self._end = self._frame_end if length <= self.max_message_size else -1

    def _read_message_header(self) -> None:
        if self.protocol == COMPACT:
            self._compact_header()
        else:
            self._binary_header()
        msg = self._msg
        if msg is not None:
            msg.transport = self.transport
            msg.protocol = self.protocol

    def _check(self, need: int) -> None:
        if need > len(self._buf) or (self._end >= 0 and need > self._end):
            raise _Incomplete(need)

    def _method_name(self, p: int, ln: int) -> str:
        if ln <= self.string_max_size:
            return self._buf[p:p + ln].decode("utf-8", "replace")
        return self._buf[p:p + self.string_max_size].decode("utf-8", "replace") + "..."

    def _binary_header(self) -> None:
        buf = self._buf
        p = self._pos
        self._check(p + 4)
        word = _U32.unpack_from(buf, p)[0]
        if word & 0x80000000:
            # strict: version | type, name, seqid
            if word & 0xFFFF0000 != 0x80010000:
                raise ParseError("bad binary protocol version 0x%08x" % word)
            mtype = word & 0xFF
            if not 1 <= mtype <= 4:
                raise ParseError("bad message type %d" % mtype)
            self._check(p + 8)
            ln = _I32.unpack_from(buf, p + 4)[0]
            if not 0 <= ln <= self.max_message_size:
                raise ParseError("bad method name length")
            q = p + 8 + ln
            self._check(q + 4)
            seqid = _U32.unpack_from(buf, q)[0]
            name = self._method_name(p + 8, ln)
            end = q + 4
        else:
            ln = word
            if ln > self.max_message_size:
                raise ParseError("bad method name length")
            q = p + 4 + ln
            self._check(q + 5)
            mtype = buf[q]
            seqid = _U32.unpack_from(buf, q + 1)[0]
            name = self._method_name(p + 4, ln)
            end = q + 5
        if not 1 <= mtype <= 4:
            raise ParseError("bad message type %d" % mtype)
        self._pos = end
        self._msg = ThriftMessage(self._ts if self._ts is not None else 0, mtype in (CALL, ONEWAY),
                                  mtype=mtype, method=name, seqid=seqid, oneway=mtype == ONEWAY)

    def _varint(self, p: int) -> tuple[int, int]:
        buf = self._buf
        result = 0
        shift = 0
        limit = len(buf) if self._end < 0 else min(len(buf), self._end)
        while True:
            if p >= limit:
                raise _Incomplete(p + 1)
            b = buf[p]
            p += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, p
            shift += 7
            if shift >= 70:
                raise ParseError("varint too long")

    def _compact_header(self) -> None:
        buf = self._buf
        p = self._pos
        self._check(p + 2)
        if buf[p] != 0x82 or (buf[p + 1] & 0x1F) != 1:
            raise ParseError("bad compact protocol header")
        mtype = buf[p + 1] >> 5
        if not 1 <= mtype <= 4:
            raise ParseError("bad message type %d" % mtype)
        seqid, q = self._varint(p + 2)
        ln, q = self._varint(q)
        if ln > self.max_message_size:
            raise ParseError("bad method name length")
        self._check(q + ln)
        name = self._method_name(q, ln)
        self._pos = q + ln
        self._msg = ThriftMessage(self._ts if self._ts is not None else 0, mtype in (CALL, ONEWAY),
                                  mtype=mtype, method=name, seqid=seqid & 0xFFFFFFFF,
                                  oneway=mtype == ONEWAY)

    # ------------------------------------------------------------ body

    def _fast_body(self) -> None:
        """Read the message's struct from the buffer in one recursive pass
        (raises _Incomplete, changing nothing, when a byte is missing). Gives
        exactly what :meth:`_read_body` gives."""
        msg = self._msg
        buf = self._buf
        end = len(buf) if self._end < 0 else min(self._end, len(buf))
        compact = self.protocol == COMPACT
        limit = self.collection_max_size
        max_fields = self.max_fields
        render_all = msg.is_request or self.capture_reply
        first_shown = render_all and not msg.is_request
        items = []
        count = 0
        last = 0
        p = self._pos
        while True:
            if p >= end:
                raise _NEED_MORE
            b = buf[p]
            if b == 0:
                p += 1
                break
            if compact:
                t = _COMPACT_OF[b & 0x0F]
                if not t:
                    raise ParseError("compact field type %d not known" % (b & 0x0F))
                delta = b >> 4
                if delta:
                    fid = (last + delta) & 0xFFFF
                    p += 1
                else:
                    z, p = _fast_varint(buf, p + 1, end)
                    fid = ((z >> 1) ^ -(z & 1)) & 0xFFFF
                last = fid
            else:
                t = b
                if not _BINARY_OK[t]:
                    raise ParseError("field type %d not known" % t)
                if p + 3 > end:
                    raise _NEED_MORE
                fid = (buf[p + 1] << 8) | buf[p + 2]
                p += 3
            if count >= max_fields:
                raise ParseError("too many fields in a struct")
            render = render_all and (count < limit or (first_shown and count == 0))
            if compact:
                if t == T_BOOL:
                    text = ("true" if b & 0x0F == 1 else "false") if render else None
                else:
                    text, p = self._fc_value(buf, t, p, end, render, 1)
            else:
                text, p = self._fb_value(buf, t, p, end, render, 1)
            if count < limit or count == 0:
                items.append((fid, text))
            count += 1
        self._pos = p
        msg.fields = items
        msg.nfields = count

    def _render_collection(self, kind: int, items: list, count: int) -> str:
        if count > self.collection_max_size:
            items = items + ["..."]
        joined = ", ".join(items)
        if kind == _MAP:
            return "{" + joined + "}"
        if not joined:
            return ""
        return ("[" + joined + "]") if kind == _LIST else ("{" + joined + "}")

    def _fb_value(self, buf, t: int, p: int, end: int, render: bool, depth: int):
        """Binary protocol: (text or None, position after) of a value of type ``t``."""
        if t == T_STRING:
            if p + 4 > end:
                raise _NEED_MORE
            n = _i32(buf, p)
            if n < 0:
                raise ParseError("bad string length %d" % n)
            q = p + 4 + n
            if q > end:
                raise _NEED_MORE
            return (self._string(p + 4, n) if render else None), q
        size = _FIXED_B[t]
        if size:
            q = p + size
            if q > end:
                raise _NEED_MORE
            if not render:
                return None, q
            if t == T_I32:
                return str(_u32(buf, p)), q
            if t == T_BOOL:
                return ("true" if buf[p] else "false"), q
            if t == T_I64:
                return str(_I64.unpack_from(buf, p)[0]), q
            if t == T_I16:
                return str((buf[p] << 8) | buf[p + 1]), q
            if t == T_BYTE:
                return str(buf[p]), q
            if t == T_DOUBLE:
                return go_float(_DBL.unpack_from(buf, p)[0]), q
            return _uuid_text(bytes(buf[p:q])), q
        if depth >= MAX_DEPTH:
            raise ParseError("nesting too deep")
        limit = self.collection_max_size
        items: list = []
        count = 0
        if t == T_STRUCT:
            max_fields = self.max_fields
            while True:
                if p >= end:
                    raise _NEED_MORE
                ft = buf[p]
                if ft == 0:
                    p += 1
                    break
                if not _BINARY_OK[ft]:
                    raise ParseError("field type %d not known" % ft)
                if p + 3 > end:
                    raise _NEED_MORE
                if count >= max_fields:
                    raise ParseError("too many fields in a struct")
                fid = (buf[p + 1] << 8) | buf[p + 2]
                r = render and count < limit
                text, p = self._fb_value(buf, ft, p + 3, end, r, depth + 1)
                if r:
                    items.append((fid, text))
                count += 1
            return (format_struct(items, count, limit) if render else None), p
        if t == T_MAP:
            if p + 6 > end:
                raise _NEED_MORE
            kt = buf[p]
            vt = buf[p + 1]
            if not _BINARY_OK[kt] or not _BINARY_OK[vt]:
                raise ParseError("map key/value type not known")
            n = _i32(buf, p + 2)
            if n < 0:
                raise ParseError("bad map size %d" % n)
            p += 6
            kind = _MAP
        else:
            if p + 5 > end:
                raise _NEED_MORE
            kt = buf[p]
            if not _BINARY_OK[kt]:
                raise ParseError("element type %d not known" % kt)
            n = _i32(buf, p + 1)
            if n < 0:
                raise ParseError("bad collection size %d" % n)
            vt = 0
            p += 5
            kind = _LIST if t == T_LIST else _SET
        p = self._fast_elements(buf, kind, kt, vt, n, p, end, render, depth, items, False)
        return (self._render_collection(kind, items, n) if render else None), p

    def _fast_elements(self, buf, kind: int, kt: int, vt: int, n: int, p: int, end: int, render: bool,
                       depth: int, items: list, compact: bool) -> int:
        """Read ``n`` elements (map: entries) into ``items``; the position after them."""
        limit = self.collection_max_size
        sizes = _FIXED_C if compact else _FIXED_B
        i = 0
        while i < n:
            r = render and i < limit
            if not r:
                ks = sizes[kt]
                if kind == _MAP and ks:
                    vs = sizes[vt]
                    size = ks + vs if vs else 0
                else:
                    size = ks
                if size:
                    # elements not shown: skip them all at once
                    q = p + (n - i) * size
                    if q > end:
                        raise _NEED_MORE
                    return q
                if kt == T_STRING and kind != _MAP:
                    p, k = _skip_strings(buf, p, end, n - i, compact)
                    if k < n - i:
                        raise _NEED_MORE
                    return p
            if kind == _MAP:
                if compact:
                    key, p = self._fc_value(buf, kt, p, end, r, depth + 1)
                    val, p = self._fc_value(buf, vt, p, end, r, depth + 1)
                else:
                    key, p = self._fb_value(buf, kt, p, end, r, depth + 1)
                    val, p = self._fb_value(buf, vt, p, end, r, depth + 1)
                if r:
                    items.append(key + ": " + val)
            else:
                if compact:
                    text, p = self._fc_value(buf, kt, p, end, r, depth + 1)
                else:
                    text, p = self._fb_value(buf, kt, p, end, r, depth + 1)
                if r:
                    items.append(text)
            i += 1
        return p

    def _fc_value(self, buf, t: int, p: int, end: int, render: bool, depth: int):
        """Compact protocol: (text or None, position after) of a value of type ``t``."""
        if t == T_I32 or t == T_I16 or t == T_I64:
            z, p = _fast_varint(buf, p, end)
            if not render:
                return None, p
            v = (z >> 1) ^ -(z & 1)
            if t == T_I32:
                return str(v & 0xFFFFFFFF), p
            if t == T_I16:
                return str(v & 0xFFFF), p
            return str(v), p
        if t == T_STRING:
            n, q = _fast_varint(buf, p, end)
            if n >= 0x80000000:
                raise ParseError("bad string length")
            if q + n > end:
                raise _NEED_MORE
            return (self._string(q, n) if render else None), q + n
        size = _FIXED_C[t]
        if size:
            q = p + size
            if q > end:
                raise _NEED_MORE
            if not render:
                return None, q
            if t == T_BOOL:
                return ("true" if buf[p] == 1 else "false"), q
            if t == T_BYTE:
                return str(buf[p]), q
            if t == T_DOUBLE:
                return go_float(_DBL_LE.unpack_from(buf, p)[0]), q
            return _uuid_text(bytes(buf[p:q])), q
        if depth >= MAX_DEPTH:
            raise ParseError("nesting too deep")
        limit = self.collection_max_size
        items: list = []
        if t == T_STRUCT:
            max_fields = self.max_fields
            count = last = 0
            while True:
                if p >= end:
                    raise _NEED_MORE
                b = buf[p]
                if b == 0:
                    p += 1
                    break
                ft = _COMPACT_OF[b & 0x0F]
                if not ft:
                    raise ParseError("compact field type %d not known" % (b & 0x0F))
                delta = b >> 4
                if delta:
                    fid = (last + delta) & 0xFFFF
                    p += 1
                else:
                    z, p = _fast_varint(buf, p + 1, end)
                    fid = ((z >> 1) ^ -(z & 1)) & 0xFFFF
                last = fid
                if count >= max_fields:
                    raise ParseError("too many fields in a struct")
                r = render and count < limit
                if ft == T_BOOL:
                    text = ("true" if b & 0x0F == 1 else "false") if r else None
                else:
                    text, p = self._fc_value(buf, ft, p, end, r, depth + 1)
                if r:
                    items.append((fid, text))
                count += 1
            return (format_struct(items, count, limit) if render else None), p
        if t == T_MAP:
            n, p = _fast_varint(buf, p, end)
            if n >= 0x80000000:
                raise ParseError("bad map size")
            kt = vt = 0
            if n:
                if p >= end:
                    raise _NEED_MORE
                b = buf[p]
                kt = _COMPACT_OF[b >> 4]
                vt = _COMPACT_OF[b & 0x0F]
                if not kt or not vt:
                    raise ParseError("compact map key/value type not known")
                p += 1
            kind = _MAP
        else:
            if p >= end:
                raise _NEED_MORE
            b = buf[p]
            kt = _COMPACT_OF[b & 0x0F]
            if not kt:
                raise ParseError("compact element type %d not known" % (b & 0x0F))
            n = b >> 4
            p += 1
            if n == 15:
                n, p = _fast_varint(buf, p, end)
                if n >= 0x80000000:
                    raise ParseError("bad collection size")
            vt = 0
            kind = _LIST if t == T_LIST else _SET
        p = self._fast_elements(buf, kind, kt, vt, n, p, end, render, depth, items, True)
        return (self._render_collection(kind, items, n) if render else None), p

    def _read_body(self) -> None:
        """Read values until the top-level struct closes (raises _Incomplete)."""
        stack = self._stack
        compact = self.protocol == COMPACT
        value = self._element
        while stack:
            top = stack[-1]
            if top.kind == _STRUCT:
                if top.ftype:
                    # the field header was read, its value was incomplete
                    value(top, top.ftype, compact)
                    top.ftype = 0
                    continue
                if compact:
                    ftype, fid, boolval = self._compact_field_header(top)
                else:
                    ftype, fid, boolval = self._binary_field_header()
                if ftype == T_STOP:
                    stack.pop()
                    self._close(top)
                    continue
                if top.count >= self.max_fields:
                    raise ParseError("too many fields in a struct")
                top.fid = fid
                if boolval is not None:
                    self._deliver(top, boolval if self._element_render(top) else None)
                    continue
                top.ftype = ftype
                value(top, ftype, compact)
                top.ftype = 0
            else:
                if top.remaining == 0:
                    stack.pop()
                    self._close(top)
                    continue
                if not top.render or top.count >= self.collection_max_size:
                    sizes = _FIXED_C if compact else _FIXED_B
                    fixed = sizes[top.etype]
                    if fixed and top.kind == _MAP:
                        vsize = sizes[top.vtype]
                        fixed = fixed + vsize if vsize and top.key is None else 0
                    if fixed:
                        # elements not shown: skip them all at once
                        n = top.remaining * fixed
                        self._check(self._pos + n)
                        self._pos += n
                        top.count += top.remaining
                        top.remaining = 0
                        continue
                    if top.etype == T_STRING and top.kind != _MAP:
                        buf = self._buf
                        end = len(buf) if self._end < 0 else min(self._end, len(buf))
                        p, k = _skip_strings(buf, self._pos, end, top.remaining, compact)
                        self._pos = p
                        top.count += k
                        top.remaining -= k
                        if top.remaining:
                            raise _Incomplete(end + 1)
                        continue
                if top.kind == _MAP:
                    t = top.etype if top.key is None else top.vtype
                else:
                    t = top.etype
                value(top, t, compact)

    def _element(self, parent: _Frame, t: int, compact: bool) -> None:
        """One value for ``parent``: read whole by the one-pass reader when its
        bytes are all there (a list of thousands of strings costs one call per
        string), else by :meth:`_value` (which opens a frame or waits)."""
        buf = self._buf
        end = len(buf) if self._end < 0 else min(self._end, len(buf))
        try:
            if compact:
                text, q = self._fc_value(buf, t, self._pos, end, self._element_render(parent), len(self._stack))
            else:
                text, q = self._fb_value(buf, t, self._pos, end, self._element_render(parent), len(self._stack))
        except _Incomplete:
            self._value(parent, t, compact)
            return
        self._pos = q
        self._deliver(parent, text)

    def _element_render(self, parent: _Frame) -> bool:
        if not parent.render:
            return False
        if parent.kind == _STRUCT:
            # a reply's first field is its return value: always shown
            if len(self._stack) == 1 and not self._msg.is_request and parent.count == 0:
                return True
        return parent.count < self.collection_max_size

    def _value(self, parent: _Frame, t: int, compact: bool) -> None:
        """Read one value of type ``t`` for ``parent``: a scalar is delivered,
        a container pushed."""
        render = self._element_render(parent)
        if t == T_STRUCT or t == T_LIST or t == T_SET or t == T_MAP:
            if len(self._stack) >= MAX_DEPTH:
                raise ParseError("nesting too deep")
            if t == T_STRUCT:
                frame = _Frame(_STRUCT, render)
            elif t == T_MAP:
                frame = _Frame(_MAP, render)
                if compact:
                    self._compact_map_header(frame)
                else:
                    self._binary_map_header(frame)
            else:
                frame = _Frame(_LIST if t == T_LIST else _SET, render)
                if compact:
                    self._compact_list_header(frame)
                else:
                    self._binary_list_header(frame)
            self._stack.append(frame)
            return
        text = self._compact_scalar(t, render, parent.kind != _STRUCT) if compact \
            else self._binary_scalar(t, render)
        self._deliver(parent, text)

    def _deliver(self, parent: _Frame, text) -> None:
        """A complete value for ``parent``."""
        kind = parent.kind
        if kind == _STRUCT:
            if len(self._stack) == 1:
                # the message's struct: its first field is kept even when not
                # shown (a reply's return value or exception)
                if parent.count < self.collection_max_size or parent.count == 0:
                    parent.items.append((parent.fid, text))
            elif parent.render and parent.count < self.collection_max_size:
                parent.items.append((parent.fid, text))
            parent.count += 1
        elif kind == _MAP:
            if parent.key is None:
                parent.key = text if text is not None else ""
                return
            if parent.render and parent.count < self.collection_max_size:
                parent.items.append(parent.key + ": " + text)
            parent.key = None
            parent.count += 1
            parent.remaining -= 1
        else:
            if parent.render and parent.count < self.collection_max_size:
                parent.items.append(text)
            parent.count += 1
            parent.remaining -= 1

    def _close(self, frame: _Frame) -> None:
        """A struct or collection is complete: render it for its parent, or
        finish the message."""
        stack = self._stack
        if not stack:
            msg = self._msg
            msg.fields = frame.items
            msg.nfields = frame.count
            return
        text = None
        if frame.render:
            limit = self.collection_max_size
            kind = frame.kind
            if kind == _STRUCT:
                text = format_struct(frame.items, frame.count, limit)
            else:
                items = frame.items
                if frame.count > limit:
                    items = items + ["..."]
                joined = ", ".join(items)
                if kind == _MAP:
                    text = "{" + joined + "}"
                elif joined:
                    text = ("[" + joined + "]") if kind == _LIST else ("{" + joined + "}")
                else:
                    text = ""
        self._deliver(stack[-1], text)

    # ------------------------------------------------------------ binary protocol

    def _binary_field_header(self):
        buf = self._buf
        p = self._pos
        self._check(p + 1)
        t = buf[p]
        if t == T_STOP:
            self._pos = p + 1
            return T_STOP, 0, None
        if t not in _BINARY_TYPES:
            raise ParseError("field type %d not known" % t)
        self._check(p + 3)
        self._pos = p + 3
        return t, _U16.unpack_from(buf, p + 1)[0], None

    def _binary_list_header(self, frame: _Frame) -> None:
        buf = self._buf
        p = self._pos
        self._check(p + 5)
        et = buf[p]
        if et not in _BINARY_TYPES:
            raise ParseError("element type %d not known" % et)
        n = _I32.unpack_from(buf, p + 1)[0]
        if n < 0:
            raise ParseError("bad collection size %d" % n)
        frame.etype = et
        frame.remaining = n
        self._pos = p + 5

    def _binary_map_header(self, frame: _Frame) -> None:
        buf = self._buf
        p = self._pos
        self._check(p + 6)
        kt, vt = buf[p], buf[p + 1]
        if kt not in _BINARY_TYPES or vt not in _BINARY_TYPES:
            raise ParseError("map key/value type not known")
        n = _I32.unpack_from(buf, p + 2)[0]
        if n < 0:
            raise ParseError("bad map size %d" % n)
        frame.etype, frame.vtype, frame.remaining = kt, vt, n
        self._pos = p + 6

    def _binary_scalar(self, t: int, render: bool):
        buf = self._buf
        p = self._pos
        if t == T_STRING:
            self._check(p + 4)
            n = _I32.unpack_from(buf, p)[0]
            if n < 0:
                raise ParseError("bad string length %d" % n)
            self._check(p + 4 + n)
            self._pos = p + 4 + n
            return self._string(p + 4, n) if render else None
        size = _FIXED_BINARY[t]
        self._check(p + size)
        self._pos = p + size
        if not render:
            return None
        if t == T_I32:
            return str(_U32.unpack_from(buf, p)[0])
        if t == T_BOOL:
            return "true" if buf[p] else "false"
        if t == T_I64:
            return str(_I64.unpack_from(buf, p)[0])
        if t == T_I16:
            return str(_U16.unpack_from(buf, p)[0])
        if t == T_BYTE:
            return str(buf[p])
        if t == T_DOUBLE:
            return go_float(_DBL.unpack_from(buf, p)[0])
        return _uuid_text(bytes(buf[p:p + 16]))

    def _string(self, p: int, n: int) -> str:
        maxs = self.string_max_size
        if n > maxs:
            raw = self._buf[p:p + maxs] + b"..."
        elif n:
            raw = self._buf[p:p + n]
        else:
            return '""'
        if not raw:
            return '""'
        if self.obfuscate:
            return '"*"'
        try:
            return go_quote(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return raw.hex()

    # ------------------------------------------------------------ compact protocol

    def _compact_field_header(self, frame: _Frame):
        buf = self._buf
        p = self._pos
        self._check(p + 1)
        b = buf[p]
        if b == 0:
            self._pos = p + 1
            return T_STOP, 0, None
        ct = b & 0x0F
        t = _COMPACT_TYPES.get(ct)
        if t is None:
            raise ParseError("compact field type %d not known" % ct)
        delta = b >> 4
        if delta:
            fid = frame.last_fid + delta
            q = p + 1
        else:
            z, q = self._varint(p + 1)
            fid = (z >> 1) ^ -(z & 1)
        fid &= 0xFFFF
        frame.last_fid = fid
        self._pos = q
        if t == T_BOOL:
            return t, fid, ("true" if ct == 1 else "false")
        return t, fid, None

    def _compact_list_header(self, frame: _Frame) -> None:
        buf = self._buf
        p = self._pos
        self._check(p + 1)
        b = buf[p]
        t = _COMPACT_TYPES.get(b & 0x0F)
        if t is None:
            raise ParseError("compact element type %d not known" % (b & 0x0F))
        n = b >> 4
        q = p + 1
        if n == 15:
            n, q = self._varint(q)
            if n >= 0x80000000:
                raise ParseError("bad collection size")
        frame.etype = t
        frame.remaining = n
        self._pos = q

    def _compact_map_header(self, frame: _Frame) -> None:
        n, q = self._varint(self._pos)
        if n >= 0x80000000:
            raise ParseError("bad map size")
        if n:
            self._check(q + 1)
            b = self._buf[q]
            kt = _COMPACT_TYPES.get(b >> 4)
            vt = _COMPACT_TYPES.get(b & 0x0F)
            if kt is None or vt is None:
                raise ParseError("compact map key/value type not known")
            frame.etype, frame.vtype = kt, vt
            q += 1
        frame.remaining = n
        self._pos = q

    def _compact_scalar(self, t: int, render: bool, element: bool):
        buf = self._buf
        p = self._pos
        if t == T_I32 or t == T_I16 or t == T_I64:
            z, q = self._varint(p)
            self._pos = q
            if not render:
                return None
            v = (z >> 1) ^ -(z & 1)
            if t == T_I32:
                return str(v & 0xFFFFFFFF)
            if t == T_I16:
                return str(v & 0xFFFF)
            return str(v)
        if t == T_STRING:
            n, q = self._varint(p)
            if n >= 0x80000000:
                raise ParseError("bad string length")
            self._check(q + n)
            self._pos = q + n
            return self._string(q, n) if render else None
        size = _FIXED_COMPACT[t]
        self._check(p + size)
        self._pos = p + size
        if not render:
            return None
        if t == T_BOOL:
            # a collection element: 1 is true (2, or 0 from some writers, false)
            return "true" if buf[p] == 1 else "false"
        if t == T_BYTE:
            return str(buf[p])
        if t == T_DOUBLE:
            return go_float(_DBL_LE.unpack_from(buf, p)[0])
        return _uuid_text(bytes(buf[p:p + 16]))

    # ------------------------------------------------------------ stream events

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. Inside a frame whose length is known the
        message is given up (its header, when read, is kept for
        :meth:`drain`) and the rest of the frame skipped: parsing goes on.
        Elsewhere the message boundary is lost (Packetbeat drops the stream)."""
        msg = self._msg
        frame_end = self._frame_end
        have = len(self._buf)
        if self._skip:
            # already skipping the rest of a frame
            if nbytes <= self._skip:
                self._skip -= nbytes
                return True
            self._gap_msg = None
            self.reset()
            return False
        if frame_end >= 0 and have + nbytes <= frame_end:
            if msg is not None:
                msg.decoded = False
                msg.size = frame_end - self._start - 4
                msg.fields = []
                msg.nfields = 0
                msg.notes.append(_LOSS_NOTES[msg.is_request])
            self._gap_msg = msg
            transport, protocol = self.transport, self.protocol
            skip = frame_end - have - nbytes
            self._buf = bytearray()
            self._new_message()
            self.transport, self.protocol = transport, protocol
            self._skip = skip
            return True
        if msg is not None:
            msg.decoded = False
            msg.fields = []
            msg.nfields = 0
            msg.size = (frame_end - self._start - 4) if frame_end >= 0 else have - self._start + nbytes
            msg.notes.append(_LOSS_NOTES[msg.is_request])
        self._gap_msg = msg
        self.reset()
        return False

    def drain(self) -> list[ThriftMessage]:
        """The message a gap cut short (header only), if its header was read."""
        msg = getattr(self, "_gap_msg", None)
        self._gap_msg = None
        return [msg] if msg is not None else []

    def flush(self) -> list[ThriftMessage]:
        """The connection is forgotten: nothing can be made of an incomplete message."""
        self.reset()
        return []
