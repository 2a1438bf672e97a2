"""MySQL plugin: TCP callbacks glued to the parsers, the correlator, the
prepared-statement table and the event builder (Packetbeat's ``mysql.go``
Parse / GapInStream / ReceivedFin / handleMysql)."""
from __future__ import annotations

from worker.protos.glue import config_of
from worker.plugin import Emit, Packet, TcpTuple
from worker.protos.mysql.config import (MAX_REQUEST_BYTES, MAX_RESPONSE_PACKET_BYTES,
                                        MAX_STATEMENTS, MysqlConfig)
from worker.protos.mysql.event import to_event
from worker.protos.mysql.parser import (COM_INIT_DB, COM_QUERY, COM_STMT_CLOSE, COM_STMT_EXECUTE,
                                        COM_STMT_PREPARE, RESPONSE_OF, Kind, MysqlMessage,
                                        MysqlParser, ParseError, Resp, decode_execute_params)
from worker.protos.mysql.trans import Correlator
from worker.protos.sqltext import remember

# Commands published as transactions: Packetbeat's (query, prepare, execute)
# plus COM_INIT_DB. Others (PING, STATISTICS, ...) are parsed, paired, not published.
PUBLISHED = frozenset((COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_INIT_DB))
_NS = 1_000_000_000
# message kinds and response kinds as plain ints (C ints when compiled)
_COMMAND = int(Kind.COMMAND)
_RESPONSE = int(Kind.RESPONSE)
_INFILE_REQUEST = int(Kind.INFILE_REQUEST)
_GREETING = int(Kind.GREETING)
_LOGIN = int(Kind.LOGIN)
_SSL_REQUEST = int(Kind.SSL_REQUEST)
_AUTH_OK = int(Kind.AUTH_OK)
_AUTH_ERR = int(Kind.AUTH_ERR)
_SIMPLE = int(Resp.SIMPLE)
_NONE = int(Resp.NONE)


class Statement:
    """A prepared statement: its SQL, parameter count, last parameter types."""
    __slots__ = ("query", "nparams", "types", "last_ts")

    def __init__(self, query: bytes, nparams: int, ts: int):
        self.query = query
        self.nparams = nparams
        self.types: list | None = None
        self.last_ts = ts


class MysqlConnection:
    __slots__ = ("parsers", "correlator", "statements", "server_version", "user", "database",
                 "tls", "compressed")

    def __init__(self, cfg: MysqlConfig):
        self.parsers = (
            MysqlParser(True, MAX_REQUEST_BYTES, cfg.max_rows, cfg.max_row_length, False),
            MysqlParser(False, MAX_RESPONSE_PACKET_BYTES, cfg.max_rows, cfg.max_row_length,
                        cfg.send_response),
        )
        self.correlator = Correlator()
        self.statements: dict[int, Statement] = {}    # least recently used first (sqltext.remember)
        self.server_version = b""
        self.user = b""
        self.database = b""
        self.tls = False
        self.compressed = False


class MysqlPlugin:
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = MysqlConfig
    transports = ("tcp",)

    def __init__(self, config: MysqlConfig | dict | None, emit: Emit):
        config = config_of(MysqlConfig, config, "mysql")
        self.cfg = config
        self.emit = emit
        self._timeout_ns = int(float(config.transaction_timeout) * _NS)
        self._stmt_timeout_ns = int(float(config.statement_timeout) * _NS)
        self.parse_errors = 0
        self.gap_drops = 0
        self.tls_streams = 0
        self.compressed_streams = 0
        self.login_errors = 0

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        # Connections idle longer than the transaction timeout keep their
        # state (negotiated compression, prepared statements) as long as a
        # prepared statement would live; open commands still expire after
        # transaction_timeout (see trans.py).
        return max(float(self.cfg.transaction_timeout), float(self.cfg.statement_timeout))

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None:
            return state, False
        msgs = state.parsers[direction].on_gap(nbytes)
        if msgs:
            self._handle(state, tcptuple, direction, msgs)
        # a binary, length-prefixed stream: no resynchronising (as Packetbeat)
        self.gap_drops += 1
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        for direction in (0, 1):
            msgs = state.parsers[direction].flush()
            if msgs:
                self._handle(state, tcptuple, direction, msgs)
        for pair in state.correlator.flush():
            self._publish(state, tcptuple, pair)

    def _handle(self, conn: MysqlConnection, tcptuple: TcpTuple, direction: int,
                msgs: list[MysqlMessage]) -> None:
        _handle(self, conn, tcptuple, direction, msgs)

    def _publish(self, conn: MysqlConnection, tcptuple: TcpTuple, pair) -> None:
        _publish(self, conn, tcptuple, pair)


