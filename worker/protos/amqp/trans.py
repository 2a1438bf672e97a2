"""Pairs AMQP synchronous methods with their answers, per channel.

Packetbeat (``amqp.go``) keeps one open transaction per TCP connection: the
next response of either side completes it, and a second request replaces
(and loses) the first. Here the key is the channel and the side that sent the
request: the peer answers the synchronous methods of a channel in order, on
that channel, so each ``(channel, direction)`` has a FIFO of waiting
requests, stored in the glue's :class:`KeyedCorrelator` (bounded, expired by
packet time, flushed with notes).

- A response pairs with the oldest waiting request of its channel sent by the
  other side that it answers (``queue.declare-ok`` answers ``queue.declare``,
  ``basic.get-ok``/``get-empty`` answer ``basic.get``...). Requests waiting
  before it will never be answered: they are given up ("no response").
- A channel.close (connection.close) from one side means the other side's
  requests waiting on that channel (on every channel) get no answer: the
  peer discards them. They are given up with a note naming the close.
- basic.publish / deliver / return, basic.ack / nack / reject and methods
  sent with no-wait are not requests waiting for anything; the plugin
  publishes them at once, as Packetbeat does.
"""
from __future__ import annotations

from collections import deque

from worker.protos.amqp.parser import AmqpMessage, CLOSES
from worker.protos.glue import NOTE_EVICTED, NOTE_TIMEOUT, KeyedCorrelator

NOTE_CLOSE_OK_MISSING = "Close-ok method not received by sender"
NOTE_SUPERSEDED = "no response: a later request on the channel was answered first"

Pair = tuple


def is_close_error(m: AmqpMessage) -> bool:
    return (m.class_id, m.method_id) in CLOSES and m.fields.get("reply-code", 0) >= 300


class Correlator:
    __slots__ = ("kc", "queues", "seq", "max_pending", "queued")

    def __init__(self, timeout_ns: int = 10_000_000_000, max_pending: int = 1024) -> None:
        self.kc = KeyedCorrelator(timeout_ns, max_pending)
        self.queues: dict[tuple[int, int], deque] = {}   # (channel, direction) -> keys, oldest first
        self.seq = 0
        self.max_pending = max_pending
        self.queued = 0         # keys in all the queues (those of evicted/expired requests included)

    @property
    def pending(self):
        return self.kc.pending

    def __len__(self) -> int:
        return len(self.kc)

    def add_request(self, req: AmqpMessage) -> list[Pair]:
        """Queue a synchronous request; returns what it pushed out."""
        out: list[Pair] = []
        if (req.class_id, req.method_id) in CLOSES:
            out.extend(self._closed(req))
        qk = (req.channel, req.direction)
        key = (req.channel, req.direction, self.seq)
        self.seq += 1
        # KeyedCorrelator.add_request, inline (keys are unique: no request
        # with the same key can be waiting): make room, then wait
        kc = self.kc
        pending = kc.pending
        while len(pending) >= kc.max_pending:
            _, old = pending.popitem(last=False)
            old.notes.append(NOTE_EVICTED)
            kc.evicted += 1
            out.append((old, None))
        pending[key] = req
        q = self.queues.get(qk)
        if q is None:
            q = self.queues[qk] = deque()
        q.append(key)
        self.queued += 1
        if self.queued > 2 * self.max_pending + 16:
            self._compact()
        return out

    def _compact(self) -> None:
        """Forget the keys of requests no longer waiting (evicted, expired): the
        queues stay within a few times ``max_pending`` keys whatever is sent."""
        pending = self.kc.pending
        total = 0
        for qk in list(self.queues):
            q = deque([k for k in self.queues[qk] if k in pending])
            if q:
                self.queues[qk] = q
                total += len(q)
            else:
                del self.queues[qk]
        self.queued = total

    def add_response(self, resp: AmqpMessage) -> list[Pair]:
        """Pair a response; ``[(None, resp)]`` when no waiting request fits.
        Requests that waited before the one it answers come first, alone."""
        qk = (resp.channel, 1 - resp.direction)
        q = self.queues.get(qk)
        if not q:
            return [(None, resp)]
        pending = self.kc.pending
        while q and q[0] not in pending:
            q.popleft()
            self.queued -= 1
        want = resp.answers
        for i, key in enumerate(q):
            req = pending.get(key)
            if req is not None and (req.class_id, req.method_id) == want:
                break
        else:
            if not q:
                del self.queues[qk]
            return [(None, resp)]
        out: list[Pair] = []
        self.queued -= i + 1
        for _ in range(i):
            old = pending.pop(q.popleft(), None)
            if old is not None:
                old.notes.append(NOTE_SUPERSEDED)
                out.append((old, None))
        out.append((pending.pop(q.popleft(), None), resp))
        if not q:
            del self.queues[qk]
        return out

    def _closed(self, close: AmqpMessage) -> list[Pair]:
        """``close`` (channel.close or connection.close) was sent: the other
        side's requests on the channel (all channels) will not be answered."""
        other = 1 - close.direction
        whole = close.class_id == 10
        f = close.fields
        note = "no response: %s by the %s" % (close.method, "server" if close.direction else "client")
        if f.get("reply-code", 0) >= 300:
            note += " (%s %s)" % (f.get("reply-code"), f.get("reply-text", ""))
        out: list[Pair] = []
        for qk in [k for k in self.queues if k[1] == other and (whole or k[0] == close.channel)]:
            keys = self.queues.pop(qk)
            self.queued -= len(keys)
            for key in keys:
                req = self.kc.take(key)
                if req is not None:
                    req.notes.append(note)
                    out.append((req, None))
        return out

    def expire(self, now: int) -> list[Pair]:
        out = self.kc.expire(now)
        for req, _ in out:
            req.notes.append(NOTE_CLOSE_OK_MISSING if is_close_error(req) else NOTE_TIMEOUT)
        return out

    def flush(self) -> list[Pair]:
        self.queues.clear()
        self.queued = 0
        out = self.kc.flush()
        for req, _ in out:
            if is_close_error(req):
                req.notes.append(NOTE_CLOSE_OK_MISSING)
        return out
