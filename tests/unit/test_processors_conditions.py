"""Conditions (when / if) on real events from the project's captures."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError
from worker.processors.conditions import RE_ENGINE, compile_condition
from tests.unit.procutil import events


def cond(raw):
    return compile_condition(raw, "when")


def pick(raw, evs):
    c = cond(raw)
    return [ev for ev in evs if c(ev)]


@pytest.fixture(scope="module")
def http():
    return events("http_sample.pcap")


@pytest.fixture(scope="module")
def dns():
    return events("dns_real.pcap")


def test_equals_int_string_bool(http, dns):
    codes = [ev["http"]["response"]["status_code"] for ev in http]
    assert len(pick({"equals": {"http.response.status_code": 404}}, http)) == codes.count(404) > 0
    assert len(pick({"equals": {"method": "GET"}}, http)) == sum(ev["method"] == "GET" for ev in http)
    # the configuration loader expands dotted keys: nested field names are read back dotted
    assert pick({"equals": {"http": {"response": {"status_code": 404}}}}, http) == \
        pick({"equals": {"http.response.status_code": 404}}, http)
    assert len(pick({"equals": {"dns.flags.authoritative": True}}, dns)) == \
        sum(ev["dns"]["flags"]["authoritative"] is True for ev in dns)
    # a string never equals a number, a missing field never matches
    assert pick({"equals": {"http.response.status_code": "404"}}, http) == []
    assert pick({"equals": {"no.such.field": "x"}}, http) == []
    # several fields: all must match
    both = pick({"equals": {"method": "GET", "http.response.status_code": 200}}, http)
    assert both and all(ev["method"] == "GET" and ev["http"]["response"]["status_code"] == 200 for ev in both)


def test_equals_exact_types_as_libbeat(dns):
    # a list never equals a string (use contains), a float never equals an integer
    assert pick({"equals": {"event.type": "protocol"}}, dns) == []
    assert pick({"contains": {"event.type": "protocol"}}, dns) == dns
    assert not cond({"equals": {"x": 1}})({"x": 1.0})
    with pytest.raises(ConfigError, match=r"when\.equals\.x"):
        cond({"equals": {"x": 1.5}})


def test_several_conditions_in_one_mapping_take_libbeats_first(http, caplog):
    got = pick({"not": {"equals": {"method": "GET"}}, "equals": {"method": "GET"}}, http)
    assert got == [ev for ev in http if ev["method"] == "GET"]
    assert "only equals is used" in caplog.text


def test_contains(http, dns):
    assert pick({"contains": {"url.path": "/api/"}}, http) == [ev for ev in http if "/api/" in ev["url"]["path"]]
    assert pick({"contains": {"dns.header_flags": "AA"}}, dns) == [ev for ev in dns if "AA" in ev["dns"]["header_flags"]]
    with pytest.raises(ConfigError, match=r"when\.contains\.x"):
        cond({"contains": {"x": 1}})


def test_regexp_re2(http):
    assert RE_ENGINE == "re2"
    got = pick({"regexp": {"url.path": "^/api/v[0-9]+/"}}, http)
    assert got and all(ev["url"]["path"].startswith("/api/v") for ev in got)
    # unanchored, as Go's MatchString
    assert pick({"regexp": {"method": "E"}}, http) == [ev for ev in http if "E" in ev["method"]]
    # RE2 refuses back-references: a configuration error naming the key
    with pytest.raises(ConfigError, match=r"when\.regexp\.method"):
        cond({"regexp": {"method": r"(a)\1"}})


def test_range(http):
    got = pick({"range": {"http.response.status_code": {"gte": 400, "lt": 500}}}, http)
    assert got == [ev for ev in http if 400 <= ev["http"]["response"]["status_code"] < 500]
    assert pick({"range": {"event.duration.gt": 0}}, http) == [ev for ev in http if ev["event"]["duration"] > 0]
    with pytest.raises(ConfigError, match="range"):
        cond({"range": {"x.between": 3}})
    with pytest.raises(ConfigError):
        cond({"range": {"x.gt": "a"}})


def test_network_cidr_and_named(http, dns):
    assert pick({"network": {"source.ip": "10.1.0.0/24"}}, http) == \
        [ev for ev in http if ev["source"]["ip"].startswith("10.1.0.")]
    assert pick({"network": {"source.ip": "private"}}, http) == [ev for ev in http if ev["source"]["ip"].startswith("10.")]
    assert pick({"network": {"source.ip": "loopback"}}, dns) == [ev for ev in dns if ev["source"]["ip"] in ("127.0.0.1", "::1")]
    assert pick({"network": {"source.ip": "public"}}, dns) == []
    assert pick({"network": {"source.ip": ["192.168.0.0/16", "loopback"]}}, dns)
    # a list field (related.ip) matches when one element does
    assert pick({"network": {"related.ip": "10.10.0.0/16"}}, dns)


@pytest.mark.parametrize("ip,names", [
    ("127.0.0.1", {"loopback"}), ("::1", {"loopback"}),
    ("10.2.3.4", {"private", "global_unicast", "unicast"}), ("fd00::1", {"private", "global_unicast", "unicast"}),
    ("fc00::1", {"public", "global_unicast", "unicast"}), ("ff12::1", {"multicast", "link_local_multicast"}),
    ("8.8.8.8", {"public", "global_unicast", "unicast"}), ("2001:db8::1", {"public", "global_unicast", "unicast"}),
    ("224.0.0.251", {"multicast", "link_local_multicast"}), ("239.1.1.1", {"multicast", "public"}),
    ("ff02::fb", {"multicast", "link_local_multicast"}), ("ff01::1", {"multicast", "interface_local_multicast"}),
    ("169.254.1.1", {"link_local_unicast"}), ("fe80::1", {"link_local_unicast"}),
    ("0.0.0.0", {"unspecified"}), ("::", {"unspecified"}), ("255.255.255.255", set()),
    ("::ffff:10.0.0.1", {"private", "global_unicast", "unicast"}),
])
def test_named_networks(ip, names):
    from worker.processors.conditions import NAMED_NETWORKS
    got = {n for n in NAMED_NETWORKS if cond({"network": {"ip": n}})({"ip": ip})}
    assert got == names


def test_network_errors():
    with pytest.raises(ConfigError, match=r"when\.network\.source\.ip"):
        cond({"network": {"source.ip": "nowhere"}})
    assert not cond({"network": {"ip": "private"}})({"ip": "not an ip"})


def test_has_fields_or_and_not(http):
    with_body = pick({"has_fields": ["http.response.body.content"]}, http)
    assert with_body == [ev for ev in http if "content" in ev["http"]["response"].get("body", {})]
    assert pick({"has_fields": ["url.query", "no.such"]}, http) == []
    either = pick({"or": [{"equals": {"method": "DELETE"}}, {"equals": {"http.response.status_code": 404}}]}, http)
    assert either == [ev for ev in http if ev["method"] == "DELETE" or ev["http"]["response"]["status_code"] == 404]
    both = pick({"and": [{"equals": {"method": "GET"}}, {"range": {"http.response.status_code.gte": 300}}]}, http)
    assert both == [ev for ev in http if ev["method"] == "GET" and ev["http"]["response"]["status_code"] >= 300]
    assert pick({"not": {"equals": {"method": "GET"}}}, http) == [ev for ev in http if ev["method"] != "GET"]
    assert pick({"not": {"has_fields": ["no.such"]}}, http) == http


def test_condition_errors():
    for raw, where in (({"equal": {"a": 1}}, "when.equal"), ({"or": {"a": 1}}, "when.or"), ("x", "when"),
                       ({"equals": {"a": [1]}}, "when.equals.a"), ({"has_fields": [1]}, "when.has_fields"),
                       ({"and": [{"nope": {}}]}, r"when.and\[0\].nope")):
        with pytest.raises(ConfigError, match=where):
            cond(raw)
