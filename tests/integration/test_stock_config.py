"""A Packetbeat 8 user's configuration runs unchanged: tests/fixtures/packetbeat8-stock.yml.

The file the 8.x packages install (every protocol on its default ports,
flows, internal_networks, the if/then/else processor block with
add_host_metadata, add_cloud_metadata, add_docker_metadata and
detect_mime_type, ``output.elasticsearch`` with ``preset: balanced``,
``setup.template.settings``, ``setup.kibana``) is run as it is, from a
scratch directory (so ``path.*`` default there), on a real capture; the only
change is ``-E`` for the test server's host. The events must arrive in the
data stream ``packetbeat-<version>`` that the publisher set up (template with
the file's template settings, ILM policy), with the fields Packetbeat 8 gives.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import pytest

from shared.version import VERSION
from tests.esserver import EsServer
from tests.helpers import PCAPS, ROOT

STOCK = ROOT / "tests" / "fixtures" / "packetbeat8-stock.yml"
SAMPLE = PCAPS / "http_sample.pcap"


@pytest.mark.skipif(not SAMPLE.exists(), reason="http_sample.pcap is absent")
def test_the_packetbeat8_stock_configuration_runs_unchanged(tmp_path):
    with EsServer() as es:
        proc = subprocess.run(
            [sys.executable, "-m", "coordinator", "-c", str(STOCK), "-I", str(SAMPLE), "-e",
             "-E", 'output.elasticsearch.hosts=["%s"]' % es.url],
            cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
            timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "applying performance preset balanced" in proc.stderr

        # setup on connect: the ILM policy and the data stream's template, with the file's settings
        name = "packetbeat-" + VERSION
        assert list(es.templates()) == [name] and list(es.policies()) == ["packetbeat"]
        tpl = es.templates()[name]
        assert tpl["index_patterns"] == [name] and tpl["data_stream"] == {}
        assert tpl["template"]["settings"]["index"]["number_of_shards"] == 1
        assert tpl["template"]["settings"]["index"]["lifecycle"] == {"name": "packetbeat"}
        (stream, backing), = es.data_streams().items()
        assert stream == name and backing[0].startswith(".ds-%s-" % name)

        docs = list(es.docs(name).values())
        kinds = collections.Counter(d["type"] for d in docs)
        assert kinds == {"http": 30, "flow": 10}            # 30 transactions; flows on, one per connection
        http = [d for d in docs if d["type"] == "http"]
        for d in http:
            assert d["event"]["dataset"] == "http" and d["event"]["kind"] == "event"
            assert d["network"]["direction"] == "internal"           # internal_networks: [private]
            assert d["network"]["protocol"] == "http" and d["network"]["community_id"].startswith("1:")
            assert d["url"]["full"].startswith("http://") and d["http"]["response"]["status_code"]
            assert d["agent"]["type"] == "packetbeat" and d["agent"]["version"] == VERSION
            # add_host_metadata (the else branch: no "forwarded" tag)
            assert d["host"]["name"] and d["host"]["os"]["type"] == "linux" and d["host"]["architecture"]
            assert "cloud" not in d and "container" not in d       # no cloud, no Docker here: nothing added
            assert "tags" not in d
        flows = [d for d in docs if d["type"] == "flow"]
        assert all(d["event"]["kind"] == "event" and d["flow"]["final"] for d in flows)
        # (Packetbeat 8 also sets network.direction on flows; this project's flows do not yet)
        assert sum(d["source"]["packets"] + d["destination"]["packets"] for d in flows) == 201
        json.dumps(docs)                                           # plain JSON all the way
