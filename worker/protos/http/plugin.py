"""HTTP plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``http.go`` Parse/ReceivedFin/GapInStream/Expired)."""
from __future__ import annotations

from worker.plugin import Packet, TcpTuple
from worker.protos.http.config import HttpConfig
from worker.protos.http.event import to_event
from worker.protos.http.parser import HttpMessage, HttpParser, ParseError
from worker.protos.http.trans import Correlator
from worker.protos.glue import TcpAnalyser


class HttpConnection:
    """Per-connection state: one parser per direction and the correlator.
    ``tunnel`` is set after ``101 Switching Protocols`` or a successful
    CONNECT: what follows is not HTTP and is ignored. ``early`` holds
    responses that came while their request's body was still arriving
    (``early_req``: that request), until the request is complete."""
    __slots__ = ("parsers", "correlator", "tunnel", "early", "early_req")

    def __init__(self, cfg: HttpConfig):
        size = cfg.max_message_size
        req_for = cfg.request_body_for
        resp_for = cfg.response_body_for
        self.parsers = (HttpParser(size, req_for, resp_for), HttpParser(size, req_for, resp_for))
        self.correlator = Correlator()
        self.tunnel = False
        self.early: list[HttpMessage] | None = None
        self.early_req: HttpMessage | None = None


class HttpPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin` (ports, timeouts, gaps and
    counters from :class:`~worker.protos.glue.TcpAnalyser`)."""
    config_class = HttpConfig
    name = "http"
    parse_error = ParseError

    def new_connection(self, tcptuple: TcpTuple) -> HttpConnection:
        return HttpConnection(self.cfg)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        if state is None:
            return None
        self.handle(state, tcptuple, direction, state.parsers[direction].on_fin())
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is not None and state.tunnel:
            return state, False
        return TcpAnalyser.gap_in_stream(self, tcptuple, direction, nbytes, state)

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None or _idle(state):
            return          # nothing to publish (TcpAnalyser.flush would emit nothing)
        TcpAnalyser.flush(self, tcptuple, state, ts)

    def note_loss(self, conn: HttpConnection, direction: int) -> None:
        """Nothing to add: the parser's on_gap already noted the loss on the
        message it cut short."""

    def close(self, conn: HttpConnection, tcptuple: TcpTuple, ts: int) -> None:
        if conn.early:                       # their request never completed (e.g. a parse error)
            early, conn.early, conn.early_req = conn.early, None, None
            for resp in early:
                for req, r in conn.correlator.add(resp):
                    self.emit(to_event(req, r, self.cfg, tcptuple))
        for req, resp in conn.correlator.flush():
            self.emit(to_event(req, resp, self.cfg, tcptuple))

    def handle(self, conn: HttpConnection, tcptuple: TcpTuple, direction: int,
               msgs: list[HttpMessage]) -> None:
        _handle(self, conn, tcptuple, direction, msgs)

    def _pairs(self, conn: HttpConnection, tcptuple: TcpTuple, pairs) -> None:
        _pairs(self, conn, tcptuple, pairs)


# The per-segment and per-message work, as functions (typed when compiled, plugin.pxd)

def _parse(plugin, pkt, tcptuple, direction: int, state):
    conn = state if state is not None else HttpConnection(plugin.cfg)
    if conn.tunnel:
        return conn
    # glue.feed_or_resync, inline (once per segment)
    parser = conn.parsers[direction]
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        parser.reset()
        msgs = e.messages
        plugin.parse_errors += 1
    if msgs:
        _handle(plugin, conn, tcptuple, direction, msgs)
    return conn


def _idle(conn) -> bool:
    """Nothing waits in the connection: no early response, no queued message,
    no message past its header section in either parser."""
    corr = conn.correlator
    if conn.early or corr.requests or corr.responses:
        return False
    p0 = conn.parsers[0]
    p1 = conn.parsers[1]
    return p0.nothing_to_flush() and p1.nothing_to_flush()


def _handle(plugin, conn, tcptuple, direction: int, msgs: list) -> None:
    corr = conn.correlator
    for msg in msgs:
        if msg.is_request:
            if msg is conn.early_req:
                # answered before its body was complete: its response was parsed
                # already; now the pair, then whatever followed it
                early, conn.early, conn.early_req = conn.early, None, None
                _pairs(plugin, conn, tcptuple, corr.add(msg))
                for resp in early:
                    _pairs(plugin, conn, tcptuple, corr.add(resp))
                continue
            conn.parsers[1 - direction].push_request_method(msg.method)
        elif not corr.requests and not (100 <= msg.status_code < 200):
            # an early response (RFC 9110 15.5.14, 15.5.2, Expect: 100-continue refused):
            # the server answered while the request body is still arriving
            pending = conn.early_req or conn.parsers[1 - direction].head_in_progress()
            if pending is not None and pending.is_request and pending.ts <= msg.ts:
                conn.early_req = pending
                if conn.early is None:
                    conn.early = []
                conn.early.append(msg)
                continue
        _pairs(plugin, conn, tcptuple, corr.add(msg))


def _pairs(plugin, conn, tcptuple, pairs: list) -> None:
    if not pairs:
        return
    emit = plugin.emit
    cfg = plugin.cfg
    for req, resp in pairs:
        emit(to_event(req, resp, cfg, tcptuple))
        if req is not None and resp is not None and (
                resp.status_code == 101
                or (req.method == b"CONNECT" and 200 <= resp.status_code < 300)):
            conn.tunnel = True
