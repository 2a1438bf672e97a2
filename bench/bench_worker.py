"""One worker's engine on HTTP: decode + TCP reassembly + HTTP plugin (no sockets).

    python bench/bench_worker.py [--packets N] [--limit K] [--noop] [--skip-empty]

``--noop`` replaces the HTTP analyser by a plugin that does nothing (the
packet path alone: decode, TCP tracking, dispatch). ``--limit K`` runs only
the first K records of the capture (the whole capture is still read: with
callgrind, instructions per packet = (Ir(K) - Ir(1)) / (K - 1)).
``--skip-empty`` leaves out the data-less TCP ACKs, as the capture process
does before it ships packets to the workers (flows off).

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
    ap.add_argument("--limit", type=int, default=0, help="only the first LIMIT records")
    ap.add_argument("--noop", action="store_true", help="a do-nothing TCP plugin instead of HTTP")
    ap.add_argument("--skip-empty", action="store_true", help="leave out data-less TCP ACKs (as the capture)")
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's GC settings (the worker process applies worker.process.tune_gc)")
    a = ap.parse_args()
    if not a.default_gc:
        # before the records are read: in a worker they are short-lived, not frozen
        from worker.process import tune_gc
        tune_gc()
    path, transactions = http_capture(a.packets)
    records = every = [list(r) for r in read_records(path)]   # ``every`` stays alive: equal teardown for any --limit
    if a.skip_empty:
        from shared.decode import decode
        records = [r for r in records if _not_empty_ack(decode(r[1], r[2]))]
    if a.limit:
        records = records[:a.limit]
    batches = [records[i:i + 128] for i in range(0, len(records), 128)]
    reg = load_registry()
    if a.noop:
        from worker.plugin import ProtocolCommon
        from worker.protos.registry import Registry
        reg = Registry()
        reg.register("http", _Noop, ProtocolCommon)
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
        del eng
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        if a.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        rate = len(records) / dt
        best = rate if best is None or rate > best else best
        rate_cpu = len(records) / dc
        best_cpu = rate_cpu if best_cpu is None or rate_cpu > best_cpu else best_cpu
    print("worker (%s): %d packets, %d events (%d transactions generated): best %.0f packets/s "
          "(%.0f per CPU-second), %s  [%s]"
          % ("no-op plugin" if a.noop else "http", len(records), events, transactions, best, best_cpu, compiled_line(), env_line()))
    if events != transactions and not (a.limit or a.noop):
        print("MISMATCH: events %d != transactions %d" % (events, transactions))
        sys.exit(1)


def _not_empty_ack(dec) -> bool:
    return dec is None or dec[0] != 6 or dec[8] != dec[9] or bool(dec[5] & 0x07)


class _Noop:
    """A TCP plugin that keeps no state and emits nothing."""
    name = "noop"

    def __init__(self, cfg, emit):
        self._ports = list(cfg.ports)

    def ports(self):
        return self._ports

    def connection_timeout(self):
        return 0

    def parse(self, pkt, tcptuple, direction, state):
        return True

    def received_fin(self, tcptuple, direction, state):
        return state

    def gap_in_stream(self, tcptuple, direction, nbytes, state):
        return state, False

    def flush(self, tcptuple, state, ts):
        pass


if __name__ == "__main__":
    main()
