"""The CLI with Packetbeat 8's stock processors block (if/then/else with
add_host_metadata, add_cloud_metadata, add_docker_metadata,
detect_mime_type) and per-protocol processors, on a real capture."""
from __future__ import annotations

import socket
import time

from tests.helpers import PCAPS, run_packetbeat

STOCK = [
    {"if.contains.tags": "forwarded",
     "then": [{"drop_fields": {"fields": ["host"]}}],
     "else": [{"add_host_metadata": None}]},
    {"add_cloud_metadata": {"timeout": "1s"}},
    {"add_docker_metadata": None},
    {"detect_mime_type": {"field": "http.request.body.content", "target": "http.request.mime_type"}},
    {"detect_mime_type": {"field": "http.response.body.content", "target": "http.response.mime_type"}},
]
HTTP = {"type": "http", "ports": [80, 8080], "include_body_for": ["json"], "send_response": False,
        "processors": [{"drop_event.when.equals.http.response.status_code": 404},
                       {"add_fields": {"target": "", "fields": {"labels.stage": "proto"}}}]}


def test_stock_processors_block(tmp_path):
    t = time.monotonic()
    proc, events = run_packetbeat(tmp_path, PCAPS / "http_sample.pcap", protocols=[HTTP],
                                  extra_cfg={"processors": STOCK, "tags": ["lab"], "name": "probe-1"})
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t < 60
    assert events and not any(ev["http"]["response"]["status_code"] == 404 for ev in events)
    hostname = socket.gethostname()
    posts = 0
    for ev in events:
        assert ev["labels"] == {"stage": "proto"} and ev["tags"] == ["lab"]
        # add_host_metadata replaced host.name (the beat's name) with the host's facts
        assert ev["host"]["hostname"] == hostname and ev["host"]["name"] == hostname and ev["host"]["os"]["type"] == "linux"
        assert ev["agent"]["name"] == "probe-1" and ev["agent"]["type"] == "packetbeat"
        assert "cloud" not in ev and "container" not in ev        # no cloud, no Docker socket here
        if ev["method"] in ("POST", "PUT"):
            assert ev["http"]["request"]["mime_type"] == "application/json"
            posts += 1
    assert posts
    # one agent identity across the workers and the publisher
    assert len({(ev["agent"]["id"], ev["agent"]["ephemeral_id"]) for ev in events}) == 1


def test_forwarded_tag_drops_host(tmp_path):
    proc, events = run_packetbeat(tmp_path, PCAPS / "dns_real.pcap", protocols=[{"type": "dns", "ports": [10053]}],
                                  extra_cfg={"processors": STOCK[:1], "tags": ["forwarded"]})
    assert proc.returncode == 0, proc.stderr
    assert events and all("host" not in ev and ev["tags"] == ["forwarded"] for ev in events)


def test_bad_processor_is_a_config_error(tmp_path):
    proc, events = run_packetbeat(tmp_path, PCAPS / "dns_real.pcap",
                                  extra_cfg={"processors": [{"add_kubernetes_metadata": None}]})
    assert proc.returncode != 0 and not events
    assert "processors[0].add_kubernetes_metadata: processor add_kubernetes_metadata is not available" in proc.stderr
