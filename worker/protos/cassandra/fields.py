"""Index-template mappings of the fields the Cassandra analyser emits, with
Packetbeat 8's types (``packetbeat/protos/cassandra/_meta/fields.yml``)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_BOOL = {"type": "boolean"}


def _meta(prefix: str) -> dict:
    return {prefix + k: v for k, v in (("keyspace", _KW), ("table", _KW), ("flags", _KW), ("col_count", _LONG),
                                       ("pkey_columns", _LONG), ("paging_state", _KW))}


def _schema_change(prefix: str) -> dict:
    return {prefix + k: _KW for k in ("change", "keyspace", "table", "object", "target", "name", "args")}


def _headers(prefix: str) -> dict:
    return {prefix + "version": _LONG, prefix + "flags": _KW, prefix + "stream": _KW, prefix + "op": _KW,
            prefix + "length": _LONG}


R = "cassandra.response."
FIELDS: dict[str, dict] = {
    "cassandra.no_request": _BOOL,
    "cassandra.request.query": _KW,
    R + "result.type": _KW,
    R + "result.rows.num_rows": _LONG,
    R + "result.keyspace": _KW,
    R + "result.prepared.prepared_id": _KW,
    R + "supported": {"type": "flattened"},
    R + "authentication.class": _KW,
    R + "authentication.data": _KW,
    R + "warnings": _KW,
    R + "event.type": _KW,
    R + "event.change": _KW,
    R + "event.host": _KW,
    R + "event.port": _LONG,
    R + "error.code": _LONG,
    R + "error.msg": _KW,
    R + "error.type": _KW,
    R + "error.details.read_consistency": _KW,
    R + "error.details.required": _LONG,
    R + "error.details.alive": _LONG,
    R + "error.details.received": _LONG,
    R + "error.details.blockfor": _LONG,
    R + "error.details.write_type": _KW,
    R + "error.details.data_present": _BOOL,
    R + "error.details.keyspace": _KW,
    R + "error.details.table": _KW,
    R + "error.details.stmt_id": _KW,
    R + "error.details.num_failures": _KW,
    R + "error.details.function": _KW,
    R + "error.details.arg_types": _KW,
}
FIELDS.update(_headers("cassandra.request.headers."))
FIELDS.update(_headers(R + "headers."))
FIELDS.update(_meta(R + "result.rows.meta."))
FIELDS.update(_meta(R + "result.prepared.req_meta."))
FIELDS.update(_meta(R + "result.prepared.resp_meta."))
FIELDS.update(_schema_change(R + "result.schema_change."))
FIELDS.update(_schema_change(R + "event.schema_change."))
