"""Pairs memcache requests and responses (Packetbeat ``plugin_tcp.go``
``correlateTCP`` / ``pushAllTCPTrans`` and ``plugin_udp.go``).

TCP: requests wait in a FIFO. Text responses answer the oldest request.
Binary responses answer the request with the same (opaque, opcode), and for
the keyed gets (GetK/GetKQ/GatK/GatKQ, whose responses carry the key) the
same key; quiet requests skipped on the way had no answer (normal for quiet
opcodes: a quiet get before the answer to a later request was a miss), a
skipped non-quiet request lost its answer. The key matters for quiet
multi-gets of clients that give every request the same opaque
(python-binary-memcached sends GetKQ... GetK all with opaque 0): Packetbeat
pairs by (opaque, opcode) only, so there the first miss took the next hit's
response. A keyless GetQ response whose opaque is shared by several waiting
GetQ requests cannot be told apart: it answers the oldest one (as
Packetbeat), with a note saying the pairing is by order. ``VALUE`` / ``STAT`` responses are
merged up to ``END`` (binary ``Stat`` responses up to the one without a key)
before they are paired.

A request that expects no answer (text ``quit``, text ``noreply``, binary
``QuitQ``) is a transaction by itself at once. Packetbeat queues text
``noreply`` requests as if an answer were coming, which pairs the next
response with them on TCP; here they are not queued.

UDP: a transaction is keyed by the flow and the frame header's request id;
it is published when both sides are complete, or by :meth:`UdpTransactions.expire`
once it has been idle for ``udptransactiontimeout`` (packet time). A request
datagram holding several requests gets a :class:`TcpCorrelator` of its own
(``UdpTransaction.corr``), which pairs the answers as on TCP.

Notes (``error.message``) on half transactions say why the other half is
absent; nothing is dropped silently.
"""
from __future__ import annotations

import collections
from collections import deque

from worker.protos.memcache.parser import OPCODE_QUITQ, OPCODE_STAT, MemcacheMessage

Pair = tuple[MemcacheMessage | None, MemcacheMessage | None]

MAX_QUEUED = 1000          # requests waiting on one connection before the oldest is given up
MAX_UDP_TRANSACTIONS = 100_000

NOTE_NO_REQUEST = "Invalid transaction. Request missing (unmatched response)"
NOTE_NON_QUIET_SKIPPED = "Missing response for non-quiet request"
NOTE_UNFINISHED = "Unfinished transaction: no response"
NOTE_QUIET_NO_RESPONSE = "no response (quiet request)"
NOTE_MIXED = "mix of binary and text in one connection: unmatched request"
NOTE_TOO_MANY = "too many requests waiting: no response"
NOTE_AMBIGUOUS = "quiet response paired by order: its opaque is shared by several quiet requests"

# gets whose responses carry the key (GetK, GetKQ, GatK, GatKQ)
KEYED_GET_OPCODES = frozenset((0x0C, 0x0D, 0x23, 0x24))


def expects_response(msg: MemcacheMessage) -> bool:
    if msg.is_binary:
        return msg.opcode != OPCODE_QUITQ
    return not msg.noreply and msg.cmd.name != "quit"


def check_complete(msg: MemcacheMessage) -> bool:
    if msg.is_binary:
        return msg.opcode != OPCODE_STAT or not msg.keys
    name = msg.cmd.name
    return name != "VALUE" and name != "STAT"


