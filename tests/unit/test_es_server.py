"""The test Elasticsearch server, driven by the official client.

With ``ES_URL`` set the API tests run against that real cluster instead
(fault injection tests are skipped there), so the server's answers can be
checked against Elasticsearch itself.
"""
from __future__ import annotations

import os
import uuid

import pytest
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk

from tests.esserver import EsServer

ES_URL = os.environ.get("ES_URL", "")


@pytest.fixture
def server():
    if ES_URL:
        yield None
        return
    with EsServer() as es:
        yield es


@pytest.fixture
def client(server):
    es = Elasticsearch(ES_URL or server.url, request_timeout=5, max_retries=0)
    yield es
    es.close()


@pytest.fixture
def index(client):
    name = "pbtest-%s" % uuid.uuid4().hex[:8]
    yield name
    client.options(ignore_status=404).indices.delete(index=name)


def local(server):
    if server is None:
        pytest.skip("fault injection needs the local test server (ES_URL is set)")
    return server


def test_info_and_product_header(client):
    info = client.info()
    assert info["version"]["number"].startswith("8.")


def test_bulk_every_action_form(client, index):
    body = [
        {"index": {"_index": index, "_id": "a"}}, {"n": 1},
        {"create": {"_index": index, "_id": "b"}}, {"n": 2},
        {"create": {"_index": index, "_id": "a"}}, {"n": 3},            # exists: 409
        {"update": {"_index": index, "_id": "b"}}, {"doc": {"m": "x"}},
        {"update": {"_index": index, "_id": "zz"}}, {"doc": {"m": "x"}},  # missing: 404
        {"update": {"_index": index, "_id": "c"}}, {"doc": {"n": 4}, "doc_as_upsert": True},
        {"delete": {"_index": index, "_id": "c"}},
        {"delete": {"_index": index, "_id": "nope"}},
        {"index": {"_index": index}}, {"n": 5},                           # generated id
        {"index": {"_index": index, "_id": "a"}}, {"n": 6},               # overwrite
    ]
    resp = client.bulk(operations=body, refresh=True)
    statuses = [next(iter(it.values()))["status"] for it in resp["items"]]
    assert statuses == [201, 201, 409, 200, 404, 201, 200, 404, 201, 200]
    assert resp["errors"] is True
    conflict = resp["items"][2]["create"]["error"]
    assert conflict["type"] == "version_conflict_engine_exception"
    assert client.get(index=index, id="a")["_source"] == {"n": 6}
    assert client.get(index=index, id="b")["_source"] == {"n": 2, "m": "x"}
    assert client.count(index=index)["count"] == 3
    with pytest.raises(ApiError) as exc:
        client.get(index=index, id="c")
    assert exc.value.meta.status == 404


def test_bulk_default_index_and_op_type(client, index):
    resp = client.bulk(index=index, operations=[{"index": {"_id": "x", "op_type": "create"}}, {"v": 1},
                                                {"index": {"_id": "x", "op_type": "create"}}, {"v": 2}],
                       refresh=True)
    assert [it["index"]["status"] if "index" in it else it["create"]["status"] for it in resp["items"]] \
        == [201, 409]
    assert client.get(index=index, id="x")["_source"] == {"v": 1}


def test_mapping_conflict_is_400(client, index):
    resp = client.bulk(operations=[{"create": {"_index": index, "_id": "1"}}, {"f": {"g": 1}},
                                   {"create": {"_index": index, "_id": "2"}}, {"f": "text"}], refresh=True)
    assert [it["create"]["status"] for it in resp["items"]] == [201, 400]
    assert resp["items"][1]["create"]["error"]["type"] == "mapper_parsing_exception"


def test_search_by_id_and_count(client, index):
    client.bulk(operations=[{"create": {"_index": index, "_id": str(i)}} if j == 0 else {"i": i}
                            for i in range(5) for j in (0, 1)], refresh=True)
    hits = client.search(index=index, query={"ids": {"values": ["1", "3"]}})["hits"]["hits"]
    assert sorted(h["_id"] for h in hits) == ["1", "3"]
    hits = client.search(index=index, query={"term": {"_id": "4"}})["hits"]["hits"]
    assert [h["_source"] for h in hits] == [{"i": 4}]
    assert client.count(index=index)["count"] == 5


