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


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_worker_is_replayed(capture, seed):
    tmp, pcap, ref = capture
    rnd = random.Random(seed)
    victim = seed % WORKERS
    cfg, out = _config(tmp, "seed%d" % seed)
    p = _start(cfg, pcap)
    try:
        # kill at a random point of the run: once 5-50 % of the events are out
        at = int(rnd.uniform(0.05, 0.5) * sum(sum(c.values()) for c in ref.values()))
        deadline = time.time() + 60
        while _lines(out) < at:
            assert p.poll() is None and time.time() < deadline, "the run ended before the kill"
            time.sleep(0.01)
        children = psutil.Process(p.pid).children()
        workers = [c for c in children if "coordinator.child worker --index %d" % victim in " ".join(c.cmdline())]
        assert len(workers) == 1, (p.poll(), [" ".join(c.cmdline()) for c in children], len(read_events(out)))
        workers[0].send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert "worker-%d exited with signal SIGKILL and was restarted" % victim in err, err[-3000:]
    m = re.search(r"worker-%d restarted 1 time\(s\), (\d+) packets sent again" % victim, err)
    assert m and int(m.group(1)) > 0, err[-3000:]       # the kill landed mid-run
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
    print("seed %d: worker-%d, %s packets sent again; its shard: %d of %d reference events, %d others"
          % (seed, victim, m.group(1), same, sum(ref[victim].values()), sum((got[victim] - ref[victim]).values())))
    assert same >= 0.5 * sum(ref[victim].values()), (same, sum(ref[victim].values()))
