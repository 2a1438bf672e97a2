"""Cassandra transaction -> event dict, with Packetbeat 8's fields
(``packetbeat/protos/cassandra/pub.go``).

- Common ECS fields from :func:`worker.ecs.transaction_event`; ``type`` and
  ``network.protocol`` ``cassandra``; no ``method``/``query`` root fields and
  no raw ``request``/``response`` text (Packetbeat writes none for Cassandra).
- ``cassandra.request``: the decoded request (``query`` for QUERY) plus
  ``headers`` (version, flags, stream, op, length) when
  ``send_request_header``; only with ``send_request``.
- ``cassandra.response``: the decoded response (``result``, ``error``,
  ``supported``, ``authentication``, ``event``, ``warnings``) plus
  ``headers`` when ``send_response_header``; only with ``send_response``.
- ``cassandra.no_request: true`` for a pushed EVENT.
- ``status``: ``OK`` for every pair, ERROR responses included, as Packetbeat
  (``Error`` for an ERROR response when ``packetbeat_quirks`` is off); a half
  transaction is ``Error`` with a note (Packetbeat drops those).
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.protos.glue import outcome
from worker.protos.cassandra.body import headers
from worker.protos.cassandra.config import CassandraConfig
from worker.protos.cassandra.parser import OP_ERROR, OP_EVENT, CassandraMessage


def to_event(req: CassandraMessage | None, resp: CassandraMessage | None,
             cfg: CassandraConfig, tcptuple) -> dict:
    """The event of a transaction (either side may be None). A message is
    published once: its ``data`` dict becomes the event's object."""
    if req is not None and resp is not None and not req.notes and not resp.notes:
        # the common case: a pair without notes
        status = "Error" if resp.opcode == OP_ERROR and not cfg.packetbeat_quirks else "OK"
        notes = None
    elif req is None and resp is not None and resp.opcode == OP_EVENT:
        status, notes = "OK", list(resp.notes)
    else:
        status, notes = outcome(req, resp, resp is not None and resp.opcode == OP_ERROR
                                and not cfg.packetbeat_quirks)
    ev = transaction_event(
        "cassandra", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status, notes,
    )
    cass: dict = {}
    if req is not None:
        if cfg.send_request:
            data = req.data if req.data is not None else {}
            if cfg.send_request_header:
                data["headers"] = headers(req)
            if data:
                cass["request"] = data
    else:
        cass["no_request"] = True
    if resp is not None and cfg.send_response:
        data = resp.data if resp.data is not None else {}
        if cfg.send_response_header:
            data["headers"] = headers(resp)
        if data:
            cass["response"] = data
    if cass:
        ev["cassandra"] = cass
    return ev
