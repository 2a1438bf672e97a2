"""The scaling model: packets/s for 2-32 cores from measured CPU per packet of each stage.

    python bench/scaling_model.py [--capture-us C] [--read-us R] [--live-capture-us L] [--kernel-us K]
                                  [--worker-us W] [--publisher-us P] [--es-publisher-us E] [--cores 2,4,8,16,32]

Every figure is CPU microseconds per packet of the input (all packets, empty ACKs
included), as bench/bench_e2e.py prints them per stage ("capture ... us",
"worker ... us", "publisher ... us") and bench/bench_stages.py ("read", and
"split read": what every extra file capture process costs, reading the whole
file and deciding ownership); ``--live-capture-us`` is bench/bench_live.py
``--cpu-only``; ``--kernel-us`` the kernel's receive cost per packet on the
capture host (softirq; on the veth of bench_live it is in the sender's system
time). The defaults are the figures of docs/benchmarks.md, "Fifth session: scaling model".

Each process is one Python interpreter (one core at most). For ``n`` cores the
model tries every configuration of W workers, C capture processes and H
publishers (H > 1: H ``cluster.role: workers`` instances, on one host or on
H hosts, fed by ``cluster.role: capture`` instances listing all their workers
in ``cluster.shards``) with W + C + H <= n (the coordinator and the kernel's
share are taken off n), and keeps the fastest; the stage whose processes are
busy at that rate is named as the one that saturates first:

- capture, file: each capture process costs ``read`` + ``(capture - read0) / C``
  per packet (``cluster.captures`` C > 1 with ``-I``: every capture reads the
  file, decodes and hashes, and forwards only its shards' flows);
- capture, live: ``live / C`` (PACKET_FANOUT_HASH splits the packets);
- workers: ``worker / W`` (flows spread evenly by the shard hash);
- publishers: ``publisher / H``.
"""
from __future__ import annotations

import argparse

# Measured 2026-12-07 on the mixed capture, compiled build, marginal CPU per packet (start-up
# subtracted) scaled to a quiet machine (docs/benchmarks.md, "Fifth session: scaling model")
DEFAULTS = {
    "capture_us": 1.40,         # one file capture process (bench_e2e, capture)
    "read0_us": 0.57,           # of which reading the file (bench_stages "read" / "capture")
    "read_us": 0.61,            # each capture of C > 1: read + decide ownership (bench_e2e --captures 2)
    "live_capture_us": 2.4,     # AF_PACKET ring walk + the same (bench_live --cpu-only, scaled as the file capture)
    "kernel_us": 1.0,           # the kernel's receive path per packet on the capture host (assumed)
    "worker_us": 9.33,          # all workers' CPU per packet (bench_e2e, worker)
    "publisher_us": 0.41,       # file output (bench_e2e, publisher)
    "es_publisher_us": 3.74,    # Elasticsearch output (bench_e2e --output es, publisher)
    "coordinator_us": 0.0,
}


def capture_cost(a, mode: str, c: int) -> float:
    """CPU us per packet of ONE capture process when C capture processes share the input."""
    if mode == "live":
        return a.live_capture_us / c
    if c == 1:
        return a.capture_us
    return a.read_us + (a.capture_us - a.read0_us) / c


def best(a, cores: int, mode: str, publisher_us: float, max_captures: int = 0, max_publishers: int = 0) -> dict:
    """The fastest configuration on ``cores`` cores and what limits it: the rate is the
    smallest of each stage's (its processes at one core each) and of what all the
    cores allow (every process's CPU, the kernel's receive path in live mode).
    ``max_captures``/``max_publishers``: bound C/H (0: up to ``cores``)."""
    out = None
    kernel = a.kernel_us if mode == "live" else 0.0
    for h in range(1, (max_publishers or cores) + 1):
        for c in range(1, (max_captures or cores) + 1):
            cap = capture_cost(a, mode, c)
            for w in range(1, cores + 1):
                limits = {"capture": c / cap * 1e6, "workers": w / a.worker_us * 1e6,
                          "publisher": h / publisher_us * 1e6,
                          "all cores": cores / (cap * c + a.worker_us + publisher_us + a.coordinator_us + kernel) * 1e6}
                rate = min(limits.values())
                procs = w + c + h
                if out is None or rate > out["rate"] * 1.001 or (rate > out["rate"] * 0.999 and procs < out["procs"]):
                    out = {"rate": rate, "workers": w, "captures": c, "publishers": h, "procs": procs,
                           "limit": min(limits, key=limits.get), "limits": limits}
    return out


def _limit(b: dict) -> str:
    """The stage that stops the configuration: a stage at its ceiling, or, when every
    core is busy, the stage closest to its ceiling."""
    lim = b["limits"]
    if b["limit"] != "all cores":
        return "%s (%.0fk)" % (b["limit"], lim[b["limit"]] / 1e3)
    stages = {k: v for k, v in lim.items() if k != "all cores"}
    nxt = min(stages, key=stages.get)
    return "all cores busy; next: %s (%.0fk)" % (nxt, stages[nxt] / 1e3)


def table(a, mode: str, output: str) -> str:
    pub = a.publisher_us if output == "file" else a.es_publisher_us
    rows = ["| cores | configuration (%s input, %s output) | packets/s | saturates first | one capture, one publisher |"
            % ("file" if mode == "file" else "live", "file" if output == "file" else "Elasticsearch"),
            "|---|---|---|---|---|"]
    for n in [int(x) for x in a.cores.split(",")]:
        b = best(a, n, mode, pub)
        one = best(a, n, mode, pub, max_captures=1, max_publishers=1)
        conf = "`cluster.workers: %d`, `cluster.captures: %d`, %s" % (
            b["workers"], b["captures"],
            "1 publisher" if b["publishers"] == 1 else
            "%d publishers (%d `cluster.role: workers` instances + a `cluster.role: capture` one)"
            % (b["publishers"], b["publishers"]))
        rows.append("| %d | %s | %.0fk | %s | %.0fk: %s |" % (n, conf, b["rate"] / 1e3, _limit(b), one["rate"] / 1e3,
                                                              _limit(one)))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=float, default=v)
    ap.add_argument("--cores", default="2,4,8,16,32")
    ap.add_argument("--modes", default="file,live")
    ap.add_argument("--outputs", default="file,es")
    a = ap.parse_args()
    for mode in a.modes.split(","):
        for output in a.outputs.split(","):
            print(table(a, mode, output))
            print()


if __name__ == "__main__":
    main()
