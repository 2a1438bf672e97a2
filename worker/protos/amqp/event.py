"""AMQP transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/amqp/amqp.go: publishTransaction``).

- ``method`` and ``event.action`` (``amqp.<method>``): the request's method
  (``queue.declare``, ``basic.publish``...); ``basic.get`` answered by
  ``basic.get-empty`` is ``basic.get-empty``.
- ``amqp``: the request's arguments merged with the response's (a
  ``queue.declare-ok`` adds ``message-count`` / ``consumer-count`` and the
  server-chosen queue name), plus the content header properties of a message;
  ``user.id`` copies ``amqp.user-id``.
- ``status``: ``Error`` for basic.return, basic.reject, a connection.close or
  channel.close whose reply code is 300 or more, and a request that got no
  answer; ``OK`` otherwise.
- Endpoints: ``source``/``client`` is the side that sent the request (the
  broker for a close or a publisher-confirm ack it sends); messages
  (publish, deliver, return, get-ok) keep the client as source, as Packetbeat.
- Bytes: a method is counted as its frame (``source.bytes`` request,
  ``destination.bytes`` response); a message as its body size
  (``source.bytes`` for basic.publish, ``destination.bytes`` for the others).
- ``request`` (send_request): ``<method> <detail>`` (``queue.declare hello``),
  or the body of a basic.publish; ``response`` (send_response): ``OK``, or the
  body of a delivered / returned / got message. Bodies are text when the
  content type names text or JSON and no content encoding is set, else their
  octets in decimal; a body cut at ``max_body_length`` ends with `` [...]``.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.plugin import TcpTuple
from worker.protos.amqp.config import AmqpConfig
from worker.protos.amqp.parser import CONTENT, METHODS, REQUEST, AmqpMessage
from worker.protos.amqp.trans import is_close_error
from worker.protos.glue import NOTE_NO_RESPONSE, NOTE_UNMATCHED_RESPONSE

_ERROR_METHODS = frozenset(("basic.return", "basic.reject"))
_GIVEN_UP = ("Unmatched", "no response", "Close-ok method not received")


def _swap(t: TcpTuple) -> TcpTuple:
    return TcpTuple(t.dst_ip, t.dst_port, t.src_ip, t.src_port, t.conn_id)


def body_text(m: AmqpMessage) -> str:
    body = m.body
    f = m.fields
    ctype = f.get("content-type")
    if not f.get("content-encoding") and isinstance(ctype, str) and ("text" in ctype or "json" in ctype):
        s = body.decode("utf-8", "replace")
    else:
        s = " ".join(map(str, body))
    if len(body) < m.body_size:
        s += " [...]"
    return s


def _given_up(notes: list) -> bool:
    """A note already says why the request got no answer."""
    for n in notes:
        if n.startswith(_GIVEN_UP):
            return True
    return False


def _status(method: str, m: AmqpMessage) -> str:
    return "Error" if method in _ERROR_METHODS or is_close_error(m) else "OK"


def _finish(ev: dict, method: str, amqp: dict) -> dict:
    ev["event"]["action"] = "amqp." + method
    ev["method"] = method
    ev["amqp"] = amqp
    uid = amqp.get("user-id")
    if uid is not None:
        ev["user"] = {"id": uid}
    return ev


def content_event(m: AmqpMessage, cfg: AmqpConfig, tcptuple: TcpTuple) -> dict:
    """A message on its own: basic.publish (client -> broker), basic.deliver,
    basic.return, or a basic.get-ok whose basic.get was not seen."""
    method = "basic.get" if m.method == "basic.get-ok" else m.method
    publish = m.direction == 0
    ev = transaction_event("amqp", tcptuple, m.ts, None,
                           m.body_size if publish else 0, 0 if publish else m.body_size,
                           _status(method, m), m.notes)
    if publish:
        if cfg.send_request:
            ev["request"] = body_text(m)
    elif cfg.send_response:
        ev["response"] = body_text(m)
    return _finish(ev, method, dict(m.fields))


def to_event(req: AmqpMessage | None, resp: AmqpMessage | None, cfg: AmqpConfig,
             tcptuple: TcpTuple) -> dict:
    """A method transaction (either side may be None)."""
    notes: list[str] = []
    if req is not None:
        method = req.method
        amqp = dict(req.fields)
        notes.extend(req.notes)
        status = _status(method, req)
        if resp is None:
            if req.kind == REQUEST:
                status = "Error"
                if not _given_up(req.notes):
                    notes.append(NOTE_NO_RESPONSE)
        elif resp.method == "basic.get-empty":
            method = resp.method
        if req.direction:
            tcptuple = _swap(tcptuple)
    else:
        spec = METHODS.get(resp.answers)
        method = spec[0] if spec is not None else resp.method
        amqp = {}
        status = "Error"
        if resp.direction == 0:
            tcptuple = _swap(tcptuple)
    if resp is not None:
        amqp.update(resp.fields)
        notes.extend(resp.notes)
        if req is None:
            notes.append(NOTE_UNMATCHED_RESPONSE)
    content = resp is not None and resp.kind == CONTENT
    ev = transaction_event(
        "amqp", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        (resp.body_size if content else resp.size) if resp is not None else 0,
        status, notes)
    if cfg.send_request and req is not None:
        ev["request"] = req.method + " " + req.request if req.request else req.method
    if cfg.send_response and resp is not None:
        ev["response"] = body_text(resp) if content else "OK"
    return _finish(ev, method, amqp)
