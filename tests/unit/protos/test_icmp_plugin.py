"""IcmpPlugin driven with Packets, then through the Engine with scapy-built
frames (VLAN, IPv6, garbage), then over Packetbeat's own ICMP captures (read
in place; skipped when ../shared/conformance is absent)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from shared.confutil import ConfigError, build
from worker.ecs import community_id, iso_time
from worker.engine import Engine
from worker.plugin import IcmpPlugin as IcmpPluginProtocol
from worker.plugin import IpPortTuple, Packet
from worker.protos.icmp import IcmpPlugin
from worker.protos.icmp.config import IcmpConfig
from worker.protos.icmp.parser import ParseError
from worker.protos.icmp.trans import DUPLICATE_REQUEST, ORPHANED_REQUEST, ORPHANED_RESPONSE
from worker.protos.registry import Registry

T0 = 1_445_287_763_817_185_000
MS = 1_000_000
S = 1_000_000_000
A, B = "10.0.0.1", "10.0.0.2"
A6, B6 = "fe80::1", "2001:db8::2"
CONFORMANCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"


def icmp(typ: int, code: int, ident: int = 0, seq: int = 0, body: bytes = b"") -> bytes:
    return struct.pack("!BBHHH", typ, code, 0, ident, seq) + body


class Box:
    def __init__(self, cfg: dict | None = None, **kw):
        self.events: list[dict] = []
        self.plugin = IcmpPlugin(build(IcmpConfig, cfg or {}, "icmp"), self.events.append, **kw)

    def send(self, src: str, dst: str, data: bytes, ts: int, v6: bool = False) -> list[dict]:
        n = len(self.events)
        self.plugin.parse_icmp(Packet(ts, IpPortTuple(58 if v6 else 1, src, 0, dst, 0), memoryview(data)))
        return self.events[n:]


def test_satisfies_the_plugin_protocol():
    box = Box()
    assert isinstance(box.plugin, IcmpPluginProtocol)
    assert IcmpPlugin.transports == ("icmp",) and IcmpPlugin.config_class is IcmpConfig
    assert box.plugin.ports() == []


def test_echo_pair_v4_fields():
    box = Box()
    assert box.send(A, B, icmp(8, 0, 5, 1, b"abcd"), T0) == []
    (ev,) = box.send(B, A, icmp(0, 0, 5, 1, b"abcd"), T0 + 20_130_000)
    assert ev["type"] == "icmp" and ev["status"] == "OK" and ev["path"] == B
    assert ev["@timestamp"] == "2015-10-19T20:49:23.817Z"
    assert ev["event"]["dataset"] == "icmp" and ev["event"]["type"] == ["connection"]
    assert ev["event"]["duration"] == 20_130_000
    assert ev["event"]["start"] == "2015-10-19T20:49:23.817185000Z"
    assert ev["source"] == {"ip": A, "bytes": 4} and ev["destination"] == {"ip": B, "bytes": 4}
    assert ev["client"] == {"ip": A, "bytes": 4} and ev["server"] == {"ip": B, "bytes": 4}
    assert ev["network"]["transport"] == "icmp" and ev["network"]["type"] == "ipv4"
    assert ev["network"]["bytes"] == 8
    assert ev["network"]["community_id"] == community_id(1, A, 8, B, 0)
    assert ev["related"]["ip"] == [A, B]
    assert ev["icmp"] == {
        "version": 4,
        "request": {"message": "EchoRequest(0)", "type": 8, "code": 0},
        "response": {"message": "EchoReply(0)", "type": 0, "code": 0},
    }
    assert "error" not in ev and "request" not in ev and "response" not in ev


def test_community_id_matches_the_spec_example():
    # community-id-spec baseline: ICMP echo 192.168.0.89 -> 192.168.0.1, type 8 code 0
    box = Box()
    box.send("192.168.0.89", "192.168.0.1", icmp(8, 0, 1, 1), T0)
    (ev,) = box.send("192.168.0.1", "192.168.0.89", icmp(0, 0, 1, 1), T0 + MS)
    assert ev["network"]["community_id"] == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="


def test_echo_pair_v6_and_empty_body():
    box = Box()
    box.send(A6, B6, icmp(128, 0, 0xFFFF, 0xFFFF), T0, v6=True)
    (ev,) = box.send(B6, A6, icmp(129, 0, 0xFFFF, 0xFFFF), T0 + 16_439_000, v6=True)
    assert ev["icmp"]["version"] == 6 and ev["network"]["transport"] == "ipv6-icmp"
    assert ev["network"]["type"] == "ipv6" and ev["path"] == B6
    assert ev["icmp"]["request"]["message"] == "EchoRequest(0)" and ev["icmp"]["response"]["type"] == 129
    assert ev["event"]["duration"] == 16_439_000
    assert "bytes" not in ev["source"] and "bytes" not in ev["network"]     # zero sizes left out


def test_pairs_by_id_and_seq_and_direction():
    box = Box()
    box.send(A, B, icmp(8, 0, 1, 1), T0)
    box.send(A, B, icmp(8, 0, 1, 2), T0 + MS)
    box.send(A, B, icmp(8, 0, 2, 1), T0 + 2 * MS)
    # a reply in the same direction as the request is not its answer
    (orphan,) = box.send(A, B, icmp(0, 0, 1, 2), T0 + 3 * MS)
    assert orphan["error"]["message"] == ORPHANED_RESPONSE and orphan["source"]["ip"] == B
    (e2,) = box.send(B, A, icmp(0, 0, 1, 2), T0 + 4 * MS)
    (e3,) = box.send(B, A, icmp(0, 0, 2, 1), T0 + 6 * MS)
    (e1,) = box.send(B, A, icmp(0, 0, 1, 1), T0 + 8 * MS)
    assert [e["event"]["duration"] for e in (e1, e2, e3)] == [8 * MS, 3 * MS, 4 * MS]
    assert all(e["status"] == "OK" for e in (e1, e2, e3))
    # a v4 reply does not answer a v6 request with the same addresses text
    box.send(A, B, icmp(128, 0, 9, 9), T0, v6=True)
    (x,) = box.send(B, A, icmp(0, 0, 9, 9), T0 + MS)
    assert x["error"]["message"] == ORPHANED_RESPONSE


def test_orphan_response():
    box = Box()
    (ev,) = box.send(B, A, icmp(0, 0, 7, 7, b"hi"), T0)
    assert ev["status"] == "Error" and ev["error"]["message"] == ORPHANED_RESPONSE
    assert ev["source"] == {"ip": A} and ev["destination"] == {"ip": B, "bytes": 2}
    assert ev["path"] == B and "request" not in ev["icmp"]
    assert ev["event"]["end"].startswith("2015-10-19T20:49:23.817185") and "start" not in ev["event"]
    assert "duration" not in ev["event"] and ev["@timestamp"] == "2015-10-19T20:49:23.817Z"
    assert ev["network"]["community_id"] == community_id(1, A, 0, B, 0)


def test_unanswered_request_expires_after_the_timeout():
    box = Box({"transaction_timeout": "2s"})
    box.send(A, B, icmp(8, 0, 1, 1, b"x" * 56), T0)
    box.plugin.expire(T0 + 2 * S)               # exactly the timeout: still waiting
    assert box.events == []
    box.plugin.expire(T0 + 2 * S + 1)
    (ev,) = box.events
    assert ev["status"] == "Error" and ev["error"]["message"] == ORPHANED_REQUEST
    assert ev["source"]["bytes"] == 56 and "response" not in ev["icmp"] and "duration" not in ev["event"]
    # the late reply is then a response without request
    (late,) = box.send(B, A, icmp(0, 0, 1, 1), T0 + 3 * S)
    assert late["error"]["message"] == ORPHANED_RESPONSE


def test_expiry_only_takes_what_is_due():
    box = Box({"transaction_timeout": "1s"})
    for i in range(5):
        box.send(A, B, icmp(8, 0, 1, i), T0 + i * 300 * MS)
    box.plugin.expire(T0 + 1 * S + 700 * MS)        # requests 0, 1 and 2 are older than 1 s
    assert len(box.events) == 3
    assert len(box.plugin.correlator.open) == 2
    box.plugin.flush_all(T0 + 2 * S)
    assert len(box.events) == 5 and not box.plugin.correlator.open
    assert all(e["error"]["message"] == ORPHANED_REQUEST for e in box.events)


def test_flush_all_publishes_open_requests():
    box = Box()
    box.send(A, B, icmp(8, 0, 1, 1), T0)
    box.send(A6, B6, icmp(128, 0, 1, 1), T0 + MS, v6=True)
    box.plugin.flush_all(T0 + MS)
    assert [e["icmp"]["version"] for e in box.events] == [4, 6]
    assert all(e["status"] == "Error" and e["error"]["message"] == ORPHANED_REQUEST for e in box.events)


def test_duplicate_request_closes_the_first():
    box = Box()
    box.send(A, B, icmp(8, 0, 1, 1), T0)
    (dup,) = box.send(A, B, icmp(8, 0, 1, 1), T0 + 5 * MS)
    assert dup["error"]["message"] == DUPLICATE_REQUEST and dup["status"] == "Error"
    assert dup["event"]["start"].startswith("2015-10-19T20:49:23.817185")
    (ev,) = box.send(B, A, icmp(0, 0, 1, 1), T0 + 7 * MS)
    assert ev["status"] == "OK" and ev["event"]["duration"] == 2 * MS
    assert box.plugin.correlator.counters["duplicate_requests"] == 1


@pytest.mark.parametrize("v6,typ,code,status,message", [
    (False, 3, 3, "Error", "DestinationUnreachable(Port)"),
    (False, 11, 0, "Error", "TimeExceeded(TTLExceeded)"),
    (False, 4, 0, "Error", "SourceQuench(0)"),
    (False, 12, 0, "Error", "ParameterProblem(PointerIndicatesError)"),
    (False, 5, 1, "OK", "Redirect(Host)"),
    (False, 9, 0, "OK", "RouterAdvertisement(0)"),
    (False, 10, 0, "OK", "RouterSolicitation(0)"),
    (True, 1, 4, "Error", "DestinationUnreachable(PortUnreachable)"),
    (True, 2, 0, "Error", "PacketTooBig(0)"),
    (True, 3, 0, "Error", "TimeExceeded(HopLimitExceeded)"),
    (True, 133, 0, "OK", "RouterSolicitation(0)"),
    (True, 134, 0, "OK", "RouterAdvertisement(0)"),
    (True, 135, 0, "OK", "NeighborSolicitation(0)"),
    (True, 136, 0, "OK", "NeighborAdvertisement(0)"),
    (True, 137, 0, "OK", "Redirect(0)"),
    (True, 143, 0, "OK", "143(0)"),
])
def test_one_way_types_are_published_at_once(v6, typ, code, status, message):
    box = Box()
    src, dst = (A6, B6) if v6 else (A, B)
    (ev,) = box.send(src, dst, icmp(typ, code, 0x1234, 0x5678, b"q" * 28), T0, v6=v6)
    assert ev["status"] == status and ev["icmp"]["request"] == {"message": message, "type": typ, "code": code}
    assert "response" not in ev["icmp"] and "error" not in ev and "duration" not in ev["event"]
    assert ev["source"] == {"ip": src, "bytes": 28} and ev["path"] == dst
    assert ev["network"]["community_id"] == community_id(58 if v6 else 1, src, typ, dst, code)
    assert not box.plugin.correlator.open


@pytest.mark.parametrize("req,resp", [((13, 14), None), ((15, 16), None), ((17, 18), None)])
def test_other_v4_query_pairs(req, resp):
    box = Box()
    box.send(A, B, icmp(req[0], 0, 3, 4, b"\0" * 12), T0)
    (ev,) = box.send(B, A, icmp(req[1], 0, 3, 4, b"\0" * 12), T0 + MS)
    assert ev["status"] == "OK" and ev["icmp"]["request"]["type"] == req[0]
    assert ev["icmp"]["response"]["type"] == req[1] and ev["event"]["duration"] == MS


def test_open_requests_are_bounded():
    box = Box(max_open=3)
    for i in range(5):
        box.send(A, B, icmp(8, 0, 1, i), T0 + i)
    assert len(box.plugin.correlator.open) == 3
    assert [e["error"]["message"] for e in box.events] == [ORPHANED_REQUEST] * 2
    assert [e["event"]["start"] for e in box.events] == [iso_time(T0), iso_time(T0 + 1)]   # the oldest first


def test_short_message_raises_parse_error_and_keeps_state():
    box = Box()
    box.send(A, B, icmp(8, 0, 1, 1), T0)
    with pytest.raises(ParseError):
        box.send(B, A, b"\x00\x00\x00", T0 + MS)
    (ev,) = box.send(B, A, icmp(0, 0, 1, 1), T0 + 2 * MS)
    assert ev["status"] == "OK"


def test_config_options():
    cfg = build(IcmpConfig, {"enabled": True, "transaction_timeout": "500ms", "send_request": True,
                             "send_response": True, "tags": ["t"]}, "packetbeat.protocols[0]", ignore=("type",))
    assert cfg.transaction_timeout == 0.5 and cfg.send_request
    assert build(IcmpConfig, None, "icmp").transaction_timeout == 10.0
    with pytest.raises(ConfigError, match="transaction_timeout"):
        build(IcmpConfig, {"transaction_timeout": "0s"}, "icmp")
    with pytest.raises(ConfigError, match="icmp.bogus"):
        build(IcmpConfig, {"bogus": 1}, "icmp")
    # send_request/send_response are accepted; Packetbeat's ICMP events carry no raw text
    box = Box({"send_request": True, "send_response": True})
    box.send(A, B, icmp(8, 0, 1, 1), T0)
    (ev,) = box.send(B, A, icmp(0, 0, 1, 1), T0 + MS)
    assert "request" not in ev and "response" not in ev


def test_disabled_plugin_publishes_nothing():
    box = Box({"enabled": False})
    box.send(A, B, icmp(3, 3), T0)
    box.plugin.flush_all(T0)
    assert box.events == []


# ---------------------------------------------------------------- engine level

def engine(protocol: dict | None = None) -> Engine:
    reg = Registry()
    reg.register("icmp", IcmpPlugin)
    return Engine([protocol or {"type": "icmp"}], reg)


def frames_vlan():
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Dot1Q, Ether
    m1, m2 = "00:00:00:00:00:01", "00:00:00:00:00:02"
    return [
        (T0, 1, bytes(Ether(src=m1, dst=m2) / Dot1Q(vlan=10) / IP(src=A, dst=B) / ICMP(type=8, id=5, seq=1) / b"abcd")),
        (T0 + 12 * MS, 1, bytes(Ether(src=m2, dst=m1) / Dot1Q(vlan=10) / IP(src=B, dst=A) / ICMP(type=0, id=5, seq=1) / b"abcd")),
        # QinQ, IPv6
        (T0 + 20 * MS, 1, bytes(Ether(src=m1, dst=m2) / Dot1Q(vlan=100) / Dot1Q(vlan=7)
                                / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=9, seq=3, data=b"xyz"))),
        (T0 + 25 * MS, 1, bytes(Ether(src=m2, dst=m1) / Dot1Q(vlan=100) / Dot1Q(vlan=7)
                                / IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=9, seq=3, data=b"xyz"))),
    ]


def test_engine_over_vlan_frames():
    eng = engine()
    eng.handle(frames_vlan())
    eng.finish()
    e4, e6 = eng.take_events()
    assert (e4["source"]["ip"], e4["destination"]["ip"], e4["event"]["duration"]) == (A, B, 12 * MS)
    assert e4["source"]["bytes"] == 4 and e4["icmp"]["response"]["message"] == "EchoReply(0)"
    assert (e6["source"]["ip"], e6["destination"]["ip"], e6["event"]["duration"]) == (A6, B6, 5 * MS)
    assert e6["source"]["bytes"] == 3 and e6["network"]["transport"] == "ipv6-icmp"
    assert eng.counters["icmp.packets"] == 4


def test_engine_tags_and_fields_are_applied():
    eng = engine({"type": "icmp", "tags": ["ping"], "fields": {"team": "net"}})
    eng.handle(frames_vlan()[:2])
    (ev,) = eng.take_events()
    assert ev["tags"] == ["ping"] and ev["fields"] == {"team": "net"}


def test_engine_survives_truncated_and_garbage_icmp():
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    eng = engine()
    bad = [
        (T0, 1, bytes(Ether() / IP(src=A, dst=B, proto=1) / b"\x08\x00\x00\x00\x01")),   # 5 ICMP bytes
        (T0 + 1, 1, bytes(Ether() / IPv6(src=A6, dst=B6, nh=58) / b"\x80\x00\x00\x00\x01\x02\x03")),  # 7 bytes
        (T0 + 2, 1, bytes(Ether() / IP(src=A, dst=B, proto=1) / b"\x08\x00")),           # 2: the decoder refuses
        (T0 + 3, 1, bytes(Ether() / IP(src=A, dst=B, proto=1))[:30]),                   # cut IP header
    ]
    eng.handle(bad + frames_vlan())
    eng.finish()
    assert eng.counters["icmp.parse_errors"] == 2
    assert eng.counters["worker.undecodable"] == 2
    assert eng.counters.get("icmp.plugin_errors", 0) == 0
    assert len(eng.take_events()) == 2


def test_engine_expires_on_packet_time():
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    eng = engine({"type": "icmp", "transaction_timeout": "1s"})
    req = bytes(Ether() / IP(src=A, dst=B) / ICMP(type=8, id=1, seq=1))
    other = bytes(Ether() / IP(src=A, dst=B) / ICMP(type=3, code=1) / bytes(28))
    eng.handle([(T0, 1, req)])
    assert eng.take_events() == []
    eng.handle([(T0 + 2 * S, 1, other)])          # packet time moves past the timeout
    evs = eng.take_events()
    assert {e["icmp"]["request"]["type"] for e in evs} == {3, 8}
    (expired,) = [e for e in evs if e["icmp"]["request"]["type"] == 8]
    assert expired["error"]["message"] == ORPHANED_REQUEST


# ---------------------------------------------------------- Packetbeat's captures

@pytest.mark.parametrize("name,version,duration,ts", [
    ("icmp4_ping.pcap", 4, 20_130_000, "2015-10-19T20:49:23.817Z"),
    ("icmp4_ping_over_vlan.pcap", 4, 12_192_000, "2015-10-19T20:49:23.849Z"),
    ("icmp6_ping.pcap", 6, 16_439_000, "2015-10-19T20:49:23.872Z"),
])
def test_packetbeat_captures(name, version, duration, ts):
    path = CONFORMANCE / "pcaps" / "icmp" / name
    if not path.exists():
        pytest.skip("../shared/conformance is absent: Packetbeat's ICMP captures cannot be read")
    from bench.common import read_records
    eng = engine()
    eng.handle(read_records(str(path)))
    eng.finish()
    (ev,) = eng.take_events()
    # the values Packetbeat 8.x's tests/system/test_0050_icmp.py asserts
    assert ev["icmp"]["version"] == version and ev["event"]["duration"] == duration
    assert ev["@timestamp"] == ts and ev["status"] == "OK"
    assert ev["source"]["bytes"] == 4 and ev["destination"]["bytes"] == 4
    assert ev["icmp"]["request"]["message"] == "EchoRequest(0)"
    assert ev["icmp"]["response"]["message"] == "EchoReply(0)"
    assert ev["path"] == ("10.0.0.2" if version == 4 else "::2")
    assert ev["network"]["transport"] == ("icmp" if version == 4 else "ipv6-icmp")


# ------------------------------------------------- engine: analysers without parse_datagram

class PacketOnly:
    """An ICMP analyser with only the protocol's ``parse_icmp(Packet)``: the engine's fallback."""
    config_class = IcmpConfig
    transports = ("icmp",)

    def __init__(self, cfg, emit):
        self.inner = IcmpPlugin(cfg, emit)
        self.packets: list = []

    def ports(self):
        return []

    def parse_icmp(self, pkt):
        self.packets.append(pkt)
        self.inner.parse_icmp(pkt)

    def expire(self, now):
        self.inner.expire(now)

    def flush_all(self, now):
        self.inner.flush_all(now)


class Failing(PacketOnly):
    def parse_icmp(self, pkt):
        raise RuntimeError("analyser bug")


def test_engine_packet_fallback_gives_the_same_events():
    reg = Registry()
    reg.register("icmp", PacketOnly)
    slow = Engine([{"type": "icmp"}], reg)
    fast = engine()
    for eng in (slow, fast):
        eng.handle(frames_vlan())
        eng.finish()
    assert slow.take_events() == fast.take_events() != []
    pkts = slow.icmp.packets
    assert [p.tuple for p in pkts] == [IpPortTuple(1, A, 0, B, 0), IpPortTuple(1, B, 0, A, 0),
                                       IpPortTuple(58, A6, 0, B6, 0), IpPortTuple(58, B6, 0, A6, 0)]
    assert type(pkts[0].payload) is memoryview and bytes(pkts[0].payload[:1]) == b"\x08"
    assert slow.counters["icmp.packets"] == fast.counters["icmp.packets"] == 4


def test_engine_counts_and_logs_an_analyser_failure_once(caplog):
    reg = Registry()
    reg.register("icmp", Failing)
    eng = Engine([{"type": "icmp"}], reg)
    with caplog.at_level("ERROR", logger="packetbeat.worker"):
        eng.handle(frames_vlan())
    assert eng.counters["icmp.plugin_errors"] == 4 and eng.counters["icmp.packets"] == 4
    assert len([r for r in caplog.records if "icmp analyser failed" in r.getMessage()]) == 1
