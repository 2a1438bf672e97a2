"""MongoDB correlation: a reply names its request (``responseTo`` =
``requestID``), as in Packetbeat's ``mongodb.go`` (``onRequest`` /
``onResponse``, its ``requests`` and ``responses`` caches).

- A request that expects no reply (legacy OP_INSERT / OP_UPDATE / OP_DELETE /
  OP_KILL_CURSORS / old OP_MSG, and an OP_MSG sent with moreToCome) is a
  transaction by itself, published at once.
- Other requests wait in a :class:`~worker.protos.glue.KeyedCorrelator`
  under their ``requestID``; a second request with the same id pushes the
  first out (published with a note), as Packetbeat drops it.
- A reply whose request is not (yet) known waits, bounded, under its
  ``responseTo``: a request arriving later with that id takes it (capture
  order can put a reply first). Replies still waiting when they expire or
  the connection ends are published alone, with a note.
- Exhaust: a reply flagged moreToCome (OP_MSG), or a reply with a non-zero
  cursor to an OP_QUERY sent with the Exhaust flag, is followed by another
  reply whose ``responseTo`` is this reply's ``requestID``. The request is
  kept under that id as a continuation: same command, no request bytes, its
  start the previous reply's time. So each reply is one event.
- Requests and waiting replies expire ``timeout_ns`` after they began
  (packet time); a request with ``maxAwaitTimeMS`` / ``maxTimeMS`` (an
  awaitable hello, a tailable getMore) that much later.
"""
from __future__ import annotations

from collections import OrderedDict

from worker.protos.glue import NOTE_TIMEOUT, KeyedCorrelator
from worker.protos.mongodb.parser import OP_MSG, MongodbMessage


class Correlator:
    __slots__ = ("requests", "responses", "timeout_ns", "max_pending",
                 "unmatched_responses", "unmatched_requests")

    def __init__(self, timeout_ns: int = 10_000_000_000, max_pending: int = 1024) -> None:
        self.requests = KeyedCorrelator(timeout_ns, max_pending)
        self.responses: OrderedDict = OrderedDict()
        self.timeout_ns = timeout_ns
        self.max_pending = max_pending
        self.unmatched_responses = 0
        self.unmatched_requests = 0

    @property
    def pending(self):
        return self.requests.pending

    def add(self, msg: MongodbMessage) -> list[tuple]:
        if msg.is_request:
            if not msg.expects_response:
                return [(msg, None)]
            if self.responses:
                resp = self.responses.pop(msg.request_id, None)
                if resp is not None:
                    out = [(msg, resp)]
                    if resp.more_to_come:
                        self._continue(msg, resp, out)
                    return out
            out = self.requests.add_request(msg.request_id, msg)
            self.unmatched_requests += len(out)
            return out
        req = self.requests.pending.pop(msg.response_to, None)
        if req is None:
            out = []
            self.responses.pop(msg.response_to, None)
            while len(self.responses) >= self.max_pending:
                _, old = self.responses.popitem(last=False)
                self.unmatched_responses += 1
                out.append((None, old))
            self.responses[msg.response_to] = msg
            return out
        out = [(req, msg)]
        if msg.more_to_come:
            self._continue(req, msg, out)
        return out

    def _continue(self, req: MongodbMessage, resp: MongodbMessage, out: list) -> None:
        if resp.opcode == OP_MSG or req.exhaust:
            nxt = req.continuation(resp.ts)
            out.extend(self.requests.add_request(resp.request_id, nxt))

    def expire(self, now: int) -> list[tuple]:
        pending = self.requests.pending
        if not pending and not self.responses:
            return []
        out = []
        if pending:
            # a request may ask the server to wait (``wait_ns``): its deadline is
            # its own, so the whole (bounded) table is looked at
            timeout = self.timeout_ns
            dead = [k for k, r in pending.items() if r.ts + timeout + r.wait_ns <= now]
            for k in dead:
                req = pending.pop(k)
                req.notes.append(NOTE_TIMEOUT)
                out.append((req, None))
            self.requests.expired += len(dead)
            self.unmatched_requests += len(dead)
        limit = now - self.timeout_ns
        responses = self.responses
        while responses:
            key, resp = next(iter(responses.items()))
            if resp.ts > limit:
                break
            del responses[key]
            self.unmatched_responses += 1
            out.append((None, resp))
        return out

    def flush(self) -> list[tuple]:
        out = self.requests.flush()
        self.unmatched_requests += len(out)
        self.unmatched_responses += len(self.responses)
        out.extend((None, resp) for resp in self.responses.values())
        self.responses.clear()
        return out