def test_templates_and_ilm(client):
    name = "pbtest-tpl-%s" % uuid.uuid4().hex[:6]
    client.indices.put_index_template(name=name, index_patterns=[name + "-*"],
                                      template={"mappings": {"properties": {"a": {"type": "long"}}}})
    got = client.indices.get_index_template(name=name)["index_templates"][0]
    assert got["name"] == name and got["index_template"]["index_patterns"] == [name + "-*"]
    assert client.indices.exists_index_template(name=name)
    client.ilm.put_lifecycle(name=name, policy={"phases": {"hot": {"actions": {}}}})
    assert "hot" in client.ilm.get_lifecycle(name=name)[name]["policy"]["phases"]
    client.indices.delete_index_template(name=name)
    assert not client.indices.exists_index_template(name=name)
    client.ilm.delete_lifecycle(name=name)


def test_gzip_bodies(server, index):
    es = Elasticsearch(ES_URL or server.url, http_compress=True)
    ok = [ok for ok, _ in streaming_bulk(es, ({"_index": index, "_id": str(i), "v": i} for i in range(50)))]
    assert all(ok) and len(ok) == 50
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 50
    es.close()


def test_faults_429_fraction(server, client, index):
    es = local(server)
    es.faults.reject_429 = 0.3
    resp = client.bulk(operations=[x for i in range(200) for x in ({"create": {"_index": index, "_id": str(i)}},
                                                                  {"i": i})])
    statuses = [it["create"]["status"] for it in resp["items"]]
    assert 20 < statuses.count(429) < 110 and statuses.count(201) == 200 - statuses.count(429)
    assert es.count(index) == statuses.count(201)


def test_faults_500_drop_and_refuse(server, client, index):
    es = local(server)
    es.faults.fail_500 = 1
    with pytest.raises(ApiError) as exc:
        client.info()
    assert exc.value.meta.status == 500
    assert client.info()["tagline"]
    es.faults.drop_bulk = 1
    from elastic_transport import ConnectionError as TransportConnectionError
    with pytest.raises(TransportConnectionError):
        client.bulk(operations=[{"create": {"_index": index, "_id": "d"}}, {"v": 1}])
    assert es.count(index) == 1          # applied before the connection was dropped
    port = es.port
    es.stop()
    with pytest.raises(TransportConnectionError):
        client.info()
    es.start()
    assert es.port == port and client.info()["tagline"]


# -- data streams and write aliases (what `packetbeat setup` relies on) ------------------

@pytest.fixture
def ds_template(client):
    name = "pbtest-ds-%s" % uuid.uuid4().hex[:6]
    client.indices.put_index_template(name=name, index_patterns=[name + "*"], data_stream={}, priority=500,
                                      template={"mappings": {"properties": {"@timestamp": {"type": "date"}}}})
    yield name
    for suffix in ("-a", "-x"):        # by name: real clusters refuse wildcard deletes by default
        client.options(ignore_status=404).indices.delete_data_stream(name=name + suffix)
    client.indices.delete_index_template(name=name)


def test_data_stream_created_on_first_create(client, ds_template):
    ds = ds_template + "-a"
    ts = "2024-05-01T10:00:00.000Z"
    resp = client.bulk(operations=[{"create": {"_index": ds, "_id": "1"}}, {"@timestamp": ts, "v": 1},
                                   {"create": {"_index": ds, "_id": "1"}}, {"@timestamp": ts, "v": 2},
                                   {"index": {"_index": ds, "_id": "2"}}, {"@timestamp": ts, "v": 3},
                                   {"create": {"_index": ds, "_id": "3"}}, {"v": 4}], refresh=True)
    items = [next(iter(it.values())) for it in resp["items"]]
    assert [it["status"] for it in items] == [201, 409, 400, 400]
    assert items[0]["_index"].startswith(".ds-%s-" % ds) and items[0]["_index"].endswith("-000001")
    assert items[2]["error"]["type"] == "illegal_argument_exception"
    assert "op_type of create" in items[2]["error"]["reason"]
    assert "@timestamp" in items[3]["error"]["reason"]
    got = client.indices.get_data_stream(name=ds)["data_streams"]
    assert [d["name"] for d in got] == [ds] and got[0]["template"] == ds_template
    assert got[0]["indices"][0]["index_name"] == items[0]["_index"]
    assert client.count(index=ds)["count"] == 1
    assert client.search(index=ds_template + "*", query={"ids": {"values": ["1"]}})["hits"]["hits"][0][
        "_source"]["v"] == 1
    with pytest.raises(ApiError) as exc:           # a plain index may not take a data stream's name
        client.indices.create(index=ds_template + "-b")
    assert exc.value.meta.status == 400 and "data stream" in str(exc.value)
    client.indices.delete_data_stream(name=ds)
    with pytest.raises(ApiError) as exc:
        client.indices.get_data_stream(name=ds)
    assert exc.value.meta.status == 404


