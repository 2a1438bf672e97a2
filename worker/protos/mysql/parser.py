"""MySQL / MariaDB client-server protocol parser (one direction of a connection).

Spec: "MySQL Client/Server Protocol" (dev.mysql.com/doc/dev/mysql-server/latest/
PAGE_PROTOCOL.html) and MariaDB's "Client/Server Protocol" (mariadb.com/kb).

Theory of operation
-------------------
Framing: every packet is a 3-byte little-endian payload length and a 1-byte
sequence id, then the payload. A payload of exactly 0xffffff bytes continues
in the next packet (the 16 MiB rule); the parts make one *logical* packet.
Logical packets are kept up to ``keep`` bytes; the rest is counted and
skipped, never buffered, so a 1 GiB row costs no memory.

The *client* parser (``is_client=True``) turns packets with sequence id 0 into
commands (``MysqlMessage`` with ``command``); the first packet with sequence
id 1 is the HandshakeResponse (or a TLS SSLRequest: the parser then stops,
the rest is encrypted). Everything else (auth-switch data, LOCAL INFILE data
between :meth:`begin_infile` and its empty packet) is skipped.

The *server* parser needs to know what it is answering: the plugin calls
:meth:`MysqlParser.expect` with the response kind of every command the client
sent (``RESPONSE_OF``). A response is then framed exactly: OK, ERR, a text
result set (column count, column definitions, [EOF], rows, EOF or OK) for
COM_QUERY, a binary one for COM_STMT_EXECUTE, PREPARE_OK and its parameter and
column definitions, LOCAL INFILE, several results while the status says
SERVER_MORE_RESULTS_EXISTS (one message for all of them). Without an
expectation (the capture began mid-connection) it guesses as Packetbeat does:
0x00/0xfe is OK, 0xff is ERR, a one-byte packet is a column count, anything
else is skipped. The initial greeting (sequence 0, protocol 10) and the login
exchange are recognised and reported as their own message kinds.

Compression (CLIENT_COMPRESS negotiated): after the login OK both directions
carry 7-byte compressed headers; :meth:`enable_compression` switches the
parser to inflate them (zlib, bounded output) and parse what comes out.

Correlation key: none. One command is answered before the next is read, so the
plugin pairs requests and responses with FIFOs (``trans.py``).

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import enum
import struct
import zlib
from collections import deque

from worker.plugin import ParseError as _BaseParseError

# commands (first payload byte of a client packet with sequence id 0)
COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PROCESS_INFO = 0x0A
COM_CHANGE_USER = 0x11
COM_BINLOG_DUMP = 0x12
COM_REGISTER_SLAVE = 0x15
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_STMT_FETCH = 0x1C
COM_BINLOG_DUMP_GTID = 0x1E

# capability flags
CLIENT_CONNECT_WITH_DB = 0x00000008
CLIENT_COMPRESS = 0x00000020
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_PLUGIN_AUTH = 0x00080000
CLIENT_PLUGIN_AUTH_LENENC_DATA = 0x00200000
CLIENT_DEPRECATE_EOF = 0x01000000

# server status flags
SERVER_MORE_RESULTS_EXISTS = 0x0008
SERVER_STATUS_CURSOR_EXISTS = 0x0040

MAX_COLUMNS = 4096            # MySQL's limit on columns per table / result
MAX_PAYLOAD = 0xFFFFFF
LONG_RESPONSE = 100 * 1024    # Packetbeat's maxPayloadSize: bytes_out of longer results stops at the row past it
MAX_EXPECTED = 1024           # commands awaiting a response
INFLATE_CHUNK = 1 << 20


class ParseError(_BaseParseError):
    """The bytes are not the MySQL protocol. ``messages`` holds the messages
    completed before the error (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class Kind(enum.IntEnum):
    COMMAND = 1          # client command
    LOGIN = 2            # HandshakeResponse
    SSL_REQUEST = 3      # client asked for TLS: the rest is encrypted
    GREETING = 4         # server initial handshake
    AUTH_OK = 5          # login accepted
    AUTH_ERR = 6         # login refused (or connection refused before login)
    RESPONSE = 7         # answer to a command
    INFILE_REQUEST = 8   # server asks for a LOCAL INFILE (the response follows later)


class Resp(enum.IntEnum):
    """What the server sends back for a command."""
    NONE = 0        # nothing (QUIT, STMT_CLOSE, STMT_SEND_LONG_DATA)
    SIMPLE = 1      # one OK / ERR / EOF packet
    QUERY = 2       # OK | ERR | LOCAL INFILE | text result set(s)
    EXECUTE = 3     # OK | ERR | binary result set(s)
    PREPARE = 4     # PREPARE_OK + definitions | ERR
    FIELD_LIST = 5  # column definitions, EOF | ERR
    FETCH = 6       # binary rows, EOF | ERR
    AUTH = 7        # auth exchange until OK | ERR (COM_CHANGE_USER)
    ANY = 8         # one packet of anything (COM_STATISTICS)
    STREAM = 9      # binlog stream: not analysed
    GUESS = 10      # no expectation: Packetbeat's heuristics


RESPONSE_OF = {
    COM_QUIT: Resp.NONE, COM_STMT_CLOSE: Resp.NONE, COM_STMT_SEND_LONG_DATA: Resp.NONE,
    COM_QUERY: Resp.QUERY, COM_PROCESS_INFO: Resp.QUERY, COM_STMT_EXECUTE: Resp.EXECUTE,
    COM_STMT_PREPARE: Resp.PREPARE, COM_FIELD_LIST: Resp.FIELD_LIST, COM_STMT_FETCH: Resp.FETCH,
    COM_CHANGE_USER: Resp.AUTH, COM_STATISTICS: Resp.ANY, COM_BINLOG_DUMP: Resp.STREAM,
    COM_BINLOG_DUMP_GTID: Resp.STREAM, COM_REGISTER_SLAVE: Resp.SIMPLE,
}


class State(enum.IntEnum):
    IDLE = 0          # between responses
    FIRST = 1         # a response (or its next result) begins with the next packet
    COLUMNS = 2       # column definitions of a result set
    ROWS = 3          # rows until EOF / OK
    PREP_PARAMS = 4   # parameter definitions of PREPARE_OK
    PREP_PARAMS_EOF = 5
    PREP_COLS = 6
    PREP_COLS_EOF = 7
    FIELD_LIST = 8
    INFILE = 9        # waiting for the OK/ERR after the client sent the file
    AUTH = 10         # login exchange
    STOPPED = 11      # TLS, binlog stream: nothing more to understand


# the enums' values as plain ints (C ints when compiled): the hot paths compare these
_K_AUTH_ERR = int(Kind.AUTH_ERR)
_K_AUTH_OK = int(Kind.AUTH_OK)
_K_COMMAND = int(Kind.COMMAND)
_K_GREETING = int(Kind.GREETING)
_K_INFILE_REQUEST = int(Kind.INFILE_REQUEST)
_K_LOGIN = int(Kind.LOGIN)
_K_RESPONSE = int(Kind.RESPONSE)
_K_SSL_REQUEST = int(Kind.SSL_REQUEST)
_R_ANY = int(Resp.ANY)
_R_AUTH = int(Resp.AUTH)
_R_EXECUTE = int(Resp.EXECUTE)
_R_FETCH = int(Resp.FETCH)
_R_FIELD_LIST = int(Resp.FIELD_LIST)
_R_GUESS = int(Resp.GUESS)
_R_NONE = int(Resp.NONE)
_R_PREPARE = int(Resp.PREPARE)
_R_QUERY = int(Resp.QUERY)
_R_SIMPLE = int(Resp.SIMPLE)
_R_STREAM = int(Resp.STREAM)
_S_AUTH = int(State.AUTH)
_S_COLUMNS = int(State.COLUMNS)
_S_FIELD_LIST = int(State.FIELD_LIST)
_S_FIRST = int(State.FIRST)
_S_IDLE = int(State.IDLE)
_S_INFILE = int(State.INFILE)
_S_PREP_COLS = int(State.PREP_COLS)
_S_PREP_COLS_EOF = int(State.PREP_COLS_EOF)
_S_PREP_PARAMS = int(State.PREP_PARAMS)
_S_PREP_PARAMS_EOF = int(State.PREP_PARAMS_EOF)
_S_ROWS = int(State.ROWS)
_S_STOPPED = int(State.STOPPED)


class MysqlMessage:
    """One message. A plain class with slots (an extension type when compiled,
    parser.pxd) that behaves as the ``@dataclass(slots=True, eq=False)`` it
    replaces: keyword or positional fields, repr, identity equality."""
    __slots__ = ("ts", "is_request", "kind", "size", "notes", "command", "query", "statement_id",
                 "payload", "params", "truncated", "answers", "is_ok", "is_error", "error_code",
                 "sql_state", "error_message", "affected_rows", "insert_id", "num_fields", "num_rows",
                 "num_params", "tables", "fields", "rows", "long_size", "server_version", "capabilities",
                 "user", "database", "auth_plugin")

    def __init__(self, ts, is_request, kind=_K_RESPONSE, size=0, notes=None, command=0, query=b"",
                 statement_id=0, payload=b"", params=None, truncated=False, answers=0, is_ok=False,
                 is_error=False, error_code=0, sql_state=b"", error_message=b"", affected_rows=0,
                 insert_id=0, num_fields=0, num_rows=0, num_params=0, tables=None, fields=None,
                 rows=None, long_size=0, server_version=b"", capabilities=0, user=b"",
                 database=b"", auth_plugin=b""):
        self.ts = ts    # ns, packet where the message began
        self.is_request = is_request
        self.kind = kind
        self.size = size    # bytes on the wire (headers included)
        self.notes = notes if notes is not None else []
        self.command = command    # requests
        self.query = query    # COM_QUERY / COM_STMT_PREPARE text, COM_INIT_DB schema
        self.statement_id = statement_id
        self.payload = payload    # COM_STMT_EXECUTE payload (parameters)
        self.params = params    # decoded execute parameters (set by the plugin)
        self.truncated = truncated    # request text longer than the parser keeps
        self.answers = answers    # responses: Resp kind answered (_R_GUESS: guessed)
        self.is_ok = is_ok
        self.is_error = is_error
        self.error_code = error_code
        self.sql_state = sql_state
        self.error_message = error_message
        self.affected_rows = affected_rows
        self.insert_id = insert_id
        self.num_fields = num_fields
        self.num_rows = num_rows
        self.num_params = num_params
        self.tables = tables if tables is not None else []    # "schema.table" texts, first-seen order
        self.fields = fields if fields is not None else []    # column names (bytes) of the first result set
        self.rows = rows if rows is not None else []    # up to max_rows rows, each a list of bytes
        self.long_size = long_size    # Packetbeat's bytes_out of a result longer than 100 KiB
        self.server_version = server_version    # handshake
        self.capabilities = capabilities
        self.user = user
        self.database = database
        self.auth_plugin = auth_plugin

    def __repr__(self) -> str:
        return "MysqlMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in MESSAGE_FIELDS)


MESSAGE_FIELDS = ("ts", "is_request", "kind", "size", "notes", "command", "query", "statement_id",
                  "payload", "params", "truncated", "answers", "is_ok", "is_error", "error_code",
                  "sql_state", "error_message", "affected_rows", "insert_id", "num_fields", "num_rows",
                  "num_params", "tables", "fields", "rows", "long_size", "server_version",
                  "capabilities", "user", "database", "auth_plugin")


def _message(ts, is_request: bool, kind: int, size: int) -> MysqlMessage:
    """A message with every other field at its default (without the keyword
    handling of ``MysqlMessage(...)``: this runs once per message)."""
    m = MysqlMessage.__new__(MysqlMessage)
    m.ts = ts
    m.is_request = is_request
    m.kind = kind
    m.size = size
    m.notes = []
    m.command = m.statement_id = m.answers = m.error_code = m.affected_rows = m.insert_id = 0
    m.num_fields = m.num_rows = m.num_params = m.long_size = m.capabilities = 0
    m.query = m.payload = m.sql_state = m.error_message = b""
    m.server_version = m.user = m.database = m.auth_plugin = b""
    m.params = None
    m.truncated = m.is_ok = m.is_error = False
    m.tables = []
    m.fields = []
    m.rows = []
    return m


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_PREP_OK = struct.Struct("<xIHH")
_I8 = struct.Struct("<b")
_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


def read_lenenc(p, off: int) -> tuple[int | None, int]:
    """Length-encoded integer at ``off``: (value, next offset); value None for
    NULL (0xfb); raises ParseError when absent or malformed."""
    if off >= len(p):
        raise ParseError("length-encoded integer missing")
    b = p[off]
    if b < 0xFB:
        return b, off + 1
    if b == 0xFB:
        return None, off + 1
    if b == 0xFC:
        if off + 3 > len(p):
            raise ParseError("truncated length-encoded integer")
        return p[off + 1] | (p[off + 2] << 8), off + 3
    if b == 0xFD:
        if off + 4 > len(p):
            raise ParseError("truncated length-encoded integer")
        return p[off + 1] | (p[off + 2] << 8) | (p[off + 3] << 16), off + 4
    if b == 0xFE:
        if off + 9 > len(p):
            raise ParseError("truncated length-encoded integer")
        return _U64.unpack_from(p, off + 1)[0], off + 9
    raise ParseError("0xff is not a length-encoded integer")


def read_lenenc_str(p, off: int) -> tuple[bytes | None, int]:
    n, off = read_lenenc(p, off)
    if n is None:
        return None, off
    end = off + n
    if end > len(p):
        raise ParseError("length-encoded string runs past its packet")
    return bytes(p[off:end]), end


def _cstring(p, off: int) -> tuple[bytes, int]:
    end = p.find(b"\x00", off)
    if end < 0:
        return bytes(p[off:]), len(p)
    return bytes(p[off:end]), end + 1


# --------------------------------------------------------------------------- binary values

def _fmt_date(p, off: int, n: int) -> str:
    y = m = d = hh = mm = ss = us = 0
    if n >= 4:
        y = _U16.unpack_from(p, off)[0]
        m, d = p[off + 2], p[off + 3]
    if n >= 7:
        hh, mm, ss = p[off + 4], p[off + 5], p[off + 6]
    if n >= 11:
        us = _U32.unpack_from(p, off + 7)[0]
    text = "%04d-%02d-%02d" % (y, m, d)
    if n >= 7:
        text += " %02d:%02d:%02d" % (hh, mm, ss)
    if us:
        text += ".%06d" % us
    return text


def _fmt_time(p, off: int, n: int) -> str:
    if n < 8:
        return "00:00:00"
    neg, days = p[off], _U32.unpack_from(p, off + 1)[0]
    hh, mm, ss = p[off + 5], p[off + 6], p[off + 7]
    text = "%s%02d:%02d:%02d" % ("-" if neg else "", days * 24 + hh, mm, ss)
    if n >= 12:
        us = _U32.unpack_from(p, off + 8)[0]
        if us:
            text += ".%06d" % us
    return text


def _binary_value(p, off: int, typ: int, unsigned: bool) -> tuple[bytes, int]:
    """One value of the binary protocol (execute parameters, binary rows) as text."""
    try:
        if typ == 0x01:
            v = p[off] if unsigned else _I8.unpack_from(p, off)[0]
            return str(v).encode(), off + 1
        if typ in (0x02, 0x0D):
            v = (_U16 if unsigned or typ == 0x0D else _I16).unpack_from(p, off)[0]
            return str(v).encode(), off + 2
        if typ in (0x03, 0x09):
            v = (_U32 if unsigned else _I32).unpack_from(p, off)[0]
            return str(v).encode(), off + 4
        if typ == 0x08:
            v = (_U64 if unsigned else _I64).unpack_from(p, off)[0]
            return str(v).encode(), off + 8
        if typ == 0x04:
            return ("%.7g" % _F32.unpack_from(p, off)[0]).encode(), off + 4
        if typ == 0x05:
            return repr(_F64.unpack_from(p, off)[0]).encode(), off + 8
        if typ == 0x06:
            return b"NULL", off
        if typ in (0x07, 0x0A, 0x0C):
            n = p[off]
            if off + 1 + n > len(p):
                raise ParseError("truncated date value")
            return _fmt_date(p, off + 1, n).encode(), off + 1 + n
        if typ == 0x0B:
            n = p[off]
            if off + 1 + n > len(p):
                raise ParseError("truncated time value")
            return _fmt_time(p, off + 1, n).encode(), off + 1 + n
    except (struct.error, IndexError):
        raise ParseError("truncated binary value") from None
    # decimals, strings, blobs, enum, set, bit, json, geometry: length-encoded bytes
    s, off = read_lenenc_str(p, off)
    return (b"NULL" if s is None else s), off


def decode_execute_params(payload: bytes, nparams: int, saved_types: list | None,
                          max_len: int) -> tuple[list[str], list]:
    """Parameters of a COM_STMT_EXECUTE payload (``cmd, stmt_id, flags,
    iterations, null bitmap, new-params-bound, [types], values``), as text, and
    the parameter types used (kept for later executions that do not resend
    them). Raises ParseError on malformed or truncated bytes."""
    if nparams <= 0:
        return [], saved_types or []
    off = 10
    nb = (nparams + 7) // 8
    if len(payload) < off + nb + 1:
        raise ParseError("execute packet too short for its parameters")
    nulls = payload[off:off + nb]
    off += nb
    bound = payload[off]
    off += 1
    if bound == 1:
        if len(payload) < off + 2 * nparams:
            raise ParseError("execute packet too short for its parameter types")
        types = [(payload[off + 2 * i], bool(payload[off + 2 * i + 1] & 0x80)) for i in range(nparams)]
        off += 2 * nparams
    elif saved_types and len(saved_types) == nparams:
        types = saved_types
    else:
        raise ParseError("execute without parameter types")
    out = []
    for i, (typ, unsigned) in enumerate(types):
        if nulls[i >> 3] & (1 << (i & 7)):
            out.append("NULL")
            continue
        v, off = _binary_value(payload, off, typ, unsigned)
        out.append(v[:max_len].decode("utf-8", "replace"))
    return out, types


def _keep(row: list, text: bytes, taken: int, max_len: int) -> int:
    """Append ``text`` to ``row``, cut to what is left of the row's
    ``max_len`` bytes (nothing once they are all taken); the bytes taken."""
    if taken < max_len:
        if taken + len(text) > max_len:
            text = text[:max_len - taken]
        row.append(text)
        taken += len(text)
    return taken


def decode_text_row(p, max_len: int) -> list[bytes]:
    """A text-protocol row, Packetbeat's way: NULL as ``NULL``, and once
    ``max_len`` bytes of the row are taken, the rest of the row is left out."""
    row: list[bytes] = []
    taken = 0
    off = 0
    n = len(p)
    while off < n:
        b = p[off]
        if b == 0xFB:
            text = b"NULL"
            off += 1
        elif b < 0xFB:
            end = off + 1 + b
            text = bytes(p[off + 1:end])
            off = end
        else:
            try:
                length, start = read_lenenc(p, off)
            except ParseError:
                break
            off = start + (length or 0)
            text = bytes(p[start:off])   # of a huge row only a prefix is kept: what there is
        taken = _keep(row, text, taken, max_len)
    return row


def decode_binary_row(p, types: list, max_len: int) -> list[bytes]:
    """A binary-protocol row (0x00, NULL bitmap with offset 2, values)."""
    ncol = len(types)
    off = 1 + (ncol + 9) // 8
    row: list[bytes] = []
    taken = 0
    for i, (typ, unsigned) in enumerate(types):
        bit = i + 2
        if (bit >> 3) + 1 < len(p) and p[1 + (bit >> 3)] & (1 << (bit & 7)):
            text = b"NULL"
        else:
            try:
                text, off = _binary_value(p, off, typ, unsigned)
            except ParseError:
                break
        taken = _keep(row, text, taken, max_len)
    return row


# --------------------------------------------------------------------------- parser

class MysqlParser:
    """Parser of one direction. ``feed(data, ts)`` returns complete messages."""

    __slots__ = ("is_client", "keep", "max_rows", "max_row_length", "keep_rows",
                 "_buf", "_carry_ts", "_out", "_in_lp", "_rem", "_cont", "_part", "_keep_left",
                 "_lp_ts", "_lp_seq", "_lp_size", "_lp_trunc",
                 "_z", "_cbuf", "_crem", "_zobj", "_zleft", "_switch",
                 "state", "stopped", "expected", "client_flags", "server_flags", "_login_seen",
                 "_infile", "_msg", "_cur", "_left", "_eof_pending", "_types", "_render",
                 "_prep_cols")

    def __init__(self, is_client: bool, keep: int = 1 << 20, max_rows: int = 10,
                 max_row_length: int = 1024, keep_rows: bool = True):
        self.is_client = is_client
        self.keep = keep                  # bytes kept of one logical packet
        self.max_rows = max_rows
        self.max_row_length = max_row_length
        self.keep_rows = keep_rows        # decode rows (only needed for the response text)
        self.expected: deque[int] = deque()
        self.client_flags: int | None = None
        self.server_flags: int | None = None
        self._z = False
        self.reset()

    # ------------------------------------------------------------ public API

    def reset(self) -> None:
        """Forget buffered bytes and the message in progress (after a
        ParseError, as Packetbeat: the next segment starts afresh). What the
        connection negotiated (flags, compression) is kept."""
        self._buf = bytearray()
        self._carry_ts = 0
        self._out: list[MysqlMessage] = []
        self._in_lp = False
        self._rem = 0
        self._cont = False
        self._part = bytearray()
        self._keep_left = 0
        self._lp_ts = self._lp_seq = self._lp_size = 0
        self._lp_trunc = False
        self._cbuf = bytearray()
        self._crem = 0
        self._zobj = None
        self._zleft = 0
        self._switch = False
        self.state = _S_IDLE
        self.stopped = False
        self._login_seen = False
        self._infile = False
        self._msg: MysqlMessage | None = None
        self._cur = _R_GUESS
        self._left = 0
        self._eof_pending = False
        self._types: list = []
        self._render = False
        self._prep_cols = 0
        self.expected.clear()

    def expect(self, resp: int) -> None:
        """The client sent a command answered by a ``resp`` (``Resp``)."""
        if resp != _R_NONE:
            if len(self.expected) >= MAX_EXPECTED:
                self.expected.popleft()
            self.expected.append(resp)

    def begin_infile(self) -> None:
        """The server asked for a LOCAL INFILE: skip the file the client sends."""
        self._infile = True

    def enable_compression(self) -> None:
        """CLIENT_COMPRESS is in effect from now on (after the login OK)."""
        if not self._z:
            self._z = True
            rest = bytes(self._buf)
            self._buf = bytearray()
            if rest:
                self._cbuf += rest

    @property
    def compressed(self) -> bool:
        return self._z

    @property
    def deprecate_eof(self) -> bool | None:
        """CLIENT_DEPRECATE_EOF in effect (None: the login was not seen)."""
        d = self._deof()
        return None if d < 0 else d == 1

    def _deof(self) -> int:
        """``deprecate_eof`` as an int: 1 True, 0 False, -1 None."""
        if self.client_flags is None:
            return -1
        if self.server_flags is not None and not self.server_flags & CLIENT_DEPRECATE_EOF:
            return 0
        return 1 if self.client_flags & CLIENT_DEPRECATE_EOF else 0

    def stop(self) -> None:
        """The rest of this direction is not analysable (TLS, binlog stream)."""
        self.stopped = True
        self.state = _S_STOPPED
        self._buf = bytearray()
        self._cbuf = bytearray()
        self._msg = None

    def feed(self, data, ts: int) -> list[MysqlMessage]:
        if self.stopped:
            return []
        self._out = []
        try:
            if self._z:
                self._feed_compressed(data, ts)
            else:
                self._feed_plain(data, ts)
                if self._switch:
                    self._switch = False
                    rest = bytes(self._buf)
                    self._buf = bytearray()
                    self._z = True
                    if rest:
                        self._feed_compressed(rest, ts)
        except ParseError as e:
            e.messages = self._out + e.messages
            self._out = []
            raise
        out = self._out
        self._out = []
        return out

    def on_gap(self, nbytes: int) -> list[MysqlMessage]:
        """``nbytes`` were lost. A result set being read is published with a
        note, as Packetbeat's ``messageGap`` does (its size is reported as 0,
        as Packetbeat does); the caller drops the stream afterwards: a
        length-prefixed stream cannot be resynchronised."""
        out: list[MysqlMessage] = []
        msg = self._msg
        if msg is not None and not self.is_client and self.state in (_S_COLUMNS, _S_ROWS):
            msg.notes.append("Packet loss while capturing the response")
            msg.size = 0
            msg.long_size = 0
            out.append(msg)
        self._msg = None
        self.state = _S_IDLE
        return out

    def flush(self) -> list[MysqlMessage]:
        """End of the stream: a response still being read is published with a
        note (nothing else is pending: requests are single packets)."""
        msg = self._msg
        self._msg = None
        if msg is None or self.stopped:
            return []
        msg.notes.append("Response incomplete at end of stream")
        return [msg]

    # ------------------------------------------------------------ framing

    def _feed_compressed(self, data, ts: int) -> None:
        cb = self._cbuf
        cb += data
        off = 0
        n = len(cb)
        while True:
            if self._crem:
                take = min(self._crem, n - off)
                if take <= 0:
                    break
                piece = bytes(cb[off:off + take])
                off += take
                self._crem -= take
                if self._zobj is None:
                    self._feed_plain(piece, ts)
                else:
                    self._inflate(piece, ts)
                    if not self._crem:
                        self._zobj = None
                continue
            if n - off < 7:
                break
            clen = cb[off] | (cb[off + 1] << 8) | (cb[off + 2] << 16)
            ulen = cb[off + 4] | (cb[off + 5] << 8) | (cb[off + 6] << 16)
            off += 7
            self._crem = clen
            self._zobj = zlib.decompressobj() if ulen else None
            self._zleft = ulen
        del cb[:off]

    def _inflate(self, piece: bytes, ts: int) -> None:
        z = self._zobj
        try:
            out = z.decompress(piece, INFLATE_CHUNK)
            while True:
                if out:
                    self._zleft -= len(out)
                    if self._zleft < 0:
                        raise ParseError("compressed packet inflates past its stated length")
                    self._feed_plain(out, ts)
                if not z.unconsumed_tail:
                    break
                out = z.decompress(z.unconsumed_tail, INFLATE_CHUNK)
        except zlib.error as e:
            raise ParseError("bad compressed packet: %s" % e) from None

    def _feed_plain(self, data, ts: int) -> None:
        buf = self._buf
        chunk_start = len(buf)
        if not chunk_start:
            self._carry_ts = ts
        buf += data
        n = len(buf)
        off = 0
        keep = self.keep
        client = self.is_client
        while not self.stopped and not self._switch:
            if self._in_lp:
                if self._rem:
                    take = min(self._rem, n - off)
                    if take <= 0:
                        break
                    k = min(take, self._keep_left)
                    if k:
                        self._part += buf[off:off + k]
                        self._keep_left -= k
                    if k < take:
                        self._lp_trunc = True
                    off += take
                    self._rem -= take
                    if self._rem:
                        break
                if self._cont:
                    if n - off < 4:
                        break
                    length = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)
                    off += 4
                    self._lp_size += 4 + length
                    self._cont = length == MAX_PAYLOAD
                    self._rem = length
                    continue
                self._in_lp = False
                part = self._part
                self._part = bytearray()
                if client:
                    self._client_packet(part, self._lp_seq, self._lp_size, self._lp_ts, self._lp_trunc)
                else:
                    self._server_packet(part, self._lp_seq, self._lp_size, self._lp_ts, self._lp_trunc)
                continue
            if self.state == _S_ROWS and not self._render:
                off = self._skip_rows(buf, off, n)
            if n - off < 4:
                break
            length = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)
            end = off + 4 + length
            if length < MAX_PAYLOAD and length <= keep:
                if end > n:
                    break
                if client:
                    self._client_packet(buf[off + 4:end], buf[off + 3], 4 + length,
                                        ts if off >= chunk_start else self._carry_ts, False)
                else:
                    self._server_packet(buf[off + 4:end], buf[off + 3], 4 + length,
                                        ts if off >= chunk_start else self._carry_ts, False)
                off = end
                continue
            # longer than kept, or continued in the next packet: stream it
            self._in_lp = True
            self._lp_ts = ts if off >= chunk_start else self._carry_ts
            self._lp_seq = buf[off + 3]
            self._lp_size = 4 + length
            self._lp_trunc = False
            self._cont = length == MAX_PAYLOAD
            self._rem = length
            self._keep_left = keep
            self._part = bytearray()
            off += 4
        if self.stopped:
            self._buf = bytearray()
            return
        if off:
            if off >= chunk_start:
                self._carry_ts = ts
            del buf[:off]

    def _skip_rows(self, buf: bytearray, off: int, n: int) -> int:
        """Hot path: rows that are only counted (no response text wanted) are
        stepped over in place, without a call or a copy per row. Stops at a
        packet it cannot decide alone (EOF/OK/ERR, incomplete, oversized)."""
        msg = self._msg
        keep = self.keep
        rows = 0
        size = msg.size
        long_size = msg.long_size
        while n - off >= 5:
            length = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)
            end = off + 4 + length
            if end > n or length > keep or length >= MAX_PAYLOAD or not length:
                break
            first = buf[off + 4]
            if first == 0xFE or first == 0xFF:
                break
            rows += 1
            size += 4 + length
            if not long_size and size > LONG_RESPONSE:
                long_size = size
            off = end
        if rows:
            msg.num_rows += rows
            msg.size = size
            msg.long_size = long_size
            self._eof_pending = False
        return off

    # ------------------------------------------------------------ client side

    def _client_packet(self, p, seq: int, size: int, ts: int, trunc: bool) -> None:
        if self._infile:
            if size == 4:               # the empty packet that ends the file
                self._infile = False
            return
        if seq == 0 and p:
            cmd = p[0]
            msg = _message(ts, True, _K_COMMAND, size)
            msg.command = cmd
            if cmd == COM_QUERY or cmd == COM_STMT_PREPARE or cmd == COM_INIT_DB:
                msg.query = bytes(p[1:])
                msg.truncated = trunc
            elif cmd in (COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_RESET, COM_STMT_FETCH,
                         COM_STMT_SEND_LONG_DATA):
                if len(p) >= 5:
                    msg.statement_id = _U32.unpack_from(p, 1)[0]
                if cmd == COM_STMT_EXECUTE:
                    msg.payload = bytes(p)
                    msg.truncated = trunc
            self._out.append(msg)
            return
        if seq == 1 and not self._login_seen and len(p) >= 32:
            self._login_seen = True
            caps = _U32.unpack_from(p, 0)[0]
            if not caps & CLIENT_PROTOCOL_41:
                return                      # pre-4.1 login: nothing we need from it
            self.client_flags = caps
            if len(p) == 32 and caps & CLIENT_SSL:
                msg = _message(ts, True, _K_SSL_REQUEST, size)
                msg.capabilities = caps
                self._out.append(msg)
                self.stop()
                return
            msg = _message(ts, True, _K_LOGIN, size)
            msg.capabilities = caps
            msg.user, off = _cstring(p, 32)
            try:
                if caps & CLIENT_PLUGIN_AUTH_LENENC_DATA:
                    _, off = read_lenenc_str(p, off)
                elif caps & CLIENT_SECURE_CONNECTION:
                    off += 1 + (p[off] if off < len(p) else 0)
                else:
                    _, off = _cstring(p, off)
                if caps & CLIENT_CONNECT_WITH_DB and off < len(p):
                    msg.database, off = _cstring(p, off)
                if caps & CLIENT_PLUGIN_AUTH and off < len(p):
                    msg.auth_plugin, off = _cstring(p, off)
            except ParseError:
                msg.notes.append("Malformed handshake response")
            self._out.append(msg)
        # anything else: auth data, replies to auth switches

    # ------------------------------------------------------------ server side

    def _new(self, ts: int, kind: int) -> MysqlMessage:
        msg = _message(ts, False, _K_RESPONSE, 0)
        msg.answers = kind
        self._msg = msg
        self._cur = kind
        self._types = []
        self._render = self.keep_rows
        return msg

    def _done(self) -> None:
        msg = self._msg
        self._msg = None
        self.state = _S_IDLE
        if msg.long_size:
            msg.size = msg.long_size
        self._out.append(msg)

    def _server_packet(self, p, seq: int, size: int, ts: int, trunc: bool) -> None:
        st = self.state
        if st == _S_ROWS:
            self._rows_packet(p, size)
            return
        if st == _S_IDLE:
            if not p:
                return
            first = p[0]
            if seq == 0 and not self.expected:
                if first == 0x0A and len(p) > 20 and 0x30 <= p[1] <= 0x39:
                    self._greeting(p, size, ts)
                    return
                if first == 0xFF:       # connection refused before any login
                    msg = _message(ts, False, _K_AUTH_ERR, size)
                    self._err(msg, p)
                    self._out.append(msg)
                    return
            kind = self.expected.popleft() if self.expected else _R_GUESS
            if kind == _R_STREAM:
                self.stop()
                return
            self._new(ts, kind)
            self.state = _S_FIRST
            self._first(p, size, ts)
            return
        msg = self._msg
        if st == _S_AUTH:
            self._auth_packet(p, size, ts)
            return
        if msg is None:                 # after reset in a mid-message state
            self.state = _S_IDLE
            return
        if st == _S_FIRST or st == _S_INFILE:
            self._first(p, size, ts)
            return
        msg.size += size
        if st == _S_COLUMNS:
            self._column(p, msg)
            self._left -= 1
            if not self._left:
                self.state = _S_ROWS
                self._eof_pending = self._deof() != 1
        elif st == _S_PREP_PARAMS:
            self._left -= 1
            if not self._left:
                self._after_prep_params()
        elif st == _S_PREP_PARAMS_EOF:
            if p and p[0] == 0xFE and len(p) < 9:
                self._after_prep_params_eof()
            else:
                msg.size -= size
                self._after_prep_params_eof()
                self._server_packet(p, seq, size, ts, trunc)      # it belongs to what follows
        elif st == _S_PREP_COLS:
            self._column(p, msg)
            self._left -= 1
            if not self._left:
                if self._deof() == 1:
                    self._done()
                else:
                    self.state = _S_PREP_COLS_EOF
        elif st == _S_PREP_COLS_EOF:
            if p and p[0] == 0xFE and len(p) < 9:
                self._done()
            else:
                msg.size -= size
                self._done()
                self._server_packet(p, seq, size, ts, trunc)
        elif st == _S_FIELD_LIST:
            if p and p[0] == 0xFE and len(p) < 9:
                self._done()
            elif p and p[0] == 0xFF:
                self._err(msg, p)
                self._done()
            else:
                self._column(p, msg)
                msg.num_fields += 1

    def _greeting(self, p, size: int, ts: int) -> None:
        msg = _message(ts, False, _K_GREETING, size)
        msg.server_version, off = _cstring(p, 1)
        caps = 0
        try:
            off += 4 + 8 + 1             # connection id, auth data part 1, filler
            caps = _U16.unpack_from(p, off)[0]
            if len(p) >= off + 7:
                caps |= _U16.unpack_from(p, off + 5)[0] << 16
                alen = p[off + 7] if len(p) > off + 7 else 0
                off += 8 + 10            # auth data length, reserved (MariaDB caps inside)
                if caps & CLIENT_SECURE_CONNECTION:
                    off += max(13, alen - 8)
                if caps & CLIENT_PLUGIN_AUTH and off < len(p):
                    msg.auth_plugin, _ = _cstring(p, off)
        except struct.error:
            msg.notes.append("Truncated server greeting")
        msg.capabilities = caps
        self.server_flags = caps
        self._out.append(msg)
        self.state = _S_AUTH
        self._msg = None

    def _auth_packet(self, p, size: int, ts: int) -> None:
        first = p[0] if p else -1
        if first == 0x00:
            self._out.append(_message(ts, False, _K_AUTH_OK, size))
            self.state = _S_IDLE
            if (self.client_flags or 0) & (self.server_flags if self.server_flags is not None
                                            else CLIENT_COMPRESS) & CLIENT_COMPRESS:
                self._switch = True
        elif first == 0xFF:
            msg = _message(ts, False, _K_AUTH_ERR, size)
            self._err(msg, p)
            self._out.append(msg)
            self.state = _S_IDLE
        # 0xfe auth switch, 0x01 more auth data: the exchange goes on

    def _err(self, msg: MysqlMessage, p) -> None:
        msg.is_error = True
        if len(p) >= 3:
            msg.error_code = _U16.unpack_from(p, 1)[0]
        if len(p) >= 9 and p[3] == 0x23:           # '#' + SQLSTATE (CLIENT_PROTOCOL_41)
            msg.sql_state = bytes(p[4:9])
            msg.error_message = bytes(p[9:])
        else:
            msg.error_message = bytes(p[3:])

    def _ok(self, msg: MysqlMessage, p) -> int:
        """OK (0x00) or EOF/OK (0xfe) packet; returns the status flags."""
        msg.is_ok = True
        if len(p) < 9 and p[0] == 0xFE:             # classic EOF: warnings, status
            return _U16.unpack_from(p, 3)[0] if len(p) >= 5 else 0
        affected, off = read_lenenc(p, 1)
        insert_id, off = read_lenenc(p, off)
        msg.affected_rows += affected or 0
        if insert_id:
            msg.insert_id = insert_id
        return _U16.unpack_from(p, off)[0] if len(p) >= off + 2 else 0

    def _first(self, p, size: int, ts: int) -> None:
        """First packet of a response or of its next result."""
        msg = self._msg
        kind = self._cur
        msg.size += size
        first = p[0] if p else -1
        if first == 0xFF:
            if len(p) >= 3 and p[1] == 0xFF and p[2] == 0xFF:
                return                                  # MariaDB progress report
            self._err(msg, p)
            self._done()
            return
        if kind == _R_AUTH:
            if first == 0x00:
                msg.is_ok = True
                self._done()
            return                                      # auth switch / more data: go on
        if kind == _R_ANY or kind == _R_SIMPLE:
            if first == 0x00 or first == 0xFE:
                try:
                    self._ok(msg, p)
                except ParseError:
                    pass
            self._done()
            return
        if kind == _R_PREPARE:
            if first != 0x00 or len(p) < 9:
                raise ParseError("unexpected answer to COM_STMT_PREPARE")
            msg.is_ok = True
            msg.statement_id, ncols, nparams = _PREP_OK.unpack_from(p, 0)
            msg.num_fields = ncols
            msg.num_params = nparams
            self._prep_cols = ncols
            if nparams:
                self.state = _S_PREP_PARAMS
                self._left = nparams
            else:
                self._after_prep_params_eof()
            return
        if kind == _R_FIELD_LIST:
            self.state = _S_FIELD_LIST
            msg.size -= size
            self._server_packet(p, 1, size, ts, False)
            return
        if kind == _R_FETCH:
            self.state = _S_ROWS
            self._eof_pending = False
            self._render = False
            msg.size -= size
            self._rows_packet(p, size)
            return
        # QUERY, EXECUTE, GUESS
        if first == 0x00 or (first == 0xFE and (kind == _R_GUESS or self.state == _S_INFILE)):
            status = self._ok(msg, p)
            if status & SERVER_MORE_RESULTS_EXISTS and kind != _R_GUESS:
                self.state = _S_FIRST
                return
            self._done()
            return
        if first == 0xFB and kind == _R_QUERY and self.state != _S_INFILE:
            self.state = _S_INFILE
            self._out.append(MysqlMessage(ts, False, _K_INFILE_REQUEST, 0,
                                          query=bytes(p[1:])))
            return
        if kind == _R_GUESS and len(p) != 1 and not (first == 0xFC and len(p) == 3):
            self._msg = None                          # Packetbeat: something else, ignored
            self.state = _S_IDLE
            return
        ncols, _ = read_lenenc(p, 0)
        if not ncols or ncols > MAX_COLUMNS:
            raise ParseError("bad column count %r" % ncols)
        if not msg.num_fields:
            msg.num_fields = ncols
        elif msg.fields:
            self._render = False                      # the response text shows the first result
        self._types = []
        self._left = ncols
        self.state = _S_COLUMNS

    def _after_prep_params(self) -> None:
        if self._deof() == 1:
            self._after_prep_params_eof()
        else:
            self.state = _S_PREP_PARAMS_EOF

    def _after_prep_params_eof(self) -> None:
        if self._prep_cols:
            self.state = _S_PREP_COLS
            self._left = self._prep_cols
        else:
            self._done()

    def _column(self, p, msg: MysqlMessage) -> None:
        """A column definition (protocol 4.1): catalog, schema, table,
        org_table, name, org_name, fixed-length fields (charset, length,
        type, flags, decimals)."""
        if not p or p[0] >= 0xFB:
            raise ParseError("not a column definition")
        _, off = read_lenenc_str(p, 0)
        schema, off = read_lenenc_str(p, off)
        table, off = read_lenenc_str(p, off)
        if table:
            name = (schema.decode("utf-8", "replace") + "." if schema else "") + table.decode("utf-8", "replace")
            if name not in msg.tables:
                msg.tables.append(name)
        if self._render or self._cur == _R_EXECUTE:
            _, off = read_lenenc_str(p, off)
            cname, off = read_lenenc_str(p, off)
            _, off = read_lenenc_str(p, off)
            if self._render and self.state != _S_PREP_COLS:
                msg.fields.append(cname or b"")
            if self._cur == _R_EXECUTE:
                off += 1 + 2 + 4          # fixed-length marker, charset, column length
                if off + 3 <= len(p):
                    self._types.append((p[off], bool(p[off + 1] & 0x20)))
                else:
                    self._types.append((0xFD, False))     # unknown: read as a string

    def _rows_packet(self, p, size: int) -> None:
        msg = self._msg
        msg.size += size
        first = p[0] if p else -1
        if first == 0xFE and size - 4 < MAX_PAYLOAD:
            # EOF after the column definitions, or the end of the rows (EOF or OK)
            if self._eof_pending and (self._deof() == 0 or (self._deof() < 0 and len(p) == 5)):
                self._eof_pending = False
                status = _U16.unpack_from(p, 3)[0] if len(p) >= 5 else 0
                if status & SERVER_STATUS_CURSOR_EXISTS and self._cur == _R_EXECUTE:
                    self._done()
                return
            self._eof_pending = False
            status = self._ok(msg, p)
            if status & SERVER_MORE_RESULTS_EXISTS and self._cur != _R_GUESS:
                self._render = False
                self.state = _S_FIRST
                return
            self._done()
            return
        if first == 0xFF:
            self._err(msg, p)
            self._done()
            return
        self._eof_pending = False
        msg.num_rows += 1
        if not msg.long_size and msg.size > LONG_RESPONSE:
            msg.long_size = msg.size
        if self._render and len(msg.rows) < self.max_rows:
            if self._cur == _R_EXECUTE and first == 0x00:
                msg.rows.append(decode_binary_row(p, self._types, self.max_row_length))
            else:
                msg.rows.append(decode_text_row(p, self.max_row_length))
