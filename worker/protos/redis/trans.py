"""Pairs Redis requests with replies (Packetbeat's ``redis.go: correlate``
and ``messagequeue.go``).

Redis answers the commands of a connection in the order they were sent, so
two FIFOs suffice, with pipelining and inside MULTI/EXEC (each queued command
is answered ``+QUEUED``, EXEC by an array of the results).

- The request queue is bounded like Packetbeat's ``MessageQueue``: at most
  ``queue_max_messages`` requests and ``queue_max_bytes`` bytes of command
  text (a limit <= 0 is no limit). A request that does not fit evicts the
  oldest ones; Packetbeat counts and drops them, here they are published
  alone ("Unmatched request", evicted).
- A reply with no request waiting is published alone ("Unmatched response";
  Packetbeat counts and drops it).
- Messages that answer no request are set aside, as Packetbeat 8.x publishes
  nothing for them: RESP3 pushes (``>``: pub/sub messages, client-side
  caching invalidations), RESP2 pub/sub messages (``message``, ``pmessage``,
  ``smessage`` arrays on a connection in subscribed mode), the extra
  confirmations of a (P|S)(UN)SUBSCRIBE naming several channels (the first
  one is the command's reply), and the lines MONITOR streams. They are
  counted (``pushes``, ``monitor_lines``); Packetbeat would pair them with
  whatever request waits, or drop them when none does.
- ``CLIENT REPLY OFF`` / ``SKIP`` switch replies off: requests that will get
  none are published alone at once ("no response: CLIENT REPLY ...").
"""
from __future__ import annotations

from collections import deque

from worker.protos.redis.parser import PUBSUB_CONFIRMS, PUBSUB_MESSAGES, RedisMessage

Pair = tuple[RedisMessage | None, RedisMessage | None]

