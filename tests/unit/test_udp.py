"""UdpDispatcher: port dispatch in both directions and the plugin boundary."""
from __future__ import annotations

import collections
import logging
import socket

import pytest

from worker.plugin import IpPortTuple, ParseError
from worker.udp import UdpDispatcher

CLI = socket.inet_aton("10.1.1.1")
SRV = socket.inet_aton("10.1.1.53")
CLI6 = socket.inet_pton(socket.AF_INET6, "fd00::1")
SRV6 = socket.inet_pton(socket.AF_INET6, "fd00::53")
HDR = b"\xaa" * 42   # Ethernet + IPv4 + UDP


class Recorder:
    name = "dnsrec"

    def __init__(self):
        self.calls: list[tuple] = []
        self.raise_exc: Exception | None = None

    def ports(self):
        return [53]

    def parse_udp(self, pkt):
        self.calls.append(("parse", pkt.ts, pkt.tuple, bytes(pkt.payload)))
        if self.raise_exc is not None:
            raise self.raise_exc

    def expire(self, now):
        self.calls.append(("expire", now))

    def flush_all(self, now):
        self.calls.append(("flush_all", now))


def dgram(src, dst, sport, dport, payload):
    raw = HDR + payload
    return (17, src, dst, sport, dport, 0, 0, 0, len(HDR), len(raw), 14), raw


def make(ports=(53,)):
    p = Recorder()
    counters = collections.Counter()
    return UdpDispatcher({port: p for port in ports}, counters), p, counters


def test_dispatch_both_directions():
    ud, p, c = make()
    ud.process(5, *dgram(CLI, SRV, 33000, 53, b"query"))
    ud.process(6, *dgram(SRV, CLI, 53, 33000, b"answer"))
    assert p.calls == [
        ("parse", 5, IpPortTuple(17, "10.1.1.1", 33000, "10.1.1.53", 53), b"query"),
        ("parse", 6, IpPortTuple(17, "10.1.1.53", 53, "10.1.1.1", 33000), b"answer"),
    ]
    assert c["udp.packets"] == 0           # folded in once per batch
    ud.expire(7)
    assert c["udp.packets"] == 2 and c["udp.no_protocol"] == 0


def test_ipv6_and_empty_payload():
    ud, p, _ = make()
    ud.process(1, *dgram(CLI6, SRV6, 1000, 53, b""))
    assert p.calls == [("parse", 1, IpPortTuple(17, "fd00::1", 1000, "fd00::53", 53), b"")]


def test_destination_port_wins():
    a, b = Recorder(), Recorder()
    ud = UdpDispatcher({53: a, 5060: b}, collections.Counter())
    ud.process(1, *dgram(CLI, SRV, 5060, 53, b"x"))
    assert len(a.calls) == 1 and b.calls == []


def test_unknown_ports_counted():
    ud, p, c = make()
    ud.process(1, *dgram(CLI, SRV, 1111, 2222, b"zz"))
    ud.flush_all(2)
    assert p.calls == [("flush_all", 2)]
    assert c["udp.no_protocol"] == 1 and c["udp.packets"] == 1


def test_parse_error_counted_and_next_packet_still_dispatched():
    ud, p, c = make()
    p.raise_exc = ParseError("bad dns")
    ud.process(1, *dgram(CLI, SRV, 33000, 53, b"junk"))
    p.raise_exc = None
    ud.process(2, *dgram(CLI, SRV, 33000, 53, b"good"))
    assert c["udp.parse_errors"] == 1 and c["udp.plugin_errors"] == 0
    assert p.calls[-1][3] == b"good"


def test_plugin_bug_logged_once(caplog):
    ud, p, c = make()
    p.raise_exc = RuntimeError("bug")
    with caplog.at_level(logging.ERROR, logger="packetbeat.udp"):
        for i in range(3):
            ud.process(i, *dgram(CLI, SRV, 33000, 53, b"q"))
    assert c["udp.plugin_errors"] == 3
    recs = [r for r in caplog.records if r.name == "packetbeat.udp"]
    assert len(recs) == 1 and "dnsrec" in recs[0].getMessage()
    assert recs[0].exc_info[0] is RuntimeError


def test_expire_and_flush_all_once_per_plugin():
    ud, p, _ = make(ports=(53, 5353))
    ud.expire(100)
    ud.flush_all(200)
    assert p.calls == [("expire", 100), ("flush_all", 200)]


def test_expire_errors_contained():
    class Bad(Recorder):
        def expire(self, now):
            raise ParseError("x")

        def flush_all(self, now):
            raise OSError("y")

    c = collections.Counter()
    ud = UdpDispatcher({53: Bad()}, c)
    ud.expire(1)
    ud.flush_all(2)
    assert c["udp.parse_errors"] == 1 and c["udp.plugin_errors"] == 1


def test_address_cache_is_bounded(monkeypatch):
    import worker.udp as udp_mod
    monkeypatch.setattr(udp_mod, "_ADDR_CACHE_MAX", 4)
    ud, p, _ = make()
    for i in range(10):
        src = bytes([10, 2, 0, i])
        ud.process(i, *dgram(src, SRV, 40000, 53, b"q"))
    assert len(ud._addr) <= 4
    assert [c[2].src_ip for c in p.calls] == ["10.2.0.%d" % i for i in range(10)]


def test_scapy_frames_through_decoder():
    decode_mod = pytest.importorskip("shared.decode", reason="shared.decode not written yet")
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    ud, p, c = make()
    q = bytes(Ether() / IP(src="10.1.1.1", dst="10.1.1.53") / UDP(sport=33000, dport=53) / b"\x12\x34query")
    r = bytes(Ether() / IP(src="10.1.1.53", dst="10.1.1.1") / UDP(sport=53, dport=33000) / b"\x12\x34resp")
    for i, raw in enumerate((q, r)):
        dec = decode_mod.decode(1, raw)
        assert dec is not None and dec[0] == 17
        ud.process(i, dec, raw)
    assert [(x[2].src_port, x[3]) for x in p.calls] == [(33000, b"\x12\x34query"), (53, b"\x12\x34resp")]
