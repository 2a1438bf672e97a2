"""Plugin glue shared by the analysers: what every plugin would otherwise repeat.

- :func:`config_of`: a protocol's frozen config from a dict (or as given).
- :func:`check_ports`: the port-range check every ``validate`` has.
- :func:`feed_or_resync`: feed one segment, resynchronise on the parser's error;
  :func:`feed_segment` the same for a :class:`SegmentParser` (typed, compiled).
- :class:`TcpAnalyser`: the TCP callbacks (``parse``, ``received_fin``,
  ``gap_in_stream``, ``flush``) around four hooks a protocol provides; the
  counters ``parse_errors`` / ``gap_drops`` the worker reports.
- :class:`KeyedCorrelator`: requests waiting for the response that names them
  (Thrift seqid, MongoDB requestId, CQL stream, RPC xid, AMQP channel, ...),
  bounded, expired by packet time, flushed with notes.
- :func:`outcome`: status and notes of a (request, response) pair, as every
  ``event.py`` computes them.

A plugin derives from :class:`TcpAnalyser` (one level: the hooks are plain
methods, no metaclass, no registration side effect) or uses the functions alone.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable

from shared.confutil import ConfigError, build
from worker.plugin import Emit, Packet, ParseError, TcpTuple

NOTE_NO_RESPONSE = "Unmatched request"
NOTE_UNMATCHED_RESPONSE = "Unmatched response"
LOSS_NOTES = ("Packet loss while capturing the request", "Packet loss while capturing the response")
NOTE_EVICTED = "Unmatched request (evicted: too many requests waiting)"
NOTE_TIMEOUT = "no response (transaction timeout)"
NOTE_CONN_EVICTED = "connection evicted: the worker's connection table was full (cluster.max_connections)"


def config_of(cls: type, config: Any, name: str):
    """``config`` when it already is a ``cls``, else ``cls`` built from the
    YAML entry (a dict or None) with ``name`` as the key path of errors."""
    if isinstance(config, cls):
        return config
    return build(cls, config, name, ignore=("type",))


def check_ports(ports: Iterable[int], path: str) -> None:
    key = path + ".ports" if path else "ports"
    for p in ports:
        if not 0 < p < 65536:
            raise ConfigError(key, "port %d out of range" % p)


class SegmentParser:
    """Base of a direction's stream parser that :func:`feed_segment` feeds:
    ``feed(data, ts)`` returns the messages the bytes completed and raises the
    analyser's ``parse_error`` on bytes it refuses (with the messages completed
    before them as ``messages``); ``reset()`` forgets the buffer. Compiled
    (glue.pxd) it is an extension type and ``feed`` a C-level method, so a
    parser deriving from it is fed without a Python call."""
    __slots__ = ()

    # the interface a subclass must define (AMQP's and NFS's parsers do); not defining it is a
    # programming error, reported with the class's name
    def feed(self, data, ts) -> list:
        raise NotImplementedError("%s does not define feed()" % type(self).__name__)

    def reset(self) -> None:
        raise NotImplementedError("%s does not define reset()" % type(self).__name__)


def _resync(parser, e: Exception) -> list:
    """After the parser's error ``e``: forget the rest of this direction's
    buffer, so parsing restarts with the next segment (Packetbeat's behaviour
    for HTTP, PostgreSQL, Redis), and keep the messages it completed before
    the bad bytes."""
    parser.reset()
    return getattr(e, "messages", None) or []


def feed_or_resync(parser, pkt, error_type) -> tuple[list, bool]:
    """Feed one in-order segment to a direction's parser (any object with
    ``feed`` and ``reset``); on ``error_type``, resynchronise (:func:`_resync`).
    Returns ``(messages, resynced)``."""
    try:
        return parser.feed(pkt.payload, pkt.ts), False
    except error_type as e:
        return _resync(parser, e), True


def feed_segment(analyser, parser: SegmentParser, pkt) -> list:
    """:func:`feed_or_resync` for a :class:`SegmentParser` (compiled: a C-level
    call of its ``feed``): the messages of one in-order segment; on the
    analyser's ``parse_error``, ``analyser.parse_errors`` is counted."""
    try:
        return parser.feed(pkt.payload, pkt.ts)
    except analyser.parse_error as e:
        analyser.parse_errors += 1
        return _resync(parser, e)


def outcome(req, resp, resp_is_error: bool = False,
            no_response: str = NOTE_NO_RESPONSE,
            unmatched: str = NOTE_UNMATCHED_RESPONSE) -> tuple[str, list[str]]:
    """``(status, notes)`` of a transaction: the messages' own notes, then a
    note for a missing side; status ``Error`` for a missing side or an error
    response. ``req``/``resp`` are messages with a ``notes`` list, or None."""
    notes: list[str] = []
    status = "OK"
    if req is not None:
        notes.extend(req.notes)
        if resp is None:
            status = "Error"
            if not any(n.startswith(("Unmatched", "no response")) for n in req.notes):
                notes.append(no_response)
    if resp is not None:
        notes.extend(resp.notes)
        if req is None:
            status = "Error"
            notes.append(unmatched)
        elif resp_is_error:
            status = "Error"
    return status, notes


