"""CQL native protocol framing, one parser per TCP direction.

Spec: Apache Cassandra ``doc/native_protocol_v3.spec``, ``_v4.spec`` and
``_v5.spec`` (v1/v2 frame headers are read too, as Packetbeat does).

Framing
    v3/v4 (and v5 before the switch): a frame is a 9-byte header
    ``version(1) flags(1) stream(2) opcode(1) length(4)`` and ``length`` body
    bytes (v1/v2: 8 bytes, a one-byte stream). Bit 0x80 of the version byte
    marks a response. Flag 0x01: the body is compressed with the algorithm the
    client chose in STARTUP (``COMPRESSION``: ``lz4`` = 4-byte big-endian
    uncompressed length + LZ4 block, ``snappy`` = raw Snappy); the header's
    ``length`` is that of the compressed body, as on the wire.

    v5: once the server answered a v5 STARTUP with READY or AUTHENTICATE, both
    directions carry *segments*: a 3-byte little-endian header word (17-bit
    payload length, self-contained bit) and its CRC24, or with lz4 a 5-byte word
    (17-bit compressed length, 17-bit uncompressed length, self-contained bit)
    and its CRC24; then the payload and its CRC32. A self-contained segment
    holds whole envelopes; a large envelope spans several segments. Envelopes
    are frames of the v4 layout without the compression flag. Both CRCs are
    checked: a mismatch is a framing error (the direction resynchronises).

Correlation key
    The stream id of the header: a response carries the stream of its
    request; EVENT frames (stream -1, 65535 as read unsigned) are pushed by the
    server. The correlator (``trans.py``) pairs in arrival order as Packetbeat
    does, or by stream.

The parser is sans-I/O: ``feed(data, ts)`` returns complete
:class:`CassandraMessage` objects with their (decompressed) body; bodies are
decoded into Packetbeat's fields by ``body.py``. It raises only
:class:`ParseError`. A frame whose body is larger than ``max_message_size`` is
not buffered: its body is skipped and the message keeps its header and a note.
"""
from __future__ import annotations

import struct
import zlib

from worker.plugin import ParseError as _BaseParseError

try:  # maintained bindings of both codecs (Snappy raw and LZ4 block)
    import cramjam
except ImportError:  # pragma: no cover - declared dependency
    cramjam = None


class ParseError(_BaseParseError):
    """Bytes that are not CQL native protocol."""


# opcodes
OP_ERROR = 0x00
OP_STARTUP = 0x01
OP_READY = 0x02
OP_AUTHENTICATE = 0x03
OP_OPTIONS = 0x05
OP_SUPPORTED = 0x06
OP_QUERY = 0x07
OP_RESULT = 0x08
OP_PREPARE = 0x09
OP_EXECUTE = 0x0A
OP_REGISTER = 0x0B
OP_EVENT = 0x0C
OP_BATCH = 0x0D
OP_AUTH_CHALLENGE = 0x0E
OP_AUTH_RESPONSE = 0x0F
OP_AUTH_SUCCESS = 0x10

OP_NAMES = {
    OP_ERROR: "ERROR", OP_STARTUP: "STARTUP", OP_READY: "READY", OP_AUTHENTICATE: "AUTHENTICATE",
    OP_OPTIONS: "OPTIONS", OP_SUPPORTED: "SUPPORTED", OP_QUERY: "QUERY", OP_RESULT: "RESULT",
    OP_PREPARE: "PREPARE", OP_EXECUTE: "EXECUTE", OP_REGISTER: "REGISTER", OP_EVENT: "EVENT",
    OP_BATCH: "BATCH", OP_AUTH_CHALLENGE: "AUTH_CHALLENGE", OP_AUTH_RESPONSE: "AUTH_RESPONSE",
    OP_AUTH_SUCCESS: "AUTH_SUCCESS",
}
OP_BY_NAME = {v: k for k, v in OP_NAMES.items()}
REQUEST_OPS = frozenset((OP_STARTUP, OP_OPTIONS, OP_QUERY, OP_PREPARE, OP_EXECUTE, OP_REGISTER,
                         OP_BATCH, OP_AUTH_RESPONSE))
RESPONSE_OPS = frozenset((OP_ERROR, OP_READY, OP_AUTHENTICATE, OP_SUPPORTED, OP_RESULT, OP_EVENT,
                          OP_AUTH_CHALLENGE, OP_AUTH_SUCCESS))

