"""Configuration loading: dotted keys, -E overrides, both protocol forms, errors with key paths."""
from __future__ import annotations

import textwrap

import pytest

from coordinator.config import load_config
from shared.config import ConfigError, expand_dotted


def write(tmp_path, text: str) -> str:
    p = tmp_path / "packetbeat.yml"
    p.write_text(textwrap.dedent(text))
    return str(p)


BASE = """
packetbeat.interfaces.device: any
packetbeat.protocols:
- type: http
  ports: [80, 8080]
  send_all_headers: true
output.file:
  path: /tmp/pb-out
  filename: events
"""


def test_dotted_and_nested_mix(tmp_path):
    s = load_config(write(tmp_path, BASE + "output.file.rotate_every_kb: 5\noutput.elasticsearch.enabled: false\n"))
    assert s.output == {"file": {**s.output["file"], "path": "/tmp/pb-out", "filename": "events", "rotate_every_kb": 5}}
    assert s.protocols == [{"type": "http", "ports": [80, 8080], "send_all_headers": True}]
    assert s.interfaces[0]["device"] == "any"


def test_expand_dotted_conflict():
    with pytest.raises(ConfigError) as e:
        expand_dotted({"a.b": 1, "a": {"b": 2}})
    assert "a.b" in str(e.value)


def test_map_form_of_protocols(tmp_path):
    s = load_config(write(tmp_path, """
        packetbeat.protocols.http:
          ports: [8000]
        packetbeat.protocols:
          dns: {ports: [53]}
        output.console.pretty: true
    """))
    assert sorted(p["type"] for p in s.protocols) == ["dns", "http"]
    assert s.output["console"]["pretty"] is True


def test_overrides(tmp_path):
    s = load_config(write(tmp_path, BASE), ["packetbeat.protocols.http.ports=[81, 82]", "cluster.workers=3",
                                            "tags=[a, b]", "packetbeat.protocols.0.send_request=true"])
    assert s.protocols[0]["ports"] == [81, 82]
    assert s.protocols[0]["send_request"] is True
    assert s.cluster["workers"] == 3
    assert s.tags == ["a", "b"]


def test_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("PB_OUT", "/tmp/from-env")
    s = load_config(write(tmp_path, BASE + "output.file.path: ${PB_OUT}\ncluster.workers: ${PB_W:4}\n"
                          .replace("output.file.path: ${PB_OUT}\n", "")),
                    ["output.file.path=${PB_OUT}"])
    assert s.output["file"]["path"] == "/tmp/from-env"
    assert s.cluster["workers"] == 4


@pytest.mark.parametrize("extra, where", [
    ("packetbeat.protocols:\n- type: http\n  ports: [80]\n  bogus: 1\n", "packetbeat.protocols[0].bogus"),
    ("packetbeat.protocols:\n- type: http\n  ports: [eighty]\n", "packetbeat.protocols[0].ports[0]"),
    ("packetbeat.protocols:\n- type: http\n  send_request: maybe\n", "packetbeat.protocols[0].send_request"),
    ("packetbeat.protocols:\n- type: gopher\n", "packetbeat.protocols[0].type"),
    ("packetbeat.protocols:\n- type: http\n  ports: [80]\n- type: redis\n  ports: [80]\n", "packetbeat.protocols[1].ports"),
    ("packetbeat.flows.timeout: soon\n", "packetbeat.flows.timeout"),
    ("packetbeat.interfaces.snaplen: big\n", "packetbeat.interfaces.snaplen"),
    ("packetbeat.colour: blue\n", "packetbeat.colour"),
    ("outputs.file.path: x\n", "outputs"),
    ("cluster.workers: -1\n", "cluster.workers"),
    ("logging.level: loud\n", "logging.level"),
])
def test_errors_name_the_key(tmp_path, extra, where):
    text = "output.console.enabled: true\n" + extra
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert str(e.value).startswith(where), str(e.value)


@pytest.mark.parametrize("text, where", [
    ("output.elasticsearch:\n  hosts: [localhost]\n  password: x\n", "output.elasticsearch.password"),
    ("output.elasticsearch:\n  hosts: [localhost]\n  api_key: nocolon\n", "output.elasticsearch.api_key"),
    ("output.elasticsearch:\n  hosts: [localhost]\n  protocol: ftp\n", "output.elasticsearch.protocol"),
    ("output.console.enabled: true\nsetup.kibana:\n  host: localhost:5601\n  password: x\n",
     "setup.kibana.password"),
    ("output.console.enabled: true\nsetup.kibana:\n  host: localhost:5601\n  username: u\n  api_key: a:b\n",
     "setup.kibana.api_key"),
])
def test_http_client_options_name_the_key(tmp_path, text, where):
    """The Elasticsearch output and setup.kibana check protocol/credentials alike."""
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert str(e.value).startswith(where), str(e.value)


def test_exactly_one_output(tmp_path):
    with pytest.raises(ConfigError, match="exactly one output"):
        load_config(write(tmp_path, "output.console: {}\noutput.file.path: /tmp/x\n"))
    with pytest.raises(ConfigError, match="no output"):
        load_config(write(tmp_path, "packetbeat.interfaces.device: any\n"))
    with pytest.raises(ConfigError, match="output.elasticsearch.hosts"):
        load_config(write(tmp_path, "output.elasticsearch.hosts: []\n"))


def test_disabled_protocol_is_validated_but_dropped(tmp_path):
    s = load_config(write(tmp_path, """
        output.console.enabled: true
        packetbeat.protocols:
        - type: dns
          enabled: false
          ports: []
        - type: http
          ports: [53]
    """))
    assert [p["type"] for p in s.protocols] == ["http"]


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [unclosed\n"))


def test_shipped_config_is_valid():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    s = load_config(str(root / "packetbeat.yml"))
    assert s.output["file"]["filename"] == "packetbeat"
    # every Packetbeat protocol, each with an analyser in this build, on Packetbeat 8's default ports
    from worker.protos.registry import load_registry
    reg = load_registry(False)
    types = {p["type"] for p in s.protocols}
    assert types == set(reg.names()) and all(reg.get(t).implemented for t in types)
    http = next(p for p in s.protocols if p["type"] == "http")
    assert http["ports"] == [80, 8080, 8000, 5000, 8002] and s.flows is not None
