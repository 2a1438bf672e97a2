"""IcmpParser on hand-written ICMPv4/ICMPv6 bytes, and the message texts.

ICMP has no stream framing (one datagram, one message), so the "fed whole,
byte by byte, split at random" rule of stream parsers becomes: the same bytes
as bytes, bytearray or memoryview (also a slice of a larger frame) give the
same message, and a datagram cut at any point gives either ParseError (under
8 bytes) or the same header fields with a smaller size.
"""
from __future__ import annotations

import random
import struct

import pytest

from worker.plugin import ParseError as BaseParseError
from worker.protos.icmp.event import message_text
from worker.protos.icmp.parser import HEADER_LEN, IcmpMessage, IcmpParser, ParseError

TS = 1_445_287_763_817_185_000


def icmp(typ: int, code: int, ident: int = 0, seq: int = 0, body: bytes = b"", csum: int = 0xABCD) -> bytes:
    return struct.pack("!BBHHH", typ, code, csum, ident, seq) + body


# (name, transport, bytes, expected (version, type, code, id, seq, size, is_request, needs_counterpart, is_error))
FIXTURES = [
    ("v4 echo request", 1, icmp(8, 0, 0x1234, 1, b"abcd"), (4, 8, 0, 0x1234, 1, 4, True, True, False)),
    ("v4 echo reply", 1, icmp(0, 0, 0x1234, 1, b"abcd"), (4, 0, 0, 0x1234, 1, 4, False, True, False)),
    ("v4 port unreachable", 1, icmp(3, 3, 0, 0, b"\x45" + b"\0" * 27), (4, 3, 3, 0, 0, 28, True, False, True)),
    # the "unused" word of an unreachable is not an id/seq: Packetbeat tracks it as 0/0
    ("v4 unreachable, unused word set", 1, icmp(3, 4, 0x0000, 1400, b"x" * 28), (4, 3, 4, 0, 0, 28, True, False, True)),
    ("v4 time exceeded", 1, icmp(11, 0, body=b"y" * 28), (4, 11, 0, 0, 0, 28, True, False, True)),
    ("v4 redirect", 1, icmp(5, 1, 0x0a00, 0x0001, b"z" * 28), (4, 5, 1, 0, 0, 28, True, False, False)),
    ("v4 source quench", 1, icmp(4, 0), (4, 4, 0, 0, 0, 0, True, False, True)),
    ("v4 parameter problem", 1, icmp(12, 0), (4, 12, 0, 0, 0, 0, True, False, True)),
    ("v4 router advertisement", 1, icmp(9, 0, 0x0100, 1800, b"\x0a\0\0\x01\0\0\0\0"), (4, 9, 0, 0, 0, 8, True, False, False)),
    ("v4 router solicitation", 1, icmp(10, 0), (4, 10, 0, 0, 0, 0, True, False, False)),
    ("v4 timestamp request", 1, icmp(13, 0, 7, 9, b"\0" * 12), (4, 13, 0, 7, 9, 12, True, True, False)),
    ("v4 timestamp reply", 1, icmp(14, 0, 7, 9, b"\0" * 12), (4, 14, 0, 7, 9, 12, False, True, False)),
    ("v4 info request", 1, icmp(15, 0, 3, 4), (4, 15, 0, 3, 4, 0, True, True, False)),
    ("v4 info reply", 1, icmp(16, 0, 3, 4), (4, 16, 0, 3, 4, 0, False, True, False)),
    ("v4 mask request", 1, icmp(17, 0, 5, 6, b"\0" * 4), (4, 17, 0, 5, 6, 4, True, True, False)),
    ("v4 mask reply", 1, icmp(18, 0, 5, 6, b"\xff\xff\xff\0"), (4, 18, 0, 5, 6, 4, False, True, False)),
    ("v4 unknown type", 1, icmp(42, 1, 1, 1), (4, 42, 1, 0, 0, 0, True, False, False)),
    ("v6 echo request", 58, icmp(128, 0, 0xFFFF, 65535, b"ping"), (6, 128, 0, 0xFFFF, 65535, 4, True, True, False)),
    ("v6 echo reply", 58, icmp(129, 0, 0xFFFF, 65535, b"ping"), (6, 129, 0, 0xFFFF, 65535, 4, False, True, False)),
    ("v6 port unreachable", 58, icmp(1, 4, body=b"\x60" + b"\0" * 47), (6, 1, 4, 0, 0, 48, True, False, True)),
    ("v6 packet too big", 58, icmp(2, 0, 0, 1280, b"\x60" + b"\0" * 47), (6, 2, 0, 0, 0, 48, True, False, True)),
    ("v6 hop limit exceeded", 58, icmp(3, 0, body=b"\x60" + b"\0" * 47), (6, 3, 0, 0, 0, 48, True, False, True)),
    ("v6 parameter problem", 58, icmp(4, 1, 0, 40), (6, 4, 1, 0, 0, 0, True, False, True)),
    ("v6 router solicitation", 58, icmp(133, 0, body=b"\x01\x01" + b"\0" * 6), (6, 133, 0, 0, 0, 8, True, False, False)),
    ("v6 router advertisement", 58, icmp(134, 0, 0x4000, 1800, b"\0" * 8), (6, 134, 0, 0, 0, 8, True, False, False)),
    ("v6 neighbour solicitation", 58, icmp(135, 0, body=b"\xfe\x80" + b"\0" * 14), (6, 135, 0, 0, 0, 16, True, False, False)),
    ("v6 neighbour advertisement", 58, icmp(136, 0, 0x6000, 0, b"\xfe\x80" + b"\0" * 14), (6, 136, 0, 0, 0, 16, True, False, False)),
    ("v6 redirect", 58, icmp(137, 0, body=b"\0" * 32), (6, 137, 0, 0, 0, 32, True, False, False)),
    ("v6 MLD query", 58, icmp(130, 0, 0, 0, b"\0" * 16), (6, 130, 0, 0, 0, 16, True, False, False)),
    # a v4 echo type number means nothing special in ICMPv6 (and vice versa)
    ("v6 type 8", 58, icmp(8, 0, 1, 2), (6, 8, 0, 0, 0, 0, True, False, False)),
    ("v4 type 129", 1, icmp(129, 0, 1, 2), (4, 129, 0, 0, 0, 0, True, False, False)),
]


