"""Memcache transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/memcache/memcache.go: newTransaction / Event``, the
serialisers of ``text.go`` / ``binary.go`` / ``commands.go``).

As in Packetbeat (5.x and 8.x alike), ``source.bytes`` holds the *response*
size and ``destination.bytes`` the *request* size (``applayer.Transaction``
``BytesIn``/``BytesOut``). Values are base64 text. A transaction with only a
response starts and ends at the response (duration 0), as Packetbeat's.
"""
from __future__ import annotations

import base64

from worker.ecs import transaction_event
from worker.protos.memcache.parser import (ARG_AUTOMOVE, ARG_BYTES, ARG_CAS, ARG_DEST_CLASS, ARG_ERRMSG,
                                           ARG_EXPTIME, ARG_FLAGS, ARG_KEY_LIST, ARG_KEYS, ARG_NOREPLY, ARG_RAW,
                                           ARG_SOURCE_CLASS, ARG_STAT, OPCODE_NAMES, STATUS_NAMES, MemcacheMessage)

OK = "OK"
ERROR = "Error"
CLIENT_ERROR = "Client Error"
SERVER_ERROR = "Server Error"

_CLIENT_FAILS = frozenset(("CLIENT_ERROR", "SAME"))
_SERVER_FAILS = frozenset(("SERVER_ERROR", "BUSY", "BADCLASS", "NOSPARE", "NOTFULL", "UNSAFE"))


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def status_of(req: MemcacheMessage | None, resp: MemcacheMessage | None) -> str:
    """Packetbeat's ``computeTransactionStatus``."""
    if req is None:
        return CLIENT_ERROR if resp is not None else ERROR
    if resp is None:
        if req.is_quiet or req.noreply or req.cmd.name == "quit":
            return OK
        return SERVER_ERROR
    if req.is_binary:
        if resp.status == 0:
            return OK
        return SERVER_ERROR if resp.status > 0x80 else ERROR
    if resp.cmd.typ != "Fail":
        return OK
    name = resp.cmd.name
    if name in _CLIENT_FAILS:
        return CLIENT_ERROR
    if name in _SERVER_FAILS:
        return SERVER_ERROR
    return ERROR


def _probe():
    pass


# True when this module runs compiled: event.pxd's _presized_c is then used
_COMPILED = type(_probe).__name__ != "function"


# event.action per command type ("Load" -> "memcache.load")
_ACTIONS: dict = {}


def to_event(req: MemcacheMessage | None, resp: MemcacheMessage | None, tuple_, transport: int = 6) -> dict:
    """One event for a transaction; either side may be None. ``tuple_`` is an
    IpPortTuple or TcpTuple oriented client -> server."""
    # transaction_event only reads the notes (it copies a list of several)
    notes: list[str] | None = None
    if req is not None:
        notes = req.notes
        start = req.ts
        end = resp.ts if resp is not None else None
    else:
        start = end = resp.ts
    if resp is not None and resp.notes:
        notes = notes + resp.notes if notes else resp.notes
    ev = transaction_event(
        "memcache", tuple_, start, end,
        resp.size if resp is not None else 0,     # bytes_in: the response (sic, Packetbeat)
        req.size if req is not None else 0,       # bytes_out: the request
        status_of(req, resp), notes, transport,
    )
    first = req if req is not None else resp
    mc: dict = {"protocol_type": "binary" if first.is_binary else "text"}
    if req is not None:
        mc["request"] = message_fields(req)
        typ = req.cmd.typ
        action = _ACTIONS.get(typ)
        if action is None:
            action = _ACTIONS[typ] = "memcache." + typ.lower()
        ev["event"]["action"] = action
    if resp is not None:
        mc["response"] = message_fields(resp)
        if resp.status == 0:
            ev["event"]["outcome"] = "success"
    ev["memcache"] = mc
    return ev


def message_fields(msg: MemcacheMessage) -> dict:
    """The ``memcache.request`` / ``memcache.response`` object of one message."""
    return _binary_fields(msg) if msg.is_binary else _text_fields(msg)


def _keys(msg: MemcacheMessage) -> list[str]:
    keys = msg.keys
    out: list = []
    if keys:
        for k in keys:
            out.append(k.decode("utf-8", "replace"))
    return out


