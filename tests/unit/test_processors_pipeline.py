"""The processors wired in the worker engine: order (per-protocol, beat
fields, global), counters, errors that never stop the worker, flows, the
configuration's checks, the wire flag and the publisher's pass-through."""
from __future__ import annotations

import json

import pytest

from coordinator.publisher.enrich import ENRICHED, Enricher
from coordinator.publisher.outputs import encode_event
from coordinator.config import validate_tree
from shared.config import ConfigError
from shared.wire import decode_batch, encode_events
from tests.unit.procutil import HTTP, events, run, settings


def test_no_processors_no_enrichment():
    evs, counters = run("http_sample.pcap", processors=[])
    assert evs and all("agent" not in ev for ev in evs)


def test_global_processors_run_after_the_beat_fields():
    procs = [{"add_fields": {"target": "", "fields": {"seen_agent": "x"}, "when": {"has_fields": ["agent.id"]}}},
             {"drop_event": {"when": {"equals": {"http.response.status_code": 404}}}},
             {"add_tags": {"tags": ["after"], "when": {"contains": {"tags": "global"}}}}]
    evs, counters = run("http_sample.pcap", processors=procs,
                        beat_settings=settings(procs, tags=["global"], fields={"team": "net"}))
    plain = events("http_sample.pcap")
    n404 = sum(ev["http"]["response"]["status_code"] == 404 for ev in plain)
    assert len(evs) == len(plain) - n404 and counters["processors.dropped"] == n404 > 0
    for ev in evs:
        assert ev["agent"]["id"] == "agent-id" and ev["agent"]["ephemeral_id"] == "eph-id"
        assert ev["agent"]["type"] == "packetbeat" and ev["host"]["name"] == "proc-test"
        assert ev["ecs"]["version"] and ev["seen_agent"] == "x"
        assert ev["tags"] == ["global", "after"] and ev["fields"] == {"team": "net"}


def test_per_protocol_processors_run_first():
    protocols = [dict(HTTP[0], tags=["proto"], processors=[
        {"add_tags": {"tags": ["local"]}},
        # the global tags are not there yet when the protocol's processors run (libbeat's order)
        {"add_fields": {"target": "", "fields": {"had_global": True}, "when": {"contains": {"tags": "global"}}}},
        {"drop_fields": {"fields": ["agent.ephemeral_id"]}}])]
    evs, counters = run("http_sample.pcap", protocols=protocols, beat_settings=settings(
        [{"add_tags": {"tags": ["late"]}}], tags=["global"]))
    assert evs and all(ev["tags"] == ["proto", "local", "global", "late"] for ev in evs)
    assert all("had_global" not in ev and "ephemeral_id" not in ev["agent"] for ev in evs)


def test_errors_are_counted_and_the_event_goes_on(caplog):
    procs = [{"rename": {"fields": [{"from": "no.such", "to": "x"}]}}, {"add_tags": {"tags": ["not reached"]}}]
    evs, counters = run("http_sample.pcap", processors=procs)
    assert len(evs) == len(events("http_sample.pcap")) == counters["processors.errors"]
    assert all("not reached" not in (ev.get("tags") or []) for ev in evs)
    assert all("no.such" in ev["error"]["message"] for ev in evs)
    logged = [r for r in caplog.records if "processor error" in r.getMessage()]
    assert len(logged) == 1 and "more errors" not in logged[0].getMessage()      # rate-limited


def test_a_processor_bug_never_stops_the_engine(monkeypatch):
    from worker.processors import basic

    def boom(self, ev):
        raise KeyError("bug")
    monkeypatch.setattr(basic.AddTags, "run", boom)
    evs, counters = run("dns_real.pcap", processors=[{"add_tags": {"tags": ["x"]}}])
    assert len(evs) == len(events("dns_real.pcap")) == counters["processors.failures"]


def test_flows_processors():
    flows = {"enabled": True, "timeout": 30.0, "period": -1, "tags": [], "fields": {}, "fields_under_root": False,
             "keep_null": False, "index": "", "processors": [{"add_tags": {"tags": ["flow"]}}]}
    evs, _ = run("dns_real.pcap", flows=flows, processors=[])
    fl = [ev for ev in evs if ev.get("type") == "flow"]
    dns = [ev for ev in evs if ev.get("type") == "dns"]
    assert fl and all(ev["tags"] == ["flow"] for ev in fl)
    assert dns and all("tags" not in ev and ev["agent"]["id"] == "agent-id" for ev in dns)


def test_wire_and_publisher_pass_enriched_events_through():
    evs, _ = run("http_sample.pcap", processors=[{"drop_fields": {"fields": ["agent.ephemeral_id", "host.name"]}}])
    header, body = decode_batch(encode_events("worker-0", 0, evs, enriched=True))
    assert header["enriched"] is True
    enr = Enricher("other", "other-host", "9", tags=["x"], agent_id="a", ephemeral_id="e")
    flags = enr.clean_positions(header, len(body))
    assert flags == [ENRICHED] * len(body)
    out = [json.loads(enr.enrich_line(line, f)) for line, f in zip(body, flags)]
    assert out == [json.loads(encode_event(ev)) for ev in evs]
    assert all("ephemeral_id" not in ev["agent"] and "name" not in ev["host"] for ev in out)
    assert enr.passed == len(body)
    # without the flag, the publisher enriches as before
    header, body = decode_batch(encode_events("worker-0", 1, events("http_sample.pcap")))
    line = enr.enrich_line(body[0], enr.clean_positions(header, len(body))[0])
    assert json.loads(line)["agent"]["name"] == "other"


