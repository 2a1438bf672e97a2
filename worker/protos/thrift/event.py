"""Thrift transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/thrift/thrift.go: publishTransactions``).

- ``method``: the called method; ``path``: its service: the ``Service:``
  prefix of a call sent through a multiplexing protocol (taken off the method
  name), else the IDL service that declares the method, else empty; ``query``: method and
  params, ``add(1: 1, 2: 1)``.
- ``thrift.params``: the arguments struct, ``(1: 1, 2: 1)``, field ids named
  from the IDL when the method is known (``(num1: 1, num2: 1)``);
  ``thrift.service`` when known.
- ``thrift.return_value``: field 0 of the reply (empty for a void method,
  absent without a reply); ``thrift.exceptions``: the reply's struct when its
  first field is a declared exception (names from the IDL's ``throws``), or
  the TApplicationException of an EXCEPTION message (named ``message`` /
  ``type`` when an IDL is loaded); ``status`` is ``Error`` then.
- ``request`` / ``response`` (send_request / send_response): the query, and
  the return value or ``Exceptions: <exceptions>``.
- A oneway call is a complete transaction without a response (status OK).
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.protos.glue import outcome
from worker.protos.thrift.parser import EXCEPTION, ThriftMessage, format_struct

APP_EXCEPTION_NAMES = {1: "message", 2: "type"}


def split_service(method: str) -> tuple[str, str]:
    """``(service, method)`` of a name as sent; ``Service:method`` is the
    multiplexing protocol's form."""
    svc, sep, name = method.partition(":")
    if sep and svc and name:
        return svc, name
    return "", method


def _reply(resp: ThriftMessage, limit: int, names) -> tuple[str, str, bool]:
    """(return value, exceptions, has exception) of a reply."""
    fields = resp.fields
    if resp.mtype == EXCEPTION:
        text = ""
        if resp.decoded and fields and fields[0][1] is not None:
            text = format_struct(fields, resp.nfields, limit, APP_EXCEPTION_NAMES if names is not None else None)
        return "", text, True
    if not fields:
        return "", "", False
    fid, value = fields[0]
    if fid == 0:
        return value or "", "", False
    if value is None:
        return "", "", True
    exc_names = names.exceptions if names is not None and names is not False else None
    return "", format_struct(fields, resp.nfields, limit, exc_names), True


def to_event(req: ThriftMessage | None, resp: ThriftMessage | None, cfg, idl, tuple_) -> dict:
    """One event for a transaction; either side may be None. ``tuple_`` is
    the connection with the caller as source. ``idl`` is an
    :class:`~worker.protos.thrift.idl.Idl` or None."""
    limit = cfg.collection_max_size
    method_msg = req if req is not None else resp
    service, method = split_service(method_msg.method) if method_msg is not None else ("", "")
    idl_method = idl.find(method, service) if idl is not None else None
    if idl_method is not None and not service:
        service = idl_method.service
    names = idl_method if idl_method is not None else (False if idl is not None else None)
    return_value = exceptions = ""
    has_exc = False
    if resp is not None:
        return_value, exceptions, has_exc = _reply(resp, limit, names)
    if req is not None and resp is not None and not req.notes and not resp.notes:
        status, notes = ("Error" if has_exc else "OK"), None     # the common case
    elif req is not None and resp is None and req.oneway:
        status, notes = "OK", list(req.notes)
    else:
        status, notes = outcome(req, resp, has_exc)
    ev = transaction_event(
        "thrift", tuple_,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status, notes,
    )
    thrift: dict = {}
    if req is not None:
        if req.decoded:
            params = format_struct(req.fields, req.nfields, limit,
                                   idl_method.params if idl_method is not None else None)
        else:
            params = ""
        query = method + params
        ev["method"] = method
        ev["path"] = service
        ev["query"] = query
        thrift["params"] = params
        if service:
            thrift["service"] = service
        if cfg.send_request:
            ev["request"] = query
    elif method:
        ev["method"] = method
        if service:
            ev["path"] = service
            thrift["service"] = service
    if resp is not None:
        thrift["return_value"] = return_value
        if exceptions:
            thrift["exceptions"] = exceptions
        if cfg.send_response:
            ev["response"] = ("Exceptions: " + exceptions) if has_exc else return_value
    ev["thrift"] = thrift
    return ev