def try_merge(prev: MemcacheMessage, msg: MemcacheMessage, max_values: int) -> bool:
    """Fold response ``msg`` into ``prev`` when it continues it (more VALUEs or
    STATs, or the END closing them)."""
    if prev.is_binary != msg.is_binary:
        return False
    if msg.is_binary:
        if prev.opcode != OPCODE_STAT or msg.opcode != OPCODE_STAT or prev.opaque != msg.opaque:
            return False
        return _merge_stats(prev, msg)
    pname = prev.cmd.name
    if pname == "VALUE":
        name = msg.cmd.name
        if name != "VALUE" and name != "END":
            return False
        prev.size += msg.size
        prev.bytes += msg.bytes
        prev.bytes_lost += msg.bytes_lost
        if msg.keys:
            if prev.keys is None:
                prev.keys = list(msg.keys)
            else:
                prev.keys.extend(msg.keys)
        prev.notes.extend(msg.notes)
        prev.count_values += msg.count_values
        if msg.values:
            have = len(prev.values or ())
            room = len(msg.values) if max_values < 0 else max(0, max_values - have)
            if room:
                prev.values = (prev.values or []) + msg.values[:room]
        prev.is_complete = prev.is_complete or msg.is_complete
        return True
    if pname == "STAT":
        if msg.cmd.typ != "Stats" and msg.cmd.name != "END":
            return False
        return _merge_stats(prev, msg)
    return False


def _merge_stats(prev: MemcacheMessage, msg: MemcacheMessage) -> bool:
    if msg.notes:
        prev.notes.extend(msg.notes)
    if msg.stats:
        if prev.stats is None:
            prev.stats = list(msg.stats)
        else:
            prev.stats.extend(msg.stats)
    prev.size += msg.size
    prev.is_complete = prev.is_complete or msg.is_complete
    return True


class TcpCorrelator:
    __slots__ = ("requests", "responses", "max_values")

    def __init__(self, max_values: int = 0) -> None:
        self.requests: deque[MemcacheMessage] = deque()
        self.responses: deque[MemcacheMessage] = deque()
        self.max_values = max_values

    def add(self, msg: MemcacheMessage) -> list[Pair]:
        if msg.is_request:
            if not expects_response(msg):
                return [(msg, None)]
            self.requests.append(msg)
            if len(self.requests) > MAX_QUEUED:
                old = self.requests.popleft()
                old.notes.append(NOTE_TOO_MANY)
                return [(old, None)]
            return []
        msg.is_complete = check_complete(msg)
        responses = self.responses
        if responses and try_merge(responses[-1], msg, self.max_values):
            msg = responses[-1]
        else:
            responses.append(msg)
        if not msg.is_complete:
            return []
        return self._correlate([])

    def _correlate(self, out: list[Pair]) -> list[Pair]:
        requests = self.requests
        responses = self.responses
        while responses:
            resp = responses.popleft()
            req = None
            while requests:
                r = requests.popleft()
                if r.is_binary != resp.is_binary:
                    r.notes.append(NOTE_MIXED)
                    out.append((r, None))
                    continue
                if not r.is_binary:
                    req = r
                    break
                if r.opaque == resp.opaque and r.opcode == resp.opcode:
                    if not r.is_quiet:
                        req = r
                        break
                    if r.opcode in KEYED_GET_OPCODES:
                        # the response names its key: a quiet get for another
                        # key (same opaque) before it was a miss
                        if not (r.keys and resp.keys) or r.keys[0] == resp.keys[0]:
                            req = r
                            break
                    else:
                        if not resp.keys and _shared_opaque(requests, r):
                            resp.notes.append(NOTE_AMBIGUOUS)
                        req = r
                        break
                r.notes.append(NOTE_QUIET_NO_RESPONSE if r.is_quiet else NOTE_NON_QUIET_SKIPPED)
                out.append((r, None))
            if req is None:
                resp.notes.append(NOTE_NO_REQUEST)
            out.append((req, resp))
        return out

    def flush(self) -> list[Pair]:
        """Everything still queued: pending responses are paired first, then
        the requests left are published alone."""
        out = self._correlate([])
        for r in self.requests:
            r.notes.append(NOTE_QUIET_NO_RESPONSE if (r.is_quiet or r.noreply) else NOTE_UNFINISHED)
            out.append((r, None))
        self.requests.clear()
        return out


