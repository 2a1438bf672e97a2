"""Frame bodies -> the fields Packetbeat 8 writes under ``cassandra.request``
and ``cassandra.response`` (``packetbeat/protos/cassandra/internal/gocql/frame.go``
``ReadFrame`` and its ``parse*Frame`` helpers).

- Requests: only QUERY gives a field (``query``); the other requests are
  published with their headers alone, as Packetbeat does.
- Responses: ``error`` (code, msg, type, details), ``result`` (type and the
  kind's fields), ``supported``, ``authentication``, ``event``, ``warnings``.
- Unlike Packetbeat, the tracing id of a traced response and the custom payload
  are skipped before the body is read, the warnings are read from the
  decompressed body, and v5 bodies (prepared result metadata id, rows
  metadata id, read/write failure reason maps) are understood.
- ``num_rows``: Packetbeat reads the row count right after the part of the
  rows metadata it decodes (flags, column count, paging state or global table
  spec), i.e. from the first column spec when the metadata has one.
  With ``packetbeat_quirks`` (the default) the same four bytes are reported, so
  events match Packetbeat's; without it the column specs are skipped and the
  real row count is reported.

Any malformed body raises :class:`BodyError`; the event then carries the
headers and a note.
"""
from __future__ import annotations

import ipaddress
import struct

from worker.protos.cassandra.parser import (
    FLAG_CUSTOM_PAYLOAD, FLAG_TRACING, FLAG_WARNING, OP_AUTH_CHALLENGE, OP_AUTH_SUCCESS,
    OP_AUTHENTICATE, OP_ERROR, OP_EVENT, OP_NAMES, OP_QUERY, OP_RESULT, OP_STARTUP, OP_SUPPORTED,
    CassandraMessage,
)

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_MAX_ITEMS = 65535


class BodyError(Exception):
    """A frame body that does not decode."""


class Reader:
    """Bounds-checked reads of CQL notation ([short], [int], [string], ...)
    from a body; running past the end raises :class:`BodyError`."""
    __slots__ = ("b", "p", "n")

    def __init__(self, b: bytes, p: int = 0) -> None:
        self.b = b
        self.p = p
        self.n = len(b)

    def need(self, n: int) -> int:
        p = self.p
        if n < 0 or p + n > self.n:
            raise BodyError("body too short")
        self.p = p + n
        return p

    def byte(self) -> int:
        return self.b[self.need(1)]

    def short(self) -> int:
        p = self.p
        if p + 2 > self.n:
            raise BodyError("body too short")
        self.p = p + 2
        b = self.b
        return (b[p] << 8) | b[p + 1]

    def uint(self) -> int:
        """[int] read unsigned, as Packetbeat's decoder does."""
        return _U32.unpack_from(self.b, self.need(4))[0]

    def int(self) -> int:
        return _I32.unpack_from(self.b, self.need(4))[0]

    def raw(self, n: int) -> bytes:
        p = self.p
        end = p + n
        if n < 0 or end > self.n:
            raise BodyError("body too short")
        self.p = end
        return self.b[p:end]

    def string(self) -> str:
        b = self.b
        p = self.p
        end = p + 2
        if end > self.n:
            raise BodyError("body too short")
        end += (b[p] << 8) | b[p + 1]
        if end > self.n:
            raise BodyError("body too short")
        self.p = end
        return b[p + 2:end].decode("utf-8", "replace")

    def long_string(self) -> str:
        return self.raw(self.int()).decode("utf-8", "replace")

    def string_list(self) -> list[str]:
        return [self.string() for _ in range(self.short())]

    def bytes_(self) -> bytes | None:
        n = self.int()
        if n < 0:
            return None
        return self.raw(n)

    def short_bytes(self) -> bytes:
        return self.raw(self.short())

    def bytes_map(self) -> None:
        for _ in range(self.short()):
            self.string()
            self.bytes_()

    def string_map(self) -> dict[str, str]:
        out = {}
        for _ in range(self.short()):
            k = self.string()
            out[k] = self.string()
        return out

    def string_multimap(self) -> dict[str, list[str]]:
        out = {}
        for _ in range(self.short()):
            k = self.string()
            out[k] = self.string_list()
        return out

    def inet(self) -> tuple[str, int]:
        n = self.byte()
        if n not in (4, 16):
            raise BodyError("invalid inet size %d" % n)
        ip = str(ipaddress.ip_address(self.raw(n)))
        return ip, self.int()


