"""shared.decode: every link layer, IPv4/IPv6, TCP/UDP/ICMP, fields checked one by one."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.all import (
    ICMP, IP, TCP, UDP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, IPv6, IPOption_RR, Raw,
    fragment,
)
from scapy.layers.inet6 import (
    ICMPv6EchoRequest, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)

from shared.decode import (
    FRAGMENT, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, decode, vlan_ids,
)


def eth():
    """An Ethernet header with fixed addresses (no scapy address resolution)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

V4A, V4B = "192.0.2.1", "198.51.100.7"
V6A, V6B = "2001:db8::1", "2001:db8:ffff::2"
A4 = bytes([192, 0, 2, 1])
B4 = bytes([198, 51, 100, 7])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8ffff00000000000000000002")
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def tcp4(payload=PAYLOAD, **kw):
    return IP(src=V4A, dst=V4B, **kw) / TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304,
                                             flags="PA") / Raw(payload)


def check_tcp(res, raw, l3off, src=A4, dst=B4, payload=PAYLOAD):
    assert res is not None
    transport, s, d, sport, dport, flags, seq, ack, off, end, l3 = res
    assert (transport, s, d, sport, dport) == (6, src, dst, 40000, 80)
    assert flags == 0x18 and seq == 0xDEADBEEF and ack == 0x01020304
    assert raw[off:end] == payload
    assert l3 == l3off
    assert raw[l3] >> 4 == (4 if len(src) == 4 else 6)


# -- link layers ------------------------------------------------------------

def test_ethernet_ipv4_tcp():
    raw = bytes(eth() / tcp4())
    check_tcp(decode(LINKTYPE_ETHERNET, raw), raw, 14)


def test_ethernet_trailer_padding_is_stripped():
    raw = bytes(eth() / IP(src=V4A, dst=V4B) / TCP(sport=40000, dport=80, flags="A"))
    padded = raw + b"\xaa" * 6          # the 60-byte Ethernet minimum
    res = decode(LINKTYPE_ETHERNET, padded)
    assert res[0] == 6 and res[5] == 0x10
    assert res[8] == res[9] == 54        # empty payload, trailer excluded


def test_ethernet_udp_and_trailer():
    raw = bytes(eth() / IP(src=V4A, dst=V4B) / UDP(sport=5353, dport=53) / Raw(b"q"))
    res = decode(LINKTYPE_ETHERNET, raw + b"\0" * 17)
    assert res[:8] == (17, A4, B4, 5353, 53, 0, 0, 0)
    assert (raw + b"\0" * 17)[res[8]:res[9]] == b"q"


def test_captured_length_shorter_than_ip_length():
    raw = bytes(eth() / tcp4())
    cut = raw[:-5]                        # snaplen cut the payload
    res = decode(LINKTYPE_ETHERNET, cut)
    assert cut[res[8]:res[9]] == PAYLOAD[:-5]


@pytest.mark.parametrize("tags", [
    [Dot1Q(vlan=10)],
    [Dot1AD(vlan=100), Dot1Q(vlan=20)],
    [Dot1Q(vlan=1, type=0x9100), Dot1Q(vlan=2, type=0x8100), Dot1Q(vlan=3)],
])
def test_vlan_and_qinq(tags):
    l2 = eth()
    for t in tags:
        l2 = l2 / t
    raw = bytes(l2 / tcp4())
    l3off = 14 + 4 * len(tags)
    check_tcp(decode(LINKTYPE_ETHERNET, raw), raw, l3off)
    assert vlan_ids(LINKTYPE_ETHERNET, raw) == [t.vlan for t in tags]


def test_vlan_ids_untagged_and_other_linktypes():
    raw = bytes(eth() / tcp4())
    assert vlan_ids(LINKTYPE_ETHERNET, raw) == []
    assert vlan_ids(LINKTYPE_RAW, bytes(tcp4())) == []
    assert vlan_ids(LINKTYPE_ETHERNET, b"\0" * 5) == []


