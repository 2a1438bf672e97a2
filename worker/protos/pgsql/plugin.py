"""PostgreSQL plugin: TCP callbacks glued to the parsers, correlator and
event builder (Packetbeat's ``pgsql.go`` Parse/GapInStream/ReceivedFin)."""
from __future__ import annotations

from worker.plugin import Packet, TcpTuple
from worker.protos.pgsql.config import PgsqlConfig
from worker.protos.pgsql.event import to_event
from worker.protos.pgsql.parser import (READY, REQUEST, RESPONSE, SSL_ANSWER, SSL_REQUEST, SYNC,
                                        ParseError, PgsqlMessage, PgsqlParser)
from worker.protos.pgsql.trans import Correlator
from worker.protos.glue import TcpAnalyser


class PgsqlConnection:
    """Per-connection state: one parser per direction (0 = frontend) and the
    correlator. ``encrypted`` is set once the server accepted SSL/GSS
    encryption: nothing after that is readable."""
    __slots__ = ("parsers", "correlator", "encrypted")

    def __init__(self, cfg: PgsqlConfig):
        self.parsers = (PgsqlParser(True, cfg.max_rows, cfg.max_row_length),
                        PgsqlParser(False, cfg.max_rows, cfg.max_row_length))
        self.correlator = Correlator()
        self.encrypted = False


class PgsqlPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin` (ports, timeouts, gaps and
    counters from :class:`~worker.protos.glue.TcpAnalyser`)."""
    config_class = PgsqlConfig
    name = "pgsql"
    parse_error = ParseError

    def new_connection(self, tcptuple: TcpTuple) -> PgsqlConnection:
        return PgsqlConnection(self.cfg)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is not None and state.encrypted:
            return state, False
        return TcpAnalyser.gap_in_stream(self, tcptuple, direction, nbytes, state)

    def note_loss(self, conn: PgsqlConnection, direction: int) -> None:
        """Nothing to add: the parser's on_gap notes the message it cut short."""

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is not None:
            self.close(state, tcptuple, ts)

    def close(self, conn: PgsqlConnection, tcptuple: TcpTuple, ts: int) -> None:
        corr = conn.correlator
        partial = conn.parsers[1].flush()
        if partial is not None:
            partial.notes.append("response incomplete")
            self._publish(corr.add_response(partial), tcptuple)
        self._publish(corr.flush(), tcptuple)

    def handle(self, conn: PgsqlConnection, tcptuple: TcpTuple, direction: int, msgs: list[PgsqlMessage]) -> None:
        _handle(self, conn, tcptuple, msgs)

    def _publish(self, pairs, tcptuple: TcpTuple) -> None:
        _publish(self, pairs, tcptuple)


# ---------------------------------------------------------------- per packet
# Module functions rather than methods: compiled (plugin.pxd), their locals are
# C-typed and the connection, parser and messages are extension types.

def _parse(plugin, pkt, tcptuple, direction: int, state):
    """TcpAnalyser.parse (feed_or_resync) for this plugin's own types."""
    if state is not None:
        conn = state
        if conn.encrypted:
            return conn
    else:
        conn = PgsqlConnection(plugin.cfg)
    parser = conn.parsers[direction]
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        # forget this direction's buffer: parsing restarts with the next segment
        parser.reset()
        msgs = e.messages
        plugin.parse_errors += 1
    if msgs:
        _handle(plugin, conn, tcptuple, msgs)
    return conn


def _handle(plugin, conn: PgsqlConnection, tcptuple: TcpTuple, msgs: list[PgsqlMessage]) -> None:
    corr = conn.correlator
    for msg in msgs:
        kind = msg.kind
        if kind == RESPONSE:
            pairs = corr.add_response(msg)
        elif kind == REQUEST:
            pairs = corr.add_request(msg)
        elif kind == READY:
            pairs = corr.ready(msg.partial)
        elif kind == SYNC:
            pairs = corr.add_sync()
        elif kind == SSL_REQUEST:
            conn.parsers[1].expect_ssl_answer()
            continue
        elif kind == SSL_ANSWER:
            if msg.ssl != b"N":
                conn.encrypted = True
                conn.parsers[0].stop()
                conn.parsers[1].stop()
            continue
        else:
            continue
        if pairs:
            _publish(plugin, pairs, tcptuple)


def _publish(plugin, pairs: list, tcptuple: TcpTuple) -> None:
    cfg = plugin.cfg
    emit = plugin.emit
    for req, resp in pairs:
        if req is not None and req.hidden and (resp is None or not resp.is_error):
            continue
        emit(to_event(req, resp, cfg, tcptuple))
