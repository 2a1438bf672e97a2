"""PostgreSQL transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/pgsql/pgsql.go: publishTransaction``).

Root ``method`` (the statement's first word, upper-cased), ``query`` (the
statement text), ``status`` (``Error`` when the server answered with an
ErrorResponse, or when one side is missing), and ``pgsql.num_rows``,
``pgsql.num_fields`` and, on errors only, ``pgsql.error_code`` (SQLSTATE
text), ``pgsql.error_message``, ``pgsql.error_severity``. ``request`` (the
statement) and ``response`` (the kept rows as CSV, Packetbeat's
``DumpInCSVFormat``) only with ``send_request`` / ``send_response``.
"""
from __future__ import annotations

from worker.protos.glue import outcome
from worker.ecs import transaction_event
from worker.protos.pgsql.config import PgsqlConfig
from worker.protos.pgsql.parser import PgsqlMessage
from worker.protos.sqltext import TextCache, dump_csv

NOTE_NO_RESPONSE = "no response"
NOTE_UNMATCHED = "Unmatched response"


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def query_method(query: str) -> str:
    """The first word of a statement, upper-cased (Packetbeat's getQueryMethod,
    splitting on any white space rather than only on a blank)."""
    parts = query.split(None, 1)
    return parts[0].upper() if parts else ""


def _text_and_method(q: bytes) -> tuple[str, str]:
    query = _s(q)
    return query, query_method(query)


# statement bytes -> (text, method), made once per statement (bounded: sqltext.py)
_TEXTS = TextCache(_text_and_method)


def to_event(req: PgsqlMessage | None, resp: PgsqlMessage | None, cfg: PgsqlConfig, tcptuple) -> dict:
    """One event for a transaction; either side may be None (unmatched)."""
    if req is not None and resp is not None:
        # both sides (nearly every event): what ``outcome`` gives, without the call
        status = "Error" if resp.is_error else "OK"
        notes = req.notes + resp.notes
    else:
        status, notes = outcome(req, resp, resp is not None and resp.is_error, NOTE_NO_RESPONSE,
                                NOTE_UNMATCHED)
    ev = transaction_event(
        "pgsql", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status, notes)
    if req is not None:
        query, method = _TEXTS.get(req.query)
        ev["query"] = query
        if method:
            ev["method"] = method
        if cfg.send_request:
            ev["request"] = query
    if resp is not None:
        pg = {"num_rows": resp.num_rows, "num_fields": resp.num_fields}
        if resp.is_error:
            pg["error_code"] = _s(resp.error_code)
            pg["error_message"] = _s(resp.error_message)
            pg["error_severity"] = _s(resp.error_severity)
        ev["pgsql"] = pg
        if cfg.send_response:
            ev["response"] = dump_csv(resp.fields, resp.rows)
    return ev