def test_linux_sll():
    raw = bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02" * 6) / tcp4())
    assert raw[14:16] == b"\x08\x00"
    check_tcp(decode(LINKTYPE_LINUX_SLL, raw), raw, 16)
    raw6 = bytes(CookedLinux() / IPv6(src=V6A, dst=V6B) / UDP(sport=1, dport=2) / Raw(b"abc"))
    res = decode(LINKTYPE_LINUX_SLL, raw6)
    assert res[:5] == (17, A6, B6, 1, 2) and raw6[res[8]:res[9]] == b"abc" and res[10] == 16


def test_linux_sll2():
    raw = bytes(CookedLinuxV2(proto=0x0800) / tcp4())
    assert raw[0:2] == b"\x08\x00" and len(raw) - len(bytes(tcp4())) == 20
    check_tcp(decode(LINKTYPE_LINUX_SLL2, raw), raw, 20)


def test_null_both_byte_orders_and_loop():
    ip = bytes(tcp4())
    ip6 = bytes(IPv6(src=V6A, dst=V6B) / TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304,
                                              flags="PA") / Raw(PAYLOAD))
    for fam_bytes in (struct.pack("<I", 2), struct.pack(">I", 2)):
        raw = fam_bytes + ip
        check_tcp(decode(LINKTYPE_NULL, raw), raw, 4)
    for fam in (24, 28, 30):
        for fmt in ("<I", ">I"):
            raw = struct.pack(fmt, fam) + ip6
            check_tcp(decode(LINKTYPE_NULL, raw), raw, 4, A6, B6)
        raw = struct.pack(">I", fam) + ip6
        check_tcp(decode(LINKTYPE_LOOP, raw), raw, 4, A6, B6)
    raw = struct.pack(">I", 2) + ip
    check_tcp(decode(LINKTYPE_LOOP, raw), raw, 4)
    assert decode(LINKTYPE_NULL, struct.pack("<I", 7) + ip) is None     # unknown family


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4])
def test_raw_ipv4(linktype):
    raw = bytes(tcp4())
    check_tcp(decode(linktype, raw), raw, 0)


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, 12, 14, LINKTYPE_IPV6])
def test_raw_ipv6(linktype):
    raw = bytes(IPv6(src=V6A, dst=V6B) / TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304,
                                             flags="PA") / Raw(PAYLOAD))
    check_tcp(decode(linktype, raw), raw, 0, A6, B6)


def test_raw_linktype_version_mismatch():
    assert decode(LINKTYPE_IPV4, bytes(IPv6() / UDP())) is None
    assert decode(LINKTYPE_IPV6, bytes(tcp4())) is None
    assert decode(LINKTYPE_RAW, b"\x50" + bytes(40)) is None


def test_unknown_linktype_and_non_ip():
    assert decode(9999, bytes(eth() / tcp4())) is None
    assert decode(LINKTYPE_ETHERNET, bytes(Ether(type=0x0806) / Raw(b"\0" * 28))) is None


# -- IPv4 ---------------------------------------------------------------------

def test_ipv4_options():
    pkt = eth() / IP(src=V4A, dst=V4B, options=[IPOption_RR(routers=["1.2.3.4"])]) / \
        TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304, flags="PA") / Raw(PAYLOAD)
    raw = bytes(pkt)
    assert raw[14] & 15 > 5
    check_tcp(decode(LINKTYPE_ETHERNET, raw), raw, 14)


def test_tcp_options():
    pkt = eth() / IP(src=V4A, dst=V4B) / TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304,
                                               flags="PA", options=[("MSS", 1460), ("NOP", None),
                                                                    ("WScale", 7)]) / Raw(PAYLOAD)
    raw = bytes(pkt)
    res = decode(LINKTYPE_ETHERNET, raw)
    check_tcp(res, raw, 14)
    assert res[8] == 14 + 20 + 28