# --- names (gocql's String methods as Packetbeat vendors them) ----------
_HEAD_FLAGS = {0x00: "Default", 0x01: "Compress", 0x02: "Tracing", 0x04: "CustomPayload", 0x08: "Warning"}
_ROW_FLAGS = {0x01: "GlobalTableSpec", 0x02: "HasMorePages", 0x04: "NoMetaData"}
_ERRORS = {
    0x0000: "errServer", 0x000A: "errProtocol", 0x0100: "errCredentials", 0x1000: "errUnavailable",
    0x1001: "errOverloaded", 0x1002: "errBootstrapping", 0x1003: "errTruncate",
    0x1100: "errWriteTimeout", 0x1200: "errReadTimeout", 0x1300: "errReadFailure",
    0x1400: "errFunctionFailure", 0x1500: "errWriteFailure", 0x1600: "errCDCWriteFailure",
    0x1700: "errCASWriteUnknown", 0x2000: "errSyntax", 0x2100: "errUnauthorized",
    0x2200: "errInvalid", 0x2300: "errConfig", 0x2400: "errAlreadyExists", 0x2500: "errUnprepared",
}
_CONSISTENCY = {0x00: "ANY", 0x01: "ONE", 0x02: "TWO", 0x03: "THREE", 0x04: "QUORUM", 0x05: "ALL",
                0x06: "LOCAL_QUORUM", 0x07: "EACH_QUORUM", 0x08: "SERIAL", 0x09: "LOCAL_SERIAL",
                0x0A: "LOCAL_ONE"}


def head_flags(f: int) -> str:
    return _HEAD_FLAGS.get(f) or "UnknownFlag_%d" % f


def row_flags(f: int) -> str:
    return _ROW_FLAGS.get(f) or "FLAG_%d" % f


def consistency(c: int) -> str:
    return _CONSISTENCY.get(c) or "UNKNOWN_CONS_0x%x" % c


_FLAG_TEXT = tuple(head_flags(f) for f in range(256))
_VERSION_TEXT = tuple(str(v) for v in range(128))
_OP_TEXT = tuple(OP_NAMES.get(op) or "UNKNOWN_OP_%d" % op for op in range(256))


def headers(msg: CassandraMessage) -> dict:
    return {"version": _VERSION_TEXT[msg.version], "flags": _FLAG_TEXT[msg.flags], "stream": msg.stream,
            "op": _OP_TEXT[msg.opcode], "length": msg.length}


def go_quote(b: bytes | None) -> str:
    """Go's ``fmt.Sprintf("%q", b)`` of a byte slice."""
    if not b:
        return '""'
    out = ['"']
    s = b.decode("utf-8", "surrogateescape")
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:                # an invalid UTF-8 byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o < 0x7F or ch.isprintable():
            out.append(ch)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def _uuid(b: bytes) -> str:
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def _prefix(msg: CassandraMessage, r: Reader, response: bool) -> list[str] | None:
    """Skip what the header flags put before the body proper; the warnings."""
    warnings = None
    if response and msg.flags & FLAG_TRACING:
        r.raw(16)
    if response and msg.flags & FLAG_WARNING:
        warnings = r.string_list()
    if msg.flags & FLAG_CUSTOM_PAYLOAD:
        r.bytes_map()
    return warnings


def startup_options(msg: CassandraMessage) -> dict[str, str]:
    """The options of a STARTUP request (COMPRESSION, CQL_VERSION, ...)."""
    if msg.opcode != OP_STARTUP or msg.body is None:
        return {}
    try:
        r = Reader(msg.body)
        _prefix(msg, r, False)
        return r.string_map()
    except BodyError:
        return {}