def _tree(**kw):
    tree = {"output": {"console": {}}, "packetbeat": {"protocols": [{"type": "http", "ports": [80]}]}}
    tree.update(kw)
    return tree


def test_configuration():
    s = validate_tree(_tree(processors=[{"add_host_metadata": {"when.not.contains.tags": "forwarded"}},
                                        {"add_cloud_metadata": None}, {"add_docker_metadata": None}]))
    assert len(s.processors) == 3 and s.agent["id"] and s.agent["ephemeral_id"]
    assert validate_tree(_tree()).agent == {}
    with pytest.raises(ConfigError, match=r"processors\[1\]\.script: processor script is not available"):
        validate_tree(_tree(processors=[{"drop_event": {"when.equals.a": 1}}, {"script": {"source": "x"}}]))
    with pytest.raises(ConfigError, match=r"processors\[0\]\.drop_fields\.feilds: unknown option"):
        validate_tree(_tree(processors=[{"drop_fields": {"fields": ["a"], "feilds": 1}}]))
    with pytest.raises(ConfigError, match=r"packetbeat\.protocols\[0\]\.processors\[0\]\.nope: unknown processor"):
        validate_tree(_tree(packetbeat={"protocols": [{"type": "http", "ports": [80], "processors": [{"nope": {}}]}]}))
    with pytest.raises(ConfigError, match=r"packetbeat\.flows\.processors\[0\]\.add_tags\.tags"):
        validate_tree(_tree(packetbeat={"flows": {"processors": [{"add_tags": {}}]},
                                        "protocols": [{"type": "http", "ports": [80]}]}))
    with pytest.raises(ConfigError, match=r"processors\[0\]\.if\.equals\.a"):
        validate_tree(_tree(processors=[{"if": {"equals": {"a": [1]}}, "then": [{"drop_event": {}}]}]))
    with pytest.raises(ConfigError, match=r"^processors: expected a list"):
        validate_tree(_tree(processors={"drop_event": {}}))


def test_spooled_ids_ignore_the_runs_ephemeral_id(tmp_path):
    """queue.disk: an enriched event's _id does not depend on the run's ephemeral id,
    so running the same capture again gives the same ids (as without processors)."""
    import collections

    import msgpack

    from coordinator.publisher.reliable import SpooledPublisher
    from coordinator.publisher.spool import Spool
    ids = []
    for run_no, eph in enumerate(("eph-run-1", "eph-run-2")):
        evs, _ = run("dns_real.pcap", beat_settings=settings([{"add_tags": {"tags": ["x"]}}]))
        for ev in evs:
            ev["agent"]["ephemeral_id"] = eph
        header, body = decode_batch(encode_events("worker-0", 0, evs, enriched=True))
        spool = Spool(str(tmp_path / ("spool%d" % run_no)), max_size=1 << 22, segment_size=1 << 20, fsync="never")
        pub = SpooledPublisher(spool, None, Enricher("n", "h", "9", agent_id="a", ephemeral_id=eph), 1,
                               collections.Counter())
        pub.accept(header, body)
        records = spool.read(10)
        assert len(records) == 1
        kind, worker, seq, items, _run = msgpack.unpackb(records[0][1], raw=False)
        assert len(items) == len(evs)
        assert all(eph.encode() in item[2] for item in items)     # the line is the worker's, enriched
        ids.append([item[1] for item in items])
        spool.close()
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])


def test_elasticsearch_uses_metadata_id_and_leaves_metadata_out():
    """add_id / document_id set @metadata._id: the Elasticsearch output makes it the
    document id and does not index @metadata (libbeat's behaviour)."""
    from coordinator.publisher.elasticsearch import ElasticsearchConfig, ElasticsearchOutput
    from shared.confutil import build
    from tests.esserver import EsServer
    evs, _ = run("dns_real.pcap", processors=[{"add_id": {}},
                                              {"add_fields": {"target": "@metadata", "fields": {"note": "x"}}}])
    evs = evs[:5]
    with EsServer() as es:
        out = ElasticsearchOutput(build(ElasticsearchConfig, {"hosts": [es.url], "index": "pb-test"},
                                        "output.elasticsearch"))
        items = [("pb-test", "fallback-%d" % i, encode_event(ev)) for i, ev in enumerate(evs)]
        assert all(r.ok for r in out.publish_encoded(items))
        docs = es.docs("pb-test")
        out.close()
    assert {k[1] for k in docs} == {ev["@metadata"]["_id"] for ev in evs}
    assert all("@metadata" not in d and d["type"] == "dns" for d in docs.values())


def test_processors_never_change_the_configured_fields():
    """A processor changing a per-protocol custom field in place affects that event only."""
    protocols = [dict(HTTP[0], fields={"site": {"rack": 1}}, processors=[
        {"add_fields": {"fields": {"site": {"row": 2}}}},
        {"append": {"target_field": "fields.site.seen", "values": ["x"]}}])]
    evs, _ = run("http_sample.pcap", protocols=protocols, processors=[])
    assert len(evs) > 2 and all(ev["fields"]["site"] == {"rack": 1, "row": 2, "seen": ["x"]} for ev in evs)
