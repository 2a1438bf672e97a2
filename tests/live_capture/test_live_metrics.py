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
    # (each process reports on its own period: wait for the workers' line too, the publisher's
    # memory queue may send the last event before the worker's next report)
    while _summed(run.text())["publisher.published"] < 6 or _summed(run.text())["worker.events"] < 6:
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


def test_stuck_workers_drops_are_counted_not_grown(veth, live, tmp_path):
    """Both workers stopped (SIGSTOP) while a 4 MB download goes by: the capture
    waits up to its bound for room, then drops and counts; every packet it
    read is either analysed or counted as dropped; the run still drains."""
    import os
    import signal
    import sys

    import psutil

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "big.bin").write_bytes(os.urandom(4 << 20))
    srv = subprocess.Popen(veth.srv(sys.executable, "-m", "http.server", "8080", "--bind", veth.srv_ip),
                           cwd=str(tmp_path / "www"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = live(veth, {"packetbeat.interfaces.device": veth.srv_dev, "logging.metrics.period": "500ms",
                          "cluster.hwm": 1, "cluster.batch_packets": 1})
        run.wait_ready()
        deadline = time.monotonic() + 20
        while subprocess.run(veth.cli("curl", "-s", "-o", "/dev/null", "http://%s:8080/" % veth.srv_ip)).returncode:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        workers = [c for c in psutil.Process(run.proc.pid).children() if "worker" in " ".join(c.cmdline())]
        assert len(workers) == 2
        for w in workers:
            w.send_signal(signal.SIGSTOP)
        try:
            r = subprocess.run(veth.cli("curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                                        "http://%s:8080/big.bin" % veth.srv_ip), capture_output=True, text=True,
                               timeout=60)
            assert r.stdout == str(4 << 20)
            deadline = time.monotonic() + 30
            while _summed(run.text())["capture.dropped_queue_full"] == 0:
                assert time.monotonic() < deadline, run.text()
                time.sleep(0.2)
        finally:
            for w in workers:
                w.send_signal(signal.SIGCONT)
        assert run.stop() == 0, run.text()
    finally:
        srv.kill()
        srv.wait()
    totals = ast.literal_eval(run.text().split("Total metrics: ")[1].splitlines()[0])
    assert totals["capture.dropped_queue_full"] > 0 and totals["capture.queue_wait_ms"] >= 900, totals
    # nothing silently lost: every packet read was analysed or counted as dropped
    assert totals["capture.packets"] == totals["worker.packets"] + totals["capture.dropped_queue_full"], totals
