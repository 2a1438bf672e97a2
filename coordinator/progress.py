"""Feedback on a long file run, on the coordinator's stderr (docs/running.md, "Progress").

- On a terminal: a progress bar (rich) over the bytes of the file read so
  far, with packets/s, events published and drops, refreshed a few times a
  second. With ``-l N`` the bar covers the N loops; with ``-l 0`` (for ever)
  it has no end and shows what was read.
- Without a terminal: one start line, then one line every
  ``PROGRESS_INTERVAL`` seconds (``PACKETBEAT_PROGRESS_INTERVAL`` overrides
  it), so a log collector or a CI job sees the run advance.
- At the end, in both cases, one summary line: packets read, events
  published and where to, what was dropped, failed or left in the disk queue.

How far the capture has read is its file offset, read from
``/proc/<pid>/fdinfo`` (``psutil``); with ``-l N`` the file is read N times,
so it is the bytes the capture read since it opened the file the first time
(``/proc/<pid>/io`` ``rchar``). The capture's hot loop is not touched.
The counters are the coordinator's totals (the children report every second
at most, shared/metrics.py).
"""
from __future__ import annotations

import os
import sys
import time

import psutil

PROGRESS_INTERVAL = 10.0      # seconds between two lines without a terminal
REFRESH_S = 0.25              # the bar's refresh

# packets the capture read: analysed, skipped (TCP without payload), undecodable
READ_KEYS = ("capture.packets", "capture.skipped_empty_tcp", "capture.undecodable")
# packets lost on the way (each counted where it happened), and events the output refused
DROP_KEYS = ("capture.dropped_queue_full", "capture.kernel_drops", "capture.dropped_worker_restart",
             "capture.not_taken_packets", "publisher.failed")


def interval_from_env() -> float:
    try:
        v = float(os.environ.get("PACKETBEAT_PROGRESS_INTERVAL", ""))
        return v if v > 0 else PROGRESS_INTERVAL
    except ValueError:
        return PROGRESS_INTERVAL


def packets_read(totals) -> int:
    return sum(int(totals.get(k, 0)) for k in READ_KEYS)


def drops(totals) -> int:
    return sum(int(totals.get(k, 0)) for k in DROP_KEYS)


def events_out(totals) -> int:
    """Events the publisher handed to the output (or counted with ``-N``)."""
    return int(totals.get("publisher.published", 0)) or int(totals.get("publisher.discarded", 0))


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0
    return "%.1f GB" % n


def file_position(pid: int, path: str) -> tuple[int | None, int | None]:
    """(offset of ``pid``'s open file ``path`` or None when it is not open, bytes
    ``pid`` has read so far through read(2), or None when not known)."""
    pos = chars = None
    try:
        proc = psutil.Process(pid)
        real = os.path.realpath(path)
        for f in proc.open_files():
            if f.path == real and getattr(f, "position", None) is not None:
                pos = int(f.position)
        chars = getattr(proc.io_counters(), "read_chars", None)
    except (psutil.Error, OSError, AttributeError):
        pass
    return pos, chars


def describe_output(settings, publish: bool) -> str:
    """Where the events went, in a few words."""
    if settings.cluster.get("role") == "capture":
        return "analysed on the worker host(s) %s" % ", ".join(settings.cluster.get("shards") or [])
    if not publish:
        return "not published (-N)"
    out = settings.output or {}
    for kind, conf in out.items():
        conf = conf or {}
        if not conf.get("enabled", True):
            continue
        if kind == "file":
            return "to file %s" % os.path.join(conf.get("path") or ".", (conf.get("filename") or "packetbeat") + "*")
        if kind == "console":
            return "to the console (stdout)"
        if kind == "elasticsearch":
            hosts = conf.get("hosts") or ["localhost:9200"]
            return "to Elasticsearch %s" % ", ".join(str(h) for h in hosts)
        if kind == "redis":
            hosts = conf.get("hosts") or ["localhost:6379"]
            return "to Redis %s (key %s)" % (", ".join(str(h) for h in hosts), conf.get("key") or "packetbeat")
        return "to the %s output" % kind
    return "nowhere (no output)"


class Rate:
    """A per-second rate over the last few seconds."""

    def __init__(self, span: float = 5.0):
        self.span = span
        self.points: list[tuple[float, int]] = []

    def add(self, now: float, value: int) -> float:
        self.points.append((now, value))
        while len(self.points) > 2 and now - self.points[0][0] > self.span:
            self.points.pop(0)
        t0, v0 = self.points[0]
        return (value - v0) / (now - t0) if now > t0 else 0.0


