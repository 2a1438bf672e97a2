"""PostgreSQL plugin: TCP callbacks glued to the parsers, correlator and
event builder (Packetbeat's ``pgsql.go`` Parse/GapInStream/ReceivedFin)."""
from __future__ import annotations

from shared.confutil import build
from worker.plugin import Emit, Packet, TcpTuple
from worker.protos.pgsql.config import PgsqlConfig
from worker.protos.pgsql.event import to_event
from worker.protos.pgsql.parser import (READY, REQUEST, RESPONSE, SSL_ANSWER, SSL_REQUEST, SYNC,
                                        ParseError, PgsqlMessage, PgsqlParser)
from worker.protos.pgsql.trans import Correlator
from worker.protos.glue import feed_or_resync


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


class PgsqlPlugin:
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = PgsqlConfig
    transports = ("tcp",)

    def __init__(self, config: PgsqlConfig | dict | None, emit: Emit):
        if not isinstance(config, PgsqlConfig):
            config = build(PgsqlConfig, config, "pgsql", ignore=("type",))
        self.cfg = config
        self.emit = emit
        self.parse_errors = 0       # direction buffers dropped after bytes that are not pgsql
        self.gap_drops = 0          # connections given up after a gap at a message boundary

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        conn = state if state is not None else PgsqlConnection(self.cfg)
        if conn.encrypted:
            return conn
        msgs, resynced = feed_or_resync(conn.parsers[direction], pkt, ParseError)
        self.parse_errors += resynced
        if msgs:
            self._handle(conn, tcptuple, msgs)
        return conn

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None or state.encrypted:
            return state, False
        parser = state.parsers[direction]
        ok = parser.on_gap(nbytes)
        self._handle(state, tcptuple, parser.drain())
        if ok:
            return state, False
        # the message boundary is lost: pairing what follows would be guesswork
        self.gap_drops += 1
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        corr = state.correlator
        partial = state.parsers[1].flush()
        if partial is not None:
            partial.notes.append("response incomplete")
            self._publish(corr.add_response(partial), tcptuple)
        self._publish(corr.flush(), tcptuple)

    def _handle(self, conn: PgsqlConnection, tcptuple: TcpTuple, msgs: list[PgsqlMessage]) -> None:
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
                self._publish(pairs, tcptuple)

    def _publish(self, pairs, tcptuple: TcpTuple) -> None:
        cfg = self.cfg
        for req, resp in pairs:
            if req is not None and req.hidden and (resp is None or not resp.is_error):
                continue
            self.emit(to_event(req, resp, cfg, tcptuple))
