"""Supervision: an orderly drain on SIGINT, and a dead worker ends the run with an error."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import yaml

from tests.helpers import PCAPS, ROOT, read_events


def start(tmp_path, extra=()):
    out = tmp_path / "out"
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
        "output.file": {"path": str(out), "filename": "events"},
        "cluster.workers": 2, "cluster.captures": 2,
    }))
    p = subprocess.Popen([sys.executable, "-m", "coordinator", "-c", str(cfg), "-I", str(PCAPS / "http_sample.pcap"),
                          "-e", "-l", "0", *extra], cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return p, out


def wait_for_events(out, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(read_events(out)) >= n:
            return
        time.sleep(0.2)
    raise AssertionError("fewer than %d events after %ds" % (n, timeout))


def test_sigint_drains_and_exits_0(tmp_path):
    p, out = start(tmp_path)
    try:
        wait_for_events(out, 100)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    events = read_events(out)
    # every sample replay is 30 transactions; a drain publishes everything read, so whole
    # connections are never cut (the requests still open are flushed with a note)
    assert len(events) >= 100
    assert "Total metrics" in err


def _cmdline(proc) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:          # gone, or a zombie not reaped yet
        return ""


def test_dead_worker_is_restarted_and_fails_the_run(tmp_path):
    """File mode: a killed worker is restarted (its unacknowledged batches are replayed,
    tests/integration/test_worker_crash.py), and the run still ends with exit 1."""
    p, out = start(tmp_path)
    try:
        wait_for_events(out, 30)
        children = psutil.Process(p.pid).children()
        workers = [c for c in children if "worker" in " ".join(c.cmdline())]
        assert len(workers) == 2
        workers[0].kill()
        deadline = time.time() + 30
        while True:
            now = [c for c in psutil.Process(p.pid).children() if "worker" in _cmdline(c)]
            if len(now) == 2 and workers[0].pid not in [c.pid for c in now]:
                break
            assert time.time() < deadline, "the worker was not restarted"
            time.sleep(0.1)
        n = len(read_events(out))
        wait_for_events(out, n + 60)            # the run goes on
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 1
    assert "worker-" in err and "exited with signal SIGKILL and was restarted" in err
    assert "Traceback" not in err
    # nothing is left behind
    assert len(children) == 5   # publisher, 2 workers, 2 captures (cluster.captures: 2 reads the file with two)
    gone, alive = psutil.wait_procs(children + now, timeout=5)
    assert not alive