# header flags
FLAG_COMPRESS = 0x01
FLAG_TRACING = 0x02
FLAG_CUSTOM_PAYLOAD = 0x04
FLAG_WARNING = 0x08
FLAG_BETA = 0x10

MAX_FRAME = 256 * 1024 * 1024          # the protocol's limit on a frame body
MAX_SEGMENT_PAYLOAD = (1 << 17) - 1

NOTE_TOO_LARGE = "Cassandra frame body larger than the maximum message size: not parsed"
NOTE_DECOMPRESS = "Cassandra frame body could not be decompressed"
NOTE_GAP = ("Packet loss while capturing the request", "Packet loss while capturing the response")

_HDR9 = struct.Struct(">BBHBI")
_HDR8 = struct.Struct(">BBBBI")
_U32 = struct.Struct(">I")

_CRC24_INIT = 0x875060
_CRC24_POLY = 0x1974F0B
_CRC32_PREFIX = zlib.crc32(b"\xfa\x2d\x55\xca")


def _crc24_table() -> tuple:
    table = []
    for i in range(256):
        crc = i << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= _CRC24_POLY
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def crc24(data: bytes) -> int:
    """CRC24 of a v5 segment header word (its bytes in wire order): Cassandra's
    bit-by-bit CRC (init 0x875060, polynomial 0x1974F0B), a byte at a time."""
    return _crc24_at(data, 0, len(data))


def _crc24_at(data, start: int, n: int) -> int:
    """CRC24 of ``data[start:start + n]``, without the slice."""
    crc = _CRC24_INIT
    table = _CRC24_TABLE
    for i in range(start, start + n):
        b = data[i]
        t = table[(crc >> 16) ^ b]
        crc = ((crc << 8) & 0xFFFFFF) ^ t
    return crc


def _le(data, start: int, n: int) -> int:
    """The little-endian unsigned integer of ``data[start:start + n]`` (n <= 8)."""
    v = 0
    for i in range(n):
        b = data[start + i]
        v |= b << (8 * i)
    return v


def crc32(data) -> int:
    """CRC32 of a v5 segment payload (seeded with Cassandra's four bytes)."""
    return zlib.crc32(data, _CRC32_PREFIX) & 0xFFFFFFFF


class Codec:
    """What both directions of one connection share: the compression the
    client chose in STARTUP (or the configured one), and whether the
    connection has switched to v5 segments."""
    __slots__ = ("compression", "segments")

    def __init__(self, compression: str = "") -> None:
        self.compression = compression      # "", "lz4" or "snappy"
        self.segments = False


def decompress(algo: str, data: bytes, limit: int) -> bytes | None:
    """A v3/v4 frame body, decompressed; None when it cannot be (unknown
    algorithm, corrupt data, or larger than ``limit``)."""
    if cramjam is None:
        return None
    algos = (algo,) if algo else ("lz4", "snappy")
    for a in algos:
        try:
            if a == "lz4":
                if len(data) < 4:
                    continue
                n = _U32.unpack_from(data, 0)[0]
                if n > limit:
                    continue
                if n == 0:
                    return b""
                out = bytes(cramjam.lz4.decompress_block(bytes(data[4:]), output_len=n))
                if len(out) == n:
                    return out
            elif a == "snappy":
                n = cramjam.snappy.decompress_raw_len(bytes(data))
                if n > limit:
                    continue
                return bytes(cramjam.snappy.decompress_raw(bytes(data)))
        except Exception:  # the codecs raise their own error types on bad input
            continue
    return None


class CassandraMessage:
    """One frame (a plain class rather than a dataclass: compiled, it is an
    extension type whose construction costs no Python ``__init__``)."""
    __slots__ = ("ts", "is_request", "version", "flags", "stream", "opcode", "length", "size",
                 "body", "notes", "ignored", "data")

    def __init__(self, ts: int, is_request: bool, version: int, flags: int, stream: int, opcode: int,
                 length: int, size: int, body: bytes | None, notes: list | None = None,
                 ignored: bool = False, data: dict | None = None) -> None:
        self.ts = ts
        self.is_request = is_request
        self.version = version      # protocol version, without the direction bit
        self.flags = flags
        self.stream = stream        # as read, unsigned (EVENT: 65535)
        self.opcode = opcode
        self.length = length        # body length of the header (compressed size when compressed)
        self.size = size            # bytes of the frame (header + body)
        self.body = body            # decompressed body; None when not kept
        self.notes = notes if notes is not None else []
        self.ignored = ignored
        self.data = data            # decoded fields (set by the plugin)

    @property
    def op_name(self) -> str:
        return OP_NAMES.get(self.opcode) or "UNKNOWN_OP_%d" % self.opcode

    def __repr__(self) -> str:
        return "CassandraMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def _new_message(ts, is_request: bool, version: int, flags: int, stream: int, opcode: int,
                 length: int, size: int) -> CassandraMessage:
    """``CassandraMessage(ts, is_request, ..., size, None)`` without the call of
    its ``__init__`` (compiled: the extension type's fields set directly)."""
    m = CassandraMessage.__new__(CassandraMessage)
    m.ts = ts
    m.is_request = is_request
    m.version = version
    m.flags = flags
    m.stream = stream
    m.opcode = opcode
    m.length = length
    m.size = size
    m.body = None
    m.notes = []
    m.ignored = False
    m.data = None
    return m


