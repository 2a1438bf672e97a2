"""``setup`` and ``export`` as Packetbeat 8: what each part does, what it says, how it fails.

``setup`` announces each step, gives up on an Elasticsearch that is down or does
not answer within ``output.elasticsearch.timeout`` with one line naming the
host and the cause; ``--index-management`` / ``--pipelines`` / ``--dashboards``
run only their part; ``export index-pattern`` and ``export dashboard --id``
print the Kibana objects (the latter from Kibana's saved-objects export).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import yaml

from shared.version import VERSION
from tests.esserver import EsServer
from tests.helpers import ROOT
from tests.kibanaserver import KibanaServer


def cli(tmp_path, cfg: dict, *cmd, timeout: float = 120):
    path = tmp_path / "pb.yml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(path), *cmd], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    p.took = time.monotonic() - t0
    return p


def es_cfg(url, **more):
    return {"output.elasticsearch": dict({"hosts": [url], "timeout": "2s"}, **more)}


def test_setup_with_elasticsearch_down_says_so_and_gives_up(tmp_path):
    es = EsServer().start()
    es.stop()
    p = cli(tmp_path, es_cfg(es.url), "setup")
    assert p.returncode == 1
    assert "Connecting to Elasticsearch at %s" % es.url in p.stdout
    assert p.stderr.strip().endswith(
        "Exiting: setup failed: couldn't connect to any of the configured Elasticsearch hosts: "
        "Elasticsearch at %s: connection refused (is Elasticsearch running and listening there?)" % es.url), p.stderr


def test_test_output_names_the_host_and_the_cause(tmp_path):
    es = EsServer().start()
    es.stop()
    p = cli(tmp_path, es_cfg(es.url), "test", "output")
    assert p.returncode == 1
    assert "talk to server... ERROR Elasticsearch at %s: connection refused" % es.url in p.stdout, p.stdout


def test_setup_against_a_server_that_does_not_answer_gives_up_within_the_timeout(tmp_path):
    with EsServer() as es:
        es.faults.delay = 30.0
        p = cli(tmp_path, es_cfg(es.url), "setup")
        es.faults.delay = 0
    assert p.returncode == 1
    assert "no answer in time (output.elasticsearch.timeout)" in p.stderr, p.stderr
    assert p.took < 15, p.took            # 2 s timeout (+ interpreter start on a loaded machine)


def test_setup_index_management_only_and_default_setup(tmp_path):
    with EsServer() as es:
        # --index-management: template and policy; no Kibana (none runs: it would fail)
        cfg = dict(es_cfg(es.url), **{"setup.kibana": {"host": "127.0.0.1:1"}, "setup.dashboards.enabled": True})
        p = cli(tmp_path, cfg, "setup", "--index-management")
        assert p.returncode == 0, p.stderr
        assert list(es.templates()) == ["packetbeat-" + VERSION] and list(es.policies()) == ["packetbeat"]
        assert "Index template packetbeat-%s installed for packetbeat-%s (data stream)" % (VERSION, VERSION) \
            in p.stdout
        assert "Index setup finished." in p.stdout and "dashboards" not in p.stdout.lower()
        # again: kept, as libbeat (overwrite false)
        p = cli(tmp_path, cfg, "setup", "--index-management")
        assert "exists already, not overwritten" in p.stdout


def test_setup_pipelines_checks_the_pipelines_the_configuration_names(tmp_path):
    with EsServer() as es:
        p = cli(tmp_path, es_cfg(es.url), "setup", "--pipelines")
        assert p.returncode == 0 and "no ingest pipelines of its own" in p.stdout, p.stdout + p.stderr
        assert not es.templates()                        # only its part
        p = cli(tmp_path, es_cfg(es.url, pipeline="geoip-info"), "setup", "--pipelines")
        assert p.returncode == 1 and "Pipeline geoip-info (output.elasticsearch.pipeline) does not exist" \
            in p.stdout, p.stdout
        es.store.pipelines["geoip-info"] = {"processors": []}
        p = cli(tmp_path, es_cfg(es.url, pipeline="geoip-info"), "setup", "--pipelines")
        assert p.returncode == 0 and "Pipeline geoip-info (output.elasticsearch.pipeline) exists" in p.stdout


def test_export_index_pattern_and_dashboard(tmp_path):
    p = cli(tmp_path, es_cfg("http://127.0.0.1:1", index="netmon-%{[agent.version]}"), "export", "index-pattern")
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout)
    assert obj["type"] == "index-pattern" and obj["attributes"]["title"] == "netmon-*"
    with KibanaServer() as kb:
        cfg = dict(es_cfg("http://127.0.0.1:1"), **{"setup.kibana": {"host": kb.url}})
        assert cli(tmp_path, cfg, "setup", "--dashboards").returncode == 0
        dash_id = next(i for t, i in kb.objects() if t == "dashboard")
        p = cli(tmp_path, cfg, "export", "dashboard", "--id", dash_id)
        assert p.returncode == 0, p.stderr
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
        assert lines[0]["type"] == "dashboard" and lines[0]["id"] == dash_id
        refs = {(r["type"], r["id"]) for r in lines[0].get("references", [])}
        assert refs <= {(o.get("type"), o.get("id")) for o in lines}     # with what it refers to
        assert lines[-1]["exportedCount"] == len(lines) - 1
        p = cli(tmp_path, cfg, "export", "dashboard", "--id", "no-such-dashboard")
        assert p.returncode == 1 and "no dashboard with id no-such-dashboard" in p.stderr, p.stderr
        p = cli(tmp_path, cfg, "export", "dashboard")
        assert p.returncode == 1 and "needs --id" in p.stderr
