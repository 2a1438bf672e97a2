"""TPACKET_V3 ring walk: synthetic blocks in kernel layout, and a real ring on lo."""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from coordinator.capture import afpacket
from coordinator.capture.afpacket import AfPacketSource, CaptureError
from shared.decode import decode

BLOCK = 4096
ETH_IP_UDP = bytes.fromhex(
    "020000000002" "020000000001" "0800"                          # Ethernet
    "4500001d00004000401100007f0000017f000001"                    # IPv4, 29 bytes, UDP
    "d431bb8b00090000" "41")                                      # UDP 54321 -> 48011, payload "A"


def frame_hdr(next_off, sec, nsec, snaplen, wirelen, status, mac, net, tci=0, tpid=0,
              pkttype=0, ifindex=2, hatype=1, proto=0x0800) -> bytes:
    hdr = struct.pack("<IIIIIIHHIIHH8x", next_off, sec, nsec, snaplen, wirelen, status, mac, net, 0, tci, tpid, 0)
    assert len(hdr) == 48
    sll = struct.pack("<HHiHBB8s", socket.AF_PACKET, socket.htons(proto), ifindex, hatype, pkttype, 6,
                      b"\x02\0\0\0\0\x01\0\0")
    return hdr + sll


def build_block(frames: list[tuple[dict, bytes]], status=afpacket.TP_STATUS_USER) -> bytearray:
    """A block as the kernel lays it out: descriptor, then frames, each with
    its header, sockaddr_ll at 48 and the data at ``tp_mac``/``tp_net``."""
    blk = bytearray(BLOCK)
    first = 48
    pos = first
    for k, (meta, data) in enumerate(frames):
        mac = 80                               # header + sockaddr_ll, rounded to 16 as the kernel does
        size = (mac + len(data) + 15) & ~15
        nxt = size if k + 1 < len(frames) else 0
        hdr = frame_hdr(nxt, meta.get("sec", 1700000000), meta.get("nsec", 5), len(data), len(data),
                        meta.get("status", 0) | afpacket.TP_STATUS_USER, mac, mac + meta.get("l2", 14),
                        meta.get("tci", 0), meta.get("tpid", 0), meta.get("pkttype", 0), meta.get("ifindex", 2))
        blk[pos:pos + len(hdr)] = hdr
        blk[pos + mac:pos + mac + len(data)] = data
        pos += size
    struct.pack_into("<III", blk, 0, 3, 0, 0)
    struct.pack_into("<IIII", blk, 8, status, len(frames), first, pos)
    return blk


class FakePoll:
    def __init__(self):
        self.calls = []

    def poll(self, timeout):
        self.calls.append(timeout)
        return []


def fake_source(ring: bytearray, blocks: int, cooked=False, ignore_outgoing=False, snaplen=65535):
    src = object.__new__(AfPacketSource)
    src.ring, src.block_size, src.block_nr, src._block = ring, BLOCK, blocks, 0
    src.snaplen, src.cooked, src.ignore_outgoing = snaplen, cooked, ignore_outgoing
    src.linktype = afpacket.LINKTYPE_LINUX_SLL if cooked else afpacket.LINKTYPE_ETHERNET
    src._lo_index, src.outgoing_skipped, src.sock = 1, 0, None
    src._poll = FakePoll()
    return src


def test_walk_and_hand_back():
    ring = build_block([({"sec": 10, "nsec": 7}, ETH_IP_UDP), ({"sec": 11, "nsec": 999999999}, ETH_IP_UDP)]) \
        + build_block([], status=afpacket.TP_STATUS_KERNEL)
    src = fake_source(ring, 2)
    recs = src.read_block(5)
    assert recs == [(10_000_000_007, 1, ETH_IP_UDP), (11_999_999_999, 1, ETH_IP_UDP)]
    assert struct.unpack_from("<I", ring, 8)[0] == afpacket.TP_STATUS_KERNEL      # block returned
    assert src._block == 1 and src._poll.calls == []
    assert src.read_block(5) == [] and src._poll.calls == [5]                     # kernel owns block 1
    assert src._block == 1
    dec = decode(recs[0][1], recs[0][2])
    assert dec[0] == 17 and dec[3:5] == (54321, 48011)