class CassandraParser:
    """One direction of a CQL connection. ``is_request``: the client side."""

    __slots__ = ("is_request", "max_size", "ignored", "codec", "buf", "ts",
                 "skip", "skip_msg", "segbuf", "seg_ts", "env_ts", "segments", "lossy")

    def __init__(self, is_request: bool, max_message_size: int = 10 * 1024 * 1024,
                 ignored_ops: frozenset = frozenset(), codec: Codec | None = None) -> None:
        self.is_request = is_request
        self.max_size = max_message_size
        self.ignored = ignored_ops
        self.codec = codec if codec is not None else Codec()
        self.buf = bytearray()      # frames (v3/v4), or envelopes taken out of segments (v5)
        self.ts = 0                 # time of the first byte of what ``buf`` starts with
        self.skip = 0               # body bytes still to skip (frame too large)
        self.skip_msg: CassandraMessage | None = None
        self.segbuf = bytearray()   # raw segment bytes (v5)
        self.seg_ts = 0
        self.env_ts = 0
        self.segments = False
        self.lossy = False          # bytes of the frame in ``skip`` were lost

    # --- public API -------------------------------------------------------
    def reset(self) -> None:
        self.buf.clear()
        self.segbuf.clear()
        self.skip = 0
        self.skip_msg = None
        self.lossy = False

    def feed(self, data, ts: int) -> list[CassandraMessage]:
        """Complete messages; on bytes that are not CQL, :class:`ParseError`
        carrying the messages completed before them (``messages``)."""
        out: list[CassandraMessage] = []
        if not data:
            return out
        try:
            return self._feed(data, ts, out)
        except ParseError as e:
            e.messages = out
            raise

    def _feed(self, data, ts: int, out: list) -> list[CassandraMessage]:
        if not self.segments and self.codec.segments and not self.buf and not self.skip:
            self.segments = True
        if self.segments:
            sb = self.segbuf
            if sb:
                sb += data
                if len(sb) > self.max_size + MAX_SEGMENT_PAYLOAD * 2:
                    raise ParseError("segment buffer over the limit")
                self._segments(out, ts)
            else:
                # nothing pending: segments are read from the TCP segment itself
                self.seg_ts = ts
                src = bytes(data)
                pos = self._take_segments(src, out, ts)
                if pos < len(src):
                    sb += src[pos:] if pos else src
            return out
        return self._frames(data, ts, out)

    def on_gap(self, nbytes: int) -> bool:
        """Lost bytes inside the body of a frame being skipped are crossed;
        anywhere else the frame boundary is lost."""
        if self.skip and nbytes <= self.skip and not self.segments:
            self.skip -= nbytes
            self.lossy = True
            return True
        return False

    def drain(self) -> list[CassandraMessage]:
        out: list[CassandraMessage] = []
        if self.skip == 0 and self.skip_msg is not None:
            out.append(self._end_skip())
        return out

    def flush(self) -> list[CassandraMessage]:
        self.reset()
        return []

    # --- v3/v4 frames -----------------------------------------------------
    def _frames(self, data, ts: int, out: list) -> list:
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
            if self.skip:
                return out
            out.append(self._end_skip())
            if not data:
                return out
        buf = self.buf
        if buf:
            buf += data
            src = buf
        else:
            # nothing pending: frames are read from the segment itself
            self.ts = ts
            src = bytes(data)
        try:
            pos = self._take_frames(src, out, ts, True, 0, len(src))
        except _SwitchToSegments:
            pos = 0
        if src is buf:
            del buf[:pos]
        elif pos < len(src):
            buf += src[pos:] if pos else src
        if self.segments and buf:
            # the rest of this segment-switching feed is segments
            rest = bytes(buf)
            buf.clear()
            self.segbuf += rest
            self.seg_ts = ts
            self._segments(out, ts)
        return out

    def _take_frames(self, buf, out: list, ts: int, raw: bool, start: int, n: int) -> int:
        """Complete frames of ``buf[start:n]`` from its start (``raw``: the TCP
        stream itself, where a too-large body is skipped; else envelopes of
        segments); returns the position after the last one taken."""
        pos = start
        max_size = self.max_size
        is_request = self.is_request
        ops = REQUEST_OPS if is_request else RESPONSE_OPS
        while n - pos >= 8:
            v = buf[pos]
            version = v & 0x7F
            if version >= 3:
                if n - pos < 9:
                    break
                _, flags, stream, opcode, length = _HDR9.unpack_from(buf, pos)
                hlen = 9
            else:
                _, flags, stream, opcode, length = _HDR8.unpack_from(buf, pos)
                hlen = 8
            if not (1 <= version <= 5 and (v >> 7) != is_request and not flags & 0xE0
                    and opcode in ops and length <= MAX_FRAME):
                self._check(v, version, flags, opcode, length, buf, pos)     # raises
            total = hlen + length
            if length > max_size:
                if not raw:
                    raise ParseError("envelope over the maximum message size")
                msg = CassandraMessage(self.ts, self.is_request, version, flags, stream, opcode,
                                       length, total, None, [NOTE_TOO_LARGE])
                msg.ignored = opcode in self.ignored
                avail = n - pos - hlen
                if avail >= length:
                    out.append(msg)
                    pos += total
                    continue
                self.skip = length - avail
                self.skip_msg = msg
                pos = n
                break
            if n - pos < total:
                break
            msg = self._message(version, flags, stream, opcode, length, total, buf, pos + hlen)
            out.append(msg)
            pos += total
            self.ts = ts
            if (not self.is_request and version >= 5 and opcode in (OP_READY, OP_AUTHENTICATE)
                    and not self.segments and raw):
                # v5: what follows READY / AUTHENTICATE is segments
                self.segments = True
                self.codec.segments = True
                break
        return pos

    def _check(self, v: int, version: int, flags: int, opcode: int, length: int, buf, pos: int) -> None:
        if not 1 <= version <= 5:
            if not self.segments and pos == 0 and self._segment_header_ok(buf):  # raw: start 0
                # a v5 connection caught after its STARTUP: segments
                self.segments = True
                raise _SwitchToSegments()
            raise ParseError("unsupported protocol version byte 0x%02x" % v)
        if bool(v & 0x80) == self.is_request:
            raise ParseError("frame direction bit does not match the stream direction")
        if flags & ~0x1F:
            raise ParseError("unknown frame flags 0x%02x" % flags)
        ops = REQUEST_OPS if self.is_request else RESPONSE_OPS
        if opcode not in ops:
            raise ParseError("opcode 0x%02x not valid in this direction" % opcode)
        raise ParseError("frame length over 256 MiB")

    def _message(self, version, flags, stream, opcode, length, total, buf, start) -> CassandraMessage:
        """The message of a frame whose body is ``buf[start:start + length]``."""
        msg = _new_message(self.ts, self.is_request, version, flags, stream, opcode, length, total)
        if opcode in self.ignored:
            msg.ignored = True
            if opcode != OP_STARTUP:        # its COMPRESSION option is still needed
                return msg
        if _COMPILED:
            body = _bytes_at(buf, start, length)     # one copy, from bytes or bytearray
        else:
            body = bytes(buf[start:start + length])
        if flags & FLAG_COMPRESS and version < 5 and not self.segments:
            body = decompress(self.codec.compression, body, self.max_size)
            if body is None:
                msg.notes.append(NOTE_DECOMPRESS)
        msg.body = body
        return msg

    def _end_skip(self) -> CassandraMessage:
        msg = self.skip_msg
        self.skip_msg = None
        if self.lossy:
            msg.notes.append(NOTE_GAP[0 if self.is_request else 1])
            self.lossy = False
        return msg

    # --- v5 segments ------------------------------------------------------
    def _segment_header_ok(self, buf) -> bool:
        if len(buf) >= 6 and crc24(bytes(buf[0:3])) == int.from_bytes(buf[3:6], "little") \
                and self.codec.compression != "lz4":
            return True
        if len(buf) >= 8 and crc24(bytes(buf[0:5])) == int.from_bytes(buf[5:8], "little"):
            self.codec.compression = "lz4"
            return True
        return False

    def _segments(self, out: list, ts: int) -> None:
        """Segments of ``segbuf`` (what a feed left, and the new bytes)."""
        sb = self.segbuf
        pos = self._take_segments(sb, out, ts)
        if pos:
            del sb[:pos]

    def _take_segments(self, sb, out: list, ts: int) -> int:
        """Complete segments at the start of ``sb``: their envelopes; returns
        the number of bytes consumed. Payloads are read in place (memoryviews
        that live only for the call they are passed to, so that ``sb`` and
        ``buf`` can be resized afterwards), LZ4 is decompressed straight into
        the envelope buffer or a buffer of its own."""
        lz4 = self.codec.compression == "lz4"
        hlen = 8 if lz4 else 6
        wlen = hlen - 3
        pos = 0
        n = len(sb)
        while n - pos >= hlen:
            word = _le(sb, pos, wlen)
            if _crc24_at(sb, pos, wlen) != _le(sb, pos + wlen, 3):
                raise ParseError("segment header CRC24 mismatch")
            plen = word & 0x1FFFF
            if lz4:
                ulen = (word >> 17) & 0x1FFFF
                self_contained = bool(word >> 34 & 1)
            else:
                ulen = 0
                self_contained = bool(word >> 17 & 1)
            end = pos + hlen + plen + 4
            if n < end:
                break
            start = pos + hlen
            if zlib.crc32(memoryview(sb)[start:end - 4], _CRC32_PREFIX) != _le(sb, end - 4, 4):
                raise ParseError("segment payload CRC32 mismatch")
            pos = end
            buf = self.buf
            if self_contained and not buf:
                # whole envelopes: read from the payload itself
                self.ts = self.seg_ts
                if lz4 and ulen:
                    payload = _new_buffer(ulen)
                    _lz4_into(sb, start, end - 4, payload, 0, ulen)
                    if self._take_frames(payload, out, self.seg_ts, False, 0, ulen) != ulen:
                        raise ParseError("self-contained segment ends inside an envelope")
                elif self._take_frames(sb, out, self.seg_ts, False, start, end - 4) != end - 4:
                    raise ParseError("self-contained segment ends inside an envelope")
            else:
                if not buf:
                    self.ts = self.seg_ts
                old = len(buf)
                if lz4 and ulen:
                    if _COMPILED:
                        _resize(buf, old + ulen)        # not zeroed: decompressed over
                    else:
                        buf += bytes(ulen)
                    try:
                        _lz4_into(sb, start, end - 4, buf, old, ulen)
                    except ParseError:
                        del buf[old:]
                        raise
                else:
                    buf += memoryview(sb)[start:end - 4]
                if len(buf) > self.max_size + 9:
                    raise ParseError("envelope over the maximum message size")
                used = self._take_frames(buf, out, self.seg_ts, False, 0, len(buf))
                if used:
                    del buf[:used]
                if self_contained and buf:
                    raise ParseError("self-contained segment ends inside an envelope")
            self.seg_ts = ts
        return pos


