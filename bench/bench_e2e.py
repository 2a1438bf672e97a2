"""End to end: the real CLI (coordinator, capture, N workers, publisher, file output).

    python bench/bench_e2e.py [--packets N] [--workers W] [--timeout S] [--batch-packets B]
Counts the events written and fails if any transaction is missing, or if the
run takes longer than --timeout seconds (its process group is killed then).
``--batch-packets 4`` (cluster.batch_packets) makes many small batches: a
socket buffer then holds more batches than a worker's queue takes at once,
which is what the drain hang needed (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import ROOT, compiled_line, env_line, http_capture  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--batch-packets", type=int, default=0, help="cluster.batch_packets (0: the default)")
    a = ap.parse_args()
    path, transactions = http_capture(a.packets)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
               "output.file": {"path": os.path.join(tmp, "out"), "filename": "events",
                               "rotate_every_kb": 1024 * 1024},
               "cluster.workers": a.workers, "logging.to_stderr": True}
        if a.batch_packets:
            cfg["cluster.batch_packets"] = a.batch_packets
        cp = os.path.join(tmp, "pb.yml")
        with open(cp, "w") as fh:
            yaml.safe_dump(cfg, fh)
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "coordinator", "-c", cp, "-I", str(path)],
                             cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
            print(err[-3000:])
            print("end to end: no end after %.0f s (killed)" % a.timeout)
            sys.exit(1)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            print(err[-3000:])
            sys.exit(1)
        events = 0
        for dp, _, fns in os.walk(os.path.join(tmp, "out")):
            for fn in fns:
                with open(os.path.join(dp, fn), "rb") as fh:
                    events += sum(1 for _ in fh)
    packets = int(subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); "
                                  "from bench.common import read_records; print(len(read_records(%r)))"
                                  % (str(ROOT), str(path))], capture_output=True, text=True).stdout)
    print("end to end (%d workers): %d packets in %.2f s = %.0f packets/s; events %d of %d transactions, lost %d, "
          "%s  [%s]" % (a.workers, packets, dt, packets / dt, events, transactions, transactions - events,
                        compiled_line(), env_line()))
    if events != transactions:
        sys.exit(1)


if __name__ == "__main__":
    main()