def test_vlan_tag_rebuilt_from_metadata():
    meta = {"status": afpacket.TP_STATUS_VLAN_VALID, "tci": 0x2007}
    src = fake_source(build_block([(meta, ETH_IP_UDP)]), 1)
    (_, lt, raw), = src.read_block(0)
    assert raw == ETH_IP_UDP[:12] + b"\x81\x00\x20\x07" + ETH_IP_UDP[12:]
    dec = decode(lt, raw)
    assert dec[0] == 17 and dec[10] == 18                                         # IP after the tag
    meta = {"status": afpacket.TP_STATUS_VLAN_VALID | afpacket.TP_STATUS_VLAN_TPID_VALID, "tci": 5, "tpid": 0x88A8}
    (_, _, raw), = fake_source(build_block([(meta, ETH_IP_UDP)]), 1).read_block(0)
    assert raw[12:16] == b"\x88\xa8\x00\x05"


def test_cooked_records_get_an_sll_header():
    ip = ETH_IP_UDP[14:]
    meta = {"l2": 0, "pkttype": 0, "status": afpacket.TP_STATUS_VLAN_VALID, "tci": 9}
    # cooked frames: data is at tp_net (the network header), l2 offset 0 here
    src = fake_source(build_block([({"l2": 0}, ip), (meta, ip)]), 1, cooked=True)
    (_, lt, raw), (_, _, tagged) = src.read_block(0)
    assert lt == 113 and len(raw) == 16 + len(ip)
    assert struct.unpack_from(">HHH", raw, 0) == (0, 1, 6) and raw[14:16] == b"\x08\x00"
    assert decode(lt, raw)[3:5] == (54321, 48011)
    assert tagged[14:20] == b"\x81\x00\x00\x09\x08\x00" and decode(lt, tagged)[0] == 17


def test_outgoing_and_snaplen():
    frames = [({"pkttype": afpacket.PACKET_OUTGOING}, ETH_IP_UDP), ({}, ETH_IP_UDP)]
    src = fake_source(build_block(frames), 1, ignore_outgoing=True, snaplen=20)
    recs = src.read_block(0)
    assert [r[2] for r in recs] == [ETH_IP_UDP[:20]] and src.outgoing_skipped == 1
    # cooked "any": loopback's outgoing copy is dropped even without ignore_outgoing
    ip = ETH_IP_UDP[14:]
    frames = [({"l2": 0, "pkttype": afpacket.PACKET_OUTGOING, "ifindex": 1}, ip),
              ({"l2": 0, "pkttype": afpacket.PACKET_OUTGOING, "ifindex": 2}, ip), ({"l2": 0, "ifindex": 1}, ip)]
    recs = fake_source(build_block(frames), 1, cooked=True).read_block(0)
    assert [struct.unpack_from(">H", r[2], 0)[0] for r in recs] == [afpacket.PACKET_OUTGOING, 0]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="AF_PACKET sockets need root or CAP_NET_RAW")


def _drain(src, want, seconds=5.0):
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        got += src.read_block(50)
    return got


@needs_root
def test_real_ring_on_loopback():
    from coordinator.capture.bpf import compile_filter
    src = AfPacketSource("lo", snaplen=100, buffer_size_mb=2, filter_code=compile_filter("udp port 47901", snaplen=100))
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(20):
            s.sendto(b"%04d" % i + b"." * 500, ("127.0.0.1", 47901))
        s.close()
        got = _drain(src, 20)
        time.sleep(0.1)
        got += src.read_block(0)
        packets, drops = src.kernel_stats()
    finally:
        src.close()
    assert len(got) == 20                                   # once each: lo's outgoing copy is skipped
    now = time.time_ns()
    for i, (ts, lt, raw) in enumerate(got):
        assert lt == 1 and len(raw) == 100                  # snaplen from the filter's accept value
        assert 0 < now - ts < 60 * 10**9
        dec = decode(lt, raw)
        assert dec[0] == 17 and dec[4] == 47901 and raw[dec[8]:dec[8] + 4] == b"%04d" % i
    assert drops == 0 and packets >= 20


@needs_root
def test_kernel_drops_are_counted():
    from coordinator.capture.bpf import compile_filter
    src = AfPacketSource("lo", buffer_size_mb=1, filter_code=compile_filter("udp port 47902"))
    try:
        assert src.block_nr == 4 and src.block_size == 1 << 18      # 256 KiB blocks
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(6000):                              # ~6 MB into a 1 MiB ring that nobody reads
            s.sendto(b"z" * 1000, ("127.0.0.1", 47902))
        s.close()
        packets, drops = src.kernel_stats()
        assert drops > 0 and packets >= 6000
        again = src.kernel_stats()                          # cumulative, although the kernel resets on read
        assert again[1] >= drops
    finally:
        src.close()


@needs_root
def test_unknown_device():
    with pytest.raises(CaptureError, match="no such network device: 'nosuchdev0'"):
        AfPacketSource("nosuchdev0")
