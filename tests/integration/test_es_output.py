"""The proof: nothing lost, nothing doubled, through refusal, 429s and a SIGKILLed publisher.

A capture with a known number of transactions (http_sample.pcap looped) goes
through the whole pipeline into the test Elasticsearch server while the
server refuses connections for 30 s (the issue's figure), then rejects 10%
of items with 429, and the
publisher is killed with SIGKILL once mid-run (the supervisor restarts it,
it resumes from its disk spool, the workers resend what it had not
acknowledged). The server must end with exactly the documents a plain
file-output run produces: same count, same content, no duplicates.

With ``ES_URL`` set these run against that cluster, the faults injected by
tests/estarget.FaultProxy in front of it; indices are named with the
target's unique prefix and deleted afterwards.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from tests.estarget import es_target
from tests.helpers import PCAPS, ROOT, canonical, run_packetbeat

SAMPLE = PCAPS / "http_sample.pcap"
LOOPS = 100
REFUSE_SECONDS = 30.0
PROTOCOLS = [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}]


def es_config(tmp_path, url: str, prefix: str = "pb", **queue) -> dict:
    disk = {"path": str(tmp_path / "spool"), "max_size": "64MB", "fsync": "never"}
    disk.update(queue)
    return {
        "packetbeat.interfaces.device": "any",
        "packetbeat.protocols": PROTOCOLS,
        "output.elasticsearch": {"hosts": [url], "index": prefix + "-%{+yyyy.MM.dd}", "bulk_max_size": 500,
                                 "backoff": {"init": "100ms", "max": "500ms"}, "max_retries": 2,
                                 "timeout": "5s"},
        "queue.disk": disk,
        "cluster.workers": 2,
        "cluster.max_restarts": 3,
        "logging.to_stderr": True,
    }


def start(tmp_path, cfg: dict, loops: int) -> subprocess.Popen:
    path = tmp_path / "packetbeat.yml"
    path.write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "coordinator", "-c", str(path), "-I", str(SAMPLE), "-l", str(loops)]
    return subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def publisher_of(proc: subprocess.Popen, wait: float = 20.0) -> psutil.Process:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children():
            try:
                if "publisher" in child.cmdline():
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)
    raise AssertionError("no publisher process found")


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    if not SAMPLE.exists():
        pytest.skip("%s is absent" % SAMPLE)
    proc, events = run_packetbeat(tmp_path_factory.mktemp("ref"), SAMPLE, PROTOCOLS, args=["-l", str(LOOPS)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(events) == 30 * LOOPS
    return canonical(events)


def test_refusal_429_and_publisher_sigkill_lose_nothing(tmp_path, expected):
    """The server refuses connections for the whole file run, and the publisher is
    SIGKILLed once mid-run: the run still ends (exit 0) once every event is safely in
    the disk spool, saying how many wait and where; the next start (another capture,
    the same spool, the server back and rejecting 10% with 429) sends them first."""
    with es_target(faults=True) as es:
        es.stop()
        t0 = time.monotonic()
        proc = start(tmp_path, es_config(tmp_path, es.url, es.prefix), LOOPS)
        try:
            pub = publisher_of(proc)
            spool = tmp_path / "spool"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:         # kill it once it holds spooled batches
                if spool.exists() and sum(f.stat().st_size for f in spool.glob("*.seg")) > 1_000_000:
                    break
                time.sleep(0.02)
            os.kill(pub.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err[-3000:]
        assert time.monotonic() - t0 < 120
        assert "restarting publisher" in err
        assert "connection refused" in err                   # refused sends were retried
        waiting = re.search(r"(\d+) events \(\d+ batches\) were not delivered and wait in the disk queue (\S+) ", err)
        assert waiting, err[-3000:]
        assert int(waiting.group(1)) == len(expected) and waiting.group(2) == str(spool)
        es.start()
        es.faults.reject_429 = 0.10
        assert es.count(es.prefix + "-*") == 0
        # the next start: the spooled events go out, then this run's own
        other = PCAPS / "http_real.pcap"
        (tmp_path / "file").mkdir()
        proc2, own = run_packetbeat(tmp_path / "file", other, PROTOCOLS)
        assert proc2.returncode == 0
        cfg = es_config(tmp_path, es.url, es.prefix)
        path = tmp_path / "packetbeat2.yml"
        path.write_text(yaml.safe_dump(cfg))
        proc = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(path), "-I", str(other)],
                              cwd=str(ROOT), capture_output=True, text=True, timeout=180,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "wait in the disk queue" not in proc.stderr
        docs = es.docs(es.prefix + "-*")
        assert es.bulk_items > len(docs)          # 429s and resends did happen
        assert len(docs) == len(expected) + len(own)
        assert canonical(list(docs.values())) == sorted(expected + canonical(own))
        ids = {k for _, k in docs}
        assert len(ids) == len(docs)
        # the spool was emptied: acknowledged segments deleted, state says all done
        state = json.loads((tmp_path / "spool" / "state.json").read_text())
        assert sorted(state["meta"]["done"]) == ["worker-0", "worker-1"]


def test_rerun_of_the_same_spool_adds_nothing(tmp_path, expected):
    """A second publisher on a drained spool (and the server already full) writes no duplicate."""
    with es_target(faults=True) as es:
        proc = start(tmp_path, es_config(tmp_path, es.url, es.prefix), LOOPS)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        first = es.docs(es.prefix + "-*")
        assert len(first) == len(expected)
        es.faults.drop_bulk = 3                    # answers lost: the resends meet 409s
        for f in (tmp_path / "spool").iterdir():
            f.unlink()
        proc = start(tmp_path, es_config(tmp_path, es.url, es.prefix), LOOPS)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert es.docs(es.prefix + "-*").keys() == first.keys()


def test_full_spool_makes_the_workers_wait(tmp_path, expected):
    """A spool that holds about two worker batches while the server refuses: the
    workers block (file mode waits), nothing is dropped."""
    with es_target(faults=True) as es:
        es.refuse_for(2.0)
        cfg = es_config(tmp_path, es.url, es.prefix, max_size="1MB", segment_size="128KB")
        proc = start(tmp_path, cfg, LOOPS)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert "publisher.spool_full_waits" in err
        docs = es.docs(es.prefix + "-*")
        assert canonical(list(docs.values())) == expected


def test_publisher_killed_after_every_eos_was_spooled(tmp_path, expected):
    """Killed once the spool says every worker is done but events are still
    waiting for the (slow, 30% 429) server: the restarted publisher finishes
    the output, answers any resent eos, and the run ends complete."""
    with es_target(faults=True) as es:
        es.faults.reject_429 = 0.3
        es.faults.delay = 0.02
        proc = start(tmp_path, es_config(tmp_path, es.url, es.prefix), LOOPS)
        state = tmp_path / "spool" / "state.json"
        try:
            pub = publisher_of(proc)
            deadline = time.monotonic() + 60
            killed = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    meta = json.loads(state.read_text())["meta"]
                except (OSError, ValueError, KeyError):
                    meta = {}
                if len(meta.get("done", [])) == 2 and es.count(es.prefix + "-*") < len(expected):
                    os.kill(pub.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.01)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if not killed:
            pytest.skip("the run finished before the moment to kill came (machine too fast)")
        assert proc.returncode == 0, err[-3000:]
        assert "restarting publisher" in err
        assert canonical(list(es.docs(es.prefix + "-*").values())) == expected
        # totals are per run: what the dead publisher had published is not forgotten nor counted twice
        assert "'publisher.published': %d," % len(expected) in err, err[-3000:]


def test_publisher_whose_spool_path_is_unusable_ends_the_run_at_once(tmp_path):
    """The spool path is a file: the publisher says so in one line (no traceback) and
    exits 2; restarting cannot help, so the coordinator ends the run with an error."""
    if not SAMPLE.exists():
        pytest.skip("%s is absent" % SAMPLE)
    bad = tmp_path / "not-a-dir"
    bad.write_text("x")
    cfg = es_config(tmp_path, "http://127.0.0.1:1", path=str(bad))
    cfg["cluster.max_restarts"] = 2
    proc = start(tmp_path, cfg, 1)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "cannot create spool directory %s" % bad in err
    assert "publisher cannot run (see the error above); not restarting it" in err
    assert "Traceback" not in err and "restarting publisher" not in err