def decode_request(msg: CassandraMessage) -> dict:
    if msg.opcode != OP_QUERY or msg.body is None:
        return {}
    body = msg.body
    if not msg.flags & FLAG_CUSTOM_PAYLOAD and len(body) >= 4:
        n = _I32.unpack_from(body, 0)[0]
        if 0 <= n <= len(body) - 4:
            return {"query": body[4:4 + n].decode("utf-8", "replace")}
    r = Reader(body)
    _prefix(msg, r, False)
    return {"query": r.long_string()}


def decode_response(msg: CassandraMessage, quirks: bool = True) -> dict:
    if msg.body is None:
        return {}
    r = Reader(msg.body)
    data: dict = {}
    warnings = _prefix(msg, r, True)
    if warnings is not None:
        data["warnings"] = warnings
    op = msg.opcode
    v = msg.version
    if op == OP_ERROR:
        data["error"] = _error(r, v)
    elif op == OP_RESULT:
        data["result"] = _result(r, v, quirks)
    elif op == OP_SUPPORTED:
        data["supported"] = r.string_multimap()
    elif op == OP_AUTHENTICATE:
        data["authentication"] = {"class": r.string()}
    elif op in (OP_AUTH_CHALLENGE, OP_AUTH_SUCCESS):
        data["authentication"] = {"data": go_quote(r.bytes_())}
    elif op == OP_EVENT:
        data["event"] = _event(r, v)
    return data


def _error(r: Reader, v: int) -> dict:
    code = r.uint()
    msg = r.string()
    data: dict = {"code": code, "msg": msg, "type": _ERRORS.get(code, "ErrUnknown")}
    d: dict = {}
    if code == 0x1000:                                  # unavailable
        d["read_consistency"] = consistency(r.short())
        d["required"] = r.uint()
        d["alive"] = r.uint()
    elif code == 0x1100:                                # write timeout
        d["read_consistency"] = consistency(r.short())
        d["received"] = r.uint()
        d["blockfor"] = r.uint()
        d["write_type"] = r.string()
    elif code == 0x1200:                                # read timeout
        d["read_consistency"] = consistency(r.short())
        d["received"] = r.uint()
        d["blockfor"] = r.uint()
        d["data_present"] = r.byte() != 0
    elif code == 0x1300:                                # read failure
        d["read_consistency"] = consistency(r.short())
        d["received"] = r.uint()
        d["blockfor"] = r.uint()
        d["num_failures"] = _failures(r, v)
        d["data_present"] = r.byte() != 0
    elif code == 0x1500:                                # write failure
        d["read_consistency"] = consistency(r.short())
        d["received"] = r.uint()
        d["blockfor"] = r.uint()
        d["num_failures"] = _failures(r, v)
        d["write_type"] = r.string()
    elif code == 0x1400:                                # function failure
        d["keyspace"] = r.string()
        d["function"] = r.string()
        d["arg_types"] = r.string_list()
    elif code == 0x2400:                                # already exists
        d["keyspace"] = r.string()
        d["table"] = r.string()
    elif code == 0x2500:                                # unprepared
        d["stmt_id"] = r.short_bytes().hex()
    if d:
        data["details"] = d
    return data


def _failures(r: Reader, v: int) -> int:
    """v5: a reason map (endpoint -> failure code), counted; v4: an [int]."""
    if v >= 5:
        n = r.int()
        for _ in range(max(0, min(n, _MAX_ITEMS))):
            size = r.byte()
            r.raw(size)
            r.short()
        return n
    return r.uint()


