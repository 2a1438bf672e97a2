"""TLS record layer and handshake framing, sans-I/O, one parser per direction.

Spec: RFC 8446 §5 (TLS 1.3 record layer), RFC 5246 §6.2 (TLS 1.2), RFC 4346,
RFC 2246, RFC 6101 (SSL 3.0). Packetbeat 8's model: ``packetbeat/protos/tls/parse.go``.

Framing: a record is ``type(1) version(2) length(2)`` and ``length`` bytes;
records travel over TCP, so one record may span segments and one segment may
hold several records. Handshake messages (``type(1) length(3) body``) are
carried by handshake records (type 22) and may span records (or share one):
their bytes are reassembled in a second buffer. The other record types are
reported when their header has been read: ChangeCipherSpec (20), alert (21,
two bytes in clear; longer alerts are encrypted), application data (23: its
bytes are skipped, never buffered), heartbeat (24).

Once ``encrypted`` is set (the plugin sets it when this direction has
finished its handshake), handshake records are reported as
:data:`ENCRYPTED_HANDSHAKE` and skipped. The parser does not set it on
ChangeCipherSpec itself: in TLS 1.3 a ChangeCipherSpec may follow a
HelloRetryRequest and precede the clear-text second ClientHello.

Correlation: none at this level. A TLS connection is one "transaction": the
plugin pairs the two directions' messages by connection (the handshake of
one TCP connection), and publishes one event when the handshake ends.

Bounds: one record is at most 2^14 + 2048 bytes (Packetbeat's
``maxTLSRecordLength``); one handshake message at most ``max_handshake_size``
bytes (64 KiB as Packetbeat and Go's crypto/tls): a larger one is reported
with ``oversize`` and its bytes are skipped, not buffered. Anything that is not
a TLS record header raises :class:`ParseError` (the plugin then forgets this
direction's buffer and tries again with the next segment, as Packetbeat).
"""
from __future__ import annotations

from worker.plugin import ParseError as _BaseParseError

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
HEARTBEAT = 24
ENCRYPTED_HANDSHAKE = 122      # a handshake record after ChangeCipherSpec (Finished, encrypted)

RECORD_TYPES = frozenset((CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT))
MAX_RECORD_LENGTH = (1 << 14) + 2048
MAX_HANDSHAKE_SIZE = 1 << 16
RECORD_HEADER = 5
HANDSHAKE_HEADER = 4



