"""``queue.mem``: the publisher's bounded in-memory queue, as libbeat's memory queue (8.13+).

The publisher's main thread puts each worker batch's events in (``put``) and
acknowledges the batch to the worker; one output thread takes batches out
(``get``) and sends them. Options (libbeat's names and defaults):

- ``events`` (3200): events the queue holds. A ``put`` waits while the queue
  holds that many (the main thread then stops reading, the workers' windows
  fill and they wait: file mode waits, live capture drops and counts); a
  worker batch is taken whole, so the queue may go over by one batch.
- ``flush.min_events`` (1600) and ``flush.timeout`` (10s): a ``get`` asks for
  ``min(bulk_max_size, flush.min_events)`` events (``bulk_max_size`` alone when
  ``min_events`` <= 1) and waits up to ``flush.timeout`` for that many, then
  takes what there is (at least one event). ``flush.timeout: 0`` or
  ``min_events`` <= 1 is synchronous: a ``get`` returns as soon as any event is
  there (a batch is never larger than ``events``). After ``close()`` (every worker has ended) a ``get`` returns what is
  left at once, and None when empty.

``output.elasticsearch.preset`` sets these three (see elasticsearch.PRESETS).
A batch is also cut at ``max_bytes`` of encoded events.
"""
from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from shared.confutil import ConfigError, Duration, build


@dataclasses.dataclass
class MemFlushConfig:
    min_events: int = 1600
    timeout: Duration = Duration(10.0)


@dataclasses.dataclass
class MemQueueConfig:
    events: int = 3200
    flush: MemFlushConfig = dataclasses.field(default_factory=MemFlushConfig)

    def validate(self, path: str) -> None:
        if self.events < 1:
            raise ConfigError(path + ".events", "must be at least 1")
        if self.flush.min_events < 0:
            raise ConfigError(path + ".flush.min_events", "must not be negative")
        if self.flush.timeout < 0:
            raise ConfigError(path + ".flush.timeout", "must not be negative")


def check_queue(raw, path: str = "queue"):
    """``queue`` (or an output's ``queue``) checked: at most one of ``mem`` and
    ``disk``. Returns ("mem", MemQueueConfig) or ("disk", DiskQueueConfig); an
    empty or absent mapping is the default memory queue."""
    from coordinator.publisher.spool import DiskQueueConfig
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping")
    unknown = sorted(set(raw) - {"mem", "disk"})
    if unknown:
        raise ConfigError("%s.%s" % (path, unknown[0]), "unknown queue type (known: disk, mem)")
    if raw.get("mem") is not None and raw.get("disk") is not None:
        raise ConfigError(path, "only one queue type can be configured (mem or disk)")
    if raw.get("disk") is not None:
        return "disk", build(DiskQueueConfig, raw["disk"], path + ".disk")
    return "mem", build(MemQueueConfig, raw.get("mem") or {}, path + ".mem")


def effective_queue(settings):
    """The queue a run uses: the Elasticsearch output's own ``queue`` (set by its
    ``preset``, or written there) over the top-level ``queue``, as libbeat; a
    top-level ``queue.disk`` is kept even under a preset (losing a disk queue to a
    performance preset would silently drop what the disk queue promises).
    Returns (kind, config, note): note says what was overridden, for the log."""
    raw = (settings.raw or {}).get("queue") or {}
    es = (settings.output or {}).get("elasticsearch") or {}
    own = es.get("queue") or {}
    glob = check_queue(raw)
    if not own:
        return glob[0], glob[1], ""
    mine = check_queue(own, "output.elasticsearch.queue")
    if glob[0] == "disk" and mine[0] == "mem":
        return glob[0], glob[1], ("queue.disk is kept: the memory queue settings of output.elasticsearch "
                                  "(preset %s) do not apply" % es.get("preset", "custom"))
    note = ""
    if raw:
        note = "queue settings of output.elasticsearch (preset %s) replace the top-level queue" % \
            es.get("preset", "custom")
    return mine[0], mine[1], note


class MemQueue:
    """See the module docstring. Thread-safe: one or more putters, one getter."""

    def __init__(self, events: int = 3200, batch_size: int = 1600, flush_timeout: float = 10.0,
                 max_bytes: int = 10 * 1024 * 1024, clock: Callable[[], float] = time.monotonic):
        self.capacity = max(1, events)
        self.batch_size = max(1, batch_size)
        self.flush_timeout = max(0.0, float(flush_timeout))
        self.max_bytes = max_bytes
        self._clock = clock
        self._events: collections.deque = collections.deque()
        self._lines: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.high_water = 0                  # the most events held at once

    @classmethod
    def from_config(cls, qc: MemQueueConfig, bulk_max_size: int) -> "MemQueue":
        size = bulk_max_size if qc.flush.min_events <= 1 else min(bulk_max_size, qc.flush.min_events)
        size = min(size, qc.events)         # a batch never waits for more than the queue holds
        timeout = 0.0 if qc.flush.min_events <= 1 else float(qc.flush.timeout)
        return cls(qc.events, size, timeout)

    def __len__(self) -> int:
        return len(self._lines)

    def put(self, events: list, lines: list, give_up: Callable[[], bool] | None = None,
            poll: float = 0.25) -> bool:
        """Add a batch (``events[i]`` may be None when only ``lines`` are used);
        waits while the queue is full, asking ``give_up()`` every ``poll`` s
        (True: the batch is not added, False is returned)."""
        with self._cond:
            while len(self._lines) >= self.capacity and not self._closed:
                if give_up is not None and give_up():
                    return False
                self._cond.wait(poll)
            self._events.extend(events)
            self._lines.extend(lines)
            if len(self._lines) > self.high_water:
                self.high_water = len(self._lines)
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """No more puts: ``get`` hands out what is left without waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, idle: Callable[[], None] | None = None, poll: float = 0.5,
            stop: Callable[[], bool] | None = None):
        """The next batch: (events, lines), or None once closed and empty (or
        ``stop()``). ``idle()`` is called about every ``poll`` s while waiting."""
        with self._cond:
            deadline = self._clock() + self.flush_timeout
            while True:
                n = len(self._lines)
                if n >= self.batch_size or (n and (self._closed or self._clock() >= deadline)):
                    break
                if self._closed and not n:
                    return None
                if stop is not None and stop():
                    return None
                wait = poll if not n else min(poll, max(0.0, deadline - self._clock()))
                self._cond.wait(wait)
                if idle is not None:
                    self._cond.release()
                    try:
                        idle()
                    finally:
                        self._cond.acquire()
            events, lines, size = [], [], 0
            while self._lines and len(lines) < self.batch_size:
                line = self._lines[0]
                ln = len(line) + 1 if line is not None else 0
                if lines and size + ln > self.max_bytes:
                    break
                lines.append(self._lines.popleft())
                events.append(self._events.popleft())
                size += ln
            self._cond.notify_all()
        return events, lines

    def drain(self) -> int:
        """Empty the queue; the number of events dropped."""
        with self._cond:
            n = len(self._lines)
            self._events.clear()
            self._lines.clear()
            self._cond.notify_all()
        return n
