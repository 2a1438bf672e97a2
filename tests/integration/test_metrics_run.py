"""A whole run with logging.metrics.period short and the stats endpoint on: the
periodic lines carry the counters of the traffic, add up to the totals, and
GET /stats answers while the run goes on (file mode: the period follows the clock)."""
from __future__ import annotations

import ast
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import yaml

from tests.helpers import PCAPS, ROOT


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def test_periodic_metrics_and_stats_endpoint(tmp_path):
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
        "output.file": {"path": str(tmp_path / "out"), "filename": "events"},
        "cluster.workers": 2, "logging.metrics.period": "400ms",
        "http": {"enabled": True, "host": "127.0.0.1", "port": 0},
    }))
    log = tmp_path / "pb.log"
    with open(log, "w") as fh:
        p = subprocess.Popen([sys.executable, "-m", "coordinator", "-c", str(cfg), "-I",
                              str(PCAPS / "http_sample.pcap"), "-e", "-N", "-l", "0"],
                             cwd=str(ROOT), stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("Non-zero metrics") < 3:
                assert p.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            url = re.search(r"Metrics endpoint listening on: (http://[\d.]+:\d+)", log.read_text()).group(1)
            stats = json.load(urllib.request.urlopen(url + "/stats", timeout=10))
            assert stats["capture"]["packets"] > 0 and stats["worker"]["packets"] > 0, stats
            assert stats["beat"]["info"]["uptime"]["ms"] > 0
            p.send_signal(signal.SIGINT)
            assert p.wait(60) == 0, log.read_text()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = log.read_text()
    lines = re.findall(r"Non-zero metrics in the last (\S+)\t(\{.*\})", text)
    assert len(lines) >= 3
    summed: collections.Counter = collections.Counter()
    for period, body in lines:
        metrics = _flatten(json.loads(body)["monitoring"]["metrics"])
        assert metrics.pop("beat.info.uptime.ms") > 0
        summed.update(metrics)
    assert lines[0][0] == "400ms"
    totals = ast.literal_eval(text.split("Total metrics: ")[1].splitlines()[0])
    assert dict(summed) == {k: v for k, v in totals.items() if v}     # the lines add up to the totals
    # counters that match the traffic: the packets the capture sent reached the workers (the capture
    # counts every 1024 packets, so a stop in the middle of a file leaves < 1024 of them uncounted),
    # and every event was discarded (-N)
    assert 0 <= totals["worker.packets"] - totals["capture.packets"] < 1024, totals
    assert totals["worker.events"] == totals["publisher.discarded"] > 0
    # each periodic line shows work going on while the file is replayed
    assert sum(1 for _, body in lines if "packets" in json.loads(body)["monitoring"]["metrics"].get("capture", {})) >= 2
