"""The output thread of the memory queue: take batches, send them, retry while the output is down.

As libbeat with its memory queue: events the output could not reach
(``Result.unreachable``: refused, timed out, no usable answer) are sent again
with capped exponential backoff (``backoff.init`` doubling to
``backoff.max``) until they go through, however long that takes; each
failed attempt is logged with the host and the cause, and while a long
backoff runs a reminder is logged every ``REMIND_S`` seconds. Other failures
(a document Elasticsearch refused, an item still answered 429/5xx after
``max_retries``) are counted as failed and logged, not retried.

Before its first batch, and again after the output was unreachable, the
thread runs ``on_connect`` (the Elasticsearch index template and ILM policy
for the data stream: coordinator/setup.py ``ensure``), as libbeat does on
each connection; its failure counts as unreachable.

``stop()``: a stop was requested (SIGTERM). Batches still go out while the
output takes them, however long the drain takes; the first failure after the
stop gives up (no more backoff), and so does ``abandon()`` (the publisher's
grace is over while the output is down or a request hangs). Everything not delivered then is counted in
``publisher.not_delivered``.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("packetbeat.publisher")

REMIND_S = 10.0


class MemSender:
    def __init__(self, queue, output, counters, backoff_init: float = 1.0, backoff_max: float = 60.0,
                 on_connect=None):
        self.queue = queue
        self.output = output
        self.counters = counters
        self.backoff = (float(backoff_init), float(backoff_max))
        self.on_connect = on_connect
        self._connected = on_connect is None
        self._stopping = threading.Event()
        self._abandoned = threading.Event()
        self._wake = threading.Event()          # set by stop()/abandon(): a backoff wait ends
        self.inflight = 0                       # events of the batch being sent
        self.not_delivered = 0
        self.down_since: float | None = None       # the output has been failing since
        self.sending_since: float | None = None    # a request is in flight since
        self.last_error = ""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mem-output", daemon=True)
        idle = getattr(output, "close_idle", None)
        self._idle = idle if callable(idle) else None
        if hasattr(output, "_sleep"):           # the Elasticsearch output's own item retries
            output._sleep = self._wait

    # -- control (main thread) ------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def abandon(self) -> None:
        self._stopping.set()
        self._abandoned.set()
        self._wake.set()

    @property
    def abandoned(self) -> bool:
        return self._abandoned.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """True once the thread has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        if not self._stopping.is_set():
            self._wake.wait(seconds)

    def _run(self) -> None:
        try:
            while True:
                got = self.queue.get(idle=self._idle, stop=self._abandoned.is_set)
                if got is None:
                    break
                events, lines = got
                self.inflight = len(lines)
                self._deliver(events, lines)
                self.inflight = 0
        except BaseException as e:          # reported by the publisher (process.py)
            self.error = e
            log.exception("output thread failed")

    def lost(self, n: int) -> None:
        """Events the publisher could not queue after giving up (main thread)."""
        self.not_delivered += n
        self.counters["publisher.not_delivered"] += n

    def _give_up(self, n: int, why: str) -> None:
        self.inflight = 0                       # counted here, not again by the publisher
        self.not_delivered += n
        self.counters["publisher.not_delivered"] += n
        self._abandoned.set()
        if why:
            self.last_error = why

    def _deliver(self, events: list, lines: list) -> None:
        from coordinator.publisher.chunker import Batch
        delay, cap = self.backoff
        attempt = 0
        reminded = time.monotonic()
        while lines:
            if self._abandoned.is_set():
                self._give_up(len(lines), "")
                return
            failed_at_connect = False
            if not self._connected:
                self.sending_since = time.monotonic()
                try:
                    self.on_connect()
                    self._connected = True
                except Exception as e:       # noqa: BLE001 - reported as the output being unreachable
                    failed_at_connect = True
                    err = str(e)
                finally:
                    self.sending_since = None
            if not failed_at_connect:
                self.sending_since = time.monotonic()
                try:
                    results = self.output.publish_batch(Batch(events, lines))
                finally:
                    self.sending_since = None
                again_e, again_l = [], []
                err = ""
                for ev, line, r in zip(events, lines, results):
                    if r.ok:
                        self.counters["publisher.published"] += 1
                    elif r.unreachable:
                        again_e.append(ev)
                        again_l.append(line)
                        err = r.error
                    else:
                        self.counters["publisher.failed"] += 1
                        if not err:
                            log.error("output failed for an event: %s", r.error)
                            err = r.error
                if len(again_l) < len(lines) and self.down_since is not None:
                    log.info("output reachable again after %.0f s; sending the %d waiting events",
                             time.monotonic() - self.down_since, len(again_l) + len(self.queue))
                    self.down_since = None
                events, lines = again_e, again_l
                self.inflight = len(lines)
                if not lines:
                    return
                if self.on_connect is not None:
                    self._connected = False      # set up again on the next connection, as libbeat
            self.last_error = err
            if self._stopping.is_set():
                self._give_up(len(lines), err)
                return
            attempt += 1
            now = time.monotonic()
            if self.down_since is None:
                self.down_since = now
            self.counters["publisher.retry_rounds"] += 1
            log.error("%s; attempt %d failed, %d events waiting (%d in the queue), sending again in %.0f s",
                      err, attempt, len(lines), len(self.queue), delay)
            end = now + delay
            while not self._stopping.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(min(left, REMIND_S))
                if time.monotonic() - reminded >= REMIND_S and end - time.monotonic() > 1:
                    reminded = time.monotonic()
                    log.warning("still waiting for the output (down for %.0f s, %d events waiting); "
                                "next attempt in %.0f s", time.monotonic() - self.down_since,
                                len(lines) + len(self.queue), end - time.monotonic())
            delay = min(delay * 2, cap)
