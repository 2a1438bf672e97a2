"""MongoDB plugin: TCP callbacks glued to the parser, correlator and event
builder (Packetbeat's ``mongodb.go`` Parse/GapInStream/ReceivedFin).

Requests and replies are told apart by their content (OP_REPLY, or an OP_MSG
with a ``responseTo``), as Packetbeat does, so traffic between two servers on
the MongoDB port is read the same way as client traffic.

Unlike Packetbeat, which drops the connection on any gap, a gap inside a
message whose header was read reports that message from its header (with a
"Packet loss" note, so its request or reply still pairs) and skips the rest;
elsewhere parsing restarts at the next segment that starts with a header.
"""
from __future__ import annotations

from worker.plugin import Emit, TcpTuple
from worker.protos.glue import TcpAnalyser
from worker.protos.mongodb.config import MAX_MESSAGE_SIZE, MongodbConfig
from worker.protos.mongodb.event import to_event
from worker.protos.mongodb.parser import MongodbParser, ParseError
from worker.protos.mongodb.trans import Correlator

_NS = 1_000_000_000
_EXPIRY_STEP = _NS


class MongodbConnection:
    """Per-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator", "next_expiry")

    def __init__(self, timeout_ns: int, max_message_size: int):
        self.parsers = (MongodbParser(max_message_size), MongodbParser(max_message_size))
        self.correlator = Correlator(timeout_ns)
        self.next_expiry = 0        # packet time (ns) of the next look for expired transactions


class MongodbPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = MongodbConfig
    name = "mongodb"
    parse_error = ParseError

    def __init__(self, config, emit: Emit, max_message_size: int = MAX_MESSAGE_SIZE):
        super().__init__(config, emit)
        self.max_message_size = max_message_size
        self._timeout_ns = int(float(self.cfg.transaction_timeout) * _NS)
        # counters, reported as mongodb.<name> by the worker
        self.unmatched_requests = 0     # requests published without a reply (timeout, end, replaced)
        self.unmatched_responses = 0    # replies published without their request
        self.too_large = 0              # messages over the size limit, reported from their header
        self.skipped_opcodes = 0        # OP_COMMAND / OP_COMMANDREPLY passed over
        self.compressed = 0             # OP_COMPRESSED messages decompressed

    def new_connection(self, tcptuple: TcpTuple) -> MongodbConnection:
        return MongodbConnection(self._timeout_ns, self.max_message_size)

    def handle(self, conn: MongodbConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        _handle(self, conn, tcptuple, msgs)

    def close(self, conn: MongodbConnection, tcptuple: TcpTuple, ts: int) -> None:
        corr = conn.correlator
        for req, resp in corr.flush():
            emit_ev = to_event(req, resp, self.cfg, tcptuple)
            self.emit(emit_ev)
        self.unmatched_requests += corr.unmatched_requests
        self.unmatched_responses += corr.unmatched_responses
        corr.unmatched_requests = corr.unmatched_responses = 0
        for p in conn.parsers:
            self.too_large += p.too_large
            self.skipped_opcodes += p.skipped_opcodes
            self.compressed += p.compressed
            p.too_large = p.skipped_opcodes = p.compressed = 0


# Per message: a module function rather than a method, so that compiled
# (plugin.pxd) its locals are C-typed and the correlator is called at C level.

def _handle(plugin, conn: MongodbConnection, tcptuple: TcpTuple, msgs: list) -> None:
    corr = conn.correlator
    cfg = plugin.cfg
    emit = plugin.emit
    for msg in msgs:
        for req, resp in corr.add(msg):
            emit(to_event(req, resp, cfg, tcptuple))
    now = msgs[-1].ts
    if now >= conn.next_expiry:
        # at most once per second of packet time: a transaction expires up to 1 s late
        conn.next_expiry = now + _EXPIRY_STEP
        for req, resp in corr.expire(now):
            emit(to_event(req, resp, cfg, tcptuple))
