"""tests/estarget.py: the ES_URL switch, exercised here with a second test server
standing in for the real cluster (so the real-cluster code path runs in CI)."""
from __future__ import annotations

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import Elasticsearch

from tests import estarget
from tests.esserver import EsServer, VERSION


@pytest.fixture
def cluster(monkeypatch):
    with EsServer() as upstream:
        monkeypatch.setattr(estarget, "ES_URL", upstream.url)
        yield upstream


def ops(index, n, start=0):
    return [x for i in range(start, start + n)
            for x in ({"create": {"_index": index, "_id": str(i)}}, {"@timestamp": "2024-01-01T00:00:00Z", "i": i})]


def test_without_es_url_each_test_gets_a_test_server(monkeypatch):
    monkeypatch.setattr(estarget, "ES_URL", "")
    with estarget.es_target(faults=True) as es:
        assert isinstance(es, EsServer) and not isinstance(es, estarget.FaultProxy)
        assert es.prefix.startswith("pbt")


def test_real_cluster_inspection_and_cleanup(cluster):
    with estarget.es_target() as es:
        assert isinstance(es, estarget.RealCluster) and es.url == cluster.url
        client = Elasticsearch(es.url, request_timeout=5, max_retries=0)
        idx = es.prefix + "-a"
        client.bulk(operations=ops(idx, 5))
        client.indices.put_index_template(name=es.prefix + "-tpl", index_patterns=[es.prefix + "-ds*"],
                                          data_stream={})
        client.ilm.put_lifecycle(name=es.prefix + "-pol", policy={"phases": {"hot": {"actions": {}}}})
        client.bulk(operations=ops(es.prefix + "-ds", 3))
        client.indices.create(index=es.prefix + "-b-000001", aliases={es.prefix + "-al": {"is_write_index": True}})
        client.close()
        assert es.count(idx) == 5
        assert sorted(int(d["i"]) for d in es.docs(idx).values()) == [0, 1, 2, 3, 4]
        assert es.data_streams()[es.prefix + "-ds"][0].startswith(".ds-%s-ds-" % es.prefix)
        assert len(es.docs(es.prefix + "-ds")) == 3
        assert es.alias(es.prefix + "-al") == {es.prefix + "-b-000001": True}
        assert "data_stream" in es.templates()[es.prefix + "-tpl"]
        assert es.prefix + "-pol" in es.policies()
        prefix = es.prefix
    assert not any(n.startswith(prefix) for n in cluster.store.indices)       # cleaned up by name
    assert not cluster.store.data_streams and not cluster.store.templates and not cluster.store.policies


def test_fault_proxy_injects_in_front_of_the_cluster(cluster):
    with estarget.es_target(faults=True) as es:
        assert isinstance(es, estarget.FaultProxy) and es.url != cluster.url
        client = Elasticsearch(es.url, request_timeout=5, max_retries=0)
        assert client.info()["version"]["number"] == VERSION        # forwarded
        idx = es.prefix + "-f"
        es.faults.reject_429 = 0.5
        resp = client.bulk(operations=ops(idx, 100))
        statuses = [it["create"]["status"] for it in resp["items"]]
        assert 20 < statuses.count(429) < 80 and statuses.count(201) == 100 - statuses.count(429)
        assert es.count(idx) == statuses.count(201) == cluster.count(idx)
        assert es.bulk_items == 100 and cluster.store.bulk_items == statuses.count(201)
        es.faults.reject_429 = 0.0
        resp = client.bulk(operations=ops(idx, 100))               # the rest; 409 for those already in
        assert sorted({it["create"]["status"] for it in resp["items"]}) in ([201, 409], [409])
        assert es.count(idx) == 100
        es.faults.drop_bulk = 1
        with pytest.raises(TransportConnectionError):
            client.bulk(operations=ops(idx, 1, start=100))
        assert cluster.count(idx) == 101                           # forwarded, then the answer lost
        es.faults.fail_500 = 1
        assert client.options(ignore_status=500).info().meta.status == 500
        es.stop()
        with pytest.raises(TransportConnectionError):
            client.info()
        es.start()
        assert client.info()["tagline"]
        client.close()
