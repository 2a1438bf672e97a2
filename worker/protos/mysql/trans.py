"""Pairs MySQL commands with their responses.

A MySQL connection answers one command before it reads the next, so two
FIFOs suffice (Packetbeat keeps one open transaction per connection; a FIFO
is the same thing made robust to a client that writes ahead). Every command
that gets an answer is queued, published or not (COM_PING is answered but
not published), so that each response meets its own command.

- A response with nothing waiting is returned alone ("Unmatched response").
- A command waiting longer than the transaction timeout (packet time) is
  returned alone ("Unmatched request") and stays queued as a tombstone, so
  that its late answer is not paired with the next command: that answer is
  returned alone as well.
- Commands still waiting when the connection is forgotten are returned alone.
"""
from __future__ import annotations

from collections import deque

from worker.protos.mysql.parser import MysqlMessage

Pair = tuple[MysqlMessage | None, MysqlMessage | None]

MAX_QUEUED = 1000
_NONE: tuple = ()


class Correlator:
    __slots__ = ("requests", "dead")

    def __init__(self) -> None:
        self.requests: deque[MysqlMessage] = deque()
        self.dead = 0            # leading requests already given up (tombstones)

    def add_request(self, msg: MysqlMessage) -> list[Pair]:
        reqs = self.requests
        reqs.append(msg)
        if len(reqs) > MAX_QUEUED:
            old = reqs.popleft()
            if self.dead:
                self.dead -= 1
                return []
            return [(old, None)]
        return []

    def add_response(self, msg: MysqlMessage) -> Pair:
        reqs = self.requests
        if not reqs:
            return None, msg
        req = reqs.popleft()
        if self.dead:
            self.dead -= 1
            return None, msg          # its command was given up already
        return req, msg

    def expire(self, older_than: int):
        """Requests that began before ``older_than`` (ns), given up."""
        reqs = self.requests
        if len(reqs) == self.dead or reqs[self.dead].ts >= older_than:
            return _NONE
        out: list[Pair] = []
        while self.dead < len(reqs) and reqs[self.dead].ts < older_than:
            out.append((reqs[self.dead], None))
            self.dead += 1
        return out

    def flush(self) -> list[Pair]:
        out: list[Pair] = [(r, None) for r in list(self.requests)[self.dead:]]
        self.requests.clear()
        self.dead = 0
        return out
