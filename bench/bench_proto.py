"""Per-protocol worker throughput on a large capture made from a small real one.

    python bench/bench_proto.py PCAP --proto NAME [--ports 6379] [--packets 300000] [--set key=value ...]
                                [--profile]

The small capture (e.g. the committed real-server capture of that protocol) is
replicated until it holds about --packets packets: copy k has both IPv4/IPv6
addresses changed in bytes 1-2 (XOR k), so every copy is a
distinct set of flows, and starts k ms after the previous one, so copies
overlap in time as concurrent clients would. The engine (decode + TCP/UDP +
the protocol plugin) runs over the result in batches of 128, as a worker does.
The figure is the best run by wall time; CPU time (``time.process_time``) of that
same run is printed too, as it is less disturbed by other load on a shared machine.
``--profile`` runs once under cProfile and prints the top functions by self time.
"""
from __future__ import annotations

import argparse
import sys
import time

import yaml

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import compiled_line, env_line, read_records  # noqa: E402
from shared.decode import decode  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.registry import load_registry  # noqa: E402


def _move(raw: bytes, l3: int, k: int) -> bytes:
    b = bytearray(raw)
    offs = (l3 + 13, l3 + 17) if b[l3] >> 4 == 4 else (l3 + 9, l3 + 25)
    for o in offs:
        b[o] ^= k >> 8
        b[o + 1] ^= k & 0xFF
    return bytes(b)


def replicate(records: list, packets: int) -> list:
    if not records:
        raise SystemExit("the capture holds no packets")
    copies = max(1, -(-packets // len(records)))
    if copies > 65535:
        raise SystemExit("capture too small for %d packets (at most 65535 copies)" % packets)
    out = []
    for k in range(copies):
        shift = k * 1_000_000
        for ts, lt, raw in records:
            dec = decode(lt, raw)
            if dec is not None and k:
                raw = _move(raw, dec[10], k)
            out.append((ts + shift, lt, raw))
    out.sort(key=lambda r: r[0])
    return out[:max(packets, len(records))] if copies > 1 else out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--proto", required=True)
    ap.add_argument("--ports", default="", help="comma-separated ports (default: the protocol's defaults)")
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="one run under cProfile, top 30 by self time")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="protocol option (YAML value)")
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's GC settings (the worker process applies worker.process.tune_gc)")
    a = ap.parse_args()
    if not a.default_gc:
        # as in the worker process; before the records are read (in a worker they are short-lived)
        from worker.process import tune_gc
        tune_gc()
    entry = {"type": a.proto}
    if a.ports:
        entry["ports"] = [int(p) for p in a.ports.split(",")]
    for kv in a.set:
        k, _, v = kv.partition("=")
        entry[k] = yaml.safe_load(v)
    records = replicate(read_records(a.pcap), a.packets)
    batches = [records[i:i + 128] for i in range(0, len(records), 128)]
    reg = load_registry()
    if not reg.get(a.proto) or not reg.get(a.proto).implemented:
        raise SystemExit("no analyser for %s" % a.proto)
    def run() -> int:
        eng = Engine([entry], reg)
        n = 0
        for b in batches:
            eng.handle(b)
            n += len(eng.take_events())
        eng.finish()
        return n + len(eng.take_events())

    if a.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(run)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    best = best_cpu = None
    events = 0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        events = run()
        cpu = time.process_time() - c0
        dt = time.perf_counter() - t0
        rate = len(records) / dt
        if best is None or rate > best:
            best = rate
        if best_cpu is None or len(records) / cpu > best_cpu:
            best_cpu = len(records) / cpu
    print("worker (%s): %d packets from %s, %d events: best %.0f packets/s (CPU time: %.0f packets/s)  [%s; %s]"
          % (a.proto, len(records), a.pcap, events, best, best_cpu, _compiled(a.proto), env_line()))


def _compiled(proto: str) -> str:
    """compiled_line() plus whether the protocol's own parser and event modules are compiled."""
    import importlib
    import importlib.machinery
    ext = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    mods = ["worker.protos.%s.%s" % (proto, m) for m in ("parser", "event")]
    done = [m.rsplit(".", 1)[1] for m in mods
            if (getattr(importlib.import_module(m), "__file__", "") or "").endswith(ext)]
    return "%s; %s: %s" % (compiled_line(), proto, "+".join(done) + " compiled" if done else "pure Python")


if __name__ == "__main__":
    main()
