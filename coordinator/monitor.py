"""The coordinator's side of the metrics: libbeat's periodic log line and stats endpoint.

The supervisor sums the children's ``stats`` deltas into its totals (one
``Counter``, keys such as ``capture.packets`` or ``publisher.published``).
:class:`Monitor`:

- every ``logging.metrics.period`` (default 30s; ``logging.metrics.enabled``,
  default true) logs what changed since the last line, as libbeat does::

      Non-zero metrics in the last 30s	{"monitoring": {"metrics": {"capture": {"packets": 1200, ...}, ...}}}

  and, when the run ends, the changes of the last partial period (so the
  lines add up to the ``Total metrics`` line);
- with ``http.enabled`` serves ``GET /stats`` (the totals, nested, as JSON)
  ``GET /processes`` (each process of this host: pid, state, restarts and its
  own counters, nested: what ``packetbeat top`` shows) and ``GET /`` (the
  beat's identity) on ``http.host:http.port`` (default
  ``localhost:5066``; port 0 picks a free one, logged at start), for
  Kubernetes probes and monitoring. ``?pretty`` indents.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared.metrics import delta, http_config, metrics_config, nest
from shared.version import VERSION

log = logging.getLogger("packetbeat.monitoring")


def go_duration(seconds: float) -> str:
    """How Go prints a time.Duration: ``30s``, ``500ms``, ``1.5s``, ``1m0s``."""
    if seconds < 1:
        return "%gms" % round(seconds * 1000, 3)
    if seconds < 60:
        return "%gs" % round(seconds, 3)
    m, s = divmod(seconds, 60)
    if m < 60:
        return "%dm%gs" % (m, round(s, 3))
    h, m = divmod(m, 60)
    return "%dh%dm%gs" % (h, m, round(s, 3))


class MonitorError(Exception):
    """The stats endpoint cannot be started (message says why)."""


class Monitor:
    def __init__(self, settings, totals):
        self.metrics = metrics_config(settings)
        self.http = http_config(settings)
        self.totals = totals
        self.name = settings.name or socket.gethostname()
        self.ephemeral_id = str(uuid.uuid4())
        self.started = time.monotonic()
        self._logged: dict = {}
        self._next = self.started + self.metrics.period
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None
        self.processes = None       # () -> {name: {pid, state, restarts, metrics}} (the supervisor's)

    # -- periodic log line ---------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        if not self.metrics.enabled:
            return
        now = time.monotonic() if now is None else now
        if now < self._next:
            return
        self._next = max(self._next + self.metrics.period, now + self.metrics.period / 2)
        self._log_changes(go_duration(self.metrics.period))

    def _log_changes(self, period: str) -> None:
        changes = delta(dict(self.totals), self._logged)
        if not changes:
            return
        body = nest(changes)
        body.setdefault("beat", {})["info"] = {"uptime": {"ms": self.uptime_ms()}}
        log.info("Non-zero metrics in the last %s\t%s", period,
                 json.dumps({"monitoring": {"metrics": body}}, sort_keys=True))

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    # -- stats endpoint ------------------------------------------------------
    def start(self) -> None:
        """Start the endpoint when ``http.enabled`` (MonitorError if it cannot bind)."""
        if not self.http.enabled:
            return
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):                              # noqa: N802 (http.server's name)
                path, _, query = self.path.partition("?")
                if path in ("/", ""):
                    body = monitor.info()
                elif path.rstrip("/") == "/stats":
                    body = monitor.stats()
                elif path.rstrip("/") == "/processes":
                    body = monitor.process_stats()
                else:
                    self.send_error(404, "not found: %s (try /stats or /processes)" % path)
                    return
                text = json.dumps(body, sort_keys=True, indent=2 if "pretty" in query else None).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, fmt, *args):
                log.debug("stats endpoint: " + fmt, *args)

        try:
            family = socket.getaddrinfo(self.http.host, self.http.port, type=socket.SOCK_STREAM)[0][0]
            cls = type("StatsServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
            server = cls((self.http.host, self.http.port), Handler)
        except OSError as exc:
            raise MonitorError("http: cannot serve the stats endpoint on %s:%d: %s"
                               % (self.http.host, self.http.port, exc.strerror or exc)) from None
        self._server = server
        self.address = server.server_address[:2]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="stats-endpoint", daemon=True)
        self._thread.start()
        log.info("Metrics endpoint listening on: http://%s:%d (GET /stats)", *self.address)

    def info(self) -> dict:
        return {"beat": "packetbeat", "name": self.name, "hostname": socket.gethostname(),
                "ephemeral_id": self.ephemeral_id, "version": VERSION}

    def stats(self) -> dict:
        body = nest({k: v for k, v in dict(self.totals).items() if isinstance(v, int)})
        body.setdefault("beat", {})["info"] = {"uptime": {"ms": self.uptime_ms()},
                                               "ephemeral_id": self.ephemeral_id, "version": VERSION}
        return body

    def process_stats(self) -> dict:
        """Per process: ``{"processes": {name: {pid, state, restarts, metrics (nested)}}, "total": ...}``."""
        procs = {}
        for name, p in (self.processes() if self.processes is not None else {}).items():
            procs[name] = dict(p, metrics=nest(p.get("metrics") or {}))
        return {"beat": self.stats()["beat"], "processes": procs, "total": self.stats()}

    def finish(self) -> None:
        """The run ended: log the changes of the last (partial) period, stop the endpoint."""
        if self.metrics.enabled:
            elapsed = time.monotonic() - (self._next - self.metrics.period)
            self._log_changes(go_duration(max(0.0, min(elapsed, self.metrics.period))))
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
