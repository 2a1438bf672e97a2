"""Cassandra plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``cassandra.go``).

Per connection: one parser per direction sharing a :class:`Codec` (the
compression chosen by the client's STARTUP, else the configured
``compressor``; whether the connection switched to v5 segments). Bodies are
decoded as soon as a frame is complete (requests keep only their decoded
fields while they wait; at most 1024 requests and 16 MiB of request frames
wait per connection: beyond, the oldest are published alone with a note). ``ignored_ops``: frames of those opcodes are not
decoded and their transactions not published (Packetbeat's behaviour: either
side ignored drops the pair).
"""
from __future__ import annotations

from worker.plugin import Emit, TcpTuple
from worker.protos.glue import NOTE_EVICTED, TcpAnalyser
from worker.protos.cassandra.body import BodyError, decode_request, decode_response, startup_options
from worker.protos.cassandra.config import MAX_MESSAGE_SIZE, CassandraConfig
from worker.protos.cassandra.event import to_event
from worker.protos.cassandra.parser import (
    OP_EVENT, OP_STARTUP, CassandraMessage, CassandraParser, Codec, ParseError,
)
from worker.protos.cassandra.trans import make_correlator

NOTE_BODY = "Cassandra frame body could not be decoded: "
EXPIRY_EVERY_NS = 100_000_000       # expired requests are looked for at most every 100 ms
MAX_PENDING_BYTES = 16 * 1024 * 1024  # requests waiting per connection, by frame bytes (oldest evicted)


class CassandraConnection:
    __slots__ = ("parsers", "correlator", "codec", "next_expiry", "pending_bytes")

    def __init__(self, cfg: CassandraConfig, ignored: frozenset, max_message_size: int):
        self.codec = Codec(cfg.compressor)
        self.parsers = (CassandraParser(True, max_message_size, ignored, self.codec),
                        CassandraParser(False, max_message_size, ignored, self.codec))
        self.correlator = make_correlator(not cfg.packetbeat_quirks,
                                          int(float(cfg.transaction_timeout) * 1e9))
        self.next_expiry = 0            # packet time of the next look for expired requests
        self.pending_bytes = 0          # frame bytes of the requests waiting


class CassandraPlugin(TcpAnalyser):
    config_class = CassandraConfig
    name = "cassandra"
    parse_error = ParseError

    def __init__(self, config, emit: Emit, max_message_size: int = MAX_MESSAGE_SIZE):
        super().__init__(config, emit)
        self.max_message_size = max_message_size
        self.ignored = self.cfg.ignored_opcodes()
        self.unmatched_responses = 0    # responses with no request waiting
        self.unmatched_requests = 0     # requests published without a response
        self.ignored_transactions = 0   # pairs not published (ignored_ops)
        self.body_errors = 0            # bodies that did not decode

    def new_connection(self, tcptuple: TcpTuple) -> CassandraConnection:
        return CassandraConnection(self.cfg, self.ignored, self.max_message_size)

    def handle(self, conn: CassandraConnection, tcptuple: TcpTuple, direction: int,
               msgs: list[CassandraMessage]) -> None:
        _handle(self, conn, tcptuple, msgs)

    def close(self, conn: CassandraConnection, tcptuple: TcpTuple, ts: int) -> None:
        for req, resp in conn.correlator.flush():
            self._publish(conn, req, resp, tcptuple)

    def _publish(self, conn: CassandraConnection, req, resp, tcptuple: TcpTuple) -> None:
        _publish(self, conn, req, resp, tcptuple)


def _handle(plugin: CassandraPlugin, conn: CassandraConnection, tcptuple: TcpTuple,
            msgs: list[CassandraMessage]) -> None:
    """The plugin's ``handle`` (a module function so that, compiled, the
    messages and the connection are C types, their fields struct members)."""
    corr = conn.correlator
    cfg = plugin.cfg
    quirks = cfg.packetbeat_quirks
    wanted_req = cfg.send_request
    wanted_resp = cfg.send_response
    for msg in msgs:
        if corr.pending and msg.ts >= conn.next_expiry:
            conn.next_expiry = msg.ts + EXPIRY_EVERY_NS
            for pair in corr.expire(msg.ts):
                _publish(plugin, conn, pair[0], pair[1], tcptuple)
        if msg.body is not None and not msg.ignored and (wanted_req if msg.is_request else wanted_resp):
            try:
                msg.data = decode_request(msg) if msg.is_request else decode_response(msg, quirks)
            except BodyError as e:
                plugin.body_errors += 1
                msg.notes.append(NOTE_BODY + str(e))
        if msg.is_request:
            if msg.opcode == OP_STARTUP:
                algo = startup_options(msg).get("COMPRESSION", "").lower()
                if algo in ("lz4", "snappy"):
                    conn.codec.compression = algo
            msg.body = None
            conn.pending_bytes += msg.size
            for pair in corr.add_request(msg.stream, msg):
                _publish(plugin, conn, pair[0], pair[1], tcptuple)
            pending = corr.pending
            while conn.pending_bytes > MAX_PENDING_BYTES and len(pending) > 1:
                _, old = pending.popitem(last=False)
                old.notes.append(NOTE_EVICTED)
                corr.evicted += 1
                _publish(plugin, conn, old, None, tcptuple)
        else:
            msg.body = None
            if msg.opcode == OP_EVENT:
                _publish(plugin, conn, None, msg, tcptuple)
                continue
            req, resp = corr.add_response(msg.stream, msg)
            _publish(plugin, conn, req, resp, tcptuple)


def _publish(plugin: CassandraPlugin, conn: CassandraConnection, req: CassandraMessage | None,
             resp: CassandraMessage | None, tcptuple: TcpTuple) -> None:
    """The plugin's ``_publish`` (a module function: compiled, the messages'
    fields are struct members)."""
    if req is not None:
        conn.pending_bytes -= req.size
    if (req is not None and req.ignored) or (resp is not None and resp.ignored):
        plugin.ignored_transactions += 1
        return
    if req is None and resp.opcode != OP_EVENT:
        plugin.unmatched_responses += 1
    elif resp is None:
        plugin.unmatched_requests += 1
    plugin.emit(to_event(req, resp, plugin.cfg, tcptuple))