def _result(r: Reader, v: int, quirks: bool) -> dict:
    kind = r.int()
    data: dict = {}
    if kind == 1:
        data["type"] = "void"
    elif kind == 2:
        data["type"] = "rows"
        meta, end, cols, glob = _metadata(r, v, False)
        rows = {"meta": meta}
        if not quirks:
            r.p = end
            _skip_col_specs(r, cols, glob, meta)
        rows["num_rows"] = r.uint()
        data["rows"] = rows
    elif kind == 3:
        data["type"] = "set_keyspace"
        data["keyspace"] = r.string()
    elif kind == 4:
        data["type"] = "prepared"
        pid = r.short_bytes()
        prepared = {"prepared_id": _uuid(pid) if len(pid) == 16 else pid.hex()}
        if v >= 5:
            r.short_bytes()                           # result metadata id
        req_meta, end, cols, glob = _metadata(r, v, True)
        prepared["req_meta"] = req_meta
        r.p = end
        _skip_col_specs(r, cols, glob, req_meta)
        prepared["resp_meta"] = _metadata(r, v, False)[0]
        data["prepared"] = prepared
    elif kind == 5:
        data["type"] = "schemaChanged"
        data["schema_change"] = _schema_change(r, v)
    else:
        raise BodyError("unknown result kind %d" % kind)
    return data


def _metadata(r: Reader, v: int, prepared: bool) -> tuple[dict, int, int, bool]:
    """Result/prepared metadata up to the column specs: the fields, the offset
    where the column specs begin, the column count and whether a global table
    spec was given. ``r`` is left where Packetbeat's decoder stops (so the next
    [int] is its ``num_rows``)."""
    meta: dict = {}
    flags = r.int()
    meta["flags"] = row_flags(flags)
    col_count = r.int()
    meta["col_count"] = col_count
    if prepared and v >= 4:
        n = r.int()
        if n < 0 or n > _MAX_ITEMS:
            raise BodyError("bad partition key count")
        meta["pkey_columns"] = [r.short() for _ in range(n)]
    pb_stop = None
    if flags & 0x02:                                    # has more pages
        ps = r.bytes_()
        meta["paging_state"] = (ps or b"").hex().upper()
        pb_stop = r.p
    if v >= 5 and flags & 0x08:                         # metadata changed
        r.short_bytes()
    glob = False
    if not flags & 0x04:                                # has metadata
        if flags & 0x01:
            meta["keyspace"] = r.string()
            meta["table"] = r.string()
            glob = True
    end = r.p
    if pb_stop is not None:
        r.p = pb_stop
    return meta, end, col_count if not flags & 0x04 else 0, glob


def _skip_col_specs(r: Reader, cols: int, glob: bool, meta: dict) -> None:
    if cols <= 0:
        return
    if cols > _MAX_ITEMS * 4:
        raise BodyError("too many columns")
    for _ in range(cols):
        if not glob:
            r.string()
            r.string()
        r.string()
        _skip_type(r, 0)


def _skip_type(r: Reader, depth: int) -> None:
    if depth > 32:
        raise BodyError("type nesting too deep")
    t = r.short()
    if t == 0x0000:
        r.string()
    elif t in (0x0020, 0x0022):
        _skip_type(r, depth + 1)
    elif t == 0x0021:
        _skip_type(r, depth + 1)
        _skip_type(r, depth + 1)
    elif t == 0x0030:
        r.string()
        r.string()
        for _ in range(r.short()):
            r.string()
            _skip_type(r, depth + 1)
    elif t == 0x0031:
        for _ in range(r.short()):
            _skip_type(r, depth + 1)
    elif t > 0x0031:
        raise BodyError("unknown type id 0x%x" % t)


def _schema_change(r: Reader, v: int) -> dict:
    data: dict = {}
    if v <= 2:
        data["change"] = r.string()
        data["keyspace"] = r.string()
        data["table"] = r.string()
        return data
    change = r.string()
    target = r.string()
    data["change"] = change
    data["target"] = target
    if target == "KEYSPACE":
        data["keyspace"] = r.string()
    elif target in ("TABLE", "TYPE"):
        data["keyspace"] = r.string()
        data["object"] = r.string()
    elif target in ("FUNCTION", "AGGREGATE"):
        data["keyspace"] = r.string()
        data["name"] = r.string()
        data["args"] = r.string_list()
    return data


def _event(r: Reader, v: int) -> dict:
    etype = r.string()
    data: dict = {"type": etype}
    if etype in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
        data["change"] = r.string()
        data["host"], data["port"] = r.inet()
    elif etype == "SCHEMA_CHANGE":
        data["schema_change"] = _schema_change(r, v)
    return data
