"""coordinator.capture.pcapfile: pcap (both byte orders, us/ns), pcapng (multi-interface,
multi-section, both byte orders), truncated and corrupt files."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, Ether, PcapNgWriter, Raw, rdpcap, wrpcap

from coordinator.capture import pcapfile
from coordinator.capture.pcapfile import CaptureFileError, open_capture
from shared.decode import decode

FRAMES = [
    bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000 + i, dport=80) / Raw(b"x" * i))
    for i in range(5)
]
RAW_IP = bytes(IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=53, dport=5000) / Raw(b"dns"))
SLL_IP = b"\0" * 14 + b"\x08\x00" + RAW_IP


def pcap_bytes(order="<", ns=False, linktype=1, snaplen=65535, records=(), magic=None):
    if magic is None:
        magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for sec, frac, data in records:
        out += struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data
    return out


def write(tmp_path, data, name="f.pcap"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def read_all(path):
    with open_capture(path) as r:
        return list(r), r.counters


# -- classic pcap ---------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, order, ns):
    recs = [(1_700_000_000 + i, 999_999 if not ns else 999_999_999 - i, f) for i, f in enumerate(FRAMES)]
    path = write(tmp_path, pcap_bytes(order, ns, records=recs))
    got, counters = read_all(path)
    assert len(got) == len(FRAMES)
    for (sec, frac, data), (ts, lt, raw) in zip(recs, got):
        assert ts == sec * 1_000_000_000 + frac * (1 if ns else 1000)
        assert lt == 1 and raw == data and type(raw) is bytes
    assert counters["records"] == 5 and counters["bytes"] == sum(map(len, FRAMES))


def test_pcap_linktype_upper_bits_and_raw_ip(tmp_path):
    path = write(tmp_path, pcap_bytes(linktype=101 | 0x04000000, records=[(5, 6, RAW_IP)]))
    [(ts, lt, raw)] = read_all(path)[0]
    assert (ts, lt, raw) == (5_000_006_000, 101, RAW_IP)
    assert decode(lt, raw)[:5] == (17, bytes([10, 1, 1, 1]), bytes([10, 2, 2, 2]), 53, 5000)


def test_pcap_modified_kuznetsov_format(tmp_path):
    out = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(FRAMES[:2]):
        out += struct.pack("<IIII", 7, i, len(f), len(f)) + struct.pack("<IHBx", 1, 2, 0) + f
    got, _ = read_all(write(tmp_path, out))
    assert [(ts, raw) for ts, _, raw in got] == [(7_000_000_000, FRAMES[0]), (7_000_001_000, FRAMES[1])]


def test_pcap_written_by_scapy_matches_rdpcap(tmp_path):
    pkts = [Ether(f) for f in FRAMES]
    for i, p in enumerate(pkts):
        p.time = 1_600_000_000 + i / 8
    path = str(tmp_path / "s.pcap")
    wrpcap(path, pkts)
    got, _ = read_all(path)
    assert [raw for _, _, raw in got] == FRAMES
    assert [ts for ts, _, _ in got] == [1_600_000_000_000_000_000 + i * 125_000_000 for i in range(5)]


def test_small_chunks_cross_record_boundaries(tmp_path, monkeypatch):
    recs = [(1, i, bytes([i % 256]) * (i * 37 % 200)) for i in range(300)]
    path = write(tmp_path, pcap_bytes(records=recs))
    monkeypatch.setattr(pcapfile, "CHUNK", 50)
    got, counters = read_all(path)
    assert [raw for _, _, raw in got] == [d for _, _, d in recs]
    assert counters["records"] == 300


def test_pcap_truncated_in_data_yields_then_raises(tmp_path):
    data = pcap_bytes(records=[(1, 0, f) for f in FRAMES])
    path = write(tmp_path, data[:-10])
    r = open_capture(path)
    got = []
    with pytest.raises(CaptureFileError, match=r"truncated record .* at offset \d+ \(packet 5\)") as ei:
        for rec in r:
            got.append(rec)
    r.close()
    assert [raw for _, _, raw in got] == FRAMES[:4]
    assert path in str(ei.value)
    assert r.counters["records"] == 4


def test_pcap_truncated_in_record_header(tmp_path):
    data = pcap_bytes(records=[(1, 0, f) for f in FRAMES[:2]])
    path = write(tmp_path, data + b"\x01\x02\x03")
    got = []
    with pytest.raises(CaptureFileError, match="truncated record header"):
        with open_capture(path) as r:
            for rec in r:
                got.append(rec)
    assert len(got) == 2


def test_pcap_truncated_file_header(tmp_path):
    with pytest.raises(CaptureFileError, match="truncated file header"):
        read_all(write(tmp_path, pcap_bytes()[:10]))


def test_pcap_bogus_length_no_huge_allocation(tmp_path):
    data = pcap_bytes(records=[(1, 0, FRAMES[0])]) + struct.pack("<IIII", 2, 0, 0xFFFFFFF0, 60) + b"\0" * 60
    got = []
    with pytest.raises(CaptureFileError, match="bogus record length 4294967280"):
        with open_capture(write(tmp_path, data)) as r:
            for rec in r:
                got.append(rec)
    assert len(got) == 1


def test_pcap_empty_and_header_only(tmp_path):
    assert read_all(write(tmp_path, pcap_bytes()))[0] == []


def test_pcap_bad_version(tmp_path):
    data = bytearray(pcap_bytes(records=[(1, 0, FRAMES[0])]))
    data[4:6] = struct.pack("<H", 3)
    with pytest.raises(CaptureFileError, match="unsupported pcap version 3"):
        read_all(write(tmp_path, bytes(data)))


@pytest.mark.parametrize("content", [b"", b"\x00", b"hello world, not a pcap at all" * 10, b"\xff" * 4])
def test_garbage_files(tmp_path, content):
    with pytest.raises(CaptureFileError):
        open_capture(write(tmp_path, content))


def test_missing_file(tmp_path):
    with pytest.raises(CaptureFileError, match="cannot open"):
        open_capture(str(tmp_path / "nope.pcap"))


# -- pcapng ---------------------------------------------------------------------

def block(order, btype, body):
    body += b"\0" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(order + "II", btype, blen) + body + struct.pack(order + "I", blen)


def opt(order, code, value):
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order):
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order, linktype, snaplen=0, options=b""):
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def epb(order, ifid, ts, data, orig=None):
    return block(order, 6, struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                       len(data) if orig is None else orig) + data)


def spb(order, data, orig):
    return block(order, 3, struct.pack(order + "I", orig) + data)


def pb(order, ifid, ts, data):
    return block(order, 2, struct.pack(order + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                       len(data)) + data)


def two_sections():
    le, be = "<", ">"
    sec1 = (shb(le)
            + idb(le, 1, 65535)                                                  # if0: Ethernet, us
            + idb(le, 101, 0, opt(le, 9, b"\x09") + opt(le, 2, b"eth1"))         # if1: raw IP, ns
            + idb(le, 113, 0, opt(le, 9, b"\x94") + opt(le, 14, struct.pack("<q", 10)))  # 2^-20, +10 s
            + block(le, 4, b"\x00\x00\x00\x00")                                  # NRB
            + epb(le, 0, 1_700_000_000_123_456, FRAMES[0])
            + epb(le, 1, 1_700_000_000_123_456_789, RAW_IP)
            + block(le, 5, struct.pack("<III", 0, 0, 0))                         # ISB
            + epb(le, 2, 3 << 20 | 1 << 19, SLL_IP)                 # 3.5 s + 10 s
            + pb(le, 1, 42, RAW_IP)
            + block(le, 0x00000BAD, b"custom")
            + spb(le, FRAMES[1], len(FRAMES[1])))
    sec2 = (shb(be)
            + idb(be, 0, 0, opt(be, 9, b"\x03"))                                 # NULL, ms
            + epb(be, 0, 1234, struct.pack("<I", 2) + RAW_IP))
    return sec1 + sec2


def test_pcapng_interfaces_resolutions_sections(tmp_path):
    got, counters = read_all(write(tmp_path, two_sections(), "f.pcapng"))
    assert got == [
        (1_700_000_000_123_456_000, 1, FRAMES[0]),
        (1_700_000_000_123_456_789, 101, RAW_IP),
        (13_500_000_000, 113, SLL_IP),
        (42, 101, RAW_IP),
        (42, 1, FRAMES[1]),                          # SPB: interface 0, previous timestamp
        (1_234_000_000, 0, struct.pack("<I", 2) + RAW_IP),
    ]
    assert counters["records"] == 6
    assert counters["skipped_blocks"] == 3
    assert counters["sections"] == 2 and counters["interfaces"] == 4
    for ts, lt, raw in got:
        assert decode(lt, raw) is not None


def test_pcapng_spb_snaplen_and_padding(tmp_path):
    le = "<"
    data = shb(le) + idb(le, 1, 20) + spb(le, FRAMES[2][:20], len(FRAMES[2])) + spb(le, b"abc", 3)
    got, _ = read_all(write(tmp_path, data, "f.pcapng"))
    assert [raw for _, _, raw in got] == [FRAMES[2][:20], b"abc"]


def test_pcapng_new_section_resets_interfaces(tmp_path):
    le = "<"
    data = shb(le) + idb(le, 1) + idb(le, 1) + epb(le, 1, 0, FRAMES[0]) + shb(le) + idb(le, 1) + \
        epb(le, 1, 0, FRAMES[1])
    got = []
    with pytest.raises(CaptureFileError, match="undeclared interface 1"):
        with open_capture(write(tmp_path, data, "f.pcapng")) as r:
            for rec in r:
                got.append(rec)
    assert [raw for _, _, raw in got] == [FRAMES[0]]


def test_pcapng_written_by_scapy(tmp_path):
    path = str(tmp_path / "s.pcapng")
    pkts = [Ether(f) for f in FRAMES]
    for i, p in enumerate(pkts):
        p.time = 1_650_000_000 + i
    w = PcapNgWriter(path)
    for p in pkts:
        w.write(p)
    w.close()
    got, _ = read_all(path)
    assert [(lt, raw) for _, lt, raw in got] == [(1, f) for f in FRAMES]
    assert [ts // 1_000_000_000 for ts, _, _ in got] == [1_650_000_000 + i for i in range(5)]


@pytest.mark.parametrize("cut", [3, 10, 30])
def test_pcapng_truncated(tmp_path, cut):
    data = two_sections()
    got = []
    with pytest.raises(CaptureFileError, match=r"truncated .*at offset \d+ \(packet 6\)"):
        with open_capture(write(tmp_path, data[:-cut], "f.pcapng")) as r:
            for rec in r:
                got.append(rec)
    assert len(got) == 5


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-4] + struct.pack(">I", 999), "length mismatch"),
    (lambda b: b + struct.pack("<II", 6, 0xFFFFFFF0) + b"\0" * 8, "bogus block length"),
    (lambda b: b + struct.pack("<II", 6, 13) + b"\0" * 8, "bogus block length"),
])
def test_pcapng_corrupt(tmp_path, mutate, message):
    le = "<"
    good = shb(le) + idb(le, 1) + epb(le, 0, 5, FRAMES[0])
    with pytest.raises(CaptureFileError, match=message):
        read_all(write(tmp_path, mutate(good + epb(le, 0, 6, FRAMES[1])), "f.pcapng"))


def test_pcapng_epb_length_exceeds_block(tmp_path):
    le = "<"
    bad = block(le, 6, struct.pack("<IIIII", 0, 0, 0, 500, 500) + b"x" * 8)
    with pytest.raises(CaptureFileError, match="exceeds block"):
        read_all(write(tmp_path, shb(le) + idb(le, 1) + bad, "f.pcapng"))


def test_pcapng_bad_bom(tmp_path):
    data = bytearray(shb("<"))
    data[8:12] = b"XXXX"
    with pytest.raises(CaptureFileError, match="byte-order magic"):
        read_all(write(tmp_path, bytes(data), "f.pcapng"))


# -- real captures ----------------------------------------------------------------

CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "pcaps"


def test_conformance_pcaps_match_scapy():
    if not CONFORMANCE.is_dir():
        pytest.skip("conformance pcaps not present at %s" % CONFORMANCE)
    files = sorted(CONFORMANCE.rglob("*.pcap"))
    assert files
    for path in files:
        got, counters = read_all(str(path))
        ref = rdpcap(str(path))
        assert len(got) == len(ref) == counters["records"], path.name
        for (ts, lt, raw), p in zip(got, ref):
            assert raw == bytes(p.original), path.name
            assert ts == int(p.time * 1_000_000_000), path.name


# -- the records read in one call (pcapfile._pcap_records; compiled: a C loop) ---------

def _read_outcome(path):
    got = []
    err = None
    r = open_capture(path)
    try:
        for rec in r:
            got.append(rec)
    except CaptureFileError as e:
        err = str(e)
    finally:
        r.close()
    return got, dict(r.counters), err


@pytest.mark.parametrize("seed", range(6))
def test_batched_records_equal_the_pure_loop(tmp_path, monkeypatch, seed):
    """Every magic (byte order, resolution, modified pcap), random lengths, small read
    chunks, and files that end truncated or with a bogus length: the same records,
    counters and error whether ``_pcap_records`` runs compiled or as Python."""
    import random
    rnd = random.Random(seed)
    monkeypatch.setattr(pcapfile, "CHUNK", rnd.choice([40, 100, 1000, 1 << 20]))
    compiled = pcapfile._COMPILED
    for magic, (order, _ns, hlen) in pcapfile._PCAP_MAGICS.items():
        head = struct.pack("<I", magic) + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, 1)
        body = b""
        for _ in range(rnd.randrange(0, 60)):
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
            body += struct.pack(order + "IIII", rnd.randrange(1 << 32), rnd.randrange(1 << 32), len(data),
                                len(data)) + b"\0" * (hlen - 16) + data
        end = rnd.choice(["", "cut", "bogus"])
        if end == "cut" and body:
            body = body[:rnd.randrange(len(body))]
        elif end == "bogus":
            body += struct.pack(order + "IIII", 1, 2, 0xFFFFFF00, 9) + b"\0" * (hlen - 16) + b"x" * 9
        path = write(tmp_path, head + body, "m%x.pcap" % magic)
        monkeypatch.setattr(pcapfile, "_COMPILED", False)
        pure = _read_outcome(path)
        monkeypatch.setattr(pcapfile, "_COMPILED", compiled)
        assert pure[0] or pure[2] or not body      # records, or the error of a damaged file
        assert _read_outcome(path) == pure, hex(magic)


def test_counters_count_the_records_taken(tmp_path):
    """Records read in one call but not taken yet are not counted when the reader stops."""
    path = write(tmp_path, pcap_bytes(records=[(1, 0, f) for f in FRAMES]))
    r = open_capture(path)
    it = iter(r)
    next(it)
    next(it)
    it.close()
    r.close()
    assert r.counters["records"] == 2 and r.counters["bytes"] == len(FRAMES[0]) + len(FRAMES[1])