# ---------------------------------------------------------------- per packet
# Module functions rather than methods: compiled (plugin.pxd), their locals are
# C-typed and the connection, parser and messages are extension types.

def _parse(plugin, pkt, tcptuple, direction: int, state):
    conn = state if state is not None else MysqlConnection(plugin.cfg)
    corr = conn.correlator
    if corr.requests:
        for pair in corr.expire(pkt.ts - plugin._timeout_ns):
            _publish(plugin, conn, tcptuple, pair)
    parser = conn.parsers[direction]
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        # as Packetbeat: forget this direction's bytes, retry with the next segment
        msgs = e.messages
        plugin.parse_errors += 1
        if parser.compressed:
            parser.stop()
        else:
            parser.reset()
    if msgs:
        _handle(plugin, conn, tcptuple, direction, msgs)
    return conn


def _handle(plugin, conn: MysqlConnection, tcptuple: TcpTuple, direction: int,
            msgs: list[MysqlMessage]) -> None:
    client, server = conn.parsers
    for msg in msgs:
        kind = msg.kind
        if kind == _COMMAND:
            _command(plugin, conn, tcptuple, msg)
        elif kind == _RESPONSE:
            _publish(plugin, conn, tcptuple, conn.correlator.add_response(msg))
        elif kind == _INFILE_REQUEST:
            client.begin_infile()
        elif kind == _GREETING:
            conn.server_version = msg.server_version
            conn.statements.clear()
        elif kind == _LOGIN:
            server.client_flags = msg.capabilities
            conn.user = msg.user
            conn.database = msg.database
        elif kind == _SSL_REQUEST:
            conn.tls = True
            plugin.tls_streams += 1
            server.stop()
        elif kind == _AUTH_OK:
            if server.compressed:
                conn.compressed = True
                plugin.compressed_streams += 1
                client.enable_compression()
        elif kind == _AUTH_ERR:
            plugin.login_errors += 1


def _command(plugin, conn: MysqlConnection, tcptuple: TcpTuple, msg: MysqlMessage) -> None:
    cmd = msg.command
    if cmd == COM_STMT_EXECUTE:
        _resolve_statement(plugin, conn, msg)
    elif cmd == COM_STMT_CLOSE:
        conn.statements.pop(msg.statement_id, None)
    elif msg.truncated:
        msg.notes.append("Query truncated to %d bytes" % len(msg.query))
    resp = RESPONSE_OF.get(cmd, _SIMPLE)
    if resp == _NONE:
        return
    conn.parsers[1].expect(resp)
    for pair in conn.correlator.add_request(msg):
        _publish(plugin, conn, tcptuple, pair)


def _resolve_statement(plugin, conn: MysqlConnection, msg: MysqlMessage) -> None:
    stmt = conn.statements.get(msg.statement_id)
    if stmt is not None and msg.ts - stmt.last_ts > plugin._stmt_timeout_ns:
        del conn.statements[msg.statement_id]
        stmt = None
    if stmt is None:
        msg.notes.append("The actual query being used is unknown")
        return
    stmt.last_ts = msg.ts
    remember(conn.statements, msg.statement_id, stmt, MAX_STATEMENTS)
    msg.query = stmt.query
    try:
        msg.params, stmt.types = decode_execute_params(msg.payload, stmt.nparams, stmt.types,
                                                       plugin.cfg.max_row_length)
    except ParseError as e:
        msg.notes.append("Parameters not decoded: %s" % e)


def _publish(plugin, conn: MysqlConnection, tcptuple: TcpTuple, pair) -> None:
    req, resp = pair
    if req is not None:
        if req.command == COM_STMT_PREPARE and resp is not None and resp.statement_id \
                and not resp.is_error:
            remember(conn.statements, resp.statement_id, Statement(req.query, resp.num_params, resp.ts),
                     MAX_STATEMENTS)
        if req.command not in PUBLISHED:
            return
    plugin.emit(to_event(req, resp, plugin.cfg, tcptuple))
