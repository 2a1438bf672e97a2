"""Several capture processes for one file (``cluster.captures: 2`` with ``-I``;
coordinator/capture/filesplit.py): real processes give exactly the events of a
one-capture run, and a worker killed mid-run is replayed by the capture that feeds it."""
from __future__ import annotations

import ast
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from tests.helpers import PCAPS, ROOT, canonical, read_events, run_packetbeat
from tests.integration.test_worker_crash import WORKERS, _by_shard, _cmdline, _lines, _start


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("filesplit")
    pcap = tmp / "http.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_http_pcap.py"), str(pcap), "--packets", "100000",
                    "--connections", "200", "--seed", "7", "--small"], check=True, capture_output=True)
    return tmp, pcap


def _total(err: str, key: str) -> int:
    m = re.search(r"Total metrics: (\{.*\})", err)
    return ast.literal_eval(m.group(1)).get(key, 0)


@pytest.mark.parametrize("pcap,workers", [("generated", 3), ("http_real.pcap", 2)])
def test_two_captures_give_the_one_capture_events(tmp_path, generated, pcap, workers):
    path = generated[1] if pcap == "generated" else PCAPS / pcap
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    ref_proc, ref = run_packetbeat(tmp_path / "one", path, workers=workers)
    assert ref_proc.returncode == 0, ref_proc.stderr[-3000:]
    proc, got = run_packetbeat(tmp_path / "two", path, workers=workers, extra_cfg={"cluster.captures": 2})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(ref) > 20 and canonical(got) == canonical(ref)
    for key in ("capture.packets", "capture.skipped_empty_tcp", "worker.packets"):
        assert _total(proc.stderr, key) == _total(ref_proc.stderr, key) > 0, key


def test_killed_worker_replayed_by_its_capture(generated):
    tmp, pcap = generated
    ref_cfg = tmp / "ref.yml"
    cfg = tmp / "killed.yml"
    out_ref, out = tmp / "out-ref", tmp / "out-killed"
    for path, o, extra in ((ref_cfg, out_ref, {}), (cfg, out, {"cluster.captures": 2})):
        path.write_text(yaml.safe_dump(dict({"packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
                                             "output.file": {"path": str(o), "filename": "events"},
                                             "cluster.workers": WORKERS}, **extra)))
    p = _start(ref_cfg, pcap)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    ref = _by_shard(read_events(out_ref))
    victim = 1                                      # fed by capture 1 (shard 1 % 2 captures)
    p = _start(cfg, pcap)
    try:
        deadline = time.time() + 60
        # kill early: the whole run takes about a second now, and a worker that has already
        # finished its shard cannot be killed mid-stream
        while _lines(out) < 0.1 * sum(sum(c.values()) for c in ref.values()):
            assert p.poll() is None and time.time() < deadline, "the run ended before the kill"
            time.sleep(0.005)
        workers = [c for c in psutil.Process(p.pid).children()
                   if "coordinator.child worker --index %d" % victim in _cmdline(c)]
        assert workers, "worker-%d had already exited at 10%% of the events" % victim
        workers[0].send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "forced_eos" not in err
    m = re.search(r"capture-1: worker-%d restarted 1 time\(s\), (\d+) packets sent again" % victim, err)
    assert m and int(m.group(1)) > 0, err[-3000:]
    got = _by_shard(read_events(out))
    for i in range(WORKERS):
        if i != victim:
            assert got[i] == ref[i], "shard %d differs" % i
    assert max(got[victim].values()) == 1
    assert sum((got[victim] & ref[victim]).values()) >= 0.5 * sum(ref[victim].values())
