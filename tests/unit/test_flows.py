"""Flow records: counts, orientation, keys, timeout/period by packet time, flow.id, capture hand-off."""
from __future__ import annotations

import collections
import json
import struct

import pytest

from coordinator.capture.pcapfile import open_capture
from coordinator.capture.process import Sharder
from tests.helpers import CONFORMANCE, PCAPS
from worker.engine import Engine
from worker.flows import FlowTable
from worker.protos.registry import load_registry

S = 1_000_000_000
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, proto, l4: bytes, smac=MAC_A, dmac=MAC_B, vlans=()) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return dmac + smac + tags + b"\x08\x00" + ip + l4


def tcp(sport, dport, flags=0x10, payload=b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload=b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def echo(itype, ident, seq=1) -> bytes:
    return struct.pack("!BBHHH", itype, 0, 0, ident, seq) + b"abcd"


C = (10, 0, 0, 9)          # the higher address sends first: source must follow the first packet, not sorting
SV = (10, 0, 0, 1)


def table(timeout=10.0, period=-1.0):
    out: list[dict] = []
    return FlowTable(timeout, period, out.append), out


def feed(ft, ts, raw):
    from shared.decode import decode
    ft.add(ts, 1, raw, decode(1, raw))


def test_both_directions_one_flow_first_sender_is_source():
    ft, out = table()
    pkts = [(C, SV, tcp(40000, 80, 0x02)), (SV, C, tcp(80, 40000, 0x12)), (C, SV, tcp(40000, 80)),
            (C, SV, tcp(40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n")), (SV, C, tcp(80, 40000, 0x18, b"x" * 100))]
    sizes = collections.Counter()
    for i, (s, d, l4) in enumerate(pkts):
        raw = frame(s, d, 6, l4, *((MAC_A, MAC_B) if s == C else (MAC_B, MAC_A)))
        sizes[s] += len(raw)
        feed(ft, S + i * 1000, raw)
    ft.flush_all(S + 10_000)
    assert len(out) == 1
    ev = out[0]
    assert ev["type"] == "flow" and ev["flow"]["final"] is True
    assert ev["source"] == {"mac": "02:00:00:00:00:01", "ip": "10.0.0.9", "port": 40000,
                            "packets": 3, "bytes": sizes[C]}
    assert ev["destination"] == {"mac": "02:00:00:00:00:02", "ip": "10.0.0.1", "port": 80,
                                 "packets": 2, "bytes": sizes[SV]}
    assert ev["network"]["transport"] == "tcp" and ev["network"]["type"] == "ipv4"
    assert ev["network"]["packets"] == 5 and ev["network"]["bytes"] == sizes[C] + sizes[SV]
    assert ev["network"]["community_id"].startswith("1:")
    assert ev["event"]["action"] == "network_flow" and ev["event"]["type"] == ["connection", "end"]
    assert ev["event"]["duration"] == 4000
    assert ev["event"]["start"] == "1970-01-01T00:00:01.000000000Z"
    assert ev["event"]["end"] == "1970-01-01T00:00:01.000004000Z"
    json.dumps(ev)


def test_keys_vlan_transport_ports_icmp_id_separate_flows():
    ft, out = table()
    feed(ft, S, frame(C, SV, 17, udp(5000, 53, b"q")))
    feed(ft, S, frame(C, SV, 17, udp(5001, 53, b"q")))
    feed(ft, S, frame(C, SV, 17, udp(5000, 53, b"q"), vlans=(10,)))
    feed(ft, S, frame(C, SV, 6, tcp(5000, 53)))
    feed(ft, S, frame(C, SV, 1, echo(8, 7)))
    feed(ft, S, frame(SV, C, 1, echo(0, 7), MAC_B, MAC_A))
    feed(ft, S, frame(C, SV, 1, echo(8, 8)))
    ft.flush_all(2 * S)
    assert len(out) == 6
    vlan = [e for e in out if "vlan" in e["flow"]]
    assert len(vlan) == 1 and vlan[0]["flow"]["vlan"] == 10
    icmp = sorted((e for e in out if e["network"].get("transport") == "icmp"),
                  key=lambda e: e["network"]["packets"])
    assert [e["network"]["packets"] for e in icmp] == [1, 2]
    assert icmp[1]["source"]["packets"] == 1 and icmp[1]["destination"]["packets"] == 1
    assert len({e["flow"]["id"] for e in out}) == 6


def test_timeout_ends_flow_by_packet_time_and_period_reports_intermediate():
    ft, out = table(timeout=2.0, period=5.0)
    a = frame(C, SV, 17, udp(1, 2, b"a"))
    b = frame(C, SV, 17, udp(3, 4, b"b"))
    feed(ft, 100 * S, a)
    ft.tick(100 * S)
    for i in range(1, 8):                    # b keeps going; a idles
        feed(ft, 100 * S + i * S, b)
        ft.tick(100 * S + i * S)
    finals = [e for e in out if e["flow"]["final"]]
    assert len(finals) == 1 and finals[0]["source"]["port"] == 1 and finals[0]["source"]["packets"] == 1
    assert finals[0]["@timestamp"] == "1970-01-01T00:01:43.000Z"   # first check after 2 s idle
    inter = [e for e in out if not e["flow"]["final"]]
    assert inter and all(e["source"]["port"] == 3 for e in inter)
    assert inter[0]["@timestamp"] == "1970-01-01T00:01:45.000Z"    # period boundary
    assert inter[0]["source"]["packets"] == 5 and inter[0]["event"]["type"] == ["connection"]
    ft.flush_all(108 * S)
    last = out[-1]
    assert last["flow"]["final"] and last["source"]["packets"] == 7
    assert last["flow"]["id"] == inter[0]["flow"]["id"]


def test_only_final_when_period_is_minus_one():
    ft, out = table(timeout=10.0, period=-1.0)
    for i in range(30):
        feed(ft, S + i * S // 2, frame(C, SV, 17, udp(1, 2)))
        ft.tick(S + i * S // 2)
    assert out == []
    ft.flush_all(20 * S)
    assert len(out) == 1 and out[0]["source"]["packets"] == 30


@pytest.mark.parametrize("timeout,period", [(0.5, -1.0), (10.0, 0.5)])
def test_invalid_timeout_or_period(timeout, period):
    with pytest.raises(ValueError):
        FlowTable(timeout, period, print)


def test_engine_flows_off_by_default_and_decorated_when_on():
    raw = frame(C, SV, 17, udp(1, 2, b"x"))
    e = Engine([], load_registry())
    e.handle([[S, 1, raw]])
    e.finish()
    assert e.take_events() == []
    e = Engine([], load_registry(), flows={"timeout": "10s", "period": "-1s", "tags": ["f"],
                                           "fields": {"k": 1}})
    e.handle([[S, 1, raw]])
    e.finish()
    (ev,) = e.take_events()
    assert ev["type"] == "flow" and ev["tags"] == ["f"] and ev["fields"] == {"k": 1}


def test_sharder_keeps_empty_tcp_only_for_flows():
    ack = frame(C, SV, 6, tcp(40000, 80))
    for keep, n in ((False, 0), (True, 1)):
        sent = []
        sh = Sharder(1, lambda i, recs: sent.extend(recs), keep_empty_tcp=keep)
        sh.feed([(S, 1, ack)])
        sh.flush()
        assert len(sent) == n


def _conformance_ids():
    expected = {}
    for name, pcap in (("flows__test_icmp4_ping", "icmp/icmp4_ping_over_vlan.pcap"),
                       ("flows__test_memcache_udp_flow", "memcache/memcache_bin_udp_counter_ops.pcap"),
                       ("flows__test_mysql_flow", "mysql_long.pcap")):
        lines = (CONFORMANCE / "expected" / (name + ".ndjson")).read_text().splitlines()
        ev = next(json.loads(x) for x in lines if '"type":"flow"' in x)
        expected[pcap] = ev
    return expected


def test_flow_id_and_counts_equal_packetbeat_recordings():
    if not CONFORMANCE.exists():
        pytest.skip("../shared/conformance is absent: Packetbeat's recorded flows are not available")
    for pcap, want in _conformance_ids().items():
        eng = Engine([], load_registry(), flows={"timeout": "10s", "period": "-1s"})
        reader = open_capture(str(CONFORMANCE / "pcaps" / pcap))
        eng.handle([list(r) for r in reader])
        reader.close()
        eng.finish()
        (ev,) = [e for e in eng.take_events() if e["type"] == "flow"]
        assert ev["flow"]["id"] == want["flow_id"], pcap
        for side, legacy in (("source", "source"), ("destination", "dest")):
            stats = want[legacy].get("stats", {})
            assert ev[side].get("packets") == stats.get("net_packets_total"), (pcap, side)
            assert ev[side].get("bytes") == stats.get("net_bytes_total"), (pcap, side)
            assert ev[side]["ip"] == want[legacy]["ip"] and ev[side]["mac"] == want[legacy]["mac"]


def test_http_real_counts_equal_an_independent_scapy_count():
    scapy_all = pytest.importorskip("scapy.all")
    path = PCAPS / "http_real.pcap"
    # independent count: scapy's dissection, per (ip, port) pair, in first-seen orientation
    pk = collections.Counter()
    by = collections.Counter()
    first = {}
    for p in scapy_all.rdpcap(str(path)):
        if scapy_all.IP not in p or scapy_all.TCP not in p:
            continue
        assert p.wirelen in (None, len(p))   # no snap length cut: captured bytes = wire bytes
        s = (p[scapy_all.IP].src, p[scapy_all.TCP].sport)
        d = (p[scapy_all.IP].dst, p[scapy_all.TCP].dport)
        conv = frozenset((s, d))
        first.setdefault(conv, s)
        pk[(conv, s == first[conv])] += 1
        by[(conv, s == first[conv])] += len(p)
    assert len(first) > 1
    # the project: capture sharding (2 workers, empty ACKs kept) then one engine per shard
    shards = collections.defaultdict(list)
    sh = Sharder(2, lambda i, recs: shards[i].extend(recs), keep_empty_tcp=True)
    reader = open_capture(str(path))
    sh.feed(list(reader))
    reader.close()
    sh.flush()
    events = []
    for recs in shards.values():
        eng = Engine([{"type": "http", "ports": [80, 8080, 8000]}], load_registry(),
                     flows={"timeout": "30s", "period": "-1s"})
        for i in range(0, len(recs), 64):
            eng.handle([list(r) for r in recs[i:i + 64]])
        eng.finish()
        events += [e for e in eng.take_events() if e["type"] == "flow"]
    assert len(events) == len(first)
    for ev in events:
        s = (ev["source"]["ip"], ev["source"]["port"])
        d = (ev["destination"]["ip"], ev["destination"]["port"])
        conv = frozenset((s, d))
        assert first[conv] == s
        assert ev["source"].get("packets", 0) == pk[(conv, True)]
        assert ev["source"].get("bytes", 0) == by[(conv, True)]
        assert ev["destination"].get("packets", 0) == pk[(conv, False)]
        assert ev["destination"].get("bytes", 0) == by[(conv, False)]
        assert ev["flow"]["final"] is True


@pytest.mark.parametrize("raw,bad", [({"timeout": "500ms"}, "timeout"), ({"period": "200ms"}, "period")])
def test_config_limits(raw, bad):
    from shared.config import FlowsConfig
    from shared.confutil import ConfigError, build
    with pytest.raises(ConfigError, match="packetbeat.flows." + bad):
        build(FlowsConfig, raw, "packetbeat.flows")
    assert build(FlowsConfig, {"period": "0s"}, "packetbeat.flows").period == 0


def test_engine_fed_ip_fragments_reports_an_ip_flow():
    """The capture reassembles fragments; an engine fed them directly counts
    them in an IP-only flow (it used to fail at the report)."""
    from scapy.all import IP, UDP, Ether, fragment
    frames = [bytes(f) for f in fragment(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                                         / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=53)
                                         / (b"x" * 3000), fragsize=1000)]
    eng = Engine([{"type": "dns", "ports": [53]}], load_registry(with_entry_points=False),
                 flows={"timeout": "10s", "period": "-1s"})
    eng.handle([[S + i, 1, f] for i, f in enumerate(frames)])
    eng.finish()
    (ev,) = eng.take_events()
    assert ev["type"] == "flow"
    assert ev["network"] == {"type": "ipv4", "bytes": sum(len(f) for f in frames), "packets": len(frames)}
    assert ev["source"]["ip"] == "10.0.0.1" and "port" not in ev["source"]
    assert ev["source"]["packets"] == len(frames) and "packets" not in ev["destination"]


def test_open_flows_are_bounded_oldest_reported_final_first():
    out: list[dict] = []
    ft = FlowTable(10.0, -1.0, out.append, max_flows=3)
    for i in range(5):
        feed(ft, 1_000_000_000 + i, frame(b"\x0a\0\0\x01", b"\x0a\0\0\x02", 17, udp(1000 + i, 53)))
    assert len(ft.flows) == 3 and ft.counters["flows.evicted"] == 2
    assert [e["source"]["port"] for e in out] == [1000, 1001] and all(e["flow"]["final"] for e in out)
    ft.flush_all(2_000_000_000)
    assert sorted(e["source"]["port"] for e in out) == [1000, 1001, 1002, 1003, 1004]
