"""Pairs PostgreSQL requests with responses (Packetbeat's ``receivedPgsqlRequest``
/ ``receivedPgsqlResponse``), resynchronised at ReadyForQuery.

The backend answers statements in the order they were sent, so one FIFO
suffices, pipelining included. The FIFO also holds a marker for every point
the backend answers with ReadyForQuery (a Query, a Sync, the startup). A
ReadyForQuery pops everything up to and including the first marker: the
statements still queued there were never answered (the rest of a
multi-statement Query, or of a pipeline, after an error) and are published
with the note ``no response``. A response that finds a marker at the head of
the FIFO (or nothing) answers no captured statement (an authentication
error, a capture that began mid-conversation) and is published alone with
``Unmatched response``; so is a response that began before the request at
the head of the FIFO (it cannot be its answer).

Hidden requests (a prepare with no Execute, ``SET`` through the extended
protocol) are paired like the others but published only when the answer is
an error; the plugin filters them.
"""
from __future__ import annotations

from collections import deque

from worker.protos.pgsql.parser import PgsqlMessage

Pair = tuple[PgsqlMessage | None, PgsqlMessage | None]

MAX_QUEUED = 1000   # requests and markers waiting before the oldest is given up

_SYNC = None        # the marker in the FIFO


class Correlator:
    __slots__ = ("queue", "syncs")

    def __init__(self) -> None:
        self.queue: deque[PgsqlMessage | None] = deque()
        self.syncs = 0

    def add_request(self, msg: PgsqlMessage) -> list[Pair]:
        self.queue.append(msg)
        return self._bound()

    def add_sync(self) -> list[Pair]:
        self.queue.append(_SYNC)
        self.syncs += 1
        return self._bound()

    def add_response(self, msg: PgsqlMessage) -> list[Pair]:
        q = self.queue
        if q and q[0] is not _SYNC and q[0].ts <= msg.ts:
            return [(q.popleft(), msg)]
        return [(None, msg)]        # nothing asked, or it began before the request: not its answer

    def ready(self, partial: PgsqlMessage | None) -> list[Pair]:
        """ReadyForQuery: close the oldest request cycle. ``partial`` is an
        answer that never reached its end (e.g. the ParseComplete of a
        prepare): it goes to the first request still queued in the cycle."""
        out: list[Pair] = []
        if not self.syncs:
            return out          # the cycle began before the capture: nothing to close
        q = self.queue
        while q:
            req = q.popleft()
            if req is _SYNC:
                self.syncs -= 1
                break
            if partial is not None and partial.ts >= req.ts:
                out.append((req, partial))
                partial = None
            else:
                out.append((req, None))
        return out

    def flush(self) -> list[Pair]:
        """Everything still queued, as requests without a response."""
        out: list[Pair] = [(r, None) for r in self.queue if r is not _SYNC]
        self.queue.clear()
        self.syncs = 0
        return out

    def _bound(self) -> list[Pair]:
        q = self.queue
        out: list[Pair] = []
        while len(q) > MAX_QUEUED:
            req = q.popleft()
            if req is _SYNC:
                self.syncs -= 1
            else:
                out.append((req, None))
        return out