def test_icmp4():
    raw = bytes(eth() / IP(src=V4A, dst=V4B) / ICMP(type=8, id=7, seq=1) / Raw(b"ping"))
    res = decode(LINKTYPE_ETHERNET, raw)
    assert res[:8] == (1, A4, B4, 0, 0, 0, 0, 0)
    assert raw[res[8]:res[9]] == bytes(ICMP(type=8, id=7, seq=1) / Raw(b"ping"))


def test_ipv4_tso_zero_total_length():
    raw = bytearray(bytes(eth() / tcp4()))
    raw[16:18] = b"\0\0"
    check_tcp(decode(LINKTYPE_ETHERNET, bytes(raw)), bytes(raw), 14)


def test_other_ip_protocol_is_none():
    assert decode(LINKTYPE_ETHERNET, bytes(eth() / IP(proto=47) / Raw(b"x" * 20))) is None


def test_ipv4_fragments():
    frags = fragment(eth() / IP(src=V4A, dst=V4B, id=77) / UDP(sport=1, dport=2) / Raw(b"z" * 100),
                     fragsize=32)
    assert len(frags) > 2
    for i, f in enumerate(frags):
        raw = bytes(f)
        res = decode(LINKTYPE_ETHERNET, raw)
        assert res[:8] == (FRAGMENT, A4, B4, 0, 0, 0, 0, 0), i
        assert res[10] == 14 and res[8] == 34
        assert res[9] - res[8] == len(f[IP].payload)


# -- IPv6 ---------------------------------------------------------------------

def test_ipv6_udp_icmpv6():
    raw = bytes(eth() / IPv6(src=V6A, dst=V6B) / UDP(sport=53, dport=33000) / Raw(b"answer"))
    res = decode(LINKTYPE_ETHERNET, raw)
    assert res[:8] == (17, A6, B6, 53, 33000, 0, 0, 0) and raw[res[8]:res[9]] == b"answer"
    raw = bytes(eth() / IPv6(src=V6A, dst=V6B) / ICMPv6EchoRequest(id=1, seq=2, data=b"hi"))
    res = decode(LINKTYPE_ETHERNET, raw)
    assert res[:8] == (58, A6, B6, 0, 0, 0, 0, 0)
    assert (res[8], res[9]) == (54, len(raw)) and raw[54] == 128 and raw[res[9] - 2:res[9]] == b"hi"


def test_ipv6_extension_headers():
    ext = IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / IPv6ExtHdrDestOpt()
    pkt = eth() / IPv6(src=V6A, dst=V6B) / ext / TCP(sport=40000, dport=80, seq=0xDEADBEEF,
                                                       ack=0x01020304, flags="PA") / Raw(PAYLOAD)
    raw = bytes(pkt)
    check_tcp(decode(LINKTYPE_ETHERNET, raw), raw, 14, A6, B6)


def test_ipv6_ah():
    ah = bytes([6, 4, 0, 0]) + struct.pack("!II", 0x100, 1) + b"\0" * 12   # (4 + 2) * 4 = 24 bytes
    l4 = bytes(TCP(sport=40000, dport=80, seq=0xDEADBEEF, ack=0x01020304, flags="PA") / Raw(PAYLOAD))
    raw = bytes(IPv6(src=V6A, dst=V6B, nh=51, plen=len(ah) + len(l4))) + ah + l4
    check_tcp(decode(LINKTYPE_RAW, raw), raw, 0, A6, B6)


def test_ipv6_no_next_header_and_fragment():
    assert decode(LINKTYPE_ETHERNET, bytes(eth() / IPv6(nh=59))) is None
    raw = bytes(eth() / IPv6(src=V6A, dst=V6B) / IPv6ExtHdrFragment(id=5, m=1, offset=0) /
                UDP(sport=1, dport=2) / Raw(b"x" * 16))
    res = decode(LINKTYPE_ETHERNET, raw)
    assert res[:8] == (FRAGMENT, A6, B6, 0, 0, 0, 0, 0)
    assert res[8] == 14 + 48 and res[9] == len(raw) and res[10] == 14


