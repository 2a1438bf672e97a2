"""Redis plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``redis.go`` Parse/GapInStream/ReceivedFin).

Direction 0 (client -> server) carries requests, direction 1 replies: unlike
Packetbeat, which guesses from the content (an array starting with a command
of its table is a request), so a command it does not know, or a reply that
looks like a command, cannot swap the two.
"""
from __future__ import annotations

from shared.confutil import build
from worker.plugin import Emit, Packet, TcpTuple
from worker.protos.redis.config import MAX_MESSAGE_SIZE, RedisConfig
from worker.protos.redis.event import to_event
from worker.protos.redis.parser import ParseError, RedisMessage, RedisParser
from worker.protos.redis.trans import Correlator
from worker.protos.glue import feed_or_resync

_LOSS_NOTE = ("Packet loss while capturing the request", "Packet loss while capturing the response")


class RedisConnection:
    """Per-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator")

    def __init__(self, cfg: RedisConfig, max_message_size: int):
        self.parsers = (RedisParser(True, max_message_size), RedisParser(False, max_message_size))
        self.correlator = Correlator(cfg.queue_max_bytes, cfg.queue_max_messages)


class RedisPlugin:
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = RedisConfig
    transports = ("tcp",)
    name = "redis"

    def __init__(self, config: RedisConfig | dict | None, emit: Emit,
                 max_message_size: int = MAX_MESSAGE_SIZE):
        if not isinstance(config, RedisConfig):
            config = build(RedisConfig, config, "redis", ignore=("type",))
        self.cfg = config
        self.emit = emit
        self.max_message_size = max_message_size
        # counters (Packetbeat: redis.unmatched_requests / unmatched_responses)
        self.parse_errors = 0       # directions resynchronised after bytes that are not RESP
        self.gap_drops = 0          # connections given up after lost bytes
        self.pushes = 0             # pushes / pub-sub messages set aside (no request)
        self.monitor_lines = 0      # MONITOR stream lines set aside
        self.dropped_bytes = 0      # bytes of incomplete messages when a connection ended

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        conn = state if state is not None else RedisConnection(self.cfg, self.max_message_size)
        msgs, resynced = feed_or_resync(conn.parsers[direction], pkt, ParseError)
        self.parse_errors += resynced
        if msgs:
            self._handle(conn, tcptuple, msgs)
        return conn

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        """As Packetbeat: a gap drops the connection's state (RESP cannot
        resynchronise). What is waiting is published first, with a note."""
        if state is None:
            return None, True
        self.gap_drops += 1
        for req in state.correlator.requests:
            req.notes.append(_LOSS_NOTE[direction])
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        for parser in state.parsers:
            self.dropped_bytes += parser.flush()
        corr = state.correlator
        for req, resp in corr.flush():
            self.emit(to_event(req, resp, self.cfg, tcptuple))
        self._fold(corr)

    def _handle(self, conn: RedisConnection, tcptuple: TcpTuple, msgs: list[RedisMessage]) -> None:
        corr = conn.correlator
        cfg = self.cfg
        emit = self.emit
        for msg in msgs:
            for req, resp in corr.add(msg):
                emit(to_event(req, resp, cfg, tcptuple))

    def _fold(self, corr: Correlator) -> None:
        self.pushes += corr.pushes
        self.monitor_lines += corr.monitor_lines
        corr.pushes = corr.monitor_lines = 0
