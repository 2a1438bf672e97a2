"""packetbeat setup / test output / export template against the test server."""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys

import yaml

from coordinator.setup import index_pattern, index_template, mappings
from tests.esserver import EsServer
from tests.helpers import ROOT


def cli(tmp_path, url, *cmd):
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({"output.elasticsearch": {"hosts": [url], "timeout": "2s"}}))
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(cfg), *cmd], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_setup_installs_policy_and_template_then_documents_follow_it(tmp_path):
    with EsServer() as es:
        p = cli(tmp_path, es.url, "setup")
        assert p.returncode == 0, p.stderr
        assert "packetbeat" in es.store.policies
        (name, tpl), = es.store.templates.items()
        assert tpl["index_patterns"] == ["packetbeat-*-*"]
        assert tpl["template"]["settings"]["index"]["lifecycle"]["name"] == "packetbeat"
        props = tpl["template"]["mappings"]["properties"]
        assert props["source"]["properties"]["ip"] == {"type": "ip"}
        assert props["event"]["properties"]["duration"] == {"type": "long"}
        assert props["http"]["properties"]["response"]["properties"]["status_code"] == {"type": "long"}


def test_test_output_reports_each_host(tmp_path):
    with EsServer() as es:
        p = cli(tmp_path, es.url, "test", "output")
        assert p.returncode == 0, p.stderr
        assert "talk to server... OK" in p.stdout and "version: 8." in p.stdout
        es.stop()
        p = cli(tmp_path, es.url, "test", "output")
        assert p.returncode == 1 and "ERROR" in p.stdout


def test_export_template_is_json_for_the_index_option(tmp_path):
    p = cli(tmp_path, "http://127.0.0.1:1", "export", "template")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(json.dumps(index_template("packetbeat-%{[agent.version]}-%{+yyyy.MM.dd}")))


def test_template_maps_every_field_the_pipeline_emits(tmp_path):
    """Leaf fields of real events are mapped explicitly or are strings (dynamic keyword)."""
    from tests.helpers import PCAPS, run_packetbeat
    proc, events = run_packetbeat(tmp_path, PCAPS / "http_sample.pcap", workers=1)
    assert proc.returncode == 0 and events
    m = mappings()
    path_templates = [t["path_match"] for d in m["dynamic_templates"] for t in d.values() if "path_match" in t]

    def mapped(path):
        node = {"properties": m["properties"]}
        for part in path.split("."):
            node = (node.get("properties") or {}).get(part)
            if node is None:
                return None
        return node

    def leaves(obj, prefix=""):
        for k, v in obj.items():
            if isinstance(v, dict):
                yield from leaves(v, prefix + k + ".")
            else:
                yield prefix + k, v

    for ev in events:
        for path, value in leaves(ev):
            vals = value if isinstance(value, list) else [value]
            if mapped(path) is None and not any(fnmatch.fnmatchcase(path, t) for t in path_templates):
                assert all(isinstance(v, str) for v in vals), "unmapped non-string field %s" % path
    assert index_pattern("pb-%{[agent.version]}-%{+yyyy.MM}") == "pb-*-*"
