"""MongoDB transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/mongodb/mongodb.go``: ``newTransaction``,
``reconstructQuery``, ``publishTransaction``).

- ``mongodb``: the request's fields, then the reply's (``cursorId``,
  ``startingFrom``, ``numberReturned``), then ``error``; status ``Error``
  when the reply carries one.
- ``method``, ``resource``; ``query`` is ``<resource>.<method>(<params>)``
  where params (the command without its name, JSON) are written only for
  ``insert`` (without ``documents``), ``update`` (without ``updates``) and
  ``findandmodify`` (Packetbeat's spelling, so never for ``findAndModify``),
  then ``.skip(n)`` / ``.limit(n)`` from ``numberToSkip`` / ``numberToReturn``.
- ``request`` (send_request): the same with every parameter.
- ``response`` (send_response): the reply's documents as JSON, one a line,
  at most ``max_docs`` (then ``[...]``), each cut at ``max_doc_length`` bytes
  (then `` ...``).

OP_MSG commands leave their envelope (``$db``, which is in the resource,
``lsid``, ``$clusterTime``, ``txnNumber``, read preference, API version ...)
out of the parameters: it says nothing of the operation and changes on every
session. Document sequences (kind 1) are parameters under their identifier.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.protos.glue import outcome
from worker.protos.mongodb.config import MongodbConfig
from worker.protos.mongodb.gojson import dumps as doc2str
from worker.protos.mongodb.parser import OP_MSG, DocSequence, MongodbMessage, ParseError, decode

ENVELOPE = frozenset((
    "$db", "lsid", "$clusterTime", "txnNumber", "autocommit", "startTransaction",
    "$readPreference", "readPreference", "apiVersion", "apiStrict", "apiDeprecationErrors",
    "$audit", "$client", "$configServerState", "$gleStats", "$topologyTime", "$oplogQueryData",
    "$replData", "$configTime",
))
# reconstructQuery(full=false): the parameters kept, by method
_QUERY_DROP = {"insert": "documents", "update": "updates", "findandmodify": "update"}
_NO_LIMIT = 0x7FFFFFFF


def _decoded(v):
    """A kind-1 sequence (raw documents) decoded; anything else as is."""
    if isinstance(v, DocSequence):
        out = []
        for raw in v:
            try:
                out.append(decode(raw))
            except ParseError:
                out.append(None)
        return out
    return v


def _params_text(req: MongodbMessage, full: bool) -> str:
    params = req.params
    if not params:
        return ""
    if full:
        drop = None
    else:
        drop = _QUERY_DROP.get(req.method)
        if drop is None:
            return ""
    envelope = req.opcode == OP_MSG
    d = {k: _decoded(v) for k, v in params.items()
         if k != drop and not (envelope and k in ENVELOPE)}
    return doc2str(d)


def reconstruct_query(req: MongodbMessage, ev: dict, full: bool) -> str:
    if full or req.method in _QUERY_DROP:
        q = "%s.%s(%s)" % (req.resource, req.method, _params_text(req, full))
    else:
        q = "%s.%s()" % (req.resource, req.method)
    if "numberToSkip" in ev:
        skip = ev["numberToSkip"]
        if isinstance(skip, int) and skip > 0:
            q += ".skip(%d)" % skip
    if "numberToReturn" in ev:
        limit = ev["numberToReturn"]
        if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
            q += ".limit(%d)" % limit
    return q


def response_text(docs: list, max_docs: int, max_len: int) -> str:
    lines = []
    for i, doc in enumerate(docs):
        if max_docs > 0 and i >= max_docs:
            lines.append("[...]")
            break
        if isinstance(doc, bytes):
            try:
                doc = decode(doc)
            except ParseError:
                continue                 # Packetbeat logs the document and leaves it out
        s = doc2str(doc)
        if max_len > 0 and len(s) > max_len:
            b = s.encode("utf-8")
            if len(b) > max_len:
                s = b[:max_len].decode("utf-8", "replace") + " ..."
        lines.append(s)
    return "\n".join(lines)


def to_event(req: MongodbMessage | None, resp: MongodbMessage | None, cfg: MongodbConfig, tcptuple) -> dict:
    """One event for a transaction; either side may be None (a request that
    expects no reply, or an unmatched one)."""
    if req is not None and resp is not None and not req.notes and not resp.notes:
        status, notes = ("Error" if resp.error else "OK"), None      # the common case
    elif req is not None and resp is None and not req.expects_response:
        status, notes = "OK", list(req.notes)
    else:
        status, notes = outcome(req, resp, bool(resp is not None and resp.error))
    ev = transaction_event(
        "mongodb", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status, notes,
    )
    mongodb = dict(req.event) if req is not None else {}
    if resp is not None:
        mongodb.update(resp.event)
        if resp.error:
            mongodb["error"] = resp.error
    ev["mongodb"] = mongodb
    if req is not None:
        ev["method"] = req.method
        ev["resource"] = req.resource
        ev["query"] = reconstruct_query(req, mongodb, False)
        if cfg.send_request:
            ev["request"] = reconstruct_query(req, mongodb, True)
    if cfg.send_response and resp is not None and resp.documents:
        ev["response"] = response_text(resp.documents, cfg.max_docs, cfg.max_doc_length)
    return ev
