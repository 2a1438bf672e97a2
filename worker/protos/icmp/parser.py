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

from dataclasses import dataclass, field
from struct import Struct

from worker.plugin import ICMP, ICMPV6
from worker.plugin import ParseError as _BaseParseError

HEADER_LEN = 8
_HDR = Struct("!BBxxHH")      # type, code, (checksum), id, seq

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

_VERSION_OF_TRANSPORT = {ICMP: 4, ICMPV6: 6}


class ParseError(_BaseParseError):
    """The only exception the ICMP parser raises."""


@dataclass(slots=True)
class IcmpMessage:
    ts: int                 # capture time of the datagram, integer ns
    version: int            # 4 or 6
    type: int
    code: int
    id: int                 # identifier (0 for types that are not request/reply pairs)
    seq: int                # sequence number (idem)
    size: int               # bytes after the 8-byte header
    is_request: bool        # not a reply type
    needs_counterpart: bool  # a request/reply pair type: wait for the other half
    is_error: bool          # an error report type
    notes: list[str] = field(default_factory=list)


class IcmpParser:
    """Stateless: ``parse(data, ts, transport)`` -> one :class:`IcmpMessage`."""
    __slots__ = ()

    def parse(self, data, ts: int, transport: int) -> IcmpMessage:
        version = _VERSION_OF_TRANSPORT.get(transport)
        if version is None:
            raise ParseError("transport %r is neither ICMP (1) nor ICMPv6 (58)" % (transport,))
        n = len(data)
        if n < HEADER_LEN:
            raise ParseError("ICMPv%d message of %d bytes is shorter than its 8-byte header" % (version, n))
        typ, code, ident, seq = _HDR.unpack_from(data, 0)
        pair = typ in PAIR_TYPES[version]
        if not pair:
            ident = seq = 0
        return IcmpMessage(ts, version, typ, code, ident, seq, n - HEADER_LEN,
                           typ not in RESPONSE_TYPES[version], pair, typ in ERROR_TYPES[version])
