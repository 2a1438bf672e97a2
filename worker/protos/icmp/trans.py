"""Pairs ICMP requests with replies (Packetbeat's ``icmp.go`` processRequest /
processResponse and its transaction cache).

- A request of a pair type (echo, timestamp, information, address mask; v6
  echo) waits in a dict keyed by (version, src, dst, id, seq). A second
  request with the same key closes the first one, published with a note.
- A request of any other type (unreachable, time exceeded, redirect, router
  or neighbour discovery, ...) is a one-way transaction, published at once.
- A reply takes the open request with the reversed key; without one it is
  published alone ("Response was received without an associated request.").
- Requests still waiting after ``transaction_timeout`` (packet time) are
  published alone ("Request was received without an associated response.");
  so is everything still open at end of stream, and the oldest request when
  more than ``max_open`` are waiting. Nothing is dropped silently.

The dict keeps insertion order and every entry lives for the same timeout,
so expiry only looks at the front.
"""
from __future__ import annotations

from worker.protos.icmp.parser import IcmpMessage

DUPLICATE_REQUEST = ("Another request with the same Id and Seq was received so this request "
                     "was closed without receiving a response.")
ORPHANED_REQUEST = "Request was received without an associated response."
ORPHANED_RESPONSE = "Response was received without an associated request."


class IcmpTransaction:
    """A request and its reply (either may be missing). A plain class with
    slots rather than a dataclass: compiled, an extension type."""
    __slots__ = ("ts", "version", "src_ip", "dst_ip", "request", "response", "notes", "expires_at")

    def __init__(self, ts: int, version: int, src_ip: str, dst_ip: str,
                 request: IcmpMessage | None = None, response: IcmpMessage | None = None,
                 notes: list[str] | None = None, expires_at: int = 0):
        self.ts = ts                    # time of its first message
        self.version = version
        self.src_ip = src_ip            # the requester
        self.dst_ip = dst_ip            # the responder (the event's ``path``)
        self.request = request
        self.response = response
        self.notes = notes if notes is not None else []
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return "IcmpTransaction(%s)" % ", ".join("%s=%r" % (k, getattr(self, k))
                                                 for k in IcmpTransaction.__slots__)

    @property
    def has_error(self) -> bool:
        """Packetbeat's ``HasError``: no request, an error type on either side,
        or a request that wanted a reply and got none."""
        return _has_error(self)


def _has_error(trans: IcmpTransaction) -> bool:
    req = trans.request
    resp = trans.response
    if req is None:
        return True
    if req.is_error or (resp is not None and resp.is_error):
        return True
    return resp is None and req.needs_counterpart


def _transaction(ts, version, src_ip, dst_ip, request, response, notes) -> IcmpTransaction:
    """A new transaction (no Python ``__init__`` call once compiled)."""
    t = IcmpTransaction.__new__(IcmpTransaction)
    t.ts = ts
    t.version = version
    t.src_ip = src_ip
    t.dst_ip = dst_ip
    t.request = request
    t.response = response
    t.notes = notes
    t.expires_at = 0
    return t


class Correlator:
    __slots__ = ("timeout_ns", "max_open", "open", "counters")

    def __init__(self, timeout_ns: int, max_open: int) -> None:
        self.timeout_ns = timeout_ns
        self.max_open = max_open
        self.open: dict[tuple, IcmpTransaction] = {}
        self.counters = {"unmatched_requests": 0, "unmatched_responses": 0, "duplicate_requests": 0}

    def add(self, src_ip: str, dst_ip: str, msg: IcmpMessage) -> list[IcmpTransaction]:
        """One message seen from ``src_ip`` to ``dst_ip``; returns the
        transactions it completes (to publish, oldest first)."""
        if msg.is_request:
            return self._request(src_ip, dst_ip, msg)
        return self._response(src_ip, dst_ip, msg)

    def _request(self, src_ip: str, dst_ip: str, msg: IcmpMessage) -> list[IcmpTransaction]:
        out: list[IcmpTransaction] = []
        key = (msg.version, src_ip, dst_ip, msg.id, msg.seq)
        old = self.open.pop(key, None)
        if old is not None:
            old.notes.append(DUPLICATE_REQUEST)
            self.counters["duplicate_requests"] += 1
            out.append(old)
        trans = _transaction(msg.ts, msg.version, src_ip, dst_ip, msg, None, [])
        if not msg.needs_counterpart:
            out.append(trans)
            return out
        trans.expires_at = msg.ts + self.timeout_ns
        self.open[key] = trans
        if len(self.open) > self.max_open:
            oldest = self.open.pop(next(iter(self.open)))
            out.append(self._orphan(oldest))
        return out

    def _response(self, src_ip: str, dst_ip: str, msg: IcmpMessage) -> list[IcmpTransaction]:
        trans = self.open.pop((msg.version, dst_ip, src_ip, msg.id, msg.seq), None)
        if trans is None:
            trans = _transaction(msg.ts, msg.version, dst_ip, src_ip, None, None, [ORPHANED_RESPONSE])
            self.counters["unmatched_responses"] += 1
        trans.response = msg
        return [trans]

    def _orphan(self, trans: IcmpTransaction) -> IcmpTransaction:
        trans.notes.append(ORPHANED_REQUEST)
        self.counters["unmatched_requests"] += 1
        return trans

    def expire(self, now: int) -> list[IcmpTransaction]:
        """Requests whose timeout passed at packet time ``now``."""
        out: list[IcmpTransaction] = []
        open_ = self.open
        while open_:
            key = next(iter(open_))
            trans = open_[key]
            if trans.expires_at >= now:
                break
            del open_[key]
            out.append(self._orphan(trans))
        return out

    def flush(self) -> list[IcmpTransaction]:
        """End of stream: every open request, published alone."""
        out = [self._orphan(t) for t in self.open.values()]
        self.open.clear()
        return out
