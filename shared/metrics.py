"""Periodic metrics, as libbeat's ``logging.metrics.*`` and ``http.*``.

Every child keeps its counters in a ``collections.Counter`` (``capture.*``,
``worker.*``, ``tcp.*``, ``<protocol>.*``, ``publisher.*``). A
:class:`StatsReporter` thread in the child sends what changed since its last
report to the coordinator every ``logging.metrics.period`` (a ``stats``
message: one dict of deltas), and the rest when it stops, so the
coordinator's sums are exact. The thread has its own PUSH socket (sockets are
not shared across threads) and reads the counters with ``dict(counters)``,
a copy made under the GIL, so the hot loop is not touched. Metrics follow
the clock in file mode too: they are about the processes, not the packets.

The coordinator side is :class:`coordinator.monitor.Monitor`.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import zmq

from shared.confutil import ConfigError, Duration, build
from shared.wire import encode_batch


@dataclass(frozen=True)
class MetricsConfig:
    """``logging.metrics``."""
    enabled: bool = True
    period: Duration = 30.0

    def validate(self, path: str) -> None:
        if self.period <= 0:
            raise ConfigError(path + ".period", "must be a positive duration, got %r" % self.period)


@dataclass(frozen=True)
class HttpConfig:
    """``http`` (libbeat's stats endpoint)."""
    enabled: bool = False
    host: str = "localhost"
    port: int = 5066
    named_pipe: dict[str, Any] = dataclasses.field(default_factory=dict)   # Windows only: refused when set
    pprof: dict[str, Any] = dataclasses.field(default_factory=dict)        # not served: refused when enabled

    def validate(self, path: str) -> None:
        if self.named_pipe:
            raise ConfigError(path + ".named_pipe", "named pipes exist on Windows only; use host and port")
        if self.pprof.get("enabled"):
            raise ConfigError(path + ".pprof.enabled", "there is no Go profiler here; leave it false")
        if not 0 <= self.port <= 65535:
            raise ConfigError(path + ".port", "must be 0-65535, got %d" % self.port)
        if self.host.startswith("unix:") or self.host.startswith("npipe:"):
            raise ConfigError(path + ".host", "only TCP hosts are supported, got %r" % self.host)


def metrics_config(settings) -> MetricsConfig:
    return build(MetricsConfig, (settings.logging or {}).get("metrics") or {}, "logging.metrics")


def http_config(settings) -> HttpConfig:
    return build(HttpConfig, (settings.raw or {}).get("http") or {}, "http")


def check_config(settings) -> None:
    """ConfigError (naming the key) for a bad ``logging.metrics`` or ``http``."""
    metrics_config(settings)
    http_config(settings)


def report_period(settings) -> float:
    """Seconds between a child's reports: the metrics period, capped at 1 s so
    that the coordinator's sums stay current for the stats endpoint, the
    file-mode progress (coordinator/progress.py) and a worker's death (what it
    had reported); a report is one small message per second per process."""
    return min(1.0, metrics_config(settings).period)


def delta(counters: dict, reported: dict) -> dict:
    """What changed in ``counters`` since ``reported`` (integers only); updates ``reported``."""
    out = {}
    for k, v in counters.items():
        if isinstance(v, int) and v != reported.get(k, 0):
            out[k] = v - reported.get(k, 0)
            reported[k] = v
    return out


def nest(flat: dict) -> dict:
    """``{"tcp.gap.bytes": 3, "tcp.packets": 9}`` -> ``{"tcp": {"gap": {"bytes": 3}, "packets": 9}}``.
    A key that is both a counter and a prefix keeps its own value as ``"value"``."""
    out: dict = {}
    for key in sorted(flat):
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {} if nxt is None else {"value": nxt}
                node[p] = nxt
            node = nxt
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            node[leaf]["value"] = flat[key]
        else:
            node[leaf] = flat[key]
    return out


class StatsReporter:
    """Sends the deltas of ``counters`` as ``stats`` messages to the
    coordinator every ``period`` seconds from a thread of its own; ``stop()``
    sends the remainder (with ``extra`` keys such as ``error``) and waits.
    ``period`` 0: no thread, only the final report."""

    def __init__(self, ctx, endpoint: str, name: str, counters, period: float):
        self.name = name
        self.counters = counters
        self.period = float(period)
        self._reported: dict = {}
        self._stop = threading.Event()
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.connect(endpoint)
        self._lock = threading.Lock()
        self._thread = None
        if self.period > 0:
            self._thread = threading.Thread(target=self._run, name="stats-" + name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.send()

    def send(self, extra: dict | None = None) -> None:
        with self._lock:
            if self._sock is None:
                return
            d = delta(dict(self.counters), self._reported)
            if extra:
                d.update(extra)
            if d:
                self._sock.send_multipart(encode_batch("stats", self.name, 0, [d]))

    def stop(self, extra: dict | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.send(extra)
        with self._lock:
            self._sock.close(linger=5000)
            self._sock = None