def test_ipv6_trailer_stripped():
    raw = bytes(eth() / IPv6(src=V6A, dst=V6B) / UDP(sport=1, dport=2) / Raw(b"x"))
    res = decode(LINKTYPE_ETHERNET, raw + b"\xff" * 9)
    assert res[9] == len(raw)


# -- malformed ----------------------------------------------------------------

def test_every_truncation_of_valid_frames_is_none_or_sane():
    frames = [
        (LINKTYPE_ETHERNET, bytes(eth() / Dot1Q(vlan=3) / tcp4())),
        (LINKTYPE_ETHERNET, bytes(eth() / IPv6(src=V6A, dst=V6B) / IPv6ExtHdrHopByHop() /
                                  UDP(sport=1, dport=2) / Raw(b"abc"))),
        (LINKTYPE_LINUX_SLL, bytes(CookedLinux() / tcp4())),
        (LINKTYPE_NULL, struct.pack("<I", 2) + bytes(tcp4())),
    ]
    for lt, raw in frames:
        full = decode(lt, raw)
        for cut in range(len(raw)):
            res = decode(lt, raw[:cut])
            if res is not None:                   # only a payload cut keeps a tuple
                assert res[:8] == full[:8] and res[8] <= res[9] <= cut


def test_bad_header_lengths():
    raw = bytearray(bytes(eth() / tcp4()))
    bad = bytearray(raw)
    bad[14] = 0x44                                  # IHL 4 < 5
    assert decode(LINKTYPE_ETHERNET, bytes(bad)) is None
    bad = bytearray(raw)
    bad[14 + 20 + 12] = 0x40                        # TCP data offset 16 < 20
    assert decode(LINKTYPE_ETHERNET, bytes(bad)) is None
    bad = bytearray(raw)
    bad[16:18] = struct.pack("!H", 10)              # total length < IHL
    assert decode(LINKTYPE_ETHERNET, bytes(bad)) is None
    udp = bytearray(bytes(eth() / IP() / UDP(sport=1, dport=2) / Raw(b"abcd")))
    udp[38:40] = struct.pack("!H", 5)               # UDP length 1..7 is invalid
    assert decode(LINKTYPE_ETHERNET, bytes(udp)) is None
    udp[38:40] = struct.pack("!H", 10)              # shorter than the IP payload: honoured
    res = decode(LINKTYPE_ETHERNET, bytes(udp))
    assert bytes(udp)[res[8]:res[9]] == b"ab"


# -- real captures --------------------------------------------------------------

CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "pcaps"


def test_conformance_pcaps_decode():
    if not CONFORMANCE.is_dir():
        pytest.skip("conformance pcaps not present at %s" % CONFORMANCE)
    from scapy.all import rdpcap
    from coordinator.capture.pcapfile import open_capture
    for name in ("http_over_vlan.pcap", "icmp/icmp6_ping.pcap", "wsgi_loopback.pcap",
                 "amqp_publish.pcap", "nfs_v4.pcap"):
        path = CONFORMANCE / name
        with open_capture(str(path)) as reader:
            recs = list(reader)
        assert recs, name
        for (ts, lt, raw), sp in zip(recs, rdpcap(str(path))):
            res = decode(lt, raw)
            ip = sp.getlayer(IP) or sp.getlayer(IPv6)
            if ip is None:
                continue
            assert res is not None, name
            if sp.haslayer(TCP):
                t = sp[TCP]
                assert res[0] == 6 and (res[3], res[4], res[6], res[7]) == (t.sport, t.dport, t.seq,
                                                                            t.ack), name
                assert raw[res[8]:res[9]] == bytes(t.payload)[:res[9] - res[8]], name
            elif sp.haslayer(UDP):
                assert res[0] == 17 and (res[3], res[4]) == (sp[UDP].sport, sp[UDP].dport), name
