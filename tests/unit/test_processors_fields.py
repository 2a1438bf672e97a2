"""Field processors on real events (tests/golden/pcaps): drop/include/add/
rename/copy/move/truncate/convert/replace/append/extract_array/decoders/
add_id/fingerprint/rate_limit/add_locale, with the documented edge cases."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re

import pytest

from shared.confutil import ConfigError
from worker.processors import ProcessorError
from worker.processors.base import Context
from tests.unit.procutil import apply, chain, events


@pytest.fixture
def http():
    return events("http_sample.pcap")


@pytest.fixture
def dns():
    return events("dns_real.pcap")


def run1(raw, ev, ctx=None):
    return chain(raw, ctx).run(ev)


def test_drop_event_with_when(http):
    out = apply([{"drop_event": {"when": {"equals": {"http.response.status_code": 404}}}}], http)
    assert [ev is None for ev in out] == [ev["http"]["response"]["status_code"] == 404 for ev in events()]
    assert any(ev is None for ev in out)


def test_drop_fields(http):
    ev = run1([{"drop_fields": {"fields": ["client", "http.request.headers", "related"]}}], http[0])
    assert "client" not in ev and "headers" not in ev["http"]["request"] and "related" not in ev
    assert ev["http"]["request"]["method"] == "GET"
    # a missing field is an error (reported; the event keeps what was dropped) unless ignore_missing
    ev = events()[0]
    with pytest.raises(ProcessorError, match="no.such") as e:
        run1([{"drop_fields": {"fields": ["no.such", "client"]}}], ev)
    assert "client" not in e.value.event
    ev = run1([{"drop_fields": {"fields": ["no.such", "client"], "ignore_missing": True}}], events()[0])
    assert "client" not in ev
    # regular expressions between slashes, against the dotted names
    ev = run1([{"drop_fields": {"fields": ["/^(client|server)\\./"]}}], events()[0])
    assert not ev["client"] and not ev["server"] and ev["source"]     # leaves dropped, as libbeat
    with pytest.raises(ConfigError, match=r"processors\[0\]\.drop_fields\.fields"):
        chain([{"drop_fields": {"fields": ["@timestamp"]}}])


def test_include_fields(http):
    ev = run1([{"include_fields": {"fields": ["http.response.status_code", "source", "no.such"]}}], http[0])
    assert set(ev) == {"@timestamp", "type", "http", "source"}
    assert ev["http"] == {"response": {"status_code": 200}}


def test_add_fields_targets(http):
    ev = run1([{"add_fields": {"fields": {"team": "net", "site.rack": 7}}}], http[0])
    assert ev["fields"] == {"team": "net", "site": {"rack": 7}}
    ev = run1([{"add_fields": {"target": "project", "fields": {"name": "x"}}}], http[1])
    assert ev["project"] == {"name": "x"}
    # target "" = root, overwriting
    ev = run1([{"add_fields": {"target": "", "fields": {"method": "OVERRIDE", "extra": {"a": 1}}}}], http[2])
    assert ev["method"] == "OVERRIDE" and ev["extra"] == {"a": 1}
    with pytest.raises(ConfigError, match=r"add_fields\.fields"):
        chain([{"add_fields": {"target": "x"}}])


def test_add_tags_and_labels(http):
    ev = run1([{"add_tags": {"tags": ["a", "b"]}}, {"add_tags": {"tags": "b"}},
               {"add_tags": {"tags": ["c"], "target": "meta.tags"}}], http[0])
    assert ev["tags"] == ["a", "b"] and ev["meta"]["tags"] == ["c"]
    ev = run1([{"add_labels": {"labels": {"env": "prod", "dc": {"rack": 4}}}}], http[1])
    assert ev["labels"] == {"env": "prod", "dc.rack": 4}


def test_rename(http):
    ev = run1([{"rename": {"fields": [{"from": "url.full", "to": "url.original"}]}}], http[0])
    assert "full" not in ev["url"] and ev["url"]["original"].startswith("http://10.1.0.81")
    # target exists: fail_on_error (default) restores the event and reports
    ev = events()[0]
    before = json.dumps(ev, sort_keys=True)
    with pytest.raises(ProcessorError) as e:
        run1([{"rename": {"fields": [{"from": "client", "to": "c2"}, {"from": "source", "to": "destination"}]}}], ev)
    out = e.value.event
    assert "c2" not in out and "client" in out and "already exists" in out["error"]["message"]
    del out["error"]
    assert json.dumps(out, sort_keys=True) == before
    # fail_on_error false keeps the partial result, no error
    ev = run1([{"rename": {"fail_on_error": False, "fields": [{"from": "client", "to": "c2"},
                                                              {"from": "source", "to": "destination"}]}}], events()[0])
    assert "c2" in ev and "error" not in ev
    # ignore_missing
    with pytest.raises(ProcessorError):
        run1([{"rename": {"fields": [{"from": "nope", "to": "x"}]}}], events()[0])
    ev = run1([{"rename": {"ignore_missing": True, "fields": [{"from": "nope", "to": "x"}]}}], events()[0])
    assert "x" not in ev
    with pytest.raises(ConfigError, match=r"rename\.fields\[0\]"):
        chain([{"rename": {"fields": [{"from": "a"}]}}])


def test_copy_and_move(http):
    ev = run1([{"copy_fields": {"fields": [{"from": "source.ip", "to": "observer.peer"}]}}], http[0])
    assert ev["observer"]["peer"] == ev["source"]["ip"]
    ev = run1([{"copy_fields": {"fields": [{"from": "source", "to": "src_copy"}]}}], http[1])
    ev["src_copy"]["ip"] = "changed"
    assert ev["source"]["ip"] != "changed"          # a deep copy
    with pytest.raises(ProcessorError):
        run1([{"copy_fields": {"fields": [{"from": "source", "to": "client"}]}}], http[2])
    ev = run1([{"move_fields": {"from": "http.response", "fields": ["status_code", "bytes"], "to": "resp_"}}], http[3])
    assert ev["resp_status_code"] == 200 and "status_code" not in ev["http"]["response"]
    ev = run1([{"move_fields": {"from": "client", "to": "moved."}}], http[4])
    assert ev["client"] == {} and set(ev["moved"]) == {"ip", "port", "bytes"}
    ev = run1([{"move_fields": {"from": "client", "exclude": ["bytes"], "to": "m."}}], http[5])
    assert ev["client"] == {"bytes": ev["client"]["bytes"]} and "bytes" not in ev["m"]


def test_truncate_fields(http):
    ev = run1([{"truncate_fields": {"fields": ["http.response.body.content"], "max_characters": 10}}], http[0])
    assert len(ev["http"]["response"]["body"]["content"]) == 10 and ev["log"]["flags"] == ["truncated"]
    ev = {"message": "héllo wörld"}
    run1([{"truncate_fields": {"fields": ["message"], "max_bytes": 2}}], ev)
    assert ev["message"] == "h"                      # "é" is two bytes: never cut in half
    ev = run1([{"truncate_fields": {"fields": ["method"], "max_bytes": 100}}], http[1])
    assert "log" not in ev                            # nothing truncated: no flag
    with pytest.raises(ProcessorError, match="cannot be truncated"):
        run1([{"truncate_fields": {"fields": ["http.response.status_code"], "max_bytes": 1}}], http[2])
    with pytest.raises(ProcessorError):
        run1([{"truncate_fields": {"fields": ["missing"], "max_bytes": 1}}], http[3])
    run1([{"truncate_fields": {"fields": ["missing"], "max_bytes": 1, "ignore_missing": True}}], http[3])
    with pytest.raises(ConfigError, match="exactly one"):
        chain([{"truncate_fields": {"fields": ["a"], "max_bytes": 1, "max_characters": 1}}])


def test_convert(http, dns):
    with pytest.raises(ProcessorError, match="missing"):       # dns events have no http
        run1([{"convert": {"fields": [{"from": "http.response.status_code", "type": "string"}]}}], dns[0])
    ev = run1([{"convert": {"ignore_missing": True, "fields": [
        {"from": "http.response.status_code", "to": "code_str", "type": "string"},
        {"from": "source.port", "to": "port_f", "type": "float"},
        {"from": "source.ip", "to": "src", "type": "ip"}]}}], http[0])
    assert ev["code_str"] == "200" and ev["port_f"] == float(ev["source"]["port"]) and ev["src"] == ev["source"]["ip"]
    # answers' ttl is a string in Packetbeat's DNS events: convert it to a long in place
    ev = run1([{"convert": {"fields": [{"from": "dns.answers", "type": "string"}]}}], dns[1])
    ev = {"a": "0x1F", "b": "true", "c": "12.5", "d": "2147483648", "e": "T"}
    run1([{"convert": {"fields": [{"from": "a", "type": "integer"}, {"from": "b", "type": "boolean"},
                                  {"from": "c", "type": "double"}, {"from": "d", "type": "long"},
                                  {"from": "e", "type": "boolean"}]}}], ev)
    assert ev == {"a": 31, "b": True, "c": 12.5, "d": 2147483648, "e": True}
    ev = {"d": "2147483648"}
    with pytest.raises(ProcessorError, match="out of range"):
        run1([{"convert": {"fields": [{"from": "d", "type": "integer"}]}}], ev)
    # fail_on_error false: the bad field is left, tag added, the others converted
    ev = {"x": "abc", "y": "5"}
    run1([{"convert": {"fail_on_error": False, "tag": "convert_failed",
                       "fields": [{"from": "x", "type": "integer"}, {"from": "y", "type": "integer"}]}}], ev)
    assert ev == {"x": "abc", "y": 5, "tags": ["convert_failed"]}
    ev = {"x": "1.2.3.4"}
    run1([{"convert": {"mode": "rename", "fields": [{"from": "x", "to": "y", "type": "ip"}]}}], ev)
    assert ev == {"y": "1.2.3.4"}
    with pytest.raises(ConfigError, match=r"convert\.fields\[0\]\.type"):
        chain([{"convert": {"fields": [{"from": "x", "type": "int"}]}}])


def test_replace_go_templates(http):
    ev = run1([{"replace": {"fields": [{"field": "url.path", "pattern": "/v(\\d+)/", "replacement": "/version-$1/"}]}}],
              http[0])
    assert ev["url"]["path"].startswith("/api/version-1/")
    ev = run1([{"replace": {"fields": [{"field": "url.path", "pattern": "(?P<first>api)", "replacement": "${first}X$$"}]}}],
              http[1])
    assert ev["url"]["path"].startswith("/apiX$/")
    ev = run1([{"replace": {"fields": [{"field": "user_agent.original", "pattern": "\\d", "replacement": ""}]}}], http[2])
    assert not re.search(r"\d", ev["user_agent"]["original"])
    with pytest.raises(ProcessorError):
        run1([{"replace": {"fields": [{"field": "nope", "pattern": "a", "replacement": "b"}]}}], http[3])
    run1([{"replace": {"ignore_missing": True, "fields": [{"field": "nope", "pattern": "a", "replacement": "b"}]}}], http[3])


def test_append_and_extract_array(dns):
    ev = run1([{"append": {"target_field": "related.hosts", "fields": ["dns.question.name"], "values": ["extra", ""],
                           "ignore_empty_values": True}}], dns[0])
    assert ev["related"]["hosts"] == [dns[0]["dns"]["question"]["name"], "extra"]
    ev = run1([{"append": {"target_field": "related.ip", "fields": ["source.ip"], "allow_duplicate": False}}], dns[1])
    assert len(ev["related"]["ip"]) == len(set(ev["related"]["ip"]))
    ev = run1([{"extract_array": {"field": "related.ip", "mappings": {"first.ip": 0, "second.ip": 1, "third.ip": 5}}}],
              dns[2])
    assert ev["first"]["ip"] == ev["related"]["ip"][0] and "third" not in ev
    with pytest.raises(ProcessorError):
        run1([{"extract_array": {"field": "source.ip", "mappings": {"x": 0}}}], dns[3])
    with pytest.raises(ProcessorError, match="already"):
        run1([{"extract_array": {"field": "related.ip", "mappings": {"source.ip": 0}}}], dns[4])
    run1([{"extract_array": {"field": "related.ip", "overwrite_keys": True, "mappings": {"source.ip": 1}}}], dns[5])


def test_urldecode_base64_gzip(http):
    ev = run1([{"urldecode": {"fields": [{"from": "url.query", "to": "url.query_decoded"}]}}], http[10])
    assert ev["url"]["query_decoded"] == "q=packet capture"
    ev = {"u": "%zz"}
    with pytest.raises(ProcessorError):
        run1([{"urldecode": {"fields": [{"from": "u", "to": ""}]}}], ev)
    auth = http[1]["request"].split("Authorization: Bearer ")[1].split("\r\n")[0]
    ev = {"tok": auth.split(".")[1]}
    run1([{"decode_base64_field": {"field": {"from": "tok", "to": "decoded"}}}], ev)
    assert ev["decoded"] == "sample"
    body = http[1]["http"]["request"]["body"]["content"]
    ev = {"gz": gzip.compress(body.encode()).decode("latin-1")}
    run1([{"decompress_gzip_field": {"field": {"from": "gz", "to": "plain"}}}], ev)
    assert ev["plain"] == body
    ev = {"gz": "not gzip"}
    with pytest.raises(ProcessorError):
        run1([{"decompress_gzip_field": {"field": {"from": "gz", "to": "plain"}}}], ev)
    run1([{"decompress_gzip_field": {"fail_on_error": False, "field": {"from": "gz", "to": "plain"}}}], ev)
    assert "plain" not in ev and "error" in ev


def test_decode_json_fields(http):
    ev = run1([{"decode_json_fields": {"fields": ["http.request.body.content"], "target": "login"}}], http[1])
    assert ev["login"] == {"user": "alice", "password": "s3cret"}
    ev = run1([{"decode_json_fields": {"fields": ["http.request.body.content"], "target": ""}}], http[2])
    assert ev["user"] == "alice"
    ev = run1([{"decode_json_fields": {"fields": ["http.request.body.content"]}}], http[7])
    assert ev["http"]["request"]["body"]["content"] == {"user": "alice", "password": "s3cret"}
    ev = {"m": json.dumps({"inner": json.dumps({"x": 1})})}
    run1([{"decode_json_fields": {"fields": ["m"], "max_depth": 2}}], ev)
    assert ev["m"] == {"inner": {"x": 1}}
    ev = {"m": json.dumps({"inner": json.dumps({"x": 1})})}
    run1([{"decode_json_fields": {"fields": ["m"]}}], ev)
    assert ev["m"] == {"inner": '{"x": 1}'}
    ev = {"m": "{broken"}
    run1([{"decode_json_fields": {"fields": ["m"], "add_error_key": True}}], ev)
    assert ev["error"]["type"] == "json" and ev["m"] == "{broken"
    ev = {"m": ' {"a.b": 1} trailing'}              # Go's decoder reads the first value only
    run1([{"decode_json_fields": {"fields": ["m"], "expand_keys": True, "target": "t"}}], ev)
    assert ev["t"] == {"a": {"b": 1}}
    with pytest.raises(ProcessorError, match="not a JSON object"):
        run1([{"decode_json_fields": {"fields": ["m"], "target": ""}}], {"m": "[1, 2]"})
    for deep in ("[" * 100000 + "]" * 100000, '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(ProcessorError, match="deeply nested"):
            run1([{"decode_json_fields": {"fields": ["m"], "target": "t", "expand_keys": True}}], {"m": deep})
    ev = {"m": json.dumps({"id": "doc-1", "v": 2})}
    run1([{"decode_json_fields": {"fields": ["m"], "document_id": "id", "target": "d"}}], ev)
    assert ev["@metadata"]["_id"] == "doc-1" and ev["d"] == {"v": 2}


def test_decode_duration():
    for text, fmt, want in (("1h2m3.5s", "seconds", 3723.5), ("150ms", "milliseconds", 150), ("90m", "hours", 1.5),
                            ("-1.5s", "milliseconds", -1500), ("2h", "minutes", 120)):
        ev = {"d": text}
        run1([{"decode_duration": {"field": "d", "format": fmt}}], ev)
        assert ev["d"] == pytest.approx(want)
    with pytest.raises(ProcessorError):
        run1([{"decode_duration": {"field": "d"}}], {"d": "soon"})


def test_add_id(http):
    out = apply([{"add_id": {}}], http)
    ids = [ev["@metadata"]["_id"] for ev in out]
    assert len(set(ids)) == len(ids) and all(len(i) == 20 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
    ev = run1([{"add_id": {"target_field": "event.id"}}], events()[0])
    assert len(ev["event"]["id"]) == 20


def test_fingerprint(http):
    ev = run1([{"fingerprint": {"fields": ["source.ip", "method"]}}], http[0])
    want = hashlib.sha256(("|method|%s|source.ip|%s|" % (ev["method"], ev["source"]["ip"])).encode()).hexdigest()
    assert ev["fingerprint"] == want
    ev = run1([{"fingerprint": {"fields": ["method"], "method": "md5", "encoding": "base64", "target_field": "fp"}}],
              http[1])
    assert ev["fp"] == base64.b64encode(hashlib.md5(b"|method|POST|").digest()).decode()
    with pytest.raises(ProcessorError, match="nope"):
        run1([{"fingerprint": {"fields": ["nope"]}}], http[2])
    ev = run1([{"fingerprint": {"fields": ["nope", "method"], "ignore_missing": True}}], http[2])
    assert ev["fingerprint"] == hashlib.sha256(b"|method|POST|").hexdigest()
    with pytest.raises(ConfigError, match="method"):
        chain([{"fingerprint": {"fields": ["a"], "method": "crc"}}])


def test_rate_limit(http):
    now = [1000.0]
    ctx = Context(clock=lambda: now[0], start=False)
    c = chain([{"rate_limit": {"limit": "2/m", "fields": ["method"]}}], ctx)
    gets = [ev for ev in http if ev["method"] == "GET"]
    posts = [ev for ev in http if ev["method"] == "POST"]
    assert [c.run(ev) is not None for ev in gets[:4]] == [True, True, False, False]
    assert c.run(posts[0]) is not None                 # another key: its own bucket
    now[0] += 30                                       # one token back after 30 s at 2/m
    assert [c.run(ev) is not None for ev in gets[4:6]] == [True, False]
    with pytest.raises(ConfigError, match="limit"):
        chain([{"rate_limit": {"limit": "10 per second"}}])
    c = chain([{"rate_limit": {"limit": "1/s", "algorithm.token_bucket.burst_multiplier": 3}}], ctx)
    assert [c.run(ev) is not None for ev in gets[:4]] == [True, True, True, False]


def test_add_locale(http):
    ev = run1([{"add_locale": {}}], http[0])
    assert re.fullmatch(r"[+-]\d\d:\d\d", ev["event"]["timezone"])
    ev = run1([{"add_locale": {"format": "abbreviation"}}], http[1])
    assert ev["event"]["timezone"]


def test_unknown_options_and_processors():
    with pytest.raises(ConfigError, match=r"processors\[0\]\.add_tags\.tag: unknown option"):
        chain([{"add_tags": {"tags": ["x"], "tag": ["x"]}}])
    with pytest.raises(ConfigError, match=r"processors\[1\]\.add_fieldz: unknown processor"):
        chain([{"drop_event": {}}, {"add_fieldz": {}}])
    with pytest.raises(ConfigError, match="one processor per list entry"):
        chain([{"drop_event": {}, "add_tags": {"tags": ["a"]}}])
    for name in ("script", "add_kubernetes_metadata", "add_nomad_metadata", "add_cloudfoundry_metadata",
                 "decode_xml_wineventlog", "translate_sid"):
        with pytest.raises(ConfigError, match=r"processors\[0\]\.%s: processor %s is not available" % (name, name)):
            chain([{name: {}}])
