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

NOTE_NO_RESPONSE = "no response"
NOTE_UNMATCHED = "Unmatched response"

# statement bytes -> (text, method): the same statements come again and again;
# bounded (cleared when full), only short ones kept
_TEXTS: dict = {}
_TEXTS_MAX = 4096
_TEXT_MAX = 1024


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def query_method(query: str) -> str:
    """The first word of a statement, upper-cased (Packetbeat's getQueryMethod,
    splitting on any white space rather than only on a blank)."""
    parts = query.split(None, 1)
    return parts[0].upper() if parts else ""


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
        q = req.query
        known = _TEXTS.get(q)
        if known is None:
            query = _s(q)
            known = (query, query_method(query))
            if len(q) <= _TEXT_MAX:
                if len(_TEXTS) >= _TEXTS_MAX:
                    _TEXTS.clear()
                _TEXTS[q] = known
        query, method = known
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


def dump_csv(fields: list[bytes], rows: list[list[bytes]]) -> str:
    """Column names, then the kept rows, as Go's ``encoding/csv`` writes them
    (Packetbeat's ``DumpInCSVFormat``): new lines in names become ``\\n``,
    CR and LF in values ``\\r`` / ``\\n``; a field is quoted when it holds a
    comma, a quote or a line break, or starts with white space."""
    lines: list[str] = []
    if fields:
        lines.append(",".join(_csv_field(_s(f).replace("\n", "\\n")) for f in fields))
    for row in rows:
        lines.append(",".join(_csv_field(_s(v).replace("\n", "\\n").replace("\r", "\\r")) for v in row))
    return "".join(line + "\n" for line in lines)


def _csv_field(s: str) -> str:
    if not s:
        return s
    if s == "\\." or s[0].isspace() or '"' in s or "," in s or "\r" in s or "\n" in s:
        return '"' + s.replace('"', '""') + '"'
    return s
