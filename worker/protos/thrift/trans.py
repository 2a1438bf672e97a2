"""Pairs Thrift calls with their replies (Packetbeat's ``thrift.go``
receivedRequest / receivedReply), by seqid.

Packetbeat keeps one call per connection and pairs the next reply with it
when the method names agree. Here calls wait under ``(direction, seqid)`` in a
:class:`worker.protos.glue.KeyedCorrelator`, so a client that pipelines calls
(asynchronous clients give each call its own seqid) gets each reply paired
with its own call; a client that reuses one seqid (most synchronous clients
send 0) is paired call by call as in Packetbeat.

- A reply is paired with the call waiting under its seqid in the other
  direction when the method names agree (a call sent through a multiplexing
  protocol is named ``Service:method`` and answered ``method``). Otherwise it
  is published alone (note "Unmatched response"; Packetbeat counts and drops
  it) and the call keeps waiting.
- A oneway call gets no reply: it is published at once, as a complete
  transaction, when its message type is ONEWAY or the IDL declares it
  ``oneway`` (older Thrift libraries send oneway calls as CALL).
  Otherwise, as in Packetbeat ("two requests without reply, assuming the old
  one is oneway"), a call is presumed oneway, and published as a complete
  transaction, when a newer call of the same direction takes its seqid
  before any reply came, or when a newer call of the same direction is
  answered first (it is then published when its own reply, the connection's
  end or the timeout comes).
- A call still waiting at the connection's end or after
  ``transaction_timeout`` is published alone ("Unmatched request" /
  "no response (transaction timeout)").
"""
from __future__ import annotations

from worker.protos.glue import NOTE_TIMEOUT, KeyedCorrelator
from worker.protos.thrift.parser import ThriftMessage

Pair = tuple  # (request or None, response or None)


def same_method(call: str, reply: str) -> bool:
    return call == reply or (call.endswith(reply) and call[-len(reply) - 1:-len(reply)] == ":")


class ThriftCorrelator:
    __slots__ = ("waiting",)

    def __init__(self, timeout_ns: int, max_pending: int = 1024) -> None:
        self.waiting = KeyedCorrelator(timeout_ns, max_pending)

    @property
    def pending(self):
        return self.waiting.pending

    def add(self, direction: int, msg: ThriftMessage) -> list[Pair]:
        waiting = self.waiting
        if msg.is_request:
            if msg.oneway:
                return [(msg, None)]
            key = (direction, msg.seqid)
            old = waiting.pending.pop(key, None)
            out = waiting.add_request(key, msg)
            if old is not None:
                old.oneway = True           # no reply before the next call took its seqid
                out.insert(0, (old, None))
            return out
        key = (1 - direction, msg.seqid)
        req = waiting.pending.pop(key, None)
        if req is None:
            return [(None, msg)]
        if not same_method(req.method, msg.method):
            out = waiting.add_request(key, req)
            out.append((None, msg))
            return out
        if waiting.pending:
            d = key[0]
            for (kd, _seq), other in waiting.pending.items():
                if kd == d and other.ts <= req.ts:
                    other.oneway = True     # an older call, still unanswered
        return [(req, msg)]

    def expire(self, now: int) -> list[Pair]:
        w = self.waiting
        if not w.pending:
            return []
        out = w.expire(now)
        for req, _ in out:
            if not req.oneway:
                req.notes.append(NOTE_TIMEOUT)
        return out

    def flush(self) -> list[Pair]:
        return self.waiting.flush()
