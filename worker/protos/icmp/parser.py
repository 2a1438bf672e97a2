"""ICMP message decoding: ICMPv4 (RFC 792, RFC 950) and ICMPv6 (RFC 4443, RFC 4861).

Theory of operation
-------------------
Framing: one IP datagram carries exactly one ICMP message (the capture
process reassembles IP fragments before a worker sees them), so there is no
stream to buffer: :meth:`IcmpParser.parse` turns the ICMP bytes of one
datagram into one :class:`IcmpMessage`, or raises :class:`ParseError`.

Wire format (both versions)::

    0      1      2          4                8
    | type | code | checksum | rest of header | body ...

For the query/reply pairs (ICMPv4 echo, timestamp, information, address mask;
ICMPv6 echo) the rest of the header is ``identifier(2) sequence(2)``; for the
other types it means something else and Packetbeat tracks them with id = seq
= 0. ``size`` is what Packetbeat reports as the message length: the bytes
after the 8-byte header (gopacket's ICMPv4 payload; for ICMPv6 Packetbeat's
decoder drops the 4 bytes after the checksum too). Checksums are not
verified (Packetbeat does not either). Fewer than 8 bytes is a ParseError
(gopacket refuses such an ICMPv4 header; Packetbeat's ICMPv6 path cannot
slice it).

Correlation key: (version, requester address, responder address, id, seq):
a reply matches the open request whose addresses are its own reversed.
Which types are replies, which need a counterpart and which are errors are
Packetbeat's tables (``packetbeat/protos/icmp/message.go``), below.
"""
from __future__ import annotations

from worker.plugin import ICMP, ICMPV6
from worker.plugin import ParseError as _BaseParseError

HEADER_LEN = 8

# ICMPv4 (RFC 792 / 950) and ICMPv6 (RFC 4443) type numbers used in the tables.
V4_ECHO_REPLY, V4_DEST_UNREACHABLE, V4_SOURCE_QUENCH, V4_REDIRECT = 0, 3, 4, 5
V4_ECHO_REQUEST, V4_TIME_EXCEEDED, V4_PARAMETER_PROBLEM = 8, 11, 12
V4_TIMESTAMP_REQUEST, V4_TIMESTAMP_REPLY, V4_INFO_REQUEST, V4_INFO_REPLY = 13, 14, 15, 16
V4_MASK_REQUEST, V4_MASK_REPLY = 17, 18
V6_DEST_UNREACHABLE, V6_PACKET_TOO_BIG, V6_TIME_EXCEEDED, V6_PARAMETER_PROBLEM = 1, 2, 3, 4
V6_ECHO_REQUEST, V6_ECHO_REPLY = 128, 129

# Types that answer a request (every other type is a request, possibly one-way).
RESPONSE_TYPES = {
    4: frozenset((V4_ECHO_REPLY, V4_TIMESTAMP_REPLY, V4_INFO_REPLY, V4_MASK_REPLY)),
    6: frozenset((V6_ECHO_REPLY,)),
}
# Types that come in request/reply pairs (tracked by id and seq).
PAIR_TYPES = {
    4: frozenset((V4_ECHO_REQUEST, V4_ECHO_REPLY, V4_TIMESTAMP_REQUEST, V4_TIMESTAMP_REPLY,
                  V4_INFO_REQUEST, V4_INFO_REPLY, V4_MASK_REQUEST, V4_MASK_REPLY)),
    6: frozenset((V6_ECHO_REQUEST, V6_ECHO_REPLY)),
}
# Types that report an error (the transaction's status becomes Error).
ERROR_TYPES = {
    4: frozenset((V4_DEST_UNREACHABLE, V4_SOURCE_QUENCH, V4_TIME_EXCEEDED, V4_PARAMETER_PROBLEM)),
    6: frozenset((V6_DEST_UNREACHABLE, V6_PACKET_TOO_BIG, V6_TIME_EXCEEDED, V6_PARAMETER_PROBLEM)),
}

class ParseError(_BaseParseError):
    """The only exception the ICMP parser raises."""


class IcmpMessage:
    """One ICMP message (a plain class with slots rather than a dataclass:
    compiled, it is an extension type, built without a Python ``__init__``)."""
    __slots__ = ("ts", "version", "type", "code", "id", "seq", "size", "is_request",
                 "needs_counterpart", "is_error", "notes")

    def __init__(self, ts: int, version: int, type: int, code: int, id: int, seq: int, size: int,
                 is_request: bool, needs_counterpart: bool, is_error: bool, notes: list | None = None):
        self.ts = ts                    # capture time of the datagram, integer ns
        self.version = version          # 4 or 6
        self.type = type
        self.code = code
        self.id = id                    # identifier (0 for types that are not request/reply pairs)
        self.seq = seq                  # sequence number (idem)
        self.size = size                # bytes after the 8-byte header
        self.is_request = is_request    # not a reply type
        self.needs_counterpart = needs_counterpart  # a request/reply pair type: wait for the other half
        self.is_error = is_error        # an error report type
        self.notes = notes if notes is not None else []

    def __repr__(self) -> str:
        return "IcmpMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in IcmpMessage.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in IcmpMessage.__slots__)

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


def _kinds() -> bytes:
    """Per (version, type), at ``version * 256 + type``: bit 0 a request/reply
    pair type, bit 1 a request (not a reply type), bit 2 an error type."""
    out = bytearray(7 * 256)
    for v in (4, 6):
        for t in range(256):
            out[v * 256 + t] = ((1 if t in PAIR_TYPES[v] else 0) | (0 if t in RESPONSE_TYPES[v] else 2)
                                | (4 if t in ERROR_TYPES[v] else 0))
    return bytes(out)


_KIND = _kinds()


class IcmpParser:
    """Stateless: ``parse(data, ts, transport)`` -> one :class:`IcmpMessage`."""
    __slots__ = ()

    def parse(self, data, ts: int, transport: int) -> IcmpMessage:
        if transport == ICMP:
            version = 4
        elif transport == ICMPV6:
            version = 6
        else:
            raise ParseError("transport %r is neither ICMP (1) nor ICMPv6 (58)" % (transport,))
        n = len(data)
        if n < HEADER_LEN:
            raise ParseError("ICMPv%d message of %d bytes is shorter than its 8-byte header" % (version, n))
        typ = data[0]
        kind = _KIND[version * 256 + typ]
        m = IcmpMessage.__new__(IcmpMessage)
        m.ts = ts
        m.version = version
        m.type = typ
        m.code = data[1]
        if kind & 1:
            m.id = (data[4] << 8) | data[5]
            m.seq = (data[6] << 8) | data[7]
        else:
            m.id = m.seq = 0
        m.size = n - HEADER_LEN
        m.is_request = (kind & 2) != 0
        m.needs_counterpart = (kind & 1) != 0
        m.is_error = (kind & 4) != 0
        m.notes = []
        return m
