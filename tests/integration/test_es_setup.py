"""packetbeat setup / test output / export template against the test server (or ES_URL).

The three ways of writing (coordinator/setup.py): dated indices, a data
stream, a write alias with its bootstrap index; each is set up, then a
capture goes through and the documents are checked where they landed.
"""
from __future__ import annotations

import fnmatch
import json
import pathlib
import os
import subprocess
import sys

import yaml

import pytest

from coordinator.setup import index_pattern, index_template, mappings
from shared.version import VERSION
from tests.esserver import EsServer
from tests.estarget import es_target
from tests.helpers import PCAPS, ROOT, canonical, run_packetbeat

SAMPLE = PCAPS / "http_sample.pcap"


def cli(tmp_path, url, *cmd, es_options=None, extra=None):
    cfg = tmp_path / "pb.yml"
    tree = {"output.elasticsearch": dict({"hosts": [url], "timeout": "2s"}, **(es_options or {}))}
    tree.update(extra or {})
    cfg.write_text(yaml.safe_dump(tree))
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(cfg), *cmd], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def capture(tmp_path, url, es_options, extra):
    """http_sample.pcap through the pipeline into Elasticsearch (30 events)."""
    extra = dict(extra, **{"packetbeat.protocols": [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}],
                           "packetbeat.interfaces.device": "any", "cluster.workers": 2})
    return cli(tmp_path, url, "-I", str(SAMPLE), es_options=es_options, extra=extra)


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    if not SAMPLE.exists():
        pytest.skip("%s is absent" % SAMPLE)
    proc, events = run_packetbeat(tmp_path_factory.mktemp("ref"), SAMPLE,
                                  [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return canonical(events)


def test_setup_installs_policy_and_template_then_documents_follow_it(tmp_path):
    with EsServer() as es:
        p = cli(tmp_path, es.url, "setup")
        assert p.returncode == 0, p.stderr
        assert "packetbeat" in es.store.policies
        (name, tpl), = es.store.templates.items()
        assert "data_stream" in tpl                  # the default: the data stream packetbeat-<version>
        assert name == tpl["index_patterns"][0] == "packetbeat-" + VERSION
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
    assert json.loads(p.stdout) == json.loads(json.dumps(index_template("packetbeat-%{[agent.version]}")))


# every analyser on its default ports plus the ports the project's real captures use
ALL_PROTOCOLS = [
    {"type": "http", "ports": [80, 8080, 8000, 5000, 8002]}, {"type": "dns", "ports": [53, 10053]},
    {"type": "icmp"}, {"type": "redis", "ports": [6379]}, {"type": "memcache", "ports": [11211, 11311, 11315]},
    {"type": "mysql", "ports": [3306]}, {"type": "pgsql", "ports": [5432]}, {"type": "amqp", "ports": [5672]},
    {"type": "cassandra", "ports": [9042, 19042, 19043]}, {"type": "dhcpv4", "ports": [67, 68]},
    {"type": "mongodb", "ports": [27017, 27117]}, {"type": "nfs", "ports": [2049]},
    {"type": "sip", "ports": [5060]}, {"type": "tls", "ports": [443, 8443, 14430]},
    {"type": "thrift", "ports": list(range(19090, 19098)),
     "idl_files": [str(pathlib.Path(__file__).resolve().parents[1] / "golden" / "gen" / "thrift_idl" / "store.thrift")]},
]


@pytest.mark.parametrize("capture", sorted(p.name for p in (pathlib.Path(__file__).resolve().parents[1]
                                                              / "golden" / "pcaps").glob("*.pcap")))
def test_template_maps_every_field_the_pipeline_emits(tmp_path, capture):
    """Leaf fields of the events of every committed capture (every analyser, flows on) are
    mapped explicitly, lie under a ``flattened`` field, or are strings (dynamic keyword)."""
    from tests.helpers import PCAPS, run_packetbeat
    proc, events = run_packetbeat(tmp_path, PCAPS / capture, ALL_PROTOCOLS, workers=1,
                                  extra_cfg={"packetbeat.flows": {"enabled": True, "period": "-1s"}})
    assert proc.returncode == 0 and events, proc.stderr[-2000:]
    m = mappings()
    path_templates = [t["path_match"] for d in m["dynamic_templates"] for t in d.values() if "path_match" in t]

    def mapped(path):
        node = {"properties": m["properties"]}
        for part in path.split("."):
            node = (node.get("properties") or {}).get(part)
            if node is None:
                return None
            if node.get("type") == "flattened":      # any keys and values below it
                return node
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


def test_data_stream_mode_setup_then_capture(tmp_path, expected):
    """An index without a date is a data stream: the template says so, the
    policy rolls over, the first write creates the stream, documents land in
    its backing index."""
    with es_target() as es:
        p = es.prefix
        opts = {"index": p + "-%{[agent.version]}"}
        setup = {"setup.template.name": p + "-tpl", "setup.ilm.policy_name": p + "-policy"}
        r = cli(tmp_path, es.url, "setup", es_options=opts, extra=setup)
        assert r.returncode == 0, r.stderr
        assert "(data stream)" in r.stdout
        tpl = es.templates()[p + "-tpl"]
        assert "data_stream" in tpl and tpl["index_patterns"] == [p + "-" + VERSION]
        assert tpl["template"]["settings"]["index"]["lifecycle"]["name"] == p + "-policy"
        assert "rollover" in es.policies()[p + "-policy"]["phases"]["hot"]["actions"]
        r = capture(tmp_path, es.url, opts, setup)
        assert r.returncode == 0, r.stderr[-3000:]
        stream = "%s-%s" % (p, VERSION)
        backing = es.data_streams()[stream]
        assert len(backing) == 1 and backing[0].startswith(".ds-%s-" % stream)
        docs = es.docs(stream)
        assert {i for i, _ in docs} == set(backing)
        assert canonical(list(docs.values())) == expected
        # a second setup keeps what exists; overwrite puts it again
        r = cli(tmp_path, es.url, "setup", es_options=opts, extra=setup)
        assert r.returncode == 0 and "exists already, not overwritten" in r.stdout
        r = cli(tmp_path, es.url, "setup", es_options=opts,
                extra=dict(setup, **{"setup.template.overwrite": True, "setup.ilm.overwrite": True}))
        assert r.returncode == 0 and "not overwritten" not in r.stdout


def test_write_alias_mode_setup_then_capture(tmp_path, expected):
    """setup.ilm.rollover_alias: the bootstrap index holds the alias as its write
    index; the output writes to the alias, documents land in the bootstrap index."""
    with es_target() as es:
        p = es.prefix
        opts = {"index": "ignored-%{+yyyy.MM.dd}"}
        setup = {"setup.template.name": p + "-tpl", "setup.ilm.policy_name": p + "-policy",
                 "setup.ilm.rollover_alias": p + "-%{[agent.version]}"}
        r = cli(tmp_path, es.url, "setup", es_options=opts, extra=setup)
        assert r.returncode == 0, r.stderr
        alias = "%s-%s" % (p, VERSION)
        (boot, is_write), = es.alias(alias).items()
        assert is_write and boot.startswith(alias + "-") and boot.endswith("-000001")
        tpl = es.templates()[p + "-tpl"]
        assert "data_stream" not in tpl and tpl["index_patterns"] == [alias + "-*"]
        assert tpl["template"]["settings"]["index"]["lifecycle"] == {"name": p + "-policy", "rollover_alias": alias}
        r = cli(tmp_path, es.url, "setup", es_options=opts, extra=setup)       # idempotent
        assert r.returncode == 0 and "Write alias %s exists already" % alias in r.stdout
        r = capture(tmp_path, es.url, opts, setup)
        assert r.returncode == 0, r.stderr[-3000:]
        docs = es.docs(alias)
        assert {i for i, _ in docs} == {boot}
        assert canonical(list(docs.values())) == expected
        assert es.count("ignored-*") == 0


@pytest.mark.parametrize("key,value,msg", [
    ("setup.ilm.pattern", "000001x", "ending with a number"),
    ("setup.ilm.rollover_alias", "Bad Alias", "not a valid lowercase alias name"),
    ("setup.ilm.enabled", "auto", "setup.ilm.enabled"),
    ("setup.template.name", "Packetbeat", "lowercase"),
    ("setup.ilm.nope", 1, "setup.ilm.nope"),
])
def test_setup_options_are_checked(tmp_path, key, value, msg):
    r = cli(tmp_path, "http://127.0.0.1:1", "test", "config", extra={key: value})
    assert r.returncode == 1 and msg in r.stderr and key.rsplit(".", 1)[0] in r.stderr, r.stderr


def test_rollover_alias_needs_ilm(tmp_path):
    r = cli(tmp_path, "http://127.0.0.1:1", "setup",
            extra={"setup.ilm.enabled": False, "setup.ilm.rollover_alias": "x"})
    assert r.returncode == 1 and "setup.ilm.rollover_alias: needs setup.ilm.enabled: true" in r.stderr
