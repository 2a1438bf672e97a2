"""One worker's engine on HTTP: decode + TCP reassembly + HTTP plugin (no sockets).

    python bench/bench_worker.py [--packets N]

Prints the best rate over ``--repeat`` runs by wall time and by CPU time
(``time.process_time``: less sensitive to other work on a shared machine), and
whether the hot modules ran compiled (setup.py) or as pure Python.
"""
from __future__ import annotations

import argparse
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import compiled_line, env_line, http_capture, read_records  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.registry import load_registry  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's GC settings (the worker process applies worker.process.tune_gc)")
    a = ap.parse_args()
    if not a.default_gc:
        # before the records are read: in a worker they are short-lived, not frozen
        from worker.process import tune_gc
        tune_gc()
    path, transactions = http_capture(a.packets)
    records = [list(r) for r in read_records(path)]
    batches = [records[i:i + 128] for i in range(0, len(records), 128)]
    reg = load_registry()
    best = best_cpu = None
    for _ in range(a.repeat):
        eng = Engine([{"type": "http", "ports": [80, 8080]}], reg)
        events = 0
        t0 = time.perf_counter()
        c0 = time.process_time()
        if a.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
        for b in batches:
            eng.handle(b)
            events += len(eng.take_events())
        eng.finish()
        events += len(eng.take_events())
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        if a.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        rate = len(records) / dt
        best = rate if best is None or rate > best else best
        rate_cpu = len(records) / dc
        best_cpu = rate_cpu if best_cpu is None or rate_cpu > best_cpu else best_cpu
    print("worker (http): %d packets, %d events (%d transactions generated): best %.0f packets/s "
          "(%.0f per CPU-second), %s  [%s]"
          % (len(records), events, transactions, best, best_cpu, compiled_line(), env_line()))
    if events != transactions:
        print("MISMATCH: events %d != transactions %d" % (events, transactions))
        sys.exit(1)


if __name__ == "__main__":
    main()
