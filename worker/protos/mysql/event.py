"""MySQL transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/mysql/mysql.go: publishTransaction``).

Root fields ``method``, ``query``, ``path`` (the tables of the result, when
any), ``params`` (prepared-statement parameters), ``status``; the ``mysql``
object holds ``affected_rows``, ``insert_id``, ``num_rows``, ``num_fields``
and, on error only, ``error_code`` and ``error_message``
(``"<SQLSTATE>: <message>"``). ``request`` (the query text) and ``response``
(the result rows as CSV, ``max_rows`` rows of at most ``max_row_length``
bytes, Go ``encoding/csv`` quoting) only with ``send_request`` /
``send_response``.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.protos.mysql.config import MysqlConfig
from worker.protos.mysql.parser import COM_INIT_DB, COM_STMT_EXECUTE, MysqlMessage
from worker.protos.sqltext import TextCache, dump_csv

_TRIM = " \r\n\t"


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def method_and_query(req: MysqlMessage) -> tuple[str, str, str]:
    """(method, query, raw request text) of a command, as Packetbeat derives
    them: the query trimmed of blanks, its first word upper-cased."""
    if req.command == COM_INIT_DB:
        db = _s(req.query)
        return "USE", "USE " + db, db
    if req.command == COM_STMT_EXECUTE and not req.query:
        return "EXECUTE", "Request Execute Statement", ""
    return _TEXTS.get(req.query)


def _method_and_query(q: bytes) -> tuple[str, str, str]:
    raw = _s(q)
    query = raw.strip(_TRIM)
    cut = len(query)
    for ch in _TRIM:
        i = query.find(ch)
        if 0 <= i < cut:
            cut = i
    return query[:cut].upper(), query, raw


# query bytes -> (method, query, raw), made once per statement (bounded: sqltext.py)
_TEXTS = TextCache(_method_and_query)


def to_event(req: MysqlMessage | None, resp: MysqlMessage | None, cfg: MysqlConfig, tcptuple) -> dict:
    """One event for a transaction; either side may be None (unmatched)."""
    status = "OK"
    notes: list[str] = []
    mysql: dict = {}
    if req is not None:
        notes.extend(req.notes)
        method, query, raw = method_and_query(req)
        if resp is None:
            status = "Error"
            notes.append("Unmatched request")
    if resp is not None:
        notes.extend(resp.notes)
        if req is None:
            status = "Error"
            notes.append("Unmatched response")
        mysql["affected_rows"] = resp.affected_rows
        mysql["insert_id"] = resp.insert_id
        mysql["num_rows"] = resp.num_rows
        mysql["num_fields"] = resp.num_fields
        if resp.is_error:
            status = "Error"
            mysql["error_code"] = resp.error_code
            msg = _s(resp.error_message)
            mysql["error_message"] = (_s(resp.sql_state) + ": " + msg) if resp.sql_state else msg
    ev = transaction_event(
        "mysql", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status,
        notes,
    )
    if req is not None:
        ev["method"] = method
        ev["query"] = query
        if req.params:
            ev["params"] = list(req.params)
        if cfg.send_request:
            ev["request"] = raw
    if resp is not None:
        if resp.tables:
            ev["path"] = ", ".join(resp.tables)
        if cfg.send_response:
            ev["response"] = dump_csv(resp.fields, resp.rows) if resp.fields else ""
    ev["mysql"] = mysql
    return ev
