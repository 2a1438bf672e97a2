"""AMQP plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``amqp.go`` Parse / handleAmqp).

Direction 0 (client -> server) and 1 (server -> client) each have a parser.
Synchronous requests wait in the correlator for the answer on their channel;
asynchronous ones (basic.ack/nack/reject, no-wait methods, connection.blocked)
and messages (basic.publish/deliver/return) are published at once; a
basic.get-ok completes its basic.get. Methods hidden by
``hide_connection_information`` are tracked (their answers are recognised)
but not published. Requests older than ``transaction_timeout`` (packet time)
are published with a note when the next message of the connection arrives.
"""
from __future__ import annotations

from worker.plugin import TcpTuple
from worker.protos.amqp.config import MAX_FRAME_SIZE, AmqpConfig
from worker.protos.amqp.event import content_event, to_event
from worker.protos.amqp.parser import ASYNC, CONTENT, REQUEST, RESPONSE, AmqpParser, ParseError
from worker.protos.amqp.trans import Correlator
from worker.protos.glue import TcpAnalyser, feed_segment


class AmqpConnection:
    """Per-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator")

    def __init__(self, cfg: AmqpConfig, max_frame_size: int):
        def parser(direction: int) -> AmqpParser:
            return AmqpParser(direction, cfg.max_body_length, cfg.parse_headers, cfg.parse_arguments,
                              cfg.hide_connection_information, max_frame_size)
        self.parsers = (parser(0), parser(1))
        self.correlator = Correlator(int(float(cfg.transaction_timeout) * 1e9))


class AmqpPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = AmqpConfig
    name = "amqp"
    transports = ("tcp",)
    parse_error = ParseError

    def __init__(self, config, emit, max_frame_size: int = MAX_FRAME_SIZE):
        super().__init__(config, emit)
        self.max_frame_size = max_frame_size
        # counters (Packetbeat: amqp.unmatched_requests / amqp.unmatched_responses)
        self.unmatched_requests = 0
        self.unmatched_responses = 0
        self.unknown_methods = 0    # method frames of no known class/method, skipped
        self.stray_frames = 0       # content frames with no content method before them
        self.skipped_bytes = 0      # bytes of streams that announced another AMQP version (1.0, 0-10)

    def new_connection(self, tcptuple: TcpTuple) -> AmqpConnection:
        return AmqpConnection(self.cfg, self.max_frame_size)

    def parse(self, pkt, tcptuple: TcpTuple, direction: int, state):
        # TcpAnalyser.parse with the typed parser and handler called at C level
        # (compiled, plugin.pxd)
        return _parse(self, pkt, tcptuple, direction, state)

    def _publish(self, pairs, tcptuple: TcpTuple) -> None:
        _publish(self, pairs, tcptuple)

    def handle(self, conn: AmqpConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        _handle(self, conn, tcptuple, msgs)

    def close(self, conn: AmqpConnection, tcptuple: TcpTuple, ts: int) -> None:
        for p in conn.parsers:
            self.unknown_methods += p.unknown_methods
            self.stray_frames += p.stray_frames
            self.skipped_bytes += p.skipped_bytes
            p.unknown_methods = p.stray_frames = p.skipped_bytes = 0
        self._publish(conn.correlator.flush(), tcptuple)


# The per-message work as module functions (compiled: C-level calls with the
# connection, correlator and messages typed, plugin.pxd).

def _parse(plugin: AmqpPlugin, pkt, tcptuple: TcpTuple, direction: int, state) -> AmqpConnection:
    """TcpAnalyser.parse with the typed handler (glue.feed_segment feeds the parser)."""
    conn = state if state is not None else plugin.new_connection(tcptuple)
    msgs = feed_segment(plugin, conn.parsers[direction], pkt)
    if msgs:
        _handle(plugin, conn, tcptuple, msgs)
    return conn


def _publish(plugin: AmqpPlugin, pairs: list, tcptuple: TcpTuple) -> None:
    cfg = plugin.cfg
    emit = plugin.emit
    for req, resp in pairs:
        if req is not None:
            if req.hidden:
                continue
            if resp is None and req.kind == REQUEST:
                plugin.unmatched_requests += 1
        elif resp is not None:
            if resp.hidden:
                continue
            if resp.kind == CONTENT:         # a basic.get-ok with no basic.get seen
                emit(content_event(resp, cfg, tcptuple))
                continue
            plugin.unmatched_responses += 1
        emit(to_event(req, resp, cfg, tcptuple))


def _handle(plugin: AmqpPlugin, conn: AmqpConnection, tcptuple: TcpTuple, msgs: list) -> None:
    corr = conn.correlator
    cfg = plugin.cfg
    emit = plugin.emit
    for m in msgs:
        kind = m.kind
        if kind == CONTENT:
            if m.answers:
                _publish(plugin, corr.add_response(m), tcptuple)
            else:
                emit(content_event(m, cfg, tcptuple))
        elif kind == REQUEST:
            out = corr.add_request(m)
            if out:
                _publish(plugin, out, tcptuple)
        elif kind == RESPONSE:
            _publish(plugin, corr.add_response(m), tcptuple)
        elif kind == ASYNC and not m.hidden:
            emit(to_event(m, None, cfg, tcptuple))
    pending = corr.kc.pending
    if pending:
        m = msgs[-1]
        # the oldest waiting request decides whether anything expired (KeyedCorrelator.expire)
        if next(iter(pending.values())).ts <= m.ts - corr.kc.timeout_ns:
            expired = corr.expire(m.ts)
            if expired:
                _publish(plugin, expired, tcptuple)