_SUBSCRIBE_CMDS = frozenset((b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE"))
_UNSUBSCRIBE_CMDS = frozenset((b"UNSUBSCRIBE", b"PUNSUBSCRIBE", b"SUNSUBSCRIBE"))

MAX_TRACKED_CHANNELS = 100_000
# confirmation kind -> (family, is an unsubscribe)
_CONFIRM_FAMILY = {b"subscribe": (b"", False), b"unsubscribe": (b"", True),
                   b"psubscribe": (b"p", False), b"punsubscribe": (b"p", True),
                   b"ssubscribe": (b"s", False), b"sunsubscribe": (b"s", True)}
NOTE_EVICTED = "Unmatched request (evicted: more requests waiting than queue_max_messages/queue_max_bytes)"
NOTE_NO_REPLY = "no response: replies switched off by CLIENT REPLY"


_UPPER: dict = {}       # command name as sent -> upper case (bounded: cleared at 4096 entries)


def _upper(name: bytes) -> bytes:
    hit = _UPPER.get(name)
    if hit is None:
        if len(_UPPER) >= 4096:
            _UPPER.clear()
        hit = _UPPER[name] = name.upper()
    return hit


class Correlator:
    __slots__ = ("requests", "max_bytes", "max_messages", "queued_bytes",
                 "confirms_left", "confirm_kind", "subscribed", "subs", "subs_before", "monitoring",
                 "reply_mode", "pushes", "monitor_lines", "evicted", "empty_requests")

    def __init__(self, queue_max_bytes: int = 0, queue_max_messages: int = 0) -> None:
        self.requests: deque[RedisMessage] = deque()
        self.max_bytes = queue_max_bytes if queue_max_bytes > 0 else 1 << 62
        self.max_messages = queue_max_messages if queue_max_messages > 0 else 1 << 62
        self.queued_bytes = 0
        # extra (un)subscribe confirmations still expected for the last
        # answered (UN)SUBSCRIBE
        self.confirms_left = 0
        self.confirm_kind = b""
        self.subscribed = False       # RESP2 subscribed mode: message arrays are pushes
        # names subscribed per family (b"", b"p", b"s"), from the confirmations:
        # an UNSUBSCRIBE of every channel is answered once per channel
        self.subs: dict[bytes, set[bytes]] = {}
        self.subs_before = 0
        self.monitoring = False       # after MONITOR: +lines are the monitor stream
        self.reply_mode = b"ON"       # CLIENT REPLY ON / OFF / SKIP
        self.pushes = 0
        self.monitor_lines = 0
        self.evicted = 0
        self.empty_requests = 0

    def add(self, msg: RedisMessage) -> list[Pair]:
        """Queue one complete message; return the transactions it completes
        (``(request, response)``, either side possibly None)."""
        if msg.is_request:
            if not msg.args:
                # an empty array (*0 / *-1) as a request: Redis ignores it and answers nothing
                self.empty_requests += 1
                return []
            return self._request(msg)
        return self._response(msg)

    def _request(self, msg: RedisMessage) -> list[Pair]:
        out: list[Pair] = []
        args = msg.args
        cmd = _upper(args[0])
        if cmd == b"CLIENT" and len(args) == 3 and args[1].upper() == b"REPLY":
            mode = args[2].upper()
            if mode == b"ON":
                self.reply_mode = b"ON"          # answered +OK, whatever the mode was
            elif mode in (b"OFF", b"SKIP"):
                # not answered; SKIP also silences the next command (unless OFF)
                if mode == b"OFF" or self.reply_mode != b"OFF":
                    self.reply_mode = mode
                return self._unanswered(msg)
        elif self.reply_mode != b"ON":
            if self.reply_mode == b"SKIP":
                self.reply_mode = b"ON"
            return self._unanswered(msg)
        size = len(msg.message)
        reqs = self.requests
        while reqs and (len(reqs) >= self.max_messages or self.queued_bytes + size > self.max_bytes):
            old = reqs.popleft()
            self.queued_bytes -= len(old.message)
            old.notes.append(NOTE_EVICTED)
            self.evicted += 1
            out.append((old, None))
        reqs.append(msg)
        self.queued_bytes += size
        return out

    @staticmethod
    def _unanswered(msg: RedisMessage) -> list[Pair]:
        msg.notes.append(NOTE_NO_REPLY)
        return [(msg, None)]

    def _response(self, msg: RedisMessage) -> list[Pair]:
        kind = msg.kind
        if kind:
            if kind in PUBSUB_MESSAGES and (msg.push or self.subscribed):
                self.pushes += 1
                return []
            if kind in PUBSUB_CONFIRMS and msg.count >= 0:
                self.subscribed = msg.count > 0
                family, unsub = _CONFIRM_FAMILY[kind]
                names = self.subs.setdefault(family, set())
                self.subs_before = len(names)
                if unsub:
                    names.discard(msg.channel)
                elif len(names) < MAX_TRACKED_CHANNELS:
                    names.add(msg.channel)
                if self.confirms_left and kind == self.confirm_kind:
                    # a further confirmation of the (un)subscribe already answered
                    self.confirms_left -= 1
                    self.pushes += 1
                    return []
        elif msg.push:
            self.pushes += 1
            return []
        reqs = self.requests
        if not reqs:
            if self.monitoring and not msg.is_error:
                self.monitor_lines += 1
                return []
            return [(None, msg)]
        req = reqs.popleft()
        self.queued_bytes -= len(req.message)
        self._after(req, msg)
        return [(req, msg)]

    def _after(self, req: RedisMessage, resp: RedisMessage) -> None:
        """Connection modes a transaction changes."""
        cmd = _upper(req.args[0])
        self.confirms_left = 0
        if resp.kind and resp.kind in PUBSUB_CONFIRMS and (cmd in _SUBSCRIBE_CMDS or cmd in _UNSUBSCRIBE_CMDS):
            channels = len(req.args) - 1
            if channels > 1:
                self.confirms_left = channels - 1
            elif channels == 0:
                # UNSUBSCRIBE of every channel: one confirmation per channel
                self.confirms_left = max(0, self.subs_before - 1)
            self.confirm_kind = resp.kind
        elif cmd == b"MONITOR" and not resp.is_error:
            self.monitoring = True
        elif cmd == b"RESET":
            self.monitoring = False
            self.subscribed = False
            self.reply_mode = b"ON"

    def flush(self) -> list[Pair]:
        """Every request still waiting, as half transactions."""
        out: list[Pair] = [(r, None) for r in self.requests]
        self.requests.clear()
        self.queued_bytes = 0
        return out
