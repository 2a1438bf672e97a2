"""output.elasticsearch against the test server: ids, create, per-item retries, errors, config."""
from __future__ import annotations

import pytest

from coordinator.publisher.elasticsearch import (ElasticsearchConfig, ElasticsearchOutput, IndexFormat,
                                                 event_id)
from coordinator.publisher.outputs import encode_event, make_output
from coordinator.config import load_config
from shared.confutil import ConfigError, build
from tests.esserver import EsServer


def events(n, start=0):
    return [{"@timestamp": "2026-11-26T10:%02d:00.000Z" % (i % 60), "type": "http", "status": "OK",
             "agent": {"version": "8.15.0", "ephemeral_id": "eph-1"}, "n": i,
             "source": {"ip": "10.0.0.1", "port": 1000 + i}} for i in range(start, start + n)]


@pytest.fixture
def es():
    with EsServer() as server:
        yield server


def output(es, **opts):
    # dated indices (the 7.x form): the default is the data stream, tested at the end
    raw = {"hosts": [es.url], "backoff": {"init": "10ms", "max": "40ms"},
           "index": "packetbeat-%{[agent.version]}-%{+yyyy.MM.dd}"}
    raw.update(opts)
    slept = []
    out = ElasticsearchOutput(build(ElasticsearchConfig, raw, "output.elasticsearch"), sleep=slept.append)
    out.slept = slept
    return out


def ids_for(evs, origin="w0:0"):
    return [event_id("%s:%d" % (origin, i), encode_event(e), "eph-1") for i, e in enumerate(evs)]


def test_index_format_expands_fields_and_date():
    f = IndexFormat("packetbeat-%{[agent.version]}-%{+yyyy.MM.dd}")
    assert f(events(1)[0]) == "packetbeat-8.15.0-2026.11.26"
    assert IndexFormat("x-%{+yyyy.MM.dd.HH}")({"@timestamp": "2026-01-02T03:04:05Z"}) == "x-2026.01.02.03"
    with pytest.raises(KeyError):
        f({"@timestamp": "2026-11-26T10:00:00Z"})
    with pytest.raises(ValueError):
        IndexFormat("a-%{oops")


def test_event_id_ignores_ephemeral_id_but_not_origin():
    a = encode_event({"agent": {"ephemeral_id": "AAA"}, "n": 1})
    b = encode_event({"agent": {"ephemeral_id": "BBB"}, "n": 1})
    assert event_id("w0:1:0", a, "AAA") == event_id("w0:1:0", b, "BBB")
    assert event_id("w0:1:0", a, "AAA") != event_id("w0:1:1", a, "AAA")


def test_publish_creates_documents_with_given_ids(es):
    out = output(es)
    evs = events(30)
    ids = ids_for(evs)
    res = out.publish_batch(evs, ids=ids)
    assert all(r.ok for r in res)
    docs = es.docs("packetbeat-*")
    assert sorted(k for _, k in docs) == sorted(ids)
    assert docs[("packetbeat-8.15.0-2026.11.26", ids[3])]["n"] == 3
    # the same batch again (a retry after a crash): 409 = already there, no duplicate
    res = out.publish_batch(evs, ids=ids)
    assert all(r.ok for r in res) and out.conflicts == 30
    assert es.count() == 30
    out.close()


def test_429_items_retried_and_successes_never_resent(es):
    es.faults.reject_429 = 0.3
    out = output(es, max_retries=50)
    evs = events(200)
    res = out.publish_batch(evs, ids=ids_for(evs))
    assert all(r.ok for r in res)
    assert es.count() == 200 and out.conflicts == 0      # nothing was sent twice after success
    assert es.store.bulk_items == 200 + out.retried
    assert out.slept[:3] == [0.01, 0.02, 0.04] and max(out.slept) == 0.04


def test_retry_budget_exhausted_marks_items_retryable(es):
    es.faults.reject_429 = 1.0
    out = output(es, max_retries=2)
    res = out.publish_batch(events(5), ids=ids_for(events(5)))
    assert all(not r.ok and r.retry and "429" in r.error for r in res)
    assert out.stats.errors == 0 and es.store.bulk_items == 15


def test_500_and_dropped_connection_are_unreachable_and_sent_again(es):
    """A whole request answered 500, or an answer lost, is not retried inside the
    output (no max_retries budget): every item comes back unreachable for the
    queue to send again (memory queue: until it goes through)."""
    es.faults.fail_500 = 2
    out = output(es)
    evs = events(10)
    ids = ids_for(evs)
    for _ in range(2):
        res = out.publish_batch(evs, ids=ids)
        assert all(r.unreachable and r.retry and not r.ok for r in res)
        assert "answered 500" in res[0].error and es.url.split("//")[1] in res[0].error
    assert all(r.ok for r in out.publish_batch(evs, ids=ids))
    es.faults.drop_bulk = 1            # applied, answer lost: the retry meets 409s
    evs2 = events(10, start=10)
    res = out.publish_batch(evs2, ids=ids_for(evs2, "w1:0"))
    assert all(r.unreachable for r in res)
    assert all(r.ok for r in out.publish_batch(evs2, ids=ids_for(evs2, "w1:0")))
    assert es.count() == 20 and out.conflicts == 10