class KeyedCorrelator:
    """Requests waiting for the response that carries their key.

    ``add_request`` returns the pairs it pushed out (a request with the same key
    still waiting, or the oldest one when ``max_pending`` is reached: published
    alone with a note); ``add_response`` returns ``(request or None, response)``;
    ``expire(now)`` the requests older than ``timeout_ns``; ``flush`` all that
    waits. Requests need ``ts`` and ``notes``.
    """
    __slots__ = ("pending", "max_pending", "timeout_ns", "evicted", "expired")

    def __init__(self, timeout_ns: int = 10_000_000_000, max_pending: int = 1024) -> None:
        self.pending: OrderedDict = OrderedDict()
        self.max_pending = max_pending
        self.timeout_ns = timeout_ns
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self.pending)

    def add_request(self, key, req) -> list[tuple]:
        out = []
        old = self.pending.pop(key, None)
        if old is not None:
            out.append((old, None))
        while len(self.pending) >= self.max_pending:
            _, old = self.pending.popitem(last=False)
            old.notes.append(NOTE_EVICTED)
            self.evicted += 1
            out.append((old, None))
        self.pending[key] = req
        return out

    def add_response(self, key, resp) -> tuple:
        return self.pending.pop(key, None), resp

    def take(self, key):
        """The request waiting under ``key`` (removed), or None."""
        return self.pending.pop(key, None)

    def expire(self, now: int) -> list[tuple]:
        out = []
        limit = now - self.timeout_ns
        pending = self.pending
        while pending:
            key, req = next(iter(pending.items()))
            if req.ts > limit:
                break
            del pending[key]
            self.expired += 1
            out.append((req, None))
        return out

    def flush(self) -> list[tuple]:
        out = [(req, None) for req in self.pending.values()]
        self.pending.clear()
        return out


class TcpAnalyser:
    """Base of a TCP analyser (satisfies :class:`worker.plugin.TcpPlugin`).

    A subclass sets ``config_class``, ``name`` and ``parse_error`` (its
    parser's exception type) and provides:

    - ``new_connection(tcptuple)``: the per-connection state, an object with a
      ``parsers`` pair (direction 0 = client -> server, 1 = server -> client);
      each parser has ``feed(data, ts) -> list``, ``reset()``, and optionally
      ``on_gap(nbytes) -> bool`` (can it go on?), ``drain() -> list`` (what a
      gap completed) and ``flush() -> list`` (what the end completed);
    - ``handle(conn, tcptuple, direction, msgs)``: complete messages, in order;
    - ``close(conn, tcptuple, ts)``: publish what is still open (end of the
      connection); after a gap that cannot be crossed, ``LOSS_NOTES[direction]``
      is first added by ``note_loss(conn, direction)`` (override it when open
      transactions are kept elsewhere than ``conn.correlator.pending``).
    """
    config_class: type = type(None)
    name = ""
    transports = ("tcp",)
    parse_error: type = ParseError

    def __init__(self, config: Any, emit: Emit):
        self.cfg = config_of(self.config_class, config, self.name)
        self.emit = emit
        self.parse_errors = 0       # direction buffers dropped after bytes the parser refused
        self.gap_drops = 0          # connections given up after lost bytes

    # --- hooks -----------------------------------------------------------
    def new_connection(self, tcptuple: TcpTuple):
        raise NotImplementedError

    def handle(self, conn, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        raise NotImplementedError

    def close(self, conn, tcptuple: TcpTuple, ts: int) -> None:
        raise NotImplementedError

    def note_loss(self, conn, direction: int) -> None:
        corr = getattr(conn, "correlator", None)
        pending = getattr(corr, "pending", None)
        if pending:
            for req in pending.values():
                req.notes.append(LOSS_NOTES[direction])

    def note_evicted(self, conn) -> None:
        """The TCP layer is about to flush ``conn`` to make room for another
        connection: note it on the requests still waiting (in
        ``conn.correlator.pending`` (a dict) or ``.requests`` (a sequence))."""
        corr = getattr(conn, "correlator", None)
        for attr in ("pending", "requests"):
            waiting = getattr(corr, attr, None)
            if waiting:
                for req in (waiting.values() if isinstance(waiting, dict) else waiting):
                    req.notes.append(NOTE_CONN_EVICTED)

    # --- TcpPlugin -------------------------------------------------------
    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        conn = state if state is not None else self.new_connection(tcptuple)
        msgs, resynced = feed_or_resync(conn.parsers[direction], pkt, self.parse_error)
        self.parse_errors += resynced
        if msgs:
            self.handle(conn, tcptuple, direction, msgs)
        return conn

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None:
            return None, False
        parser = state.parsers[direction]
        on_gap: Callable[[int], bool] | None = getattr(parser, "on_gap", None)
        ok = on_gap(nbytes) if on_gap is not None else False
        drain = getattr(parser, "drain", None)
        if drain is not None:
            msgs = drain()
            if msgs:
                self.handle(state, tcptuple, direction, msgs)
        if ok:
            return state, False
        # the message boundary is lost: pairing what follows would be guesswork
        self.gap_drops += 1
        self.note_loss(state, direction)
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        for direction in (0, 1):
            fl = getattr(state.parsers[direction], "flush", None)
            if fl is not None:
                msgs = fl()
                if msgs:
                    self.handle(state, tcptuple, direction, msgs)
        self.close(state, tcptuple, ts)
