"""Shared pieces of the benchmarks: the large generated HTTP capture, timing."""
from __future__ import annotations

import os
import time
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


CAPTURES = ("mixed", "small")


def http_capture(packets: int, connections: int = 500, kind: str = "mixed") -> tuple[pathlib.Path, int]:
    """Path of a generated HTTP capture with about ``packets`` packets, and its transaction count.

    ``kind``: ``mixed`` (bench/out/http_N_C.pcap: GETs and POSTs, bodies of ~2.5 kB on
    average, a few segments each) or ``small`` (bench/out/http_small_N_C.pcap: short GETs
    and small answers on long keep-alive connections, four packets per transaction, two of
    them ACK-only; ``gen_http_pcap.py --small``)."""
    if kind not in CAPTURES:
        raise ValueError("capture kind %r: one of %s" % (kind, ", ".join(CAPTURES)))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("http_%s%d_%d.pcap" % ("small_" if kind == "small" else "", packets, connections))
    meta = path.with_suffix(".transactions")
    if not path.exists() or not meta.exists():
        p = subprocess.run([sys.executable, str(ROOT / "bench" / "gen_http_pcap.py"), str(path),
                            "--packets", str(packets), "--connections", str(connections), "--seed", "1"]
                           + (["--small"] if kind == "small" else []),
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


CPU_HOOK = ROOT / "bench" / "cpuhook"


def cpu_env(log_path: str, env: dict | None = None) -> dict:
    """The environment for a run whose Python processes each log their CPU at exit
    into ``log_path`` (bench/cpuhook/sitecustomize.py); read it with :func:`read_cpu`."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CPU_HOOK), str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PB_BENCH_CPU_LOG"] = log_path
    return env


def read_cpu(log_path: str) -> dict:
    """{role: (user + system) CPU seconds} from a run's CPU log (several processes of
    one role, e.g. a restarted child, are summed)."""
    out: dict = {}
    try:
        with open(log_path) as fh:
            for line in fh:
                role, _pid, user, system = line.split()[:4]     # then context switches (cpuhook)
                out[role] = out.get(role, 0.0) + float(user) + float(system)
    except FileNotFoundError:
        pass
    return out


def stage(role: str) -> str:
    """The stage a process belongs to: capture, worker, publisher or coordinator."""
    return role.split("-", 1)[0]