class ParseError(_BaseParseError):
    """Bytes that are not a TLS record (the one exception the parser raises).
    ``messages`` holds what was complete before the bad bytes."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages or []


class TlsMessage:
    """One record-level event or one complete handshake message.

    ``kind`` is the record type (20, 21, 22, 23, 24) or ENCRYPTED_HANDSHAKE;
    for handshakes ``hs_type`` and ``body`` (bytes) are set; for alerts
    ``level`` and ``code`` (``code`` -1: encrypted alert); ``size`` is the
    record length (or handshake message length); ``version`` the record's
    version (major, minor); ``ts`` the time of the packet where it began.

    A plain class with the dataclass's behaviour (keyword or positional
    fields, repr, equality): compiled (parser.pxd) it is an extension type,
    made without a Python ``__init__``."""
    __slots__ = ("ts", "kind", "version", "size", "hs_type", "body", "level", "code", "oversize", "notes")

    def __init__(self, ts, kind, version=(0, 0), size=0, hs_type=-1, body=b"", level=0, code=-1,
                 oversize=False, notes=None):
        self.ts = ts
        self.kind = kind
        self.version = version
        self.size = size
        self.hs_type = hs_type
        self.body = body
        self.level = level
        self.code = code
        self.oversize = oversize
        self.notes = notes if notes is not None else list()

    def _astuple(self) -> tuple:
        return (self.ts, self.kind, self.version, self.size, self.hs_type, self.body, self.level, self.code,
                self.oversize, self.notes)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._astuple() == other._astuple()
        return NotImplemented

    def __repr__(self) -> str:
        return "TlsMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def _message(ts, kind, version, size) -> TlsMessage:
    """TlsMessage(ts, kind, version, size) (compiled: without a Python ``__init__`` call)."""
    m = TlsMessage.__new__(TlsMessage)
    m.ts = ts
    m.kind = kind
    m.version = version
    m.size = size
    m.hs_type = -1
    m.body = b""
    m.level = 0
    m.code = -1
    m.oversize = False
    m.notes = []
    return m


class TlsParser:
    """One direction of a TLS connection: ``feed(data, ts) -> [TlsMessage]``."""
    __slots__ = ("buf", "hs", "hs_ts", "hs_version", "hs_skip", "skip", "start_ts", "encrypted",
                 "max_handshake_size", "records")

    def __init__(self, max_handshake_size: int = MAX_HANDSHAKE_SIZE) -> None:
        self.max_handshake_size = max_handshake_size
        self.records = 0
        self.encrypted = False
        self.reset()

    def reset(self) -> None:
        self.buf = bytearray()       # bytes of an incomplete record (header included)
        self.hs = bytearray()        # handshake bytes of an incomplete handshake message
        self.hs_ts = 0
        self.hs_version = (0, 0)
        self.hs_skip = 0             # bytes of an oversized handshake message still to drop
        self.skip = 0                # bytes of a record whose content is not kept, still to drop
        self.start_ts = 0

    def on_gap(self, nbytes: int) -> bool:
        """Bytes lost inside the content of a record that is skipped anyway
        (application data) do not matter; anywhere else the framing is lost."""
        if self.skip >= nbytes and not self.buf:
            self.skip -= nbytes
            return True
        return False

    def feed(self, data, ts: int) -> list[TlsMessage]:
        out: list[TlsMessage] = []
        n = len(data)
        pos = 0
        if self.skip:
            k = self.skip if self.skip < n else n
            self.skip -= k
            pos = k
            if pos >= n:
                return out
        buf = self.buf
        if not buf:
            self.start_ts = ts
        buf += data[pos:] if pos else data
        off = 0
        blen = len(buf)
        first = True
        while blen - off >= RECORD_HEADER:
            rtype = buf[off]
            major = buf[off + 1]
            minor = buf[off + 2]
            length = (buf[off + 3] << 8) | buf[off + 4]
            if rtype not in RECORD_TYPES or major != 3 or minor > 4 or length > MAX_RECORD_LENGTH:
                del buf[:]
                raise ParseError("not a TLS record header (type %d, version %d.%d, length %d)"
                                 % (rtype, major, minor, length), out)
            rts = self.start_ts if first else ts
            if rtype == HANDSHAKE and not self.encrypted:
                if blen - off < RECORD_HEADER + length:
                    break
                self.records += 1
                self._handshake(buf, off + RECORD_HEADER, length, rts, (major, minor), out)
                off += RECORD_HEADER + length
            elif rtype == ALERT:
                if blen - off < RECORD_HEADER + length:
                    break
                self.records += 1
                msg = _message(rts, ALERT, (major, minor), length)
                if length == 2 and not self.encrypted:
                    msg.level = buf[off + 5]
                    msg.code = buf[off + 6]
                out.append(msg)
                off += RECORD_HEADER + length
            else:
                # ChangeCipherSpec, application data, heartbeat, encrypted handshake:
                # reported at the header, content skipped
                self.records += 1
                kind = ENCRYPTED_HANDSHAKE if rtype == HANDSHAKE else rtype
                out.append(_message(rts, kind, (major, minor), length))
                avail = blen - off - RECORD_HEADER
                if avail >= length:
                    off += RECORD_HEADER + length
                else:
                    self.skip = length - avail
                    off = blen
            first = False
        if off:
            del buf[:off]
            if buf:
                self.start_ts = ts
        return out

    def _handshake(self, buf, start: int, length: int, ts: int, version: tuple, out: list) -> None:
        """Add one handshake record's fragment; append completed messages."""
        end = start + length
        if self.hs_skip:
            k = min(self.hs_skip, length)
            self.hs_skip -= k
            start += k
            if start >= end:
                return
        hs = self.hs
        if not hs:
            self.hs_ts = ts
            self.hs_version = version
        hs += buf[start:end]
        off = 0
        hlen = len(hs)
        limit = self.max_handshake_size
        while hlen - off >= HANDSHAKE_HEADER:
            htype = hs[off]
            mlen = (hs[off + 1] << 16) | (hs[off + 2] << 8) | hs[off + 3]
            if mlen > limit:
                have = hlen - off - HANDSHAKE_HEADER
                msg = TlsMessage(self.hs_ts, HANDSHAKE, self.hs_version, mlen, hs_type=htype, oversize=True)
                msg.notes.append("handshake message type %d of %d bytes exceeds the %d-byte limit: not parsed"
                                 % (htype, mlen, limit))
                out.append(msg)
                if have >= mlen:
                    off += HANDSHAKE_HEADER + mlen
                    self.hs_ts = ts
                    continue
                self.hs_skip = mlen - have
                off = hlen
                break
            if hlen - off < HANDSHAKE_HEADER + mlen:
                break
            msg = _message(self.hs_ts, HANDSHAKE, self.hs_version, mlen)
            msg.hs_type = htype
            msg.body = bytes(hs[off + HANDSHAKE_HEADER:off + HANDSHAKE_HEADER + mlen])
            out.append(msg)
            off += HANDSHAKE_HEADER + mlen
            self.hs_ts = ts
        if off:
            del hs[:off]

    def flush(self) -> list:
        return []
