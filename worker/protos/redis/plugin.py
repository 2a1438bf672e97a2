"""Redis plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``redis.go`` Parse/GapInStream/ReceivedFin).

Direction 0 (client -> server) carries requests, direction 1 replies: unlike
Packetbeat, which guesses from the content (an array starting with a command
of its table is a request), so a command it does not know, or a reply that
looks like a command, cannot swap the two.
"""
from __future__ import annotations

from worker.plugin import Emit, TcpTuple
from worker.protos.redis.config import MAX_MESSAGE_SIZE, RedisConfig
from worker.protos.redis.event import to_event
from worker.protos.redis.parser import ParseError, RedisMessage, RedisParser
from worker.protos.redis.trans import Correlator
from worker.protos.glue import TcpAnalyser

_LOSS_NOTE = ("Packet loss while capturing the request", "Packet loss while capturing the response")


class RedisConnection:
    """Per-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator")

    def __init__(self, cfg: RedisConfig, max_message_size: int):
        self.parsers = (RedisParser(True, max_message_size), RedisParser(False, max_message_size))
        self.correlator = Correlator(cfg.queue_max_bytes, cfg.queue_max_messages)


class RedisPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin` (ports, timeouts, parsing
    and gaps from :class:`~worker.protos.glue.TcpAnalyser`)."""
    config_class = RedisConfig
    name = "redis"
    parse_error = ParseError

    def __init__(self, config: RedisConfig | dict | None, emit: Emit,
                 max_message_size: int = MAX_MESSAGE_SIZE):
        TcpAnalyser.__init__(self, config, emit)
        self.max_message_size = max_message_size
        # counters (Packetbeat: redis.unmatched_requests / unmatched_responses)
        self.pushes = 0             # pushes / pub-sub messages set aside (no request)
        self.monitor_lines = 0      # MONITOR stream lines set aside
        self.dropped_bytes = 0      # bytes of incomplete messages when a connection ended

    def parse(self, pkt, tcptuple: TcpTuple, direction: int, state):
        # TcpAnalyser.parse, with the feed and the pairing at C level when compiled
        return _parse(self, pkt, tcptuple, direction, state)

    def new_connection(self, tcptuple: TcpTuple) -> RedisConnection:
        return RedisConnection(self.cfg, self.max_message_size)

    def note_loss(self, conn: RedisConnection, direction: int) -> None:
        """A gap drops the connection's state (RESP cannot resynchronise, as
        in Packetbeat); what is waiting is published first, with a note."""
        for req in conn.correlator.requests:
            req.notes.append(_LOSS_NOTE[direction])

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is not None:
            self.close(state, tcptuple, ts)

    def close(self, conn: RedisConnection, tcptuple: TcpTuple, ts: int) -> None:
        for parser in conn.parsers:
            self.dropped_bytes += parser.flush()
        corr = conn.correlator
        for req, resp in corr.flush():
            self.emit(to_event(req, resp, self.cfg, tcptuple))
        self._fold(corr)

    def handle(self, conn: RedisConnection, tcptuple: TcpTuple, direction: int, msgs: list[RedisMessage]) -> None:
        _handle(conn.correlator, self.cfg, self.emit, tcptuple, msgs)

    def _fold(self, corr: Correlator) -> None:
        self.pushes += corr.pushes
        self.monitor_lines += corr.monitor_lines
        corr.pushes = corr.monitor_lines = 0


def _parse(plugin: RedisPlugin, pkt, tcptuple: TcpTuple, direction: int, state):
    """One in-order segment (``TcpAnalyser.parse`` with ``glue.feed_or_resync``)."""
    conn = state if state is not None else plugin.new_connection(tcptuple)
    parser = conn.parsers[direction]
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        # forget the rest of this direction's buffer; keep what came before the bad bytes
        parser.reset()
        msgs = e.messages or []
        plugin.parse_errors += 1
    if msgs:
        _handle(conn.correlator, plugin.cfg, plugin.emit, tcptuple, msgs)
    return conn


def _handle(corr: Correlator, cfg: RedisConfig, emit, tcptuple, msgs: list) -> None:
    for msg in msgs:
        pairs = corr.add(msg)
        for req, resp in pairs:
            emit(to_event(req, resp, cfg, tcptuple))
