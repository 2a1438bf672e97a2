"""HTTP plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``http.go`` Parse/ReceivedFin/GapInStream/Expired)."""
from __future__ import annotations

from shared.confutil import build
from worker.plugin import Emit, Packet, TcpTuple
from worker.protos.http.config import HttpConfig
from worker.protos.http.event import to_event
from worker.protos.http.parser import HttpMessage, HttpParser, ParseError
from worker.protos.http.trans import Correlator
from worker.protos.glue import feed_or_resync


class HttpConnection:
    """Per-connection state: one parser per direction and the correlator.
    ``tunnel`` is set after ``101 Switching Protocols`` or a successful
    CONNECT: what follows is not HTTP and is ignored."""
    __slots__ = ("parsers", "correlator", "tunnel")

    def __init__(self, cfg: HttpConfig):
        self.parsers = (
            HttpParser(cfg.max_message_size, cfg.request_body_for, cfg.response_body_for),
            HttpParser(cfg.max_message_size, cfg.request_body_for, cfg.response_body_for),
        )
        self.correlator = Correlator()
        self.tunnel = False


class HttpPlugin:
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = HttpConfig
    transports = ("tcp",)

    def __init__(self, config: HttpConfig | dict | None, emit: Emit):
        if not isinstance(config, HttpConfig):
            config = build(HttpConfig, config, "http", ignore=("type",))
        self.cfg = config
        self.emit = emit
        self.parse_errors = 0       # streams resynchronised after bytes that are not HTTP
        self.gap_drops = 0          # connections given up after a gap outside a body

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        conn = state if state is not None else HttpConnection(self.cfg)
        if conn.tunnel:
            return conn
        msgs, resynced = feed_or_resync(conn.parsers[direction], pkt, ParseError)
        self.parse_errors += resynced
        if msgs:
            self._handle(conn, tcptuple, direction, msgs)
        return conn

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        if state is None:
            return None
        self._handle(state, tcptuple, direction, state.parsers[direction].on_fin())
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None or state.tunnel:
            return state, False
        parser = state.parsers[direction]
        ok = parser.on_gap(nbytes)
        self._handle(state, tcptuple, direction, parser.drain())
        if ok:
            return state, False
        # the message boundary is lost: pairing what follows would be guesswork
        self.gap_drops += 1
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        for direction in (0, 1):
            self._handle(state, tcptuple, direction, state.parsers[direction].flush())
        for req, resp in state.correlator.flush():
            self.emit(to_event(req, resp, self.cfg, tcptuple))

    def _handle(self, conn: HttpConnection, tcptuple: TcpTuple, direction: int,
                msgs: list[HttpMessage]) -> None:
        for msg in msgs:
            if msg.is_request:
                conn.parsers[1 - direction].push_request_method(msg.method)
            for req, resp in conn.correlator.add(msg):
                self.emit(to_event(req, resp, self.cfg, tcptuple))
                if req is not None and resp is not None and (
                        resp.status_code == 101
                        or (req.method == b"CONNECT" and 200 <= resp.status_code < 300)):
                    conn.tunnel = True