def test_data_stream_api_put_needs_a_template(client, ds_template):
    client.indices.create_data_stream(name=ds_template + "-x")
    with pytest.raises(ApiError) as exc:
        client.indices.create_data_stream(name=ds_template + "-x")
    assert exc.value.meta.status == 400
    with pytest.raises(ApiError) as exc:
        client.indices.create_data_stream(name="pbtest-notemplate-%s" % uuid.uuid4().hex[:6])
    assert exc.value.meta.status == 400 and "no matching index template" in str(exc.value)


def test_write_alias_with_bootstrap_index_and_rollover(client):
    alias = "pbtest-alias-%s" % uuid.uuid4().hex[:6]
    made = []
    try:
        assert not client.indices.exists_alias(name=alias)
        client.indices.create(index="<%s-{now/d}-000001>" % alias, aliases={alias: {"is_write_index": True}})
        assert client.indices.exists_alias(name=alias)
        (first, info), = client.indices.get_alias(name=alias).body.items()
        made.append(first)
        assert first.startswith(alias + "-") and first.endswith("-000001")
        assert info["aliases"][alias]["is_write_index"] is True
        resp = client.bulk(operations=[{"create": {"_index": alias, "_id": "1"}}, {"v": 1}], refresh=True)
        assert resp["items"][0]["create"]["_index"] == first
        with pytest.raises(ApiError) as exc:         # a second write index for the alias
            client.indices.create(index=alias + "-other", aliases={alias: {"is_write_index": True}})
        assert exc.value.meta.status == 400
        roll = client.indices.rollover(alias=alias)
        made.append(roll["new_index"])
        assert roll["old_index"] == first and roll["new_index"].endswith("-000002")
        resp = client.bulk(operations=[{"create": {"_index": alias, "_id": "2"}}, {"v": 2}], refresh=True)
        assert resp["items"][0]["create"]["_index"] == roll["new_index"]
        assert client.count(index=alias)["count"] == 2
    finally:
        for name in made:
            client.options(ignore_status=404).indices.delete(index=name)


def test_alias_without_write_index_refuses_writes(client):
    base = "pbtest-two-%s" % uuid.uuid4().hex[:6]
    alias = base + "-alias"
    try:
        client.indices.create(index=base + "-1", aliases={alias: {}})
        client.indices.create(index=base + "-2", aliases={alias: {}})
        resp = client.bulk(operations=[{"create": {"_index": alias, "_id": "1"}}, {"v": 1}])
        item = resp["items"][0]["create"]
        assert item["status"] == 400 and "no write index" in item["error"]["reason"]
    finally:
        for name in (base + "-1", base + "-2"):
            client.options(ignore_status=404).indices.delete(index=name)


def test_benchmark_sink_answers_and_stores_like_the_strict_server():
    """bench_es runs the server with check_mappings=False (sources kept as bytes):
    the items' statuses and the stored documents are those of the strict server."""
    body = (b'{"create":{"_index":"a","_id":"1"}}\n{"x":1,"@timestamp":"2024-01-01T00:00:00Z"}\n'
            b'{"create":{"_index":"a","_id":"1"}}\n{"x":2}\n'
            b'{"delete":{"_index":"a","_id":"2"}}\n'
            b'{"index":{"_index":"a","_id":"3"}}\n{"y":"s"}\n'
            b'{"update":{"_index":"a","_id":"3"}}\n{"doc":{"z":1}}\n')
    seen = []
    for check in (True, False):
        es = EsServer(check_mappings=check)
        status, obj = es._bulk(None, {}, body)
        assert status == 200
        seen.append(([(op, v["status"]) for it in obj["items"] for op, v in it.items()], es.docs("a")))
        with pytest.raises(ValueError):
            es._bulk(None, {}, b'{"create":{"_index":"a","_id":"9"}}\nnot json\n')
    assert seen[0] == seen[1]
    assert seen[0][0] == [("create", 201), ("create", 409), ("delete", 404), ("index", 201), ("update", 200)]
    assert seen[0][1] == {("a", "1"): {"x": 1, "@timestamp": "2024-01-01T00:00:00Z"}, ("a", "3"): {"y": "s", "z": 1}}