def _stats(msg: MemcacheMessage) -> list[dict]:
    # a loop with typed names (event.pxd) rather than a comprehension: the
    # compiled module then decodes without a method lookup per value
    stats = msg.stats
    out: list = []
    if stats:
        for n, v in stats:
            out.append({"name": n.decode("utf-8", "replace"), "value": v.decode("utf-8", "replace")})
    return out


def _text_fields(msg: MemcacheMessage) -> dict:
    cmd = msg.cmd
    kind = cmd.kind
    if kind == "unknown":
        return {"line": _s(msg.command_line), "command": "UNKNOWN", "type": "UNKNOWN"}
    if kind == "counter":
        return {"command": cmd.name, "type": "Counter", "value": msg.value}
    names = cmd.names
    n = len(names) if msg.nargs < 0 else min(msg.nargs, len(names))
    # compiled: a dict sized for every field it can get (event.pxd), filled
    # without a resize; the same keys in the same order either way
    out: dict = _presized_c(n + 4) if _COMPILED else {}
    out["command"] = cmd.name
    out["type"] = cmd.typ
    if kind == "data":
        out["count_values"] = msg.count_values
        if msg.count_values and msg.data is not None:
            out["values"] = _b64(msg.data)
    elif kind == "resp_data":
        out["count_values"] = msg.count_values
        if msg.count_values and msg.values:
            out["values"] = [_b64(v) for v in msg.values]
    codes = cmd.codes
    for i in range(n):
        code = codes[i]
        if code == ARG_KEYS or code == ARG_KEY_LIST:
            out["keys"] = _keys(msg)
        elif code == ARG_NOREPLY:
            out["noreply"] = msg.noreply
        elif code == ARG_FLAGS:
            out["flags"] = msg.flags
        elif code == ARG_EXPTIME:
            out["exptime"] = msg.exptime
        elif code == ARG_BYTES:
            out["bytes"] = msg.bytes
        elif code == ARG_CAS:
            out["cas_unique"] = msg.cas_unique
        elif code == ARG_RAW:
            out["raw_args"] = _s(msg.raw_args)
        elif code == ARG_STAT:
            out["stats"] = _stats(msg)
        elif code == ARG_ERRMSG:
            out["error_msg"] = _s(msg.error_msg or b"")
        elif code == ARG_SOURCE_CLASS:
            out["source_class"] = msg.ivalue
        elif code == ARG_DEST_CLASS:
            out["dest_class"] = msg.ivalue2
        elif code == ARG_AUTOMOVE:
            out["automove"] = {0: "standby", 1: "slow", 2: "aggressive"}.get(msg.value, str(msg.value))
        else:   # delta, sleep_us, value, verbosity
            out[names[i]] = msg.value
    return out


def _binary_fields(msg: MemcacheMessage) -> dict:
    cmd = msg.cmd
    args = cmd.args if msg.is_request else cmd.resp_args
    # compiled: a dict sized for every field it can get (event.pxd): the 5
    # below, at most 9 conditional ones and the extras; filled without a resize
    out: dict = _presized_c(14 + len(args)) if _COMPILED else {}
    out["command"] = cmd.name
    out["type"] = cmd.typ
    out["opcode"] = OPCODE_NAMES.get(msg.opcode, "")
    out["opcode_value"] = msg.opcode
    out["opaque"] = msg.opaque
    if msg.keys:
        out["keys"] = _keys(msg)
    if msg.is_cas:
        out["cas_unique"] = msg.cas_unique
    if msg.count_values:
        out["count_values"] = msg.count_values
        if msg.values:
            out["values"] = [_b64(v) for v in msg.values]
        out["bytes"] = msg.bytes
    if msg.version is not None:
        out["version"] = _s(msg.version)
    if msg.is_request:
        out["quiet"] = msg.is_quiet
        out["vbucket"] = msg.vbucket
    else:
        out["status"] = STATUS_NAMES.get(msg.status, "")
        out["status_code"] = msg.status
        if cmd.typ == "Counter":
            out["value"] = msg.value
    for name in args:
        if name == "flags":
            out["flags"] = msg.flags
        elif name == "exptime":
            out["exptime"] = msg.exptime
        elif name == "initial":
            out["initial"] = msg.value2
        elif name == "statsvalue":
            out["stats"] = _stats(msg)
        else:   # delta, verbosity
            out[name] = msg.value
    return out