def _new_buffer(n: int) -> bytearray:
    """A bytearray of ``n`` bytes to decompress into (compiled: not zeroed)."""
    if _COMPILED:
        return _bytearray_c(n)
    return bytearray(n)


def _lz4_into(src, start: int, stop: int, dst: bytearray, at: int, ulen: int) -> None:
    """The LZ4 block ``src[start:stop]`` decompressed into ``dst[at:at + ulen]``;
    a shorter result is padded with zero bytes up to ``ulen`` (what
    ``cramjam.lz4.decompress_block(..., output_len=ulen)`` returns), a longer or
    corrupt one is a :class:`ParseError`. The memoryviews are temporaries of
    the call: released when it returns, so both buffers stay resizable."""
    try:
        got = cramjam.lz4.decompress_block_into(memoryview(src)[start:stop], memoryview(dst)[at:at + ulen])
    except Exception:
        raise ParseError("segment payload is not LZ4") from None
    if got != ulen:
        if got > ulen:
            raise ParseError("segment payload decompressed to a wrong length")
        dst[at + got:at + ulen] = bytes(ulen - got)


def _probe():
    pass


# True when this module runs compiled (setup.py): the helpers of parser.pxd are then used.
_COMPILED = type(_probe).__name__ != "function"


class _SwitchToSegments(Exception):
    """Raised inside ``_take_frames`` when the stream turns out to be v5 segments."""

