"""DnsPlugin driven directly (UDP datagrams, TCP segments) and through a
worker engine: correlation by tuple and ID, half transactions and their
notes, expiry by packet time, every option checked on the emitted event,
the question's domain parts, and Packetbeat's recorded DNS captures (read in
place, skipped when absent)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from shared.confutil import ConfigError, build
from worker.engine import Engine
from worker.plugin import IpPortTuple, Packet, TcpPlugin, TcpTuple, UdpPlugin
from worker.protos.dns import DnsPlugin
from worker.protos.dns.config import DnsConfig
from worker.protos.dns.publicsuffix import PublicSuffixList
from worker.protos.registry import Registry

dns = pytest.importorskip("dns.message", reason="dnspython writes the fixtures")
import dns.rrset  # noqa: E402

T0 = 1_600_000_000_000_000_000
MS = 1_000_000
UDP_T = IpPortTuple(17, "10.0.0.1", 40000, "10.0.0.53", 53)
TCP_T = TcpTuple("10.0.0.1", 40001, "10.0.0.53", 53, 3)
PSL = PublicSuffixList(["com", "uk", "co.uk", "*.ck", "!www.ck", "github.io", "io"])
CONFORMANCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"


def plugin(cfg: dict | None = None, psl=PSL):
    events: list[dict] = []
    return DnsPlugin(build(DnsConfig, cfg or {}, "dns"), events.append, psl), events


def query(name="www.example.com.", rdtype="A", mid=7, **kw) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = mid
    return q


def answer(q, *texts, rcode=0, authority=(), additional=(), edns=None) -> bytes:
    r = dns.message.make_response(q)
    if edns is not None:
        r.use_edns(edns)
    name = q.question[0].name
    for t in texts:
        rdtype, _, data = t.partition(" ")
        r.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, data))
    r.authority.extend(authority)
    r.additional.extend(additional)
    r.set_rcode(rcode)
    return r.to_wire()


def udp(p, data: bytes, ts: int, reverse: bool = False) -> None:
    p.parse_udp(Packet(ts, UDP_T.reverse() if reverse else UDP_T, memoryview(data)))


def test_protocol_conformance_and_defaults():
    p, _ = plugin()
    assert isinstance(p, UdpPlugin) and isinstance(p, TcpPlugin)
    assert DnsPlugin.transports == ("udp", "tcp") and DnsPlugin.config_class is DnsConfig
    assert p.ports() == [53] and p.connection_timeout() == 10.0
    cfg = build(DnsConfig, {"ports": [53, 5353], "include_authorities": True, "transaction_timeout": "2s"}, "dns")
    assert cfg.ports == [53, 5353] and cfg.include_authorities and cfg.transaction_timeout == 2.0
    with pytest.raises(ConfigError, match="dns.max_rows"):
        build(DnsConfig, {"max_rows": 1}, "dns")
    with pytest.raises(ConfigError, match="out of range"):
        build(DnsConfig, {"ports": [70000]}, "dns")
    with pytest.raises(ConfigError, match="include_additionals"):
        build(DnsConfig, {"include_additionals": "maybe"}, "dns")


def test_udp_transaction_fields():
    p, events = plugin()
    q = query()
    qw = q.to_wire()
    rw = answer(q, "A 192.0.2.1", "A 192.0.2.2")
    udp(p, qw, T0)
    udp(p, rw, T0 + 3 * MS + 417, reverse=True)
    [ev] = events
    assert ev["status"] == "OK" and ev["type"] == "dns" and "error" not in ev
    assert ev["event"]["duration"] == 3 * MS + 417 and ev["@timestamp"].startswith("2020-09-13T12:26:40.000")
    assert ev["source"] == {"ip": "10.0.0.1", "port": 40000, "bytes": len(qw)}
    assert ev["destination"] == {"ip": "10.0.0.53", "port": 53, "bytes": len(rw)}
    assert ev["network"]["transport"] == "udp" and ev["network"]["protocol"] == "dns"
    assert ev["method"] == "QUERY" and ev["query"] == "class IN, type A, www.example.com"
    assert ev["resource"] == "www.example.com"
    d = ev["dns"]
    assert d["type"] == "answer" and d["id"] == 7 and d["response_code"] == "NOERROR"
    assert d["flags"]["recursion_desired"] and not d["flags"]["authoritative"]
    assert d["header_flags"] == ["RD"]
    assert d["answers_count"] == 2 and d["resolved_ip"] == ["192.0.2.1", "192.0.2.2"]
    assert d["answers"][0] == {"name": "www.example.com", "type": "A", "class": "IN", "ttl": "60",
                               "data": "192.0.2.1"}
    assert ev["related"]["ip"] == ["10.0.0.1", "10.0.0.53", "192.0.2.1", "192.0.2.2"]
    assert "request" not in ev and "response" not in ev and "opt" not in d
    assert p.correlator.open == {}


def test_error_rcode_and_sections_options():
    soa = dns.rrset.from_text("example.com.", 60, "IN", "SOA", "ns.example.com. h.example.com. 1 2 3 4 5")
    glue = dns.rrset.from_text("ns.example.com.", 60, "IN", "A", "192.0.2.53")
    for include in (False, True):
        p, events = plugin({"include_authorities": include, "include_additionals": include,
                            "send_request": include, "send_response": include})
        q = query("nothing.example.com.")
        udp(p, q.to_wire(), T0)
        udp(p, answer(q, rcode=3, authority=[soa], additional=[glue]), T0 + MS, reverse=True)
        [ev] = events
        d = ev["dns"]
        assert ev["status"] == "Error" and d["response_code"] == "NXDOMAIN"
        assert d["authorities_count"] == 1 and d["additionals_count"] == 1 and d["answers_count"] == 0
        assert ("authorities" in d) == include and ("additionals" in d) == include
        assert ("request" in ev) == include and ("response" in ev) == include
        if include:
            assert d["authorities"][0]["rname"] == "h.example.com" and d["authorities"][0]["serial"] == 1
            assert d["additionals"][0]["data"] == "192.0.2.53"
            assert ev["request"] == "ID 7; QR query; OPCODE QUERY; FLAGS rd; RCODE NOERROR; " \
                                    "QUESTION class IN, type A, nothing.example.com"
            assert ev["response"].startswith("ID 7; QR response; OPCODE QUERY; FLAGS rd; RCODE NXDOMAIN; ")
            assert ev["response"].endswith("AUTHORITY rname h.example.com, ns.example.com; "
                                           "ADDITIONAL 192.0.2.53")


def test_edns_fields_and_notes():
    p, events = plugin()
    q = query(use_edns=0, want_dnssec=True, payload=1232)
    udp(p, q.to_wire(), T0)
    udp(p, answer(q, "A 192.0.2.1", edns=-1), T0 + MS, reverse=True)          # responder drops EDNS
    q2 = query(mid=8)
    udp(p, q2.to_wire(), T0)
    udp(p, answer(q2, "A 192.0.2.1", edns=0), T0 + MS, reverse=True)          # EDNS nobody asked for
    assert events[0]["error"]["message"] == "Responder does not support EDNS" and "opt" not in events[0]["dns"]
    assert events[1]["error"]["message"] == "Unexpected EDNS answer"
    assert events[1]["dns"]["opt"] == {"do": False, "version": "0", "udp_size": 1232, "ext_rcode": "NOERROR"}
    assert events[0]["status"] == events[1]["status"] == "OK"
    # oversize: EDNS query > 512 bytes, non-EDNS response > 512 bytes
    big = query("a" * 60 + "." + "b" * 60 + ".example.com.", "TXT", mid=9, use_edns=0,
                options=[dns.edns.GenericOption(65001, bytes(400))])
    udp(p, big.to_wire(), T0)
    r = dns.message.make_response(big)
    r.use_edns(False)
    r.answer.append(dns.rrset.from_text(big.question[0].name, 1, "IN", "TXT", '"%s"' % ("t" * 200),
                                        '"%s"' % ("u" * 200)))
    udp(p, r.to_wire(), T0 + MS, reverse=True)
    assert events[2]["error"]["message"] == ["Non-EDNS packet has size greater than 512",
                                             "Response: Non-EDNS packet has size greater than 512",
                                             "Responder does not support EDNS"]


def test_header_flags_with_do():
    p, events = plugin()
    q = query(use_edns=0, want_dnssec=True)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA | dns.flags.AD | dns.flags.RA
    r.use_edns(0, dns.flags.DO, 4096)
    udp(p, q.to_wire(), T0)
    udp(p, r.to_wire(), T0 + 1, reverse=True)
    d = events[0]["dns"]
    assert d["header_flags"] == ["AA", "RD", "RA", "AD", "DO"] and d["opt"]["do"] is True
    assert d["flags"]["authentic_data"] and d["opt"]["udp_size"] == 4096


def test_orphan_duplicate_expiry_and_flush():
    p, events = plugin({"transaction_timeout": "2s"})
    q = query(mid=1)
    udp(p, answer(q, "A 192.0.2.1"), T0, reverse=True)                      # response first: orphan
    orphan = events.pop()
    assert orphan["error"]["message"] == "Response: received without an associated Query"
    assert orphan["status"] == "Error" and orphan["dns"]["type"] == "answer"
    assert orphan["client"]["port"] == 40000 and orphan["server"]["port"] == 53
    assert "start" not in orphan["event"] and "duration" not in orphan["event"]
    assert orphan["destination"]["bytes"] > 0 and "bytes" not in orphan["source"]

    udp(p, q.to_wire(), T0 + 10 * MS)
    udp(p, q.to_wire(), T0 + 20 * MS)                                         # same ID again: duplicate
    dup = events.pop()
    assert dup["error"]["message"].startswith("Another query with the same DNS ID")
    assert dup["dns"]["type"] == "query" and dup["event"]["start"].endswith("40.010000000Z")
    udp(p, query(mid=2).to_wire(), T0 + 1500 * MS)
    p.expire(T0 + 20 * MS + 2000 * MS - 1)
    assert events == []                                                       # not yet 2 s old
    p.expire(T0 + 20 * MS + 2000 * MS)
    [late] = events
    assert late["dns"]["id"] == 1 and late["error"]["message"] == "No response to this query was received"
    assert late["status"] == "Error" and "end" not in late["event"]
    p.flush_all(T0 + 3000 * MS)
    assert [e["dns"]["id"] for e in events] == [1, 2] and p.correlator.open == {}
    assert p.correlator.unmatched_requests == 2 and p.correlator.unmatched_responses == 1


def test_garbage_datagram_raises_only_parse_error():
    from worker.plugin import ParseError
    p, events = plugin()
    for junk in (b"", b"\x00" * 5, b"\xff" * 40, query().to_wire()[:20]):
        with pytest.raises(ParseError):
            udp(p, junk, T0)
    assert events == [] and p.parse_errors == 4


def test_question_domain_parts():
    p, events = plugin()
    names = ["www.example.co.uk.", "example.com.", "a.b.github.io.", "co.uk.", "x.y.ck.", "www.ck.", "localhost.",
             "Host.EXAMPLE.COM.", "."]
    for i, name in enumerate(names):
        q = query(name, mid=i)
        udp(p, q.to_wire(), T0)
        udp(p, answer(q), T0 + 1, reverse=True)
    qs = [e["dns"]["question"] for e in events]
    strip = [{k: v for k, v in q.items() if k not in ("type", "class")} for q in qs]
    assert strip[0] == {"name": "www.example.co.uk", "etld_plus_one": "example.co.uk",
                        "registered_domain": "example.co.uk", "top_level_domain": "co.uk", "subdomain": "www"}
    assert strip[1] == {"name": "example.com", "etld_plus_one": "example.com", "registered_domain": "example.com",
                        "top_level_domain": "com"}
    assert strip[2]["registered_domain"] == "b.github.io" and strip[2]["subdomain"] == "a"
    assert strip[3] == {"name": "co.uk", "registered_domain": "co.uk", "top_level_domain": "uk"}
    assert strip[4]["registered_domain"] == "x.y.ck" and strip[4]["top_level_domain"] == "y.ck"
    assert strip[5]["registered_domain"] == "www.ck" and strip[5]["top_level_domain"] == "ck"
    assert strip[6] == {"name": "localhost"}
    # no case folding, as Go's publicsuffix: "COM" is no rule, the default rule "*" applies
    assert strip[7] == {"name": "Host.EXAMPLE.COM", "etld_plus_one": "EXAMPLE.COM", "registered_domain": "EXAMPLE.COM",
                        "top_level_domain": "COM", "subdomain": "Host"}
    assert strip[8] == {"name": ".", "registered_domain": "."}


def test_public_suffix_list_of_the_system():
    psl = PublicSuffixList.load()
    if not psl.source:
        pytest.skip("no system public suffix list (Debian/Ubuntu package publicsuffix)")
    assert psl.registered_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert psl.registered_domain("a.b.example.github.io") == "example.github.io"
    assert psl.registered_domain("co.uk") is None


# ------------------------------------------------------------------ TCP

def framed(*wires: bytes) -> bytes:
    return b"".join(struct.pack("!H", len(w)) + w for w in wires)


class Conn:
    def __init__(self, cfg=None):
        self.p, self.events = plugin(cfg)
        self.state = None

    def send(self, direction: int, data: bytes, ts: int):
        ipp = TCP_T.ip_port() if direction == 0 else TCP_T.ip_port().reverse()
        self.state = self.p.parse(Packet(ts, ipp, memoryview(data)), TCP_T, direction, self.state)
        return self


def test_tcp_several_messages_per_segment_and_across_segments():
    c = Conn()
    qs = [query("a.example.com.", mid=1), query("b.example.com.", mid=2), query("c.example.com.", mid=3)]
    c.send(0, framed(*(q.to_wire() for q in qs)), T0)
    resp = framed(*(answer(q, "A 192.0.2.%d" % q.id) for q in qs))
    c.send(1, resp[:5], T0 + 2 * MS).send(1, resp[5:60], T0 + 3 * MS).send(1, resp[60:], T0 + 4 * MS)
    assert [e["dns"]["id"] for e in c.events] == [1, 2, 3]
    first = c.events[0]
    assert first["network"]["transport"] == "tcp" and first["event"]["duration"] == 2 * MS
    assert first["source"]["bytes"] == len(qs[0].to_wire()) + 2
    assert first["destination"]["bytes"] == len(answer(qs[0], "A 192.0.2.1")) + 2
    assert c.events[2]["event"]["duration"] in (3 * MS, 4 * MS)
    assert all(e["status"] == "OK" and "error" not in e for e in c.events)
    assert c.state.pending == {}


def test_tcp_undecodable_response_notes_the_query():
    c = Conn()
    q = query(mid=4)
    c.send(0, framed(q.to_wire()), T0)
    c.send(1, framed(b"\x00\x04" + b"\xff" * 30), T0 + MS)
    [ev] = c.events
    assert ev["dns"]["id"] == 4 and ev["dns"]["type"] == "query"
    assert ev["error"]["message"] == "Response: Message's data could not be decoded as DNS"
    assert c.p.parse_errors == 1
    q2 = query(mid=5)                               # the connection goes on
    c.send(0, framed(q2.to_wire()), T0 + 2 * MS).send(1, framed(answer(q2, "A 192.0.2.9")), T0 + 3 * MS)
    assert c.events[-1]["dns"]["id"] == 5 and c.events[-1]["status"] == "OK"


def test_tcp_fin_gap_and_flush():
    c = Conn()
    q = query(mid=6)
    c.send(0, framed(q.to_wire()), T0)
    c.send(1, framed(answer(q, "A 192.0.2.1"))[:9], T0 + MS)        # cut short by the server's FIN
    c.state = c.p.received_fin(TCP_T, 1, c.state)
    [ev] = c.events
    assert ev["error"]["message"] == "Response: Message's data is incomplete"
    # a gap between messages keeps the stream; inside one it drops it
    c2 = Conn()
    q7, q8 = query(mid=7), query(mid=8)
    c2.send(0, framed(q7.to_wire()), T0)
    state, drop = c2.p.gap_in_stream(TCP_T, 0, 100, c2.state)
    assert state is c2.state and not drop
    c2.send(0, framed(q8.to_wire())[:6], T0 + 1)
    state, drop = c2.p.gap_in_stream(TCP_T, 0, 100, c2.state)
    assert state is None and drop
    assert c2.events == [] and len(c2.p.correlator.open) == 1       # q7 waits for its answer or expiry
    c2.p.flush_all(T0 + 10**10)
    assert [e["dns"]["id"] for e in c2.events] == [7]
    # the TCP layer forgets a connection: its open queries are published
    c3 = Conn()
    c3.send(0, framed(query(mid=9).to_wire(), query(mid=10).to_wire()), T0)
    c3.p.flush(TCP_T, c3.state, T0 + MS)
    assert sorted(e["dns"]["id"] for e in c3.events) == [9, 10]
    assert all(e["error"]["message"] == "No response to this query was received" for e in c3.events)
    c3.p.flush_all(T0 + 10**10)
    assert len(c3.events) == 2


# ------------------------------------------------------------------ engine and Packetbeat's captures

def _engine(cfg: dict) -> Engine:
    reg = Registry()
    reg.register("dns", DnsPlugin)
    return Engine([{"type": "dns", **cfg}], reg)


def test_engine_survives_garbage_and_truncation():
    from shared.decode import decode  # noqa: F401 - the engine decodes Ethernet frames
    eng = _engine({"ports": [53]})

    def frame(payload: bytes, sport=40000, dport=53) -> bytes:
        udp_h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp_h) + len(payload), 1, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 53]))
        return b"\x00" * 12 + b"\x08\x00" + ip + udp_h + payload

    q = query(mid=11).to_wire()
    recs = [[T0, 1, frame(b"\xde\xad" * 9)], [T0 + 1, 1, frame(q[:15])], [T0 + 2, 1, frame(q)],
            [T0 + 3, 1, frame(answer(query(mid=11), "A 192.0.2.1")[:-2], 53, 40000)]]
    eng.handle(recs)
    eng.finish()
    evs = eng.take_events()
    assert eng.counters["udp.parse_errors"] == 3 and not eng.counters["udp.plugin_errors"]
    assert [e["error"]["message"] for e in evs] == ["No response to this query was received"]


def _conformance_cases():
    if not (CONFORMANCE / "cases").is_dir():
        return []
    return sorted(p.stem for p in (CONFORMANCE / "cases").glob("dns__*.yml"))


@pytest.mark.parametrize("case", _conformance_cases() or ["absent"])
def test_packetbeat_dns_captures(case):
    if case == "absent":
        pytest.skip("../shared/conformance is absent: Packetbeat's DNS captures cannot be replayed")
    import yaml
    from coordinator.capture.pcapfile import open_capture
    spec = yaml.safe_load((CONFORMANCE / "cases" / (case + ".yml")).read_text())
    entry = next(e for e in spec["config"]["packetbeat.protocols"] if e["type"] == "dns")
    eng = _engine({k: v for k, v in entry.items() if k != "type"})
    reader = open_capture(str(CONFORMANCE / spec["pcap"]))
    try:
        eng.handle(list(reader))
    finally:
        reader.close()
    eng.finish()
    [ev] = eng.take_events()
    [want] = [json.loads(line) for line in (CONFORMANCE / spec["expected"]).read_text().splitlines() if line]
    d, wd = ev["dns"], want["dns"]
    assert ev["source"]["bytes"] == want["bytes_in"] and ev["destination"]["bytes"] == want["bytes_out"]
    assert ev["event"]["duration"] // MS == want["responsetime"] and ev["status"] == want["status"]
    assert ev["query"] + "." == want["query"] and d["id"] == wd["id"] and d["flags"] == wd["flags"]
    assert d["question"]["registered_domain"] + "." == wd["question"]["etld_plus_one"]
    for section in ("answers", "authorities", "additionals"):
        assert d["%s_count" % section] == wd["%s_count" % section]
        got = [{**a, "name": a["name"] + ".", **({"data": a["data"] + "."} if a["type"] in ("NS", "MX", "SOA")
                                                 else {})} for a in d.get(section, [])]
        if section == "authorities":
            got = [{**a, "rname": a["rname"] + "."} if "rname" in a else a for a in got]
        assert got == wd.get(section, []), section
    if "request" in want:
        assert ev["request"] == want["request"].replace("elastic.co.", "elastic.co")
        assert ev["response"] == want["response"].replace("elastic.co.", "elastic.co")
