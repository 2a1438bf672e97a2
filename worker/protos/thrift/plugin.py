"""Thrift plugin: TCP callbacks glued to the parsers, correlator and event
builder (Packetbeat's ``thrift.go`` Parse / GapInStream / ReceivedFin).

Whether a message is a call or a reply comes from its message type, as in
Packetbeat, not from the direction; a call sent by the server side (a
bidirectional connection) is published with the server as the caller.
"""
from __future__ import annotations

from worker.plugin import Packet, TcpTuple
from worker.protos.glue import TcpAnalyser
from worker.protos.thrift.config import MAX_MESSAGE_SIZE, ThriftConfig
from worker.protos.thrift.event import split_service, to_event
from worker.protos.thrift.idl import load_idl
from worker.protos.thrift.parser import ParseError, ThriftParser
from worker.protos.thrift.trans import ThriftCorrelator

_NS = 1_000_000_000


class ThriftConnection:
    """Per-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator")

    def __init__(self, parsers, correlator: ThriftCorrelator):
        self.parsers = parsers
        self.correlator = correlator


class ThriftPlugin(TcpAnalyser):
    config_class = ThriftConfig
    name = "thrift"
    transports = ("tcp",)
    parse_error = ParseError

    def __init__(self, config, emit, max_message_size: int = MAX_MESSAGE_SIZE):
        super().__init__(config, emit)
        cfg = self.cfg
        self.idl = load_idl(list(cfg.idl_files)) if cfg.idl_files else None
        self.max_message_size = max_message_size
        self._timeout_ns = int(float(cfg.transaction_timeout) * _NS)
        self._parser_args = dict(
            string_max_size=cfg.string_max_size, collection_max_size=cfg.collection_max_size,
            drop_after_n_struct_fields=cfg.drop_after_n_struct_fields,
            obfuscate_strings=cfg.obfuscate_strings, capture_reply=cfg.capture_reply,
            max_message_size=max_message_size)
        # counters (Packetbeat: thrift.unmatched_requests / unmatched_responses)
        self.unmatched_requests = 0
        self.unmatched_responses = 0
        self.expired = 0            # calls published without a reply after transaction_timeout

    def new_connection(self, tcptuple: TcpTuple) -> ThriftConnection:
        cfg = self.cfg
        mk = ThriftParser
        return ThriftConnection(
            (mk(cfg.transport_type, cfg.protocol_type, **self._parser_args),
             mk(cfg.transport_type, cfg.protocol_type, **self._parser_args)),
            ThriftCorrelator(self._timeout_ns))

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        # TcpAnalyser.parse (feed_or_resync), then the timeout of waiting calls
        conn = state if state is not None else self.new_connection(tcptuple)
        parser = conn.parsers[direction]
        try:
            msgs = parser.feed(pkt.payload, pkt.ts)
        except ParseError as e:
            parser.reset()
            self.parse_errors += 1
            msgs = e.messages
        if msgs:
            self.handle(conn, tcptuple, direction, msgs)
        corr = conn.correlator
        if corr.waiting.pending:
            expired = corr.expire(pkt.ts)
            if expired:
                self.expired += len(expired)
                self._publish(conn, tcptuple, expired)
        return conn

    def handle(self, conn: ThriftConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        corr = conn.correlator
        idl = self.idl
        for msg in msgs:
            msg.direction = direction
            if idl is not None and msg.is_request and not msg.oneway:
                m = idl.find(*reversed(split_service(msg.method)))
                if m is not None and m.oneway:
                    msg.oneway = True
            pairs = corr.add(direction, msg)
            if pairs:
                self._publish(conn, tcptuple, pairs)

    def _publish(self, conn, tcptuple: TcpTuple, pairs) -> None:
        cfg, idl, emit = self.cfg, self.idl, self.emit
        for req, resp in pairs:
            if req is None:
                self.unmatched_responses += 1
                caller = 1 - resp.direction
            else:
                caller = req.direction
                if resp is None and not req.oneway:
                    self.unmatched_requests += 1
            if caller:
                # a call sent by the server side: it is the caller
                t = TcpTuple(tcptuple.dst_ip, tcptuple.dst_port, tcptuple.src_ip,
                             tcptuple.src_port, tcptuple.conn_id)
            else:
                t = tcptuple
            emit(to_event(req, resp, cfg, idl, t))

    def close(self, conn: ThriftConnection, tcptuple: TcpTuple, ts: int) -> None:
        self._publish(conn, tcptuple, conn.correlator.flush())
