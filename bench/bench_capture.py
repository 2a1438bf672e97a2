"""Capture fan-out: read the file, decode to the 5-tuple, shard and batch (no sockets).

    python bench/bench_capture.py [--packets N] [--workers W]
"""
from __future__ import annotations

import argparse
import collections
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import compiled_line, env_line, http_capture  # noqa: E402
from coordinator.capture.pcapfile import open_capture  # noqa: E402
from coordinator.capture.process import Sharder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    path, _ = http_capture(a.packets)
    best = None
    for _ in range(a.repeat):
        sent = collections.Counter()

        def send(i, records):
            sent[i] += len(records)

        sh = Sharder(a.workers, send)
        r = open_capture(str(path))
        t0 = time.perf_counter()
        sh.feed(iter(r))
        sh.flush()
        dt = time.perf_counter() - t0
        r.close()
        total = sh.counters["capture.packets"] + sh.counters["capture.skipped_empty_tcp"]
        rate = total / dt
        best = rate if best is None or rate > best else best
    print("capture fan-out: %d packets (%d forwarded, %d empty ACKs skipped) to %d shards: best %.0f packets/s, "
          "%s  [%s]" % (total, sh.counters["capture.packets"], sh.counters["capture.skipped_empty_tcp"], a.workers,
                        best, compiled_line(), env_line()))


if __name__ == "__main__":
    main()
