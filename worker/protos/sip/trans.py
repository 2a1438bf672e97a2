"""SIP transactions, followed for counters only (RFC 3261 section 17).

Packetbeat 8 publishes every SIP message as its own event: a request may get
several provisional responses and one final response (more when a forking
proxy answers), both sides of a dialog send requests, and ACK has no
response, so no request/response pair is the natural unit. The events are
therefore not paired; this module follows each transaction from its request
to its final response, keyed by Call-ID and CSeq (number and method, as RFC
3261 17.1.3 matches a response to its client transaction, without the Via
branch so that a response seen on its way back through a proxy still
matches), to count:

- ``unanswered``: requests with no final (>= 200) response within
  ``transaction_timeout`` (packet time), or still open at the end;
- ``unmatched``: final responses to no request seen (the capture began
  after the request, or a retransmitted final response);
- ``retransmissions``: a request seen again while its transaction is open.

ACK opens no transaction (RFC 3261 17.1.1.3: it is not answered). The table
is bounded (``max_pending``; the oldest open request is then counted as
unanswered).
"""
from __future__ import annotations

from worker.protos.glue import KeyedCorrelator
from worker.protos.sip.parser import SipMessage


class _Open:
    """What is kept of an open request (the correlator needs ``ts`` and ``notes``)."""
    __slots__ = ("ts", "notes")

    def __init__(self, ts: int):
        self.ts = ts
        self.notes: list[str] = []


def transaction_key(msg: SipMessage) -> tuple | None:
    """(Call-ID, CSeq number, CSeq method) of a message, None without them."""
    headers = msg.headers
    call_id = headers.get(b"call-id")
    cseq = headers.get(b"cseq")
    if call_id is None or cseq is None:
        return None
    value = cseq[-1]
    parts = _CSEQ_PARTS.get(value)
    if parts is None:
        parts = _cseq_parts(value)
    if not parts:
        return None
    return call_id[-1], parts[0], parts[1]


# CSeq value -> (number, upper-case method), or () when it is not two words:
# a request and its responses share it. Bounded (cleared when full).
_CSEQ_PARTS: dict = {}


def _cseq_parts(value: bytes) -> tuple:
    parts = value.split()
    hit = (parts[0], parts[1].upper()) if len(parts) == 2 else ()
    if len(_CSEQ_PARTS) >= 4096:
        _CSEQ_PARTS.clear()
    _CSEQ_PARTS[value] = hit
    return hit


class Transactions:
    __slots__ = ("_open", "unanswered", "unmatched", "retransmissions", "answered")

    def __init__(self, timeout_ns: int, max_pending: int = 8192):
        self._open = KeyedCorrelator(timeout_ns, max_pending)
        self.unanswered = 0
        self.unmatched = 0
        self.retransmissions = 0
        self.answered = 0

    def __len__(self) -> int:
        return len(self._open)

    def message(self, msg: SipMessage) -> None:
        key = transaction_key(msg)
        if key is None:
            return
        if msg.is_request:
            if key[2] == b"ACK":
                return
            pending = self._open.pending
            if key in pending:
                self.retransmissions += 1
                return
            self.unanswered += len(self._open.add_request(key, _Open(msg.ts)))
        elif msg.code >= 200:
            if self._open.take(key) is None:
                self.unmatched += 1
            else:
                self.answered += 1

    def expire(self, now: int) -> None:
        self.unanswered += len(self._open.expire(now))

    def flush(self) -> None:
        self.unanswered += len(self._open.flush())
