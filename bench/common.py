"""Shared pieces of the benchmarks: the large generated HTTP capture, timing."""
from __future__ import annotations

import os
import time
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def http_capture(packets: int, connections: int = 500) -> tuple[pathlib.Path, int]:
    """Path of a generated HTTP capture with about ``packets`` packets, and its transaction count."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("http_%d_%d.pcap" % (packets, connections))
    meta = path.with_suffix(".transactions")
    if not path.exists() or not meta.exists():
        p = subprocess.run([sys.executable, str(ROOT / "bench" / "gen_http_pcap.py"), str(path),
                            "--packets", str(packets), "--connections", str(connections), "--seed", "1"],
                           capture_output=True, text=True, check=True)
        n = _transactions(p.stdout)
        meta.write_text(str(n))
    return path, int(meta.read_text())


def _transactions(text: str) -> int:
    for line in text.splitlines():
        low = line.lower()
        if "transaction" in low:
            nums = [int(t) for t in low.replace(",", " ").replace("=", " ").replace(":", " ").split() if t.isdigit()]
            if nums:
                return nums[-1] if "packets" not in low else nums[-1]
    raise RuntimeError("generator did not report its transaction count: %r" % text)


def read_records(path) -> list:
    from coordinator.capture.pcapfile import open_capture
    r = open_capture(str(path))
    try:
        return list(r)
    finally:
        r.close()


def cpu_info() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown cpu"


def speed_index() -> float:
    """Nanoseconds per iteration of a plain Python ``for`` loop adding ints (best of 3 x 1M).

    The VMs these benchmarks run on differ by up to 2x from one hour to the next
    (steal time, CPU throttling), so every benchmark line carries this figure:
    packets/s from two runs compare fairly only when their speed index is close
    (lower is faster)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        s = 0
        for i in range(1_000_000):
            s += i
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def env_line() -> str:
    return "%s, %d cores, Python %s, speed index %.0f ns" % (cpu_info(), os.cpu_count() or 1,
                                                            sys.version.split()[0], speed_index())


def compiled_line() -> str:
    """Which hot modules run as compiled extensions (setup.py) in this process."""
    import importlib
    import importlib.machinery
    names = ("shared.decode", "worker.tcp", "worker.engine", "worker.protos.http.parser", "worker.ecs")
    ext = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    done = [n for n in names if (getattr(importlib.import_module(n), "__file__", "") or "").endswith(ext)]
    if len(done) == len(names):
        return "compiled"
    if not done:
        return "pure Python"
    return "compiled: " + ", ".join(done)
