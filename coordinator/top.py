"""``packetbeat top``: the live counters of a running instance, per process.

    packetbeat top [-c FILE] [-E k=v]... [--url URL] [--interval S] [--once]

It reads ``GET /processes`` of the instance's metrics endpoint
(``http.enabled: true``; ``http.host``/``http.port`` of the configuration,
or ``--url``; coordinator/monitor.py) and shows one row per process of that
host (each capture, each worker, the publisher): pid, state, restarts,
packets and packets/s, events and events/s, drops, and the run's totals.

On a terminal the table is redrawn every ``--interval`` seconds (default 1)
until Ctrl-C or until the instance stops; with ``--once``, or when stdout is
not a terminal, it takes two readings ``--interval`` apart (for the rates),
prints one table and exits. Exit 1 when no endpoint answers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from coordinator.progress import DROP_KEYS, READ_KEYS


class TopError(Exception):
    """The endpoint cannot be read (message says why)."""


class TopTimeout(TopError):
    """The endpoint did not answer in time (a busy instance, not a gone one)."""


def fetch(url: str, timeout: float = 3.0) -> dict:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/processes", timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise TopError("%s answered %d %s (is it packetbeat-py's metrics endpoint?)"
                       % (url, exc.code, exc.reason)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise TopTimeout("%s did not answer within %g s" % (url, timeout)) from None
        raise TopError("no metrics endpoint at %s (%s); is a run going with http.enabled: true?"
                       % (url, reason)) from None
    except ValueError as exc:
        raise TopError("%s did not answer JSON: %s" % (url, exc)) from None


def flat(tree: dict, prefix: str = "") -> dict:
    """The inverse of shared.metrics.nest."""
    out = {}
    for k, v in tree.items():
        key = prefix + k if k != "value" else prefix.rstrip(".")
        if isinstance(v, dict):
            out.update(flat(v, prefix + k + "."))
        elif isinstance(v, int):
            out[key] = v
    return out


def role_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.split("-", 1)[0]


def row_values(name: str, metrics: dict) -> tuple[int | None, int | None, int]:
    """(packets, events, dropped) of one process, by its role."""
    role = role_of(name)
    drops = sum(metrics.get(k, 0) for k in DROP_KEYS)
    if role == "capture":
        return sum(metrics.get(k, 0) for k in READ_KEYS), None, drops
    if role == "worker":
        return metrics.get("worker.packets", 0), metrics.get("worker.events", 0), drops
    if role == "publisher":
        return None, metrics.get("publisher.published", 0) or metrics.get("publisher.discarded", 0), drops
    return None, None, drops


class Snapshot:
    def __init__(self, body: dict, at: float):
        self.at = at
        self.beat = body.get("beat") or {}
        self.rows = {}
        for name, p in sorted((body.get("processes") or {}).items(), key=lambda kv: _order(kv[0])):
            m = flat(p.get("metrics") or {})
            self.rows[name] = (p, row_values(name, m))
        self.total = flat(body.get("total") or {})


def _order(name: str):
    return ({"capture": 0, "worker": 1, "publisher": 2}.get(role_of(name), 3), len(name), name)


def _rate(now, before, dt: float, i: int) -> str:
    if before is None or dt <= 0 or now[i] is None or before[i] is None:
        return "-"
    return "%.0f" % max(0.0, (now[i] - before[i]) / dt)


def table(snap: Snapshot, prev: Snapshot | None, url: str):
    """A rich Table of ``snap`` (rates against ``prev``)."""
    from rich import box
    from rich.table import Table
    up = (snap.beat.get("info") or {}).get("uptime", {}).get("ms", 0) / 1000.0
    t = Table(title="packetbeat top: %s, up %.0f s" % (url, up), box=box.SIMPLE, title_justify="left")
    for col, right in (("process", False), ("pid", True), ("state", False), ("restarts", True),
                       ("packets", True), ("pkts/s", True), ("events", True), ("events/s", True),
                       ("dropped", True)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    dt = snap.at - prev.at if prev is not None else 0.0
    for name, (p, vals) in snap.rows.items():
        before = prev.rows.get(name, (None, None))[1] if prev is not None else None
        t.add_row(name, str(p.get("pid") or "-"), str(p.get("state") or "?"), str(p.get("restarts", 0)),
                  "-" if vals[0] is None else str(vals[0]), _rate(vals, before, dt, 0),
                  "-" if vals[1] is None else str(vals[1]), _rate(vals, before, dt, 1), str(vals[2]))
    tot = snap.total
    t.caption = ("total: %d packets read, %d events published, %d failed, %d restarts"
                 % (sum(tot.get(k, 0) for k in READ_KEYS), tot.get("publisher.published", 0),
                    tot.get("publisher.failed", 0), tot.get("coordinator.restarts", 0)))
    t.caption_justify = "left"
    return t


def _url(args) -> str:
    if args.url:
        return args.url if "://" in args.url else "http://" + args.url
    from coordinator.config import load_config
    from shared.metrics import http_config
    settings = load_config(args.config or "packetbeat.yml", list(args.overrides)) \
        if args.config or _exists("packetbeat.yml") else None
    host, port = "localhost", 5066
    if settings is not None:
        h = http_config(settings)
        host, port = h.host, h.port
    if args.port is not None:
        port = args.port
    if args.host:
        host = args.host
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "http://%s:%d" % (host, port)


def _exists(path: str) -> bool:
    import os
    return os.path.isfile(path)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="packetbeat top",
                                 description="Live counters of a running packetbeat, per process "
                                             "(its metrics endpoint: http.enabled: true).")
    ap.add_argument("-c", dest="config", default=None, help="configuration file (for http.host/http.port)")
    ap.add_argument("-E", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--url", default="", help="the endpoint, e.g. http://localhost:5066 (default: from the "
                                              "configuration)")
    ap.add_argument("--host", default="", help="the endpoint's host (default http.host)")
    ap.add_argument("--port", type=int, default=None, help="the endpoint's port (default http.port)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between readings (default 1)")
    ap.add_argument("--once", action="store_true", help="print one table and exit")
    args = ap.parse_args(argv)
    if args.interval <= 0:
        sys.stderr.write("Exiting: --interval must be positive\n")
        return 1
    from shared.confutil import ConfigError
    try:
        url = _url(args)
    except ConfigError as exc:
        sys.stderr.write("Exiting: error loading config file: %s\n" % exc)
        return 1
    from rich.console import Console
    console = Console()
    try:
        first = Snapshot(fetch(url), time.monotonic())
    except TopError as exc:
        sys.stderr.write("Exiting: %s\n" % exc)
        return 1
    if args.once or not sys.stdout.isatty():
        time.sleep(args.interval)
        try:
            snap = Snapshot(fetch(url), time.monotonic())
        except TopError:
            snap, first = first, None          # the run ended meanwhile: what it had
        Console(width=max(console.width, 120)).print(table(snap, first, url))
        return 0
    from rich.live import Live
    # Ctrl-C is the way out of the live table: a `top` started with SIGINT ignored (a
    # background job of a script inherits that) would otherwise never stop
    import signal
    signal.signal(signal.SIGINT, signal.default_int_handler)
    prev = first
    try:
        with Live(table(first, None, url), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(args.interval)
                try:
                    snap = Snapshot(fetch(url), time.monotonic())
                except TopTimeout:
                    continue                # busy, not gone: the table stays, the next reading retries
                except TopError:
                    live.stop()
                    console.print("the instance at %s is gone (the run ended)" % url)
                    return 0
                live.update(table(snap, prev, url), refresh=True)
                prev = snap
    except KeyboardInterrupt:
        return 0