class Progress:
    """Feedback for one file run: ``start()``, ``tick(totals, capture_pid)`` from
    the supervisor's loop, ``finish(totals, ...)`` once (returns the summary line)."""

    def __init__(self, settings, path: str, loops: int = 1, publish: bool = True, stream=None,
                 tty: bool | None = None, interval: float | None = None, clock=time.monotonic):
        self.settings = settings
        self.path = path
        self.loops = loops
        self.publish = publish
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval_from_env() if interval is None else interval
        self.clock = clock
        try:
            self.size = os.path.getsize(path)
        except OSError:
            self.size = 0
        self.total = self.size * loops if loops > 0 else None
        self.started = clock()
        self._next_line = self.started + self.interval
        self._next_refresh = 0.0
        self.stopped = False               # a stop request (SIGINT/SIGTERM) ended the reading early
        self._base: int | None = None      # the capture's rchar when it opened the file
        self._last = 0
        self._done_reading = False
        self._rate = Rate()
        self._bar = None
        self._task = None

    # -- how far -------------------------------------------------------------
    def read_bytes(self, capture_pid: int | None) -> int:
        """Bytes of the file read so far (over the loops with ``-l``)."""
        if self._done_reading and not self.stopped:
            return self.total if self.total else self._last
        pos, chars = file_position(capture_pid, self.path) if capture_pid else (None, None)
        if pos is not None and self._base is None and chars is not None:
            self._base = chars - pos           # what the process had read before the file
        if self.loops == 1 and pos is not None:
            done = pos
        elif self._base is not None and chars is not None:
            done = chars - self._base
        else:
            done = self._last
        if self.total:
            done = min(done, self.total)
        self._last = max(self._last, done)
        return self._last

    def reading_done(self) -> None:
        """The capture exited or sent its end-of-streams: the file is read."""
        self._done_reading = True

    # -- output --------------------------------------------------------------
    def start(self) -> None:
        workers = self.settings.cluster.get("workers", 1)
        if self.tty:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TaskProgressColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                            DownloadColumn(), TextColumn("{task.fields[pps]} pkts/s"),
                            TextColumn("{task.fields[events]} events"), TextColumn("{task.fields[drops]} dropped"),
                            TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, auto_refresh=False, transient=False)
            self._task = self._bar.add_task(os.path.basename(self.path), total=self.total, pps="0",
                                            events="0", drops="0")
            self._bar.start()
        else:
            self._write("packetbeat: reading %s (%s%s) with %d worker(s), events %s"
                        % (self.path, human_bytes(self.size),
                           "" if self.loops == 1 else (", for ever" if self.loops == 0 else ", %d loops" % self.loops),
                           workers, describe_output(self.settings, self.publish)))

    def tick(self, totals, capture_pid: int | None, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self.tty:
            if now < self._next_refresh:
                return
            self._next_refresh = now + REFRESH_S
        elif now < self._next_line:
            return
        done = self.read_bytes(capture_pid)
        pkts = packets_read(totals)
        pps = self._rate.add(now, pkts)
        if self.tty:
            self._bar.update(self._task, completed=done, pps="%.0f" % pps, events=str(events_out(totals)),
                             drops=str(drops(totals)))
            self._bar.refresh()
            return
        self._next_line = max(self._next_line + self.interval, now + self.interval / 2)
        if self.total:
            where = "%d%% of %s (%s of %s)" % (min(100, 100 * done // max(1, self.total)), os.path.basename(self.path),
                                               human_bytes(done), human_bytes(self.total))
        else:
            where = "%s of %s read" % (human_bytes(done), os.path.basename(self.path))
        self._write("packetbeat: %s, %d packets (%.0f/s), %d events, %d dropped, %.0f s"
                    % (where, pkts, pps, events_out(totals), drops(totals), now - self.started))

    def finish(self, totals, rc: int, errors: list[str], now: float | None = None) -> str:
        """Stop the bar; write and return the one summary line."""
        now = self.clock() if now is None else now
        if self._bar is not None:
            self._bar.update(self._task, completed=self.read_bytes(None))
            self._bar.update(self._task, pps="%.0f" % (packets_read(totals) / max(1e-9, now - self.started)),
                             events=str(events_out(totals)), drops=str(drops(totals)))
            self._bar.refresh()
            self._bar.stop()
            self._bar = None
        line = summary(self.settings, totals, now - self.started, self.publish, rc, errors,
                       stopped=("%s%s read" % (human_bytes(self._last),
                                                " of " + human_bytes(self.total) if self.total else ""))
                       if self.stopped else "")
        self._write(line)
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


def summary(settings, totals, seconds: float, publish: bool, rc: int, errors: list[str],
            stopped: str = "") -> str:
    """One line: packets, events, where they went, and what did not get there."""
    pkts = packets_read(totals)
    parts = ["%d packets in %.1f s" % (pkts, seconds)]
    if stopped:
        parts.insert(0, "stopped on request (%s)" % stopped)
    skipped = int(totals.get("capture.skipped_empty_tcp", 0)) + int(totals.get("capture.undecodable", 0))
    if skipped:
        parts[0] += " (%d analysed)" % int(totals.get("capture.packets", 0))
    role = settings.cluster.get("role", "all")
    if role == "capture":
        parts.append(describe_output(settings, publish))
    else:
        events = events_out(totals)
        parts.append("%d events %s" % (events, describe_output(settings, publish)))
    extra = []
    failed = int(totals.get("publisher.failed", 0))
    if failed:
        extra.append("%d events failed" % failed)
    waiting = int(totals.get("publisher.spooled_waiting", 0))
    if waiting:
        extra.append("%d events wait in the disk queue" % waiting)
    lost = drops(totals) - failed
    if lost:
        extra.append("%d packets dropped" % lost)
    cut = int(totals.get("capture.cut_connections", 0))
    if cut or totals.get("capture.replayed_batches"):       # a worker restarted: say what it cut, 0 too
        extra.append("%d transactions on %d connections cut by a worker restart"
                     % (int(totals.get("capture.cut_transactions", 0)), cut))
    if rc or errors:
        extra.append("exit %d: %d error(s) below" % (rc or 1, len(errors)) if errors else "exit %d" % rc)
    return "packetbeat: done: %s%s" % (", ".join(parts), ("; " + ", ".join(extra)) if extra else "")
