"""End to end: the real CLI (coordinator, capture, N workers, publisher, file output).

    python bench/bench_e2e.py [--packets N] [--capture mixed|small] [--workers W] [--captures C]
                              [--hosts H] [--output file|es] [--repeat R] [--timeout S] [--batch-packets B]

Counts the events written and fails if any transaction is missing, or if the
run takes longer than --timeout seconds (its process group is killed then).

CPU: every Python process of the run logs its own user + system CPU at exit
(bench/cpuhook/sitecustomize.py), so the line gives the CPU of all processes
(coordinator, capture(s), workers, publisher) and per stage, in CPU-seconds
and in microseconds per packet of the capture. The reference is Packetbeat
5.5.3 measured on this machine on the mixed 500k capture (issue 14): 2.0 s
wall, 3.3 CPU-s (6.6 us per packet); the ratios to it are printed.

``--capture small`` (bench/gen_http_pcap.py --small): short GETs and small
answers on keep-alive connections, four packets per transaction of which two
are ACK-only. ``--output es``: into tests/esserver.py (a sink in its own
process, not counted in the CPU). ``--captures C``: cluster.captures capture
processes reading the file (coordinator/capture/filesplit.py). ``--hosts H``
(H >= 2): the several-host layout on this host, over loopback tcp:// (no
CurveZMQ on loopback): H ``cluster.role: workers`` instances (each a
coordinator, W/H workers and its own publisher, ``cluster.replay: true``)
fed by one ``cluster.role: capture`` instance with ``cluster.shards``
listing all W workers; the events of all H outputs are counted.
``--batch-packets 4`` (cluster.batch_packets) makes many small batches: a
socket buffer then holds more batches than a worker's queue takes at once,
which is what the drain hang needed (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import (CAPTURES, ROOT, compiled_line, cpu_env, env_line, http_capture,  # noqa: E402
                          read_cpu, stage)

# Packetbeat 5.5.3 on bench/out/http_500000_500.pcap, this machine, speed index 27-30 ns (issue 14)
PACKETBEAT = {"wall": 2.0, "cpu": 3.3, "packets": 500_000}


def count_packets(path) -> int:
    from bench.common import read_records
    meta = path.with_suffix(".packets")
    if not meta.exists():
        meta.write_text(str(len(read_records(path))))
    return int(meta.read_text())


def configs(a, tmp: str, url: str | None) -> list[dict]:
    """One configuration per coordinator to start (the capture instance last)."""
    def output(k: int) -> dict:
        if url is not None:
            return {"output.elasticsearch": {"hosts": [url], "bulk_max_size": 1000, "compression_level": 0},
                    "setup.template.enabled": False, "setup.ilm.enabled": False}
        return {"output.file": {"path": os.path.join(tmp, "out%d" % k), "filename": "events",
                                "rotate_every_kb": 1024 * 1024}}
    base = {"packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}], "logging.to_stderr": True}
    if a.batch_packets:
        base["cluster.batch_packets"] = a.batch_packets
    if a.hosts == 1:
        cfg = dict(base, **output(0))
        cfg["cluster.workers"] = a.workers
        if a.captures != 1:
            cfg["cluster.captures"] = a.captures
        return [cfg]
    per = a.workers // a.hosts
    port = 17000 + (os.getpid() % 500) * 20
    out = []
    for k in range(a.hosts):
        out.append(dict(base, **output(k), **{"cluster.role": "workers", "cluster.workers": per,
                                              "cluster.listen": "tcp://127.0.0.1:%d" % (port + k * per),
                                              "cluster.first_shard": k * per, "cluster.captures": a.captures,
                                              "cluster.replay": True}))
    out.append(dict(base, **{"cluster.role": "capture", "cluster.name": "bench", "cluster.captures": a.captures,
                             "cluster.shards": ["tcp://127.0.0.1:%d" % (port + j) for j in range(a.workers)]}))
    return out


def run_once(a, path, transactions: int, packets: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = url = None
        if a.output == "es":
            from bench.bench_es import start_server
            server, url = start_server()
        cpu_log = os.path.join(tmp, "cpu.log")
        procs = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        wall0 = time.time()
        for k, cfg in enumerate(configs(a, tmp, url)):
            cp = os.path.join(tmp, "pb%d.yml" % k)
            with open(cp, "w") as fh:
                yaml.safe_dump(cfg, fh)
            argv = [sys.executable, "-m", "coordinator", "-c", cp]
            if cfg.get("cluster.role") != "workers":
                argv += ["-I", str(path)]
            procs.append(subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True, start_new_session=True, env=cpu_env(cpu_log)))
        deadline = time.monotonic() + a.timeout
        errs = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for q in procs:
                    if q.poll() is None:
                        os.killpg(q.pid, signal.SIGKILL)
                _, err = p.communicate()
                print(err[-3000:])
                print("end to end: no end after %.0f s (killed)" % a.timeout)
                sys.exit(1)
            errs.append(err)
        dt = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if any(p.returncode != 0 for p in procs):
            for err in errs:
                print(err[-3000:])
            sys.exit(1)
        if server is not None:
            from bench.bench_es import stop_server
            events, _ = stop_server(server)
        else:
            events = 0
            for k in range(a.hosts):
                for dp, _, fns in os.walk(os.path.join(tmp, "out%d" % k)):
                    for fn in fns:
                        with open(os.path.join(dp, fn), "rb") as fh:
                            events += sum(1 for _ in fh)
        roles = read_cpu(cpu_log)
        switches = read_switches(cpu_log)
        timeline = read_timeline(cpu_log, wall0)
    total = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall": dt, "events": events, "roles": roles, "total": total, "switches": switches,
            "timeline": timeline, "stderr": errs}


def read_switches(log_path: str) -> dict:
    """{stage: [voluntary, involuntary] context switches} from the CPU log (bench/cpuhook)."""
    out: dict = {}
    try:
        with open(log_path) as fh:
            for line in fh:
                f = line.split()
                if len(f) >= 6:
                    sw = out.setdefault(stage(f[0]), [0, 0])
                    sw[0] += int(f[4])
                    sw[1] += int(f[5])
    except FileNotFoundError:
        pass
    return out


def read_timeline(log_path: str, wall0: float) -> list:
    """[(role, started, exited, cpu)] from the CPU log, times in seconds from the run's start
    (bench/cpuhook), by exit time."""
    out = []
    try:
        with open(log_path) as fh:
            for line in fh:
                f = line.split()
                if len(f) >= 8:
                    out.append((f[0], float(f[6]) - wall0, float(f[7]) - wall0, float(f[2]) + float(f[3])))
    except FileNotFoundError:
        pass
    return sorted(out, key=lambda x: x[2])


def timeline_line(r: dict) -> str:
    return "  timeline (s from the start: started-exited, CPU): " + ", ".join(
        "%s %.2f-%.2f %.2f" % x for x in r.get("timeline") or ())


def report(a, r: dict, packets: int, transactions: int) -> str:
    stages: dict = {}
    for role, sec in r["roles"].items():
        stages[stage(role)] = stages.get(stage(role), 0.0) + sec
    cpu = sum(r["roles"].values())
    us = 1e6 / packets
    parts = ", ".join("%s %.2f s = %.2f us" % (s, stages[s], stages[s] * us)
                      for s in ("capture", "worker", "publisher", "coordinator") if s in stages)
    pb_us = PACKETBEAT["cpu"] * 1e6 / PACKETBEAT["packets"]
    if a.capture == "mixed" and packets >= 0.99 * PACKETBEAT["packets"] and packets <= PACKETBEAT["packets"]:
        vs = "vs Packetbeat: wall %.2fx, CPU %.2fx" % (r["wall"] / PACKETBEAT["wall"], cpu / PACKETBEAT["cpu"])
    else:
        vs = "CPU per packet %.2fx Packetbeat's on the mixed capture (%.1f us)" % (cpu * us / pb_us, pb_us)
    sw = r.get("switches") or {}
    parts += "; context switches voluntary/involuntary: " + ", ".join(
        "%s %d/%d" % (s, sw[s][0], sw[s][1]) for s in ("capture", "worker", "publisher", "coordinator") if s in sw)
    return ("end to end (%s capture, %d workers, %d capture%s, %s output%s): %d packets in %.2f s = %.0f packets/s; "
            "events %d of %d transactions, lost %d; CPU all processes %.2f s (rusage %.2f s) = %.2f us/packet, "
            "%.1f us/transaction [%s]; %s; %s  [%s]"
            % (a.capture, a.workers, a.captures, "" if a.captures == 1 else "s", a.output,
               "" if a.hosts == 1 else ", %d worker hosts + 1 capture host on loopback" % a.hosts, packets, r["wall"],
               packets / r["wall"], r["events"], transactions, transactions - r["events"], cpu, r["total"],
               cpu * us, cpu * 1e6 / transactions, parts, vs, compiled_line(), env_line()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--capture", default="mixed", choices=CAPTURES,
                    help="mixed: bench/out/http_N_500.pcap; small: many small request/response pairs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--captures", type=int, default=1, help="cluster.captures (capture processes reading the file)")
    ap.add_argument("--hosts", type=int, default=1,
                    help="worker-host instances (cluster.role: workers) fed by one capture-host instance, loopback")
    ap.add_argument("--output", default="file", choices=("file", "es"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--batch-packets", type=int, default=0, help="cluster.batch_packets (0: the default)")
    ap.add_argument("--timeline", action="store_true",
                    help="print when each process started and exited (and its CPU), from the run's start")
    ap.add_argument("--stall-log", type=float, default=0.0,
                    help="print the processes' stderr of a run whose wall time exceeds this many seconds")
    a = ap.parse_args()
    if a.hosts < 1 or a.workers % a.hosts:
        ap.error("--workers must be a multiple of --hosts")
    path, transactions = http_capture(a.packets, kind=a.capture)
    packets = count_packets(path)
    failed = False
    for _ in range(a.repeat):
        r = run_once(a, path, transactions, packets)
        print(report(a, r, packets, transactions), flush=True)
        if a.timeline:
            print(timeline_line(r), flush=True)
        if a.stall_log and r["wall"] > a.stall_log:
            for err in r["stderr"]:
                print(err[-6000:], flush=True)
        failed |= r["events"] != transactions
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