def _shared_opaque(requests, r: MemcacheMessage) -> bool:
    """True when the next waiting request is a quiet one with ``r``'s opaque
    and opcode: a keyless response could answer either. (Only the next one is
    looked at: runs that share an opaque share it throughout, and a long run
    of distinct opaques costs one comparison per answer.)"""
    if not requests:
        return False
    o = requests[0]
    return o.is_binary and o.is_quiet and o.opaque == r.opaque and o.opcode == r.opcode


# ----------------------------------------------------------------------- UDP

class UdpMessage:
    """Datagrams of one message (one direction of one request id)."""
    __slots__ = ("total", "parts", "count", "ts", "complete")

    def __init__(self, total: int, ts: int):
        self.total = total
        self.parts: list | None = [None] * total if total > 1 else None
        self.count = 0
        self.ts = ts             # first datagram's time: when the message began
        self.complete = False

    def add(self, seq: int, data: bytes) -> bytes | None:
        """The reassembled payload once every datagram is in, else None."""
        if self.complete:
            return None
        if self.total <= 1:
            self.complete = True
            return data
        if seq >= self.total or self.parts[seq] is not None:
            return None
        self.parts[seq] = data
        self.count += 1
        if self.count < self.total:
            return None
        self.complete = True
        payload = b"".join(self.parts)
        self.parts = None
        return payload


class UdpTransaction:
    """One request id of one UDP flow. Usually one request and its response;
    a request datagram holding several requests (a binary quiet multi-get:
    GetKQ... + Noop) is paired by a :class:`TcpCorrelator` of its own
    (``corr``): memcached answers each of them in a message of its own, all
    with the request id of the datagram."""
    __slots__ = ("key", "request", "response", "resp_side", "messages", "tuple", "deadline", "corr", "req_side")

    def __init__(self, key: tuple, tup):
        self.key = key
        self.request: MemcacheMessage | None = None
        self.response: MemcacheMessage | None = None
        self.resp_side = -1                      # flow direction the response came from
        self.messages: list = [None, None]       # UdpMessage per flow direction
        self.tuple = tup                         # endpoints of the first datagram
        self.deadline = 0
        self.corr: TcpCorrelator | None = None   # several requests in one datagram
        self.req_side = -1                       # flow direction of those requests


class UdpTransactions:
    """Open UDP transactions, oldest activity first (packet time)."""
    __slots__ = ("open", "timeout_ns")

    def __init__(self, timeout_ns: int):
        self.open: collections.OrderedDict = collections.OrderedDict()
        self.timeout_ns = timeout_ns

    def get(self, key: tuple, tup, ts: int) -> tuple[UdpTransaction, list[UdpTransaction]]:
        """The transaction for ``key`` (created if new), touched at ``ts``; also
        the transactions evicted to keep the table bounded."""
        evicted = []
        t = self.open.get(key)
        if t is None:
            t = UdpTransaction(key, tup)
            self.open[key] = t
            while len(self.open) > MAX_UDP_TRANSACTIONS:
                evicted.append(self.open.popitem(last=False)[1])
        else:
            self.open.move_to_end(key)
        t.deadline = ts + self.timeout_ns
        return t, evicted

    def remove(self, t: UdpTransaction) -> None:
        if self.open.get(t.key) is t:
            del self.open[t.key]

    def expire(self, now: int) -> list[UdpTransaction]:
        out = []
        open_ = self.open
        while open_:
            t = next(iter(open_.values()))
            if t.deadline > now:
                break
            open_.popitem(last=False)
            out.append(t)
        return out

    def flush(self) -> list[UdpTransaction]:
        out = list(self.open.values())
        self.open.clear()
        return out


def udp_half_notes(t: UdpTransaction) -> None:
    """Notes for a UDP transaction published with one side missing."""
    req, resp = t.request, t.response
    if req is not None and resp is None:
        req.notes.append(NOTE_QUIET_NO_RESPONSE if (req.is_quiet or req.noreply) else NOTE_UNFINISHED)
    elif req is None and resp is not None:
        resp.notes.append(NOTE_NO_REQUEST)
