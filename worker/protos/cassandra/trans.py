"""Pairs CQL requests with responses (Packetbeat's ``cassandra/trans.go``).

Two correlators with one interface (that of :class:`glue.KeyedCorrelator`):

- :class:`FifoCorrelator` (``packetbeat_quirks``, the default): Packetbeat 8
  pairs a response with the oldest request waiting, whatever their stream ids,
  so a server answering out of order (drivers multiplex streams) gives pairs
  of different streams; the events then equal Packetbeat's.
- :class:`glue.KeyedCorrelator` keyed by stream id: each response with the
  request that carried its stream.

Both are bounded (``max_pending``: the oldest request is published alone with
a note) and expire requests older than ``transaction_timeout`` by packet time.
EVENT frames answer no request: the plugin publishes them alone
(``cassandra.no_request``), as Packetbeat does when no request waits (it would
pair an EVENT with a waiting request; here a pushed event is never paired).
"""
from __future__ import annotations

import itertools
from worker.protos.glue import NOTE_EVICTED, KeyedCorrelator

__all__ = ["FifoCorrelator", "KeyedCorrelator", "make_correlator"]


class FifoCorrelator(KeyedCorrelator):
    """Requests answered in arrival order: the glue's correlator keyed by arrival
    number instead of a protocol key (bounds, expiry and flush are the glue's)."""
    __slots__ = ("_seq",)

    def __init__(self, timeout_ns: int = 10_000_000_000, max_pending: int = 1024) -> None:
        KeyedCorrelator.__init__(self, timeout_ns, max_pending)
        self._seq = itertools.count()

    def add_request(self, key, req) -> list[tuple]:
        # KeyedCorrelator.add_request under the next arrival number (new by
        # construction, so no request waits under it), in one call
        pending = self.pending
        out = []
        while len(pending) >= self.max_pending:
            _, old = pending.popitem(last=False)
            old.notes.append(NOTE_EVICTED)
            self.evicted += 1
            out.append((old, None))
        pending[next(self._seq)] = req
        return out

    def add_response(self, key, resp) -> tuple:
        if not self.pending:
            return None, resp
        _, req = self.pending.popitem(last=False)
        return req, resp


def make_correlator(by_stream: bool, timeout_ns: int, max_pending: int = 1024):
    if by_stream:
        return KeyedCorrelator(timeout_ns, max_pending)
    return FifoCorrelator(timeout_ns, max_pending)
