"""Hypothesis: decode() never raises and returns a sane tuple; the capture reader raises only
CaptureFileError; the reassembler never raises on whatever decode() calls a fragment."""
from __future__ import annotations

import os
import struct
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from coordinator.capture.pcapfile import CaptureFileError, open_capture
from shared.decode import FRAGMENT, decode, vlan_ids
from shared.ipfrag import Reassembler, _ip4_checksum

LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999]

# Valid-looking prefixes so that random tails reach the IP/L4 code, not just the L2 checks.
PREFIXES = [
    (1, bytes(12) + b"\x08\x00"),
    (1, bytes(12) + b"\x86\xdd"),
    (1, bytes(12) + b"\x81\x00\x00\x05\x08\x00"),
    (1, bytes(12) + b"\x88\xa8\x00\x01\x81\x00\x00\x02\x86\xdd"),
    (113, bytes(14) + b"\x08\x00"),
    (276, b"\x86\xdd" + bytes(18)),
    (0, b"\x02\x00\x00\x00"),
    (0, b"\x00\x00\x00\x1e"),
    (108, b"\x00\x00\x00\x02"),
    (101, b""),
]


def ip4_header(proto, frag, ihl, total):
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                       b"\x0a\0\0\x01", b"\x0a\0\0\x02")


def ip6_header(nh, plen):
    return struct.pack("!IHBB16s16s", 0x60000000, plen, nh, 64, b"\x20" + bytes(15), b"\x21" + bytes(15))


def check(linktype, raw):
    res = decode(linktype, raw)
    if res is not None:
        transport, src, dst, sport, dport, flags, seq, ack, off, end, l3 = res
        assert transport in (6, 17, 1, 58, FRAGMENT)
        assert len(src) == len(dst) in (4, 16)
        assert 0 <= l3 < off <= end <= len(raw)
        assert raw[l3] >> 4 == (4 if len(src) == 4 else 6)
        assert 0 <= sport < 65536 and 0 <= dport < 65536 and 0 <= flags < 256
    vlan_ids(linktype, raw)
    return res


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(LINKTYPES), st.binary(max_size=200))
def test_decode_arbitrary_bytes(linktype, raw):
    check(linktype, raw)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PREFIXES), st.sampled_from([4, 6]), st.integers(0, 255), st.integers(0, 0xFFFF),
       st.integers(0, 15), st.integers(0, 0xFFFF), st.binary(max_size=120))
def test_decode_structured(prefix, version, proto, frag, ihl, length, tail):
    linktype, l2 = prefix
    if version == 4:
        raw = l2 + ip4_header(proto, frag, ihl, length) + tail
    else:
        raw = l2 + ip6_header(proto, length) + tail
    res = check(linktype, raw)
    if res is not None and res[0] == FRAGMENT:
        r = Reassembler(max_datagrams=4)
        r.add(linktype, raw, res[10], 0)
        r.add(linktype, raw, res[10], 1)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 0x1FFF), st.booleans(), st.binary(max_size=48)), max_size=12),
       st.sampled_from([4, 6]))
def test_reassembler_arbitrary_pieces(pieces, version):
    r = Reassembler(max_datagrams=2, max_fragments=8)
    for off8, more, data in pieces:
        frag = (off8 & 0x1FFF) | (0x2000 if more else 0)
        if version == 4:
            raw = ip4_header(17, frag, 5, 20 + len(data)) + data
        else:
            fh = struct.pack("!BBHI", 17, 0, (off8 << 3) | int(more), 7)
            raw = ip6_header(44, 8 + len(data)) + fh + data
        res = decode(101, raw)
        if res is None or res[0] != FRAGMENT:
            continue
        whole = r.add(101, raw, 0, 0)
        if whole is not None:                  # a well-formed, unfragmented IP packet
            if version == 4:
                assert struct.unpack_from("!H", whole, 2)[0] == len(whole)
                assert struct.unpack_from("!H", whole, 6)[0] & 0x3FFF == 0
                assert _ip4_checksum(whole[:20]) == 0
            else:
                assert struct.unpack_from("!H", whole, 4)[0] == len(whole) - 40
                assert whole[6] == 17
            res = decode(101, whole)
            assert res is None or res[0] == 17


PCAP_HEAD = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
PCAPNG_HEAD = struct.pack("<II", 0x0A0D0D0A, 28) + struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + \
    struct.pack("<I", 28) + struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20)


def read_bytes(data):
    fd, path = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            with open_capture(path) as r:
                n = 0
                for ts, lt, raw in r:
                    assert isinstance(ts, int) and isinstance(raw, bytes)
                    n += 1
                    assert n <= len(data)          # every record consumes file bytes
        except CaptureFileError:
            pass
    finally:
        os.unlink(path)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([b"", PCAP_HEAD, PCAPNG_HEAD, b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"]),
       st.binary(max_size=300))
def test_reader_raises_only_capture_file_error(head, tail):
    read_bytes(head + tail)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6, 0x0A0D0D0A, 0xBAD]),
                          st.integers(0, 80), st.binary(max_size=60)), max_size=6))
def test_pcapng_random_blocks(blocks):
    data = PCAPNG_HEAD
    for btype, blen, body in blocks:
        data += struct.pack("<II", btype, blen) + body
    read_bytes(data)
