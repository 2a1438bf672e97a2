"""Pairs DNS queries with responses (Packetbeat's DNS ``transactions`` cache,
``receivedDNSRequest`` / ``receivedDNSResponse`` / ``expireTransaction``).

A transaction is keyed by transport, client address and port, server address
and port, and the message ID; one table serves UDP and TCP. A response looks
its query up under the reversed endpoints. Nothing is ever dropped:

- a second query with the key of one still open closes the first (note
  "Another query with the same DNS ID ...");
- a response with no open query is a transaction by itself ("Response:
  received without an associated Query");
- a query older than the transaction timeout (packet time, checked by
  :meth:`Correlator.expire`) or still open at the end (:meth:`drain`) is
  published alone ("No response to this query was received");
- over UDP, EDNS mismatches and oversize non-EDNS messages add notes.

Open queries are kept in arrival order, so expiry looks at the oldest only.
"""
from __future__ import annotations

from worker.plugin import UDP
from worker.protos.dns.parser import DnsMessage

DUPLICATE_QUERY = ("Another query with the same DNS ID from this client was received "
                   "so this query was closed without receiving a response")
NO_RESPONSE = "No response to this query was received"
ORPHANED_RESPONSE = "Response: received without an associated Query"
UDP_TOO_LARGE = "Non-EDNS packet has size greater than 512"
RESP_EDNS_NO_SUPPORT = "Responder does not support EDNS"
RESP_EDNS_UNEXPECTED = "Unexpected EDNS answer"
MAX_DNS_PACKET = 512
MAX_OPEN = 65536        # open queries; beyond, the oldest is published as unanswered


class Transaction:
    """``tuple`` is the IpPortTuple client -> server (transport first)."""
    __slots__ = ("key", "tuple", "request", "response", "notes")

    def __init__(self, key: tuple, tuple_, request: DnsMessage | None,
                 response: DnsMessage | None, notes: list[str]):
        self.key = key
        self.tuple = tuple_
        self.request = request
        self.response = response
        self.notes = notes

    @property
    def ts(self) -> int:
        return self.request.ts if self.request is not None else self.response.ts


def _transaction(key: tuple, tuple_, request: DnsMessage | None, response: DnsMessage | None,
                 notes: list[str]) -> Transaction:
    """``Transaction(...)`` without the argument parsing of ``__init__``
    (compiled: a C-level allocation and field stores)."""
    t = Transaction.__new__(Transaction)
    t.key = key
    t.tuple = tuple_
    t.request = request
    t.response = response
    t.notes = notes
    return t


class Correlator:
    __slots__ = ("open", "timeout_ns", "unmatched_requests", "unmatched_responses")

    def __init__(self, timeout_ns: int):
        self.open: dict[tuple, Transaction] = {}
        self.timeout_ns = timeout_ns
        self.unmatched_requests = 0
        self.unmatched_responses = 0

    def request(self, tuple_, msg: DnsMessage) -> list[Transaction]:
        """Open a transaction for query ``msg`` seen on ``tuple_`` (client ->
        server); return the transactions this closes (a duplicate, or the
        oldest when the table is full)."""
        t, sip, sport, dip, dport = tuple_     # unpacked: cheaper than (*tuple_, id) compiled
        key = (t, sip, sport, dip, dport, msg.id)
        out: list[Transaction] = []
        prev = self.open.pop(key, None)
        if prev is not None:
            prev.notes.append(DUPLICATE_QUERY)
            out.append(prev)
        notes = []
        if t == UDP and msg.opt is not None and msg.size > MAX_DNS_PACKET:
            notes.append(UDP_TOO_LARGE)
        self.open[key] = _transaction(key, tuple_, msg, None, notes)
        if len(self.open) > MAX_OPEN:
            oldest = self.open.pop(next(iter(self.open)))
            oldest.notes.append(NO_RESPONSE)
            self.unmatched_requests += 1
            out.append(oldest)
        return out

    def response(self, tuple_, msg: DnsMessage) -> Transaction:
        """Close the transaction answered by ``msg`` seen on ``tuple_``
        (server -> client) and return it."""
        t, sip, sport, dip, dport = tuple_
        key = (t, dip, dport, sip, sport, msg.id)
        trans = self.open.pop(key, None)
        if trans is None:
            trans = _transaction(key, (t, dip, dport, sip, sport), None, msg, [ORPHANED_RESPONSE])
            self.unmatched_responses += 1
        else:
            trans.response = msg
        if t == UDP:
            resp_edns = msg.opt is not None
            if not resp_edns and msg.size > MAX_DNS_PACKET:
                trans.notes.append("Response: " + UDP_TOO_LARGE)
            req = trans.request
            if req is not None:
                req_edns = req.opt is not None
                if req_edns and not resp_edns:
                    trans.notes.append(RESP_EDNS_NO_SUPPORT)
                elif resp_edns and not req_edns:
                    trans.notes.append(RESP_EDNS_UNEXPECTED)
        return trans

    def take(self, key: tuple) -> Transaction | None:
        """Remove and return the open transaction ``key`` (None if closed)."""
        return self.open.pop(key, None)

    def expire(self, now: int) -> list[Transaction]:
        """Queries at least the transaction timeout older than ``now`` (ns)."""
        open_ = self.open
        if not open_:
            return []
        limit = now - self.timeout_ns
        out = []
        while open_:
            key = next(iter(open_))
            trans = open_[key]
            if trans.request.ts > limit:
                break
            del open_[key]
            trans.notes.append(NO_RESPONSE)
            self.unmatched_requests += 1
            out.append(trans)
        return out

    def drain(self) -> list[Transaction]:
        """Every open query, as unanswered (end of stream)."""
        out = list(self.open.values())
        self.open.clear()
        for trans in out:
            trans.notes.append(NO_RESPONSE)
        self.unmatched_requests += len(out)
        return out
