"""LINEKV plugin: the TCP callbacks come from packetbeat-py's glue (``TcpAnalyser``);
this module pairs requests with answers and builds the events."""
from __future__ import annotations

from collections import deque

from worker.ecs import transaction_event
from worker.plugin import TcpTuple
from worker.protos.glue import TcpAnalyser, outcome

from linekv.config import LineKvConfig
from linekv.parser import LineMessage, LineParser, ParseError


class Connection:
    __slots__ = ("parsers", "requests")

    def __init__(self, cfg: LineKvConfig):
        self.parsers = (LineParser(True, cfg.max_line), LineParser(False, cfg.max_line))
        self.requests: deque[LineMessage] = deque()


class LineKvPlugin(TcpAnalyser):
    config_class = LineKvConfig
    name = "linekv"
    transports = ("tcp",)
    parse_error = ParseError

    def new_connection(self, tcptuple: TcpTuple) -> Connection:
        return Connection(self.cfg)

    def handle(self, conn: Connection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        for msg in msgs:
            if msg.is_request:
                conn.requests.append(msg)
            else:
                req = conn.requests.popleft() if conn.requests else None
                self.emit(self.event(req, msg, tcptuple))

    def note_loss(self, conn: Connection, direction: int) -> None:
        for req in conn.requests:
            req.notes.append("Packet loss while capturing the %s" % ("request", "response")[direction])

    def close(self, conn: Connection, tcptuple: TcpTuple, ts: int) -> None:
        while conn.requests:
            self.emit(self.event(conn.requests.popleft(), None, tcptuple))

    def event(self, req: LineMessage | None, resp: LineMessage | None, tcptuple: TcpTuple) -> dict:
        is_error = resp is not None and resp.line.startswith(b"-")
        status, notes = outcome(req, resp, is_error)
        ev = transaction_event("linekv", tcptuple, req.ts if req else None, resp.ts if resp else None,
                               req.size if req else 0, resp.size if resp else 0, status, notes)
        body: dict = {}
        if req is not None:
            parts = req.line.decode("utf-8", "replace").split(" ", 2)
            ev["method"] = parts[0].upper()
            if len(parts) > 1:
                ev["resource"] = parts[1]
            if self.cfg.send_request:
                ev["request"] = req.line.decode("utf-8", "replace")
        if resp is not None:
            text = resp.line[1:].decode("utf-8", "replace").strip()
            if is_error:
                body["error"] = text
            elif text.startswith("OK"):
                value = text[2:].strip()
                if value:
                    body["value"] = value
            if self.cfg.send_response:
                ev["response"] = resp.line.decode("utf-8", "replace")
        ev["linekv"] = body
        return ev
