"""Pairs HTTP requests with responses (Packetbeat's ``correlate``).

HTTP/1.x answers requests in the order they were sent, so two FIFOs suffice,
even with pipelining. Interim responses (1xx other than 101, e.g. the
``100 Continue`` of ``Expect: 100-continue``) answer nothing and are dropped.
A response with no request waiting is published alone ("Unmatched
response"); requests still waiting when the connection is forgotten are
published alone too ("Unmatched request"), by :meth:`Correlator.flush`.
"""
from __future__ import annotations


from worker.protos.http.parser import HttpMessage

Pair = tuple[HttpMessage | None, HttpMessage | None]

MAX_QUEUED = 1000   # requests waiting for an answer before the oldest is given up


class Correlator:
    __slots__ = ("requests", "responses")

    def __init__(self) -> None:
        # plain lists: short queues, and a deque costs ~760 bytes per idle connection
        self.requests: list[HttpMessage] = []
        self.responses: list[HttpMessage] = []

    def add(self, msg: HttpMessage) -> list[Pair]:
        """Queue one complete message; return the transactions it completes
        (``(request, response)``, either side possibly None)."""
        out: list[Pair] = []
        if msg.is_request:
            self.requests.append(msg)
            if len(self.requests) > MAX_QUEUED:
                out.append((self.requests.pop(0), None))
            return out
        if 100 <= msg.status_code < 200 and msg.status_code != 101:
            return out
        self.responses.append(msg)
        return self._correlate(out)

    def flush(self) -> list[Pair]:
        """Everything still queued, as half transactions (requests first)."""
        out = self._correlate([])
        out.extend([(r, None) for r in self.requests])
        out.extend([(None, r) for r in self.responses])
        self.requests.clear()
        self.responses.clear()
        return out

    def _correlate(self, out: list[Pair]) -> list[Pair]:
        while self.responses and self.requests:
            out.append((self.requests.pop(0), self.responses.pop(0)))
        while self.responses:       # nothing to answer: unmatched
            out.append((None, self.responses.pop(0)))
        return out
