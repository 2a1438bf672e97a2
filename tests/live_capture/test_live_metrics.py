"""Live mode: periodic metrics lines and the stats endpoint while traffic flows."""
from __future__ import annotations

import ast
import collections
import json
import re
import subprocess
import time

from tests.live_capture.test_live_http import curl
from tests.integration.test_metrics_run import _flatten


def _summed(text: str) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for body in re.findall(r"Non-zero metrics in the last \S+\t(\{.*\})", text):
        m = _flatten(json.loads(body)["monitoring"]["metrics"])
        m.pop("beat.info.uptime.ms")
        total.update(m)
    return total


def test_live_metrics_lines_and_stats_endpoint(veth, http_server, live):
    run = live(veth, {"packetbeat.interfaces.device": veth.srv_dev, "logging.metrics.period": "500ms",
                      "http.enabled": True, "http.host": "127.0.0.1", "http.port": 0})
    run.wait_ready()
    curl(veth, 6, "m")
    # the periodic lines alone (before any stop) account for the six transactions
    deadline = time.monotonic() + 30
    while _summed(run.text())["publisher.published"] < 6:
        assert time.monotonic() < deadline, run.text()
        time.sleep(0.2)
    got = _summed(run.text())
    assert got["worker.events"] == 6 and got["publisher.events"] == 6
    assert got["tcp.connections"] == 6
    assert got["capture.packets"] == got["worker.packets"] == got["capture.kernel_packets"] > 0
    url = re.search(r"Metrics endpoint listening on: (http://[\d.]+:\d+)", run.text()).group(1)
    r = subprocess.run(veth.srv("curl", "-s", url + "/stats"), capture_output=True, text=True, timeout=20)
    stats = json.loads(r.stdout)
    assert stats["publisher"]["published"] == 6 and stats["capture"]["packets"] == got["capture.packets"], stats
    assert stats.get("capture", {}).get("dropped_queue_full", 0) == 0
    assert run.stop() == 0, run.text()
    totals = ast.literal_eval(run.text().split("Total metrics: ")[1].splitlines()[0])
    assert dict(_summed(run.text())) == {k: v for k, v in totals.items() if v}
