"""packetbeat setup / setup --dashboards against the strict Kibana test server (and the ES test server)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import yaml

from tests.esserver import EsServer
from tests.helpers import ROOT
from tests.kibanaserver import KibanaServer

# one dashboard per NDJSON file of deploy/kibana (7 built in + one per newer analyser)
N_FILES = len(list((ROOT / "deploy" / "kibana").glob("*.ndjson")))

KIBANA_DIR = ROOT / "deploy" / "kibana"


def expected_objects():
    keys = set()
    for f in KIBANA_DIR.glob("*.ndjson"):
        for line in f.read_text().splitlines():
            o = json.loads(line)
            keys.add((o["type"], o["id"]))
    return keys


def cli(tmp_path, cfg, *cmd):
    path = tmp_path / "pb.yml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(path), *cmd], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def fast_retry(**kw):
    return {"setup.dashboards.retry": dict({"interval": "50ms", "maximum": 5}, **kw)}


def test_setup_installs_template_and_imports_every_object(tmp_path):
    with EsServer() as es, KibanaServer() as kb:
        p = cli(tmp_path, {"output.elasticsearch": {"hosts": [es.url], "timeout": "2s"},
                           "setup.kibana": {"host": kb.url}}, "setup")
        assert p.returncode == 0, p.stderr
        assert es.templates(), "the Elasticsearch part ran first"
        stored = kb.objects()
        assert set(stored) == expected_objects()
        assert len([k for k in stored if k[0] == "dashboard"]) == N_FILES
        assert all(a["success"] for a in kb.store.imports) and len(kb.store.imports) == N_FILES
        assert "Loaded dashboards (%d files" % N_FILES in p.stdout and "Kibana 8.15.0" in p.stdout
        # every request carried kbn-xsrf and went to the import API with overwrite
        imports = [path for m, path in kb.store.requests if m == "POST"]
        assert imports and all(path == "/api/saved_objects/_import?overwrite=true" for path in imports)
        assert kb.store.requests[0] == ("GET", "/api/status")
        # a second run overwrites, still success
        p = cli(tmp_path, {"output.elasticsearch": {"hosts": [es.url], "timeout": "2s"},
                           "setup.kibana": {"host": kb.url}}, "setup")
        assert p.returncode == 0, p.stderr
        assert all(r.get("overwrite") for r in kb.store.imports[-1]["successResults"])


def test_setup_without_kibana_settings_leaves_kibana_alone(tmp_path):
    with EsServer() as es, KibanaServer() as kb:
        p = cli(tmp_path, {"output.elasticsearch": {"hosts": [es.url], "timeout": "2s"}}, "setup")
        assert p.returncode == 0, p.stderr
        assert not kb.store.requests and "dashboards" not in p.stdout


def test_setup_dashboards_into_a_space_with_credentials_and_index(tmp_path):
    with KibanaServer() as kb:
        kb.store.spaces.add("ops")
        kb.faults.credentials = ("elastic", "s3cret")
        cfg = {"output.console": {}, "setup.kibana": {"host": kb.url.replace("http://", ""), "protocol": "http",
                                                     "username": "elastic", "password": "s3cret",
                                                     "space.id": "ops"},
               "setup.dashboards.index": "pb-*"}
        p = cli(tmp_path, cfg, "setup", "--dashboards")
        assert p.returncode == 0, p.stderr
        assert set(kb.objects("ops")) == expected_objects() and not kb.objects("default")
        assert kb.objects("ops")[("index-pattern", "packetbeat-*")]["attributes"]["title"] == "pb-*"
        assert all(path.startswith("/s/ops/api/saved_objects/_import") for m, path in kb.store.requests if m == "POST")


def test_api_key(tmp_path):
    with KibanaServer() as kb:
        kb.faults.api_key = "id1:key1"
        p = cli(tmp_path, {"output.console": {}, "setup.kibana": {"host": kb.url, "api_key": "id1:key1"}},
                "setup", "--dashboards")
        assert p.returncode == 0, p.stderr
        assert len(kb.objects()) == len(expected_objects())


def test_wrong_password_is_a_clear_401(tmp_path):
    with KibanaServer() as kb:
        kb.faults.credentials = ("elastic", "s3cret")
        p = cli(tmp_path, {"output.console": {}, "setup.kibana": {"host": kb.url, "username": "elastic",
                                                                 "password": "wrong"}}, "setup", "--dashboards")
        assert p.returncode == 1
        assert "401 Unauthorized" in p.stderr and "setup.kibana.username" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
        assert len(kb.store.requests) == 1, "a 401 is not retried"
        assert not kb.objects()


def test_not_ready_is_retried_then_succeeds(tmp_path):
    with KibanaServer() as kb:
        kb.faults.not_ready = 3
        p = cli(tmp_path, dict({"output.console": {}, "setup.kibana.host": kb.url}, **fast_retry()),
                "setup", "--dashboards")
        assert p.returncode == 0, p.stderr
        assert "not ready (503)" in p.stdout and "retrying" in p.stdout
        assert [path for _, path in kb.store.requests[:4]] == ["/api/status"] * 4
        assert len(kb.objects()) == len(expected_objects())


def test_never_ready_gives_up_after_maximum(tmp_path):
    with KibanaServer() as kb:
        kb.faults.not_ready = 100
        p = cli(tmp_path, dict({"output.console": {}, "setup.kibana.host": kb.url}, **fast_retry(maximum=3)),
                "setup", "--dashboards")
        assert p.returncode == 1
        assert "not ready (503)" in p.stderr and "after 3 attempts" in p.stderr, p.stderr
        assert len(kb.store.requests) == 3


def test_kibana_down(tmp_path):
    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EsServer() as es:
        p = cli(tmp_path, dict({"output.elasticsearch": {"hosts": [es.url], "timeout": "2s"},
                                "setup.kibana.host": "127.0.0.1:%d" % port}, **fast_retry(maximum=2)), "setup")
        assert p.returncode == 1
        assert "Exiting: loading the dashboards failed: Kibana at http://127.0.0.1:%d is not reachable" % port \
            in p.stderr and "after 2 attempts" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr


def test_too_old_kibana_and_rejected_objects(tmp_path):
    with KibanaServer(version="8.5.3") as kb:
        p = cli(tmp_path, {"output.console": {}, "setup.kibana.host": kb.url}, "setup", "--dashboards")
        assert p.returncode == 1 and "Kibana 8.5.3" in p.stderr and "8.8 or later" in p.stderr, p.stderr
    bad = tmp_path / "objs"
    bad.mkdir()
    lines = (KIBANA_DIR / "packetbeat-redis.ndjson").read_text().splitlines()
    (bad / "only-dashboard.ndjson").write_text(lines[-1] + "\n")       # its panels' objects are missing
    with KibanaServer() as kb:
        p = cli(tmp_path, {"output.console": {}, "setup.kibana.host": kb.url, "setup.dashboards.directory": str(bad)},
                "setup", "--dashboards")
        assert p.returncode == 1
        assert "Kibana rejected objects of only-dashboard.ndjson" in p.stderr and "missing_references" in p.stderr


def test_setup_kibana_config_errors_name_the_key(tmp_path):
    for cfg, key in (({"setup.kibana": {"hots": "x"}}, "setup.kibana.hots"),
                     ({"setup.kibana": {"ssl.verification_mode": "maybe"}}, "setup.kibana.ssl.verification_mode"),
                     ({"setup.kibana": {"space.id": "Not A Space"}}, "setup.kibana.space.id"),
                     ({"setup.dashboards.directory": str(tmp_path / "nope")}, "setup.dashboards.directory")):
        p = cli(tmp_path, dict({"output.console": {}}, **cfg), "setup", "--dashboards")
        assert p.returncode == 1 and key in p.stderr, (cfg, p.stderr)


def test_https_with_certificate_authorities_and_verification_modes(tmp_path):
    with KibanaServer(tls=True) as kb:
        base = {"output.console": {}, "setup.kibana.host": kb.url}
        p = cli(tmp_path, dict(base, **{"setup.kibana.ssl.certificate_authorities": [kb.ca_file]}),
                "setup", "--dashboards")
        assert p.returncode == 0, p.stderr
        assert len(kb.objects()) == len(expected_objects())
        # the system CAs do not know the test CA: a clear TLS error, not retried
        n = len(kb.store.requests)
        p = cli(tmp_path, base, "setup", "--dashboards")
        assert p.returncode == 1 and "TLS with Kibana at https://127.0.0.1" in p.stderr \
            and "certificate verify failed" in p.stderr, p.stderr
        assert len(kb.store.requests) == n
        p = cli(tmp_path, dict(base, **{"setup.kibana.ssl.verification_mode": "none"}), "setup", "--dashboards")
        assert p.returncode == 0, p.stderr
        # "certificate": the chain is checked, the host name is not (localhost vs 127.0.0.1 both in the cert)
        p = cli(tmp_path, dict(base, **{"setup.kibana.ssl.verification_mode": "certificate",
                                        "setup.kibana.ssl.certificate_authorities": [kb.ca_file]}),
                "setup", "--dashboards")
        assert p.returncode == 0, p.stderr


def test_data_view_follows_a_custom_output_index_and_find_lists_dashboards(tmp_path):
    with EsServer() as es, KibanaServer() as kb:
        p = cli(tmp_path, {"output.elasticsearch": {"hosts": [es.url], "timeout": "2s",
                                                    "index": "netmon-%{+yyyy.MM.dd}"},
                           "setup.kibana": {"host": kb.url}}, "setup")
        assert p.returncode == 0, p.stderr
        assert kb.objects()[("index-pattern", "packetbeat-*")]["attributes"]["title"] == "netmon-*"
        import urllib.request
        with urllib.request.urlopen(kb.url + "/api/saved_objects/_find?type=dashboard&per_page=100") as r:
            found = json.loads(r.read())
        assert found["total"] == N_FILES
        assert sorted(o["attributes"]["title"] for o in found["saved_objects"]) == sorted(
            "[Packetbeat] " + t for t in ("Overview", "HTTP", "DNS", "MySQL", "PostgreSQL", "Redis", "Flows",
                                          "AMQP", "Cassandra", "DHCPv4", "MongoDB", "NFS", "SIP", "Thrift", "TLS"))


def test_unknown_space_is_a_clear_404(tmp_path):
    with KibanaServer() as kb:
        p = cli(tmp_path, {"output.console": {}, "setup.kibana": {"host": kb.url, "space.id": "nosuch"}},
                "setup", "--dashboards")
        assert p.returncode == 1
        assert "answered POST /s/nosuch/api/saved_objects/_import with 404" in p.stderr, p.stderr
        assert not kb.objects("nosuch") and not kb.objects()