def test_refused_connection_is_retryable(es):
    out = output(es, max_retries=1)
    es.stop()
    res = out.publish_batch(events(3), ids=ids_for(events(3)))
    assert all(r.retry and r.unreachable and not r.ok for r in res)
    host = es.url.split("//")[1]
    assert res[0].error == "Elasticsearch at %s: connection refused (is Elasticsearch running and " \
        "listening there?)" % es.url and out.slept == [], host      # no backoff inside: the queue's
    es.start()
    res = out.publish_batch(events(3), ids=ids_for(events(3)))
    assert all(r.ok for r in res) and es.count() == 3


def test_mapping_error_counted_not_retried(es, caplog):
    out = output(es)
    evs = events(3)
    evs[1]["n"] = {"nested": True}      # n is a long in the other documents
    res = out.publish_batch(evs, ids=ids_for(evs))
    assert [r.ok for r in res] == [True, False, True]
    assert not res[1].retry and "mapper_parsing_exception" in res[1].error
    assert out.stats.errors == 1 and out.retried == 0
    assert "source.port=1001" in caplog.text


def test_event_without_index_field_fails_alone(es):
    out = output(es, index="pb-%{[service.name]}")
    evs = events(2)
    evs[0]["service"] = {"name": "Web"}
    res = out.publish_batch(evs)
    assert res[0].ok and not res[1].ok and "service.name" in res[1].error
    assert list(es.docs()) [0][0] == "pb-web"


def test_several_hosts_and_workers(es):
    with EsServer() as es2:
        out = output(es, hosts=[es.url, es2.url], worker=2, compression_level=5, pipeline="p1")
        for b in range(5):                   # the client round-robins per thread
            evs = events(80, start=80 * b)
            assert all(r.ok for r in out.publish_batch(evs, ids=ids_for(evs, "w%d" % b)))
        assert es.count() + es2.count() == 400
        assert es.count() > 0 and es2.count() > 0
        out.close()


@pytest.mark.parametrize("opts,key", [
    ({"hosts": []}, "output.elasticsearch.hosts"),
    ({"protocol": "ftp"}, "output.elasticsearch.protocol"),
    ({"worker": 0}, "output.elasticsearch.worker"),
    ({"compression_level": 10}, "output.elasticsearch.compression_level"),
    ({"backoff": {"init": "2s", "max": "1s"}}, "output.elasticsearch.backoff.max"),
    ({"ssl": {"verification_mode": "maybe"}}, "output.elasticsearch.ssl.verification_mode"),
    ({"index": "x-%{+qq}"}, "output.elasticsearch.index"),
    ({"api_key": "nocolon"}, "output.elasticsearch.api_key"),
    ({"timeout": "soon"}, "output.elasticsearch.timeout"),
    ({"bogus": 1}, "output.elasticsearch.bogus"),
])
def test_config_errors_name_the_key(tmp_path, opts, key):
    import yaml
    p = tmp_path / "pb.yml"
    p.write_text(yaml.safe_dump({"output": {"elasticsearch": opts}}))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(str(p))


def test_config_loads_and_make_output_builds(tmp_path, es):
    p = tmp_path / "pb.yml"
    p.write_text("output.elasticsearch.hosts: ['%s']\noutput.elasticsearch.backoff.init: 500ms\n"
                 "output.elasticsearch.bulk_max_size: 1000\n" % es.url)
    s = load_config(str(p))
    cfg = s.output["elasticsearch"]
    assert cfg["backoff"]["init"] == 0.5 and cfg["bulk_max_size"] == 1000
    out = make_output(s.output)
    assert isinstance(out, ElasticsearchOutput) and out.bulk_max_size == 1000
    assert out.ping()["version"]["number"].startswith("8.")
    out.close()


def test_host_urls_from_protocol_and_path():
    from coordinator.publisher.elasticsearch import _host_url
    cfg = build(ElasticsearchConfig, {"protocol": "https", "path": "es"}, "output.elasticsearch")
    assert _host_url("node1", cfg) == "https://node1:9200/es"
    assert _host_url("node1:9201", cfg) == "https://node1:9201/es"
    assert _host_url("http://node2:80", cfg) == "http://node2:80/es"
    assert _host_url("http://node2:80/other", cfg) == "http://node2:80/other"


