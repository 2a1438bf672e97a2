"""shared.ipfrag: IPv4/IPv6 reassembly in any order, timeouts, overflow, overlaps, bogus pieces."""
from __future__ import annotations

import random
import struct

import pytest
from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, fragment
from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6

from shared.decode import FRAGMENT, LINKTYPE_ETHERNET, LINKTYPE_RAW, decode
from shared.ipfrag import Reassembler, _ip4_checksum


def eth():
    """An Ethernet header with fixed addresses (no scapy address resolution)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

SEC = 1_000_000_000
BODY = bytes(range(256)) * 6        # 1536 bytes


def v4_frames(ident=1, body=BODY, fragsize=200, l2=None, seed=0):
    pkt = (l2 if l2 is not None else eth()) / IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / \
        UDP(sport=5000, dport=53) / Raw(body)
    frames = [bytes(f) for f in fragment(pkt, fragsize=fragsize)]
    random.Random(seed).shuffle(frames)
    return bytes(pkt), frames


def feed(r, frames, linktype=LINKTYPE_ETHERNET, ts=0):
    out = []
    for raw in frames:
        res = decode(linktype, raw)
        assert res is not None and res[0] == FRAGMENT
        whole = r.add(linktype, raw, res[10], ts)
        if whole is not None:
            out.append(whole)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_ipv4_shuffled_reassembles(seed):
    orig, frames = v4_frames(seed=seed)
    assert len(frames) > 5
    r = Reassembler()
    [whole] = feed(r, frames)
    res = decode(LINKTYPE_ETHERNET, whole)
    assert res[:5] == (17, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 5000, 53)
    assert whole[res[8]:res[9]] == BODY
    ip = IP(whole[14:])
    assert ip.len == len(whole) - 14 and ip.flags == 0 and ip.frag == 0
    assert _ip4_checksum(whole[14:34]) == 0                      # header checksum valid
    assert IP(orig[14:]).chksum == ip.chksum                     # same as the unfragmented header
    assert r.counters["fragments"] == len(frames) and r.counters["reassembled"] == 1
    assert len(r) == 0


def test_ipv4_with_vlan_keeps_first_fragment_link_layer():
    _, frames = v4_frames(l2=eth() / Dot1Q(vlan=42), seed=3)
    r = Reassembler()
    [whole] = feed(r, frames)
    assert whole[12:14] == b"\x81\x00" and whole[14:16] == b"\x00\x2a"
    res = decode(LINKTYPE_ETHERNET, whole)
    assert res[0] == 17 and whole[res[8]:res[9]] == BODY and res[10] == 18


def test_ipv4_tcp_raw_linktype():
    pkt = IP(src="1.1.1.1", dst="2.2.2.2", id=9) / TCP(sport=1, dport=2, seq=77, flags="PA") / Raw(BODY)
    frames = [bytes(f) for f in fragment(pkt, fragsize=400)][::-1]
    r = Reassembler()
    [whole] = feed(r, frames, LINKTYPE_RAW)
    res = decode(LINKTYPE_RAW, whole)
    assert res[:7] == (6, bytes([1, 1, 1, 1]), bytes([2, 2, 2, 2]), 1, 2, 0x18, 77)
    assert whole[res[8]:res[9]] == BODY and whole == bytes(pkt)


def test_interleaved_datagrams_are_kept_apart():
    _, a = v4_frames(ident=1, body=b"A" * 800)
    _, b = v4_frames(ident=2, body=b"B" * 800)
    mixed = [f for pair in zip(a, b) for f in pair]
    r = Reassembler()
    out = feed(r, mixed)
    bodies = sorted(w[42:] for w in out)
    assert bodies == [b"A" * 800, b"B" * 800]


@pytest.mark.parametrize("seed", range(3))
def test_ipv6_shuffled_reassembles(seed):
    pkt = eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / \
        IPv6ExtHdrFragment(id=0xABCDEF) / UDP(sport=7, dport=8) / Raw(BODY)
    frames = [bytes(eth() / f) for f in fragment6(pkt[IPv6], 300)]
    assert len(frames) > 4
    random.Random(seed).shuffle(frames)
    r = Reassembler()
    [whole] = feed(r, frames)
    res = decode(LINKTYPE_ETHERNET, whole)
    assert res[0] == 17 and (res[3], res[4]) == (7, 8)
    assert whole[res[8]:res[9]] == BODY
    v6 = IPv6(whole[14:])
    assert v6.plen == len(whole) - 14 - 40 and v6.nh == 0              # hop-by-hop still first
    assert whole[14 + 40] == 17                                         # its next header is UDP now
    assert not v6.haslayer(IPv6ExtHdrFragment)


def test_ipv6_fragment_directly_after_header():
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=5) / \
        TCP(sport=1, dport=2, flags="A") / Raw(BODY)
    frames = [bytes(f) for f in fragment6(pkt, 500)][::-1]
    r = Reassembler()
    [whole] = feed(r, frames, LINKTYPE_RAW)
    res = decode(LINKTYPE_RAW, whole)
    assert res[0] == 6 and whole[res[8]:res[9]] == BODY and whole[6] == 6


def test_ipv6_atomic_fragment_completes_at_once():
    raw = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(id=3, m=0, offset=0) /
                UDP(sport=1, dport=2) / Raw(b"hello"))
    r = Reassembler()
    [whole] = feed(r, [raw], LINKTYPE_RAW)
    res = decode(LINKTYPE_RAW, whole)
    assert res[0] == 17 and whole[res[8]:res[9]] == b"hello"


def test_timeout_by_expire_and_by_stale_key():
    _, frames = v4_frames()
    r = Reassembler(timeout_ns=5 * SEC)
    assert feed(r, frames[:-1], ts=0) == []
    assert len(r) == 1
    r.expire(3 * SEC)
    assert len(r) == 1 and r.counters["timeouts"] == 0
    r.expire(6 * SEC)
    assert len(r) == 0 and r.counters["timeouts"] == 1
    # the last piece alone, much later, never completes a datagram
    assert feed(r, frames[-1:], ts=7 * SEC) == []
    # an entry older than the timeout is restarted by add() itself
    feed(r, frames[:-1], ts=20 * SEC)
    assert r.counters["timeouts"] == 2
    [whole] = feed(r, frames[-1:], ts=21 * SEC)
    assert decode(LINKTYPE_ETHERNET, whole)[0] == 17


def test_overflow_evicts_oldest():
    r = Reassembler(max_datagrams=3)
    sets = [v4_frames(ident=i)[1] for i in range(5)]
    for s in sets:
        feed(r, s[:1])
    assert len(r) == 3 and r.counters["overflow"] == 2
    assert feed(r, sets[0][1:]) == []              # 0 was evicted: cannot complete
    # one of 0's later pieces re-created an entry and evicted 2; 3 and 4 are still whole
    assert len(feed(r, sets[4][1:])) == 1
    assert len(r) <= 3


def test_overlap_first_wins_and_duplicates():
    raw = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=4, proto=17, flags="MF", frag=0) /
                Raw(b"\0\x05\0\x35\0\x28\0\0" + b"a" * 24))          # UDP hdr + 24 bytes (32)
    over = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=4, proto=17, flags="MF", frag=2) /
                 Raw(b"X" * 16))                                    # overlaps 16..32
    last = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=4, proto=17, frag=4) / Raw(b"b" * 8))
    r = Reassembler()
    assert feed(r, [raw, raw]) == []
    assert r.counters["duplicates"] == 1
    assert feed(r, [over]) == []
    assert r.counters["overlaps"] == 1
    [whole] = feed(r, [last])
    res = decode(LINKTYPE_ETHERNET, whole)
    assert whole[res[8]:res[9]] == b"a" * 24 + b"b" * 8             # first arrival wins


def test_bogus_pieces_are_counted_and_dropped():
    r = Reassembler()
    base = dict(src="10.0.0.1", dst="10.0.0.2", id=8, proto=17)
    odd = bytes(IP(flags="MF", frag=0, **base) / Raw(b"x" * 13))          # non-final, not 8-aligned
    too_far = bytes(IP(frag=8191, **base) / Raw(b"x" * 16))              # ends past 65535
    empty_more = bytes(IP(flags="MF", frag=5, **base))                   # MF with no data
    for raw in (odd, too_far, empty_more):
        assert r.add(LINKTYPE_RAW, raw, 0, 0) is None
    assert r.counters["bad"] == 3 and len(r) == 0
    # two different ends drop the datagram
    end1 = bytes(IP(frag=2, **base) / Raw(b"x" * 8))
    end2 = bytes(IP(frag=3, **base) / Raw(b"x" * 8))
    r.add(LINKTYPE_RAW, end1, 0, 0)
    r.add(LINKTYPE_RAW, end2, 0, 0)
    assert r.counters["bad"] == 4 and len(r) == 0
    # a piece past an end already seen, and an end before data already seen
    r.add(LINKTYPE_RAW, end1, 0, 0)
    r.add(LINKTYPE_RAW, bytes(IP(flags="MF", frag=4, **base) / Raw(b"x" * 8)), 0, 0)
    assert r.counters["bad"] == 5 and len(r) == 0
    r.add(LINKTYPE_RAW, bytes(IP(flags="MF", frag=4, **base) / Raw(b"x" * 8)), 0, 0)
    r.add(LINKTYPE_RAW, end1, 0, 0)
    assert r.counters["bad"] == 6 and len(r) == 0
    # snaplen-truncated fragment, garbage, bad offset argument
    cut = bytes(IP(flags="MF", frag=0, **base) / Raw(b"x" * 64))[:-10]
    assert r.add(LINKTYPE_RAW, cut, 0, 0) is None
    assert r.add(LINKTYPE_RAW, b"\x99" * 40, 0, 0) is None
    assert r.add(LINKTYPE_RAW, cut, 500, 0) is None
    assert r.counters["bad"] == 9


def test_max_fragments_per_datagram():
    _, frames = v4_frames(fragsize=64)
    frames.sort(key=lambda f: IP(f[14:]).frag)
    r = Reassembler(max_fragments=4)
    assert feed(r, frames[:-1]) == []
    assert r.counters["bad"] >= 1


def test_reassembled_size_limit():
    r = Reassembler(max_bytes=600)
    _, frames = v4_frames()
    assert feed(r, frames) == []
    assert r.counters["bad"] > 0


def test_rejects_nonsense_bounds():
    with pytest.raises(ValueError):
        Reassembler(max_datagrams=0)


def test_checksum_helper_matches_scapy():
    hdr = bytes(IP(src="10.9.8.7", dst="1.2.3.4", id=999, ttl=3))[:20]
    zeroed = hdr[:10] + b"\0\0" + hdr[12:]
    assert _ip4_checksum(zeroed) == struct.unpack("!H", hdr[10:12])[0]


def test_completed_datagram_carries_first_fragment_time():
    orig, frames = v4_frames(seed=3)
    r = Reassembler()
    out = None
    for i, raw in enumerate(frames):
        res = decode(LINKTYPE_ETHERNET, raw)
        got = r.add(LINKTYPE_ETHERNET, raw, res[10], 5 * SEC + i * 1000)
        if got is not None:
            out = got
    assert out == orig
    assert r.completed_ts == 5 * SEC