def fields(m: IcmpMessage) -> tuple:
    return (m.version, m.type, m.code, m.id, m.seq, m.size, m.is_request, m.needs_counterpart, m.is_error)


@pytest.mark.parametrize("name,transport,data,want", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fields(name, transport, data, want):
    m = IcmpParser().parse(data, TS, transport)
    assert fields(m) == want
    assert m.ts == TS and m.notes == []


@pytest.mark.parametrize("name,transport,data,want", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_same_message_from_any_buffer_type(name, transport, data, want):
    p = IcmpParser()
    frame = b"\xee" * 42 + data + b"\xff" * 6          # as the engine slices a frame
    views = [data, bytearray(data), memoryview(data), memoryview(frame)[42:42 + len(data)]]
    assert {fields(p.parse(v, TS, transport)) for v in views} == {want}


@pytest.mark.parametrize("name,transport,data,want", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_truncated_at_every_point(name, transport, data, want):
    p = IcmpParser()
    padded = data + b"P" * 40
    rng = random.Random(name)
    cuts = list(range(0, len(padded) + 1)) + [rng.randrange(0, len(padded) + 1) for _ in range(20)]
    for n in cuts:
        piece = memoryview(padded)[:n]
        if n < HEADER_LEN:
            with pytest.raises(ParseError):
                p.parse(piece, TS, transport)
        else:
            got = fields(p.parse(piece, TS, transport))
            assert got[:5] == want[:5] and got[6:] == want[6:] and got[5] == n - HEADER_LEN


def test_errors_are_the_one_parse_error_type():
    p = IcmpParser()
    for data, transport in ((b"", 1), (b"\x08\x00\x00\x00\x00\x01\x00", 1), (b"\x80", 58),
                            (icmp(8, 0), 6), (icmp(8, 0), 17), (icmp(8, 0), 0)):
        with pytest.raises(ParseError) as e:
            p.parse(data, TS, transport)
        assert isinstance(e.value, BaseParseError)


def test_exactly_the_header_is_a_message_with_size_zero():
    m = IcmpParser().parse(icmp(8, 0, 1, 2), TS, 1)
    assert (m.type, m.id, m.seq, m.size) == (8, 1, 2, 0)


# Packetbeat 8.x texts (its message_test.go and tests/system/test_0050_icmp.py)
@pytest.mark.parametrize("version,typ,code,text", [
    (4, 8, 0, "EchoRequest(0)"),
    (4, 0, 0, "EchoReply(0)"),
    (6, 128, 0, "EchoRequest(0)"),
    (6, 129, 0, "EchoReply(0)"),
    (4, 3, 3, "DestinationUnreachable(Port)"),
    (6, 1, 3, "DestinationUnreachable(AddressUnreachable)"),
    (6, 1, 4, "DestinationUnreachable(PortUnreachable)"),
    (4, 3, 13, "DestinationUnreachable(CommAdminProhibited)"),
    (4, 3, 99, "DestinationUnreachable(99)"),
    (4, 5, 2, "Redirect(TOS+Net)"),
    (4, 11, 0, "TimeExceeded(TTLExceeded)"),
    (4, 12, 2, "ParameterProblem(BadLength)"),
    (4, 13, 0, "TimestampRequest(0)"),
    (4, 17, 0, "AddressMaskRequest(0)"),
    (4, 8, 5, "EchoRequest(5)"),
    (6, 3, 1, "TimeExceeded(FragmentReassemblyTimeExceeded)"),
    (6, 4, 2, "ParameterProblem(UnrecognizedIPv6Option)"),
    (6, 2, 0, "PacketTooBig(0)"),
    (6, 135, 0, "NeighborSolicitation(0)"),
    (6, 136, 0, "NeighborAdvertisement(0)"),
    (6, 133, 0, "RouterSolicitation(0)"),
    (6, 134, 0, "RouterAdvertisement(0)"),
    (6, 137, 0, "Redirect(0)"),
    (6, 143, 0, "143(0)"),
    (4, 42, 7, "42(7)"),
    (6, 8, 0, "8(0)"),
])
def test_message_text(version, typ, code, text):
    assert message_text(version, typ, code) == text
