"""community_id, registered_domain, add_network_direction, dns (reverse
lookups against a local DNS server) and detect_mime_type on real events."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from shared.confutil import ConfigError
from worker.processors import ProcessorError
from worker.processors.base import Context
from tests.unit.procutil import apply, chain, events


def run1(raw, ev, ctx=None):
    return chain(raw, ctx).run(ev)


def test_community_id_matches_packetbeat(http=None):
    for pcap in ("http_sample.pcap", "dns_real.pcap", "redis_real.pcap"):
        evs = events(pcap)
        want = [ev["network"]["community_id"] for ev in evs]
        for ev in evs:
            del ev["network"]["community_id"]
            ev["network"]["iana_number"] = {"tcp": 6, "udp": 17}[ev["network"]["transport"]]
        out = apply([{"community_id": {}}], evs)
        assert [ev["network"]["community_id"] for ev in out] == want
    # already set (Packetbeat's events carry it): left alone, as libbeat
    ev = events("dns_real.pcap")[0]
    want = ev["network"]["community_id"]
    run1([{"community_id": {"seed": 7}}], ev)
    assert ev["network"]["community_id"] == want
    # ports given as strings (Go's ParseUint), ICMP without type/code still hashed
    ev = {"source": {"ip": "10.0.0.1", "port": "1234"}, "destination": {"ip": "10.0.0.2", "port": "0x50"},
          "network": {"transport": "TCP"}}
    run1([{"community_id": {}}], ev)
    from worker.ecs import community_id as cid
    assert ev["network"]["community_id"] == cid(6, "10.0.0.1", 1234, "10.0.0.2", 80)
    ev = {"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}, "network": {"iana_number": 1}}
    run1([{"community_id": {}}], ev)
    assert ev["network"]["community_id"] == cid(1, "10.0.0.1", 0, "10.0.0.2", 0)
    # from the transport name, with a seed, into another target
    ev = events("dns_real.pcap")[0]
    run1([{"community_id": {"seed": 1, "target": "cid"}}], ev)
    assert ev["cid"].startswith("1:") and ev["cid"] != ev["network"]["community_id"]
    # missing fields: nothing added, no error
    ev = {"source": {"ip": "1.2.3.4"}}
    assert "network" not in run1([{"community_id": {}}], ev)
    with pytest.raises(ConfigError, match=r"community_id\.fields\.src"):
        chain([{"community_id": {"fields": {"src": "a"}}}])


def test_registered_domain_on_dns_questions():
    evs = events("dns_real.pcap")
    out = apply([{"registered_domain": {"field": "dns.question.name", "target_field": "rd",
                                        "target_etld_field": "etld", "target_subdomain_field": "sub",
                                        "ignore_failure": True}}], evs)
    checked = 0
    for ev in out:
        q = ev["dns"]["question"]
        if "registered_domain" in q:
            assert ev["rd"] == q["registered_domain"] and ev["etld"] == q["top_level_domain"]
            assert ev.get("sub") == q.get("subdomain")
            checked += 1
    assert checked > 5
    ev = {"d": "www.example.co.uk"}
    run1([{"registered_domain": {"field": "d", "target_field": "rd", "target_etld_field": "t",
                                 "target_subdomain_field": "s"}}], ev)
    assert (ev["rd"], ev["t"], ev["s"]) == ("example.co.uk", "co.uk", "www")
    with pytest.raises(ProcessorError):
        run1([{"registered_domain": {"field": "d", "target_field": "rd"}}], {"d": "co.uk"})
    with pytest.raises(ProcessorError):
        run1([{"registered_domain": {"field": "nope", "target_field": "rd"}}], {})
    run1([{"registered_domain": {"field": "nope", "target_field": "rd", "ignore_missing": True}}], {})


def test_add_network_direction():
    evs = events("http_sample.pcap")
    out = apply([{"add_network_direction": {"source": "source.ip", "destination": "destination.ip",
                                            "target": "network.direction", "internal_networks": ["private"]}}], evs)
    assert {ev["network"]["direction"] for ev in out} == {"internal"}
    cases = {("10.0.0.1", "8.8.8.8"): "outbound", ("8.8.8.8", "10.0.0.1"): "inbound",
             ("8.8.8.8", "1.1.1.1"): "external", ("10.0.0.1", "192.168.1.1"): "internal"}
    for (s, d), want in cases.items():
        ev = {"source": {"ip": s}, "destination": {"ip": d}}
        run1([{"add_network_direction": {"source": "source.ip", "destination": "destination.ip", "target": "dir",
                                         "internal_networks": ["10.0.0.0/8", "192.168.0.0/16"]}}], ev)
        assert ev["dir"] == want
    with pytest.raises(ConfigError, match="internal_networks"):
        chain([{"add_network_direction": {"source": "a", "destination": "b", "target": "c"}}])


class FakeDNS:
    """A local DNS server answering PTR queries (dnspython), or staying silent."""

    def __init__(self, names: dict, silent=False):
        import dns.message
        import dns.rrset
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = False

        def serve():
            self.sock.settimeout(0.2)
            while not self.stop:
                try:
                    data, peer = self.sock.recvfrom(4096)
                except OSError:
                    continue
                self.queries += 1
                if silent:
                    continue
                q = dns.message.from_wire(data)
                r = dns.message.make_response(q)
                qname = q.question[0].name.to_text()
                if qname in names:
                    r.answer.append(dns.rrset.from_text(qname, 300, "IN", "PTR", names[qname]))
                else:
                    r.set_rcode(3)
                self.sock.sendto(r.to_wire(), peer)
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_dns_reverse_lookup_cached():
    srv = FakeDNS({"1.0.0.127.in-addr.arpa.": "localhost.test."})
    try:
        c = chain([{"dns": {"type": "reverse", "fields": {"source.ip": "source.domain", "destination.ip": "destination.domain"},
                            "nameservers": ["127.0.0.1:%d" % srv.port], "tag_on_failure": ["_dns_fail"]}}])
        evs = events("dns_real.pcap")
        out = [c.run(ev) for ev in evs]
        v4 = [ev for ev in out if ev["source"]["ip"] == "127.0.0.1"]
        assert v4 and all(ev["source"]["domain"] == "localhost.test" for ev in v4)
        # 127.0.0.2 has no PTR: the failure tag, and one query for all its events (failure cache)
        other = [ev for ev in out if ev["destination"]["ip"] not in ("127.0.0.1",)]
        assert other and all("_dns_fail" in ev["tags"] for ev in other)
        assert srv.queries <= len({ev["source"]["ip"] for ev in evs} | {ev["destination"]["ip"] for ev in evs})
    finally:
        srv.close()


def test_dns_timeout_bounds_the_wait():
    srv = FakeDNS({}, silent=True)
    try:
        c = chain([{"dns": {"fields": {"source.ip": "source.domain"}, "timeout": "200ms",
                            "nameservers": ["127.0.0.1:%d" % srv.port], "tag_on_failure": "_dns_timeout"}}])
        ev = events("http_sample.pcap")[0]
        t = time.monotonic()
        c.run(ev)
        assert time.monotonic() - t < 1.0 and ev["tags"] == ["_dns_timeout"] and "domain" not in ev["source"]
        t = time.monotonic()
        c.run(events("http_sample.pcap")[1])              # cached failure: no new wait
        assert time.monotonic() - t < 0.05
    finally:
        srv.close()
    with pytest.raises(ConfigError, match=r"dns\.action"):
        chain([{"dns": {"fields": {"a": "b"}, "action": "merge"}}])


def test_detect_mime_type():
    evs = events("http_sample.pcap")
    out = apply([{"detect_mime_type": {"field": "http.response.body.content", "target": "mime"}}], evs)
    import json
    seen = set()
    for ev in out:
        body = ev["http"]["response"].get("body", {}).get("content")
        if body is None:
            assert "mime" not in ev
            continue
        try:
            json.loads(body)
            want = "application/json"
        except ValueError:
            want = "text/plain; charset=utf-8"      # the sample's bodies are words, whatever their header says
        assert ev["mime"] == want
        seen.add(want)
    assert seen
    out = apply([{"detect_mime_type": {"field": "http.request.body.content", "target": "mime"}}], events("http_sample.pcap"))
    posts = [ev for ev in out if ev["method"] in ("POST", "PUT")]
    assert posts and all(ev["mime"] == "application/json" for ev in posts)
    ev = {"b": "<!DOCTYPE html><html><body>x</body></html>"}
    run1([{"detect_mime_type": {"field": "b", "target": "m"}}], ev)
    assert ev["m"].startswith("text/html")
    ev = {"b": b"\x89PNG\r\n\x1a\n" + b"\0" * 32}
    run1([{"detect_mime_type": {"field": "b", "target": "m"}}], ev)
    assert ev["m"] == "image/png"
    ev = {"b": '{"user":"alice"}'}
    run1([{"detect_mime_type": {"field": "b", "target": "m"}}], ev)
    assert ev["m"] == "application/json"
    ev = {}
    run1([{"detect_mime_type": {"field": "b", "target": "m"}}], ev)
    assert ev == {}