def test_client_options_from_config():
    from coordinator.publisher.elasticsearch import make_client
    cfg = build(ElasticsearchConfig, {"hosts": ["https://a:9200", "https://b:9200"], "api_key": "id:key",
                                      "ssl": {"verification_mode": "none"}, "headers": {"X-Test": "1"},
                                      "timeout": "7s"}, "output.elasticsearch")
    es = make_client(cfg)
    nodes = es.transport.node_pool.all()
    assert sorted(n.base_url for n in nodes) == ["https://a:9200", "https://b:9200"]
    assert es._headers["x-test"] == "1" and es._headers["authorization"].startswith("ApiKey ")
    assert all(n.config.verify_certs is False for n in nodes)
    assert es._request_timeout == 7.0
    es.close()


def test_compression_level_gzips_bodies(es):
    seen = []
    from tests import esserver
    orig = esserver._Handler._body

    def spy(handler):
        seen.append(handler.headers.get("Content-Encoding"))
        return orig(handler)

    esserver._Handler._body = spy
    try:
        out = output(es, compression_level=1)
        evs = events(20)
        assert all(r.ok for r in out.publish_batch(evs, ids=ids_for(evs)))
        out0 = output(es, compression_level=0)
        assert all(r.ok for r in out0.publish_batch(evs, ids=ids_for(evs, "w9")))
    finally:
        esserver._Handler._body = orig
    assert seen == ["gzip", None] and es.count() == 40


def test_bulk_body_carries_pipeline_params_and_escaped_names(es):
    out = output(es, pipeline="geo-ip", params={"refresh": "false"})
    evs = events(3)
    items = [("pb-a", "id-0", encode_event(evs[0])), ('pb-"q"', "id-1", encode_event(evs[1])),
             ("pb-a", 'id\\2', encode_event(evs[2]))]
    results = out.publish_encoded(items)
    params, actions = es.store.last_bulk
    assert params == {"refresh": "false"}
    assert [(op, m["_index"], m["_id"], m["pipeline"]) for op, m in actions] == [
        ("create", "pb-a", "id-0", "geo-ip"), ("create", 'pb-"q"', "id-1", "geo-ip"),
        ("create", "pb-a", "id\\2", "geo-ip")]
    assert results[0].ok and results[2].ok
    assert not results[1].ok and not results[1].retry and "invalid_index_name_exception" in results[1].error
    assert es.docs("pb-a")[("pb-a", "id\\2")]["n"] == 2
    out.close()


def test_output_writes_into_a_data_stream_and_a_write_alias(es):
    from elasticsearch import Elasticsearch
    client = Elasticsearch(es.url)
    client.indices.put_index_template(name="ds", index_patterns=["pbds-*"], data_stream={})
    client.indices.create(index="pbal-000001", aliases={"pbal": {"is_write_index": True}})
    client.close()
    out = output(es, index="pbds-%{[agent.version]}")
    evs = events(4)
    no_ts = dict(evs[3])
    del no_ts["@timestamp"]
    items = [(out.index(e), "i%d" % i, encode_event(e)) for i, e in enumerate(evs[:3])]
    items.append(("pbds-8.15.0", "i3", encode_event(no_ts)))
    items.append(("pbal", "a0", encode_event(evs[0])))
    results = out.publish_encoded(items)
    assert [r.ok for r in results] == [True, True, True, False, True]
    assert "timestamp" in results[3].error and not results[3].retry
    assert es.data_streams() == {"pbds-8.15.0": [next(iter(es.docs("pbds-8.15.0")))[0]]}
    assert len(es.docs("pbds-8.15.0")) == 3
    assert set(es.docs("pbal")) == {("pbal-000001", "a0")}
    again = out.publish_encoded(items[:3])             # resent: 409 on create counts as done
    assert all(r.ok for r in again) and out.conflicts == 3
    out.close()


def test_event_metadata_raw_index_and_pipeline(es):
    """A protocol's index / pipeline options reach the bulk request through @metadata
    (worker/engine.py sets them), which is left out of the document."""
    out = output(es, pipeline="default-pl")
    evs = events(3)
    evs[0]["@metadata"] = {"raw_index": "web-tcp-2026", "pipeline": "GeoIP"}
    evs[1]["@metadata"] = {"pipeline": "other"}
    res = out.publish_batch(evs, ids=ids_for(evs))
    assert all(r.ok for r in res)
    actions = {meta["_id"]: meta for op, meta in es.store.last_bulk[1]}
    ids = ids_for(evs)
    assert actions[ids[0]]["_index"] == "web-tcp-2026" and actions[ids[0]]["pipeline"] == "geoip"
    assert actions[ids[1]]["_index"] == "packetbeat-8.15.0-2026.11.26" and actions[ids[1]]["pipeline"] == "other"
    assert actions[ids[2]]["pipeline"] == "default-pl"
    docs = es.docs("*")
    assert "@metadata" not in docs[("web-tcp-2026", ids[0])] and docs[("web-tcp-2026", ids[0])]["n"] == 0
    out.close()
