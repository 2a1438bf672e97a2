"""A worker killed (SIGKILL) in the middle of a file run: restarted, its unacknowledged
packet batches replayed (shared/replay.py); every event of the other shards is delivered
exactly once, the run ends with exit 1 naming the shard and the packets sent again.

Real processes and signals on a generated HTTP capture (bench/gen_http_pcap.py), compared
shard by shard (shared/shard.py over each event's 5-tuple) with a run that was not disturbed.
"""
from __future__ import annotations

import collections
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from shared.shard import shard_of
from tests.helpers import ROOT, read_events

WORKERS = 3
SEEDS = [1, 2, 3]
VOLATILE = ("agent", "host", "ecs")


def _config(tmp, name):
    out = tmp / ("out-" + name)
    cfg = tmp / (name + ".yml")
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
        "output.file": {"path": str(out), "filename": "events"},
        "cluster.workers": WORKERS,
    }))
    return cfg, out


def _start(cfg, pcap):
    return subprocess.Popen([sys.executable, "-m", "coordinator", "-c", str(cfg), "-I", str(pcap), "-e"],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _cmdline(proc) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:          # gone, or a zombie not reaped yet
        return ""


def _lines(out) -> int:
    return sum(f.read_bytes().count(b"\n") for f in out.rglob("*") if f.is_file()) if out.exists() else 0


def _key(ev) -> str:
    return json.dumps({k: v for k, v in ev.items() if k not in VOLATILE}, sort_keys=True)


def _shard(ev) -> int:
    s, d = ev["source"], ev["destination"]
    return shard_of(6, ipaddress.ip_address(s["ip"]).packed, s["port"],
                    ipaddress.ip_address(d["ip"]).packed, d["port"], WORKERS)


def _by_shard(events):
    out = collections.defaultdict(collections.Counter)
    for ev in events:
        out[_shard(ev)][_key(ev)] += 1
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    pcap = tmp / "http.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_http_pcap.py"), str(pcap), "--packets", "60000",
                    "--connections", "200", "--seed", "7"], check=True, capture_output=True)
    cfg, out = _config(tmp, "reference")
    p = _start(cfg, pcap)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    ref = read_events(out)
    assert len(ref) > 5000
    by = _by_shard(ref)
    assert all(max(c.values()) == 1 for c in by.values())      # every transaction is distinct
    return tmp, pcap, by


def _run_and_kill(tmp, pcap, ref, name, victim, at_fraction, twice=False):
    cfg, out = _config(tmp, name)
    p = _start(cfg, pcap)
    t0 = time.monotonic()
    try:
        at = int(at_fraction * sum(sum(c.values()) for c in ref.values()))
        deadline = time.time() + 60
        while _lines(out) < at:
            assert p.poll() is None and time.time() < deadline, "the run ended before the kill"
            time.sleep(0.01)
        killed = []
        for _ in range(2 if twice else 1):
            deadline = time.time() + 20
            while True:
                children = psutil.Process(p.pid).children()
                workers = [c for c in children if "coordinator.child worker --index %d" % victim
                           in _cmdline(c) and c.pid not in killed]
                if workers:
                    break
                assert p.poll() is None and time.time() < deadline, \
                    (p.poll(), [_cmdline(c) for c in children], _lines(out))
                time.sleep(0.02)
            workers[0].send_signal(signal.SIGKILL)
            killed.append(workers[0].pid)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert time.monotonic() - t0 < 50, "the drain waited for the coordinator's safety net"
    assert "worker-%d exited with signal SIGKILL and was restarted" % victim in err, err[-3000:]
    got = _by_shard(read_events(out))
    for i in range(WORKERS):
        if i == victim:
            continue
        missing = ref[i] - got[i]
        extra = got[i] - ref[i]
        assert not missing and not extra, "shard %d: %d missing, %d extra" % (i, sum(missing.values()),
                                                                             sum(extra.values()))
    # the victim's shard: nothing twice; what differs from the reference is bounded by what was open
    assert max(got[victim].values()) == 1
    same = sum((got[victim] & ref[victim]).values())
    assert same >= 0.5 * sum(ref[victim].values()), (same, sum(ref[victim].values()))
    return err, got, same


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_worker_is_replayed(capture, seed):
    """Killed at a random point of the run (once 5-50 % of the events are out)."""
    tmp, pcap, ref = capture
    rnd = random.Random(seed)
    victim = seed % WORKERS
    err, got, same = _run_and_kill(tmp, pcap, ref, "seed%d" % seed, victim, rnd.uniform(0.05, 0.5))
    m = re.search(r"worker-%d restarted 1 time\(s\), (\d+) packets sent again, (\d+) transactions cut on (\d+) "
                  r"connections" % victim, err)
    assert m and int(m.group(1)) > 0, err[-3000:]       # the kill landed mid-run
    missing = sum((ref[victim] - got[victim]).values())
    trans, conns = int(m.group(2)), int(m.group(3))
    print("seed %d: worker-%d, %s packets sent again, %d transactions cut on %d connections; its shard: %d of %d "
          "reference events, %d missing, %d others" % (seed, victim, m.group(1), trans, conns, same,
                                                       sum(ref[victim].values()), missing,
                                                       sum((got[victim] - ref[victim]).values())))
    # every transaction missing from the victim's shard was in flight on a connection counted as cut
    # (none, when the kill lands where every open connection's segments were published: seen once)
    assert trans <= missing <= conns, (trans, missing, conns)
    assert re.search(r"packetbeat: done: .*; .*%d transactions on %d connections cut by a worker restart"
                     % (trans, conns), err), err[-2000:]


def test_killed_twice_and_late(capture):
    """Killed once a third of the events are out, and the restarted worker killed again as soon as
    it is up: the run still ends by itself (no 60 s safety net) with the other shards complete.
    (At 60 % the faster capture and workers sometimes finished the run before the restarted
    worker could be seen and killed.)"""
    tmp, pcap, ref = capture
    err, _, _ = _run_and_kill(tmp, pcap, ref, "twice", 1, 0.35, twice=True)
    assert "forced_eos" not in err
    # the second kill may land once the restarted worker had nothing left to do (the capture gone)
    assert err.count("Exiting: worker-1 exited with signal SIGKILL and was restarted") + err.count(
        "Exiting: worker-1 exited with signal SIGKILL after the capture had every acknowledgement") == 2, err[-3000:]
    print("twice:", [ln for ln in err.splitlines() if ln.startswith("Exiting")])
