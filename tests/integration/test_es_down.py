"""Elasticsearch down: the memory queue waits and retries, and one SIGTERM ends any run.

Real processes (the whole pipeline), real signals, tests/esserver.py closed
(connections refused) or hanging (accepting, never answering):

- memory queue, file mode: the run keeps retrying with backoff and says so
  (host and cause) instead of dropping; when the server comes back every
  event arrives, once;
- memory queue, SIGTERM while down (refused, or hanging): the run ends within
  a few seconds, exit 1, naming how many events were not delivered and why;
- disk queue, SIGTERM while down: the run ends within a few seconds, says how
  many events wait in the disk queue, and the next run delivers exactly those
  (nothing accepted into the disk queue is lost).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from shared.version import VERSION
from tests.esserver import EsServer
from tests.helpers import PCAPS, ROOT

SAMPLE = PCAPS / "http_sample.pcap"           # 30 HTTP transactions
PROTOCOLS = [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}]
STOP_WITHIN = 10.0                            # seconds from SIGTERM to exit ("a few seconds", on a loaded machine)

pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="http_sample.pcap is absent")


def config(tmp_path, url: str, **extra) -> dict:
    cfg = {
        "packetbeat.interfaces.device": "any",
        "packetbeat.protocols": PROTOCOLS,
        "output.elasticsearch": {"hosts": [url], "backoff": {"init": "200ms", "max": "1s"}, "timeout": "3s"},
        "queue.mem": {"flush": {"timeout": "100ms"}},
        "cluster.workers": 2,
        "logging.to_stderr": True,
        "path.data": str(tmp_path / "data"),
    }
    cfg.update(extra)
    return cfg


def start(tmp_path, cfg: dict, loops: int = 1, name: str = "run"):
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / ("%s.log" % name), "w+")
    argv = [sys.executable, "-m", "coordinator", "-c", str(path), "-I", str(SAMPLE), "-l", str(loops)]
    proc = subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=log, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    proc.log_path = tmp_path / ("%s.log" % name)
    return proc


def text(proc) -> str:
    return proc.log_path.read_text()


def wait_for(proc, pattern: str, timeout: float = 60.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, text(proc))
        if m:
            return m
        assert proc.poll() is None, "ended (%s) before %r:\n%s" % (proc.returncode, pattern, text(proc)[-3000:])
        time.sleep(0.1)
    raise AssertionError("no %r within %.0f s:\n%s" % (pattern, timeout, text(proc)[-3000:]))


def stop(proc) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, time.monotonic() - t0


def test_memory_queue_file_mode_waits_for_elasticsearch_then_delivers_everything(tmp_path):
    es = EsServer().start()
    try:
        es.stop()                                        # refused from the start
        proc = start(tmp_path, config(tmp_path, es.url))
        try:
            wait_for(proc, r"attempt 3 failed")
            time.sleep(2.0)                              # well past the old give-up point: still there
            assert proc.poll() is None
            log = text(proc)
            assert "Elasticsearch at %s: connection refused" % es.url in log
            assert "loading the index template and ILM policy" in log    # the first step on connect
            es.start()                                   # back, on the same port
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = text(proc)
        assert rc == 0, log[-3000:]
        assert "output reachable again after" in log
        docs = es.docs("packetbeat-*")
        assert len(docs) == 30                           # each event once (deterministic ids)
        assert all(idx.startswith(".ds-packetbeat-") for idx, _ in docs)    # the data stream's backing index
        assert set(es.data_streams()) == {"packetbeat-" + VERSION}
        assert "not delivered" not in log
    finally:
        es.stop()


@pytest.mark.parametrize("down", ["refused", "hanging"])
def test_memory_queue_sigterm_while_elasticsearch_is_down_ends_and_counts_what_was_lost(tmp_path, down):
    es = EsServer().start()
    try:
        if down == "refused":
            es.stop()
        else:
            es.faults.delay = 120.0                      # accepts, never answers within the timeout
        cfg = config(tmp_path, es.url)
        cfg["output.elasticsearch"]["timeout"] = "60s"   # a request outlives the stop grace
        proc = start(tmp_path, cfg)
        if down == "refused":
            wait_for(proc, r"attempt 1 failed")
        else:                                            # the publisher's first request hangs
            deadline = time.monotonic() + 60
            while not es.store.requests:
                assert proc.poll() is None and time.monotonic() < deadline, text(proc)[-3000:]
                time.sleep(0.1)
            time.sleep(2.0)                              # the capture's 30 events are queued meanwhile
        rc, took = stop(proc)
        log = text(proc)
        assert took < STOP_WITHIN, log[-3000:]
        assert rc == 1, log[-3000:]
        m = re.search(r"Exiting: (\d+) events were not delivered: (.*)", log)
        assert m, log[-3000:]
        assert int(m.group(1)) == 30
        if down == "refused":
            assert m.group(2).startswith("Elasticsearch at %s: connection refused" % es.url)
        assert re.search(r"'publisher.not_delivered': 30\b", log)
    finally:
        es.faults.delay = 0
        es.stop()


def test_disk_queue_sigterm_while_elasticsearch_is_down_keeps_every_accepted_event(tmp_path):
    es = EsServer().start()
    spool = tmp_path / "spool"
    try:
        es.stop()
        extra = {"queue.disk": {"path": str(spool), "max_size": "256MB", "fsync": "never"}}
        cfg = config(tmp_path, es.url, **extra)
        del cfg["queue.mem"]
        proc = start(tmp_path, cfg, loops=0, name="first")          # loops for ever: only a stop ends it
        wait_for(proc, r"events to send again")
        time.sleep(1.0)
        rc, took = stop(proc)
        log = text(proc)
        assert took < STOP_WITHIN, log[-3000:]
        m = re.search(r"(\d+) events \(\d+ batches\) were not delivered and wait in the disk queue (\S+) "
                      r"\(the stop came while the output took none", log)
        assert m, log[-3000:]
        waiting = int(m.group(1))
        assert waiting > 0 and m.group(2) == str(spool)
        assert rc == 0, log[-3000:]                    # everything accepted is safe
        # the next run, Elasticsearch up: first what waited, then its own 30 (the same
        # documents as the first loop of the first run: the same ids, answered 409)
        es.start()
        proc = start(tmp_path, cfg, loops=1, name="second")
        rc = proc.wait(timeout=120)
        log = text(proc)
        assert rc == 0, log[-3000:]
        assert re.search(r"'publisher.published': %d\b" % (waiting + 30), log), log[-2000:]
        assert es.count("packetbeat-*") == waiting
    finally:
        es.stop()


def test_disk_queue_full_and_elasticsearch_down_one_sigterm_still_ends_the_run(tmp_path):
    """The spool is full (a small max_size), the output down, the workers wait for room:
    one SIGTERM ends the run within a few seconds; what is in the spool stays there,
    what could not get in is named as not delivered (exit 1)."""
    es = EsServer().start()
    spool = tmp_path / "spool"
    try:
        es.stop()
        cfg = config(tmp_path, es.url, **{"queue.disk": {"path": str(spool), "max_size": "4MB",
                                                          "fsync": "never"}})
        del cfg["queue.mem"]
        proc = start(tmp_path, cfg, loops=0)
        wait_for(proc, r"is full \(queue.disk.max_size")
        rc, took = stop(proc)
        log = text(proc)
        assert took < STOP_WITHIN + 5, log[-3000:]
        assert rc == 1, log[-3000:]
        assert re.search(r"Exiting: \d+ events \(and what the workers still held\) were not delivered: the disk "
                         r"queue %s was full and the output down when the run was stopped: Elasticsearch at %s: "
                         r"connection refused" % (re.escape(str(spool)), re.escape(es.url)), log), log[-3000:]
        assert re.search(r"\d+ events \(\d+ batches\) were not delivered and wait in the disk queue", log)
        assert "Traceback" not in log
    finally:
        es.stop()
