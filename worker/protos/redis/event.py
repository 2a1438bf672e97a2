"""Redis transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/redis/redis.go: newTransaction``).

``method`` is the command in upper case, ``resource`` the key (the argument
after the command), ``query`` the command line as sent (elements joined by
spaces), ``redis.return_value`` or ``redis.error`` the rendered reply,
``event.action`` ``redis.<command>`` (lower case) and ``event.outcome``
``failure`` for an error reply. Packetbeat takes two words as the command
when the pair is in its table (``CONFIG GET``, ``CLIENT SETNAME``, ...) and
the first word alone is not; here the container commands Redis 7 added
(``CLIENT SETINFO``, ``CLUSTER INFO``, ``XINFO STREAM``...) are read the same
way, and any command is a command (Packetbeat only recognises the commands
of its table and takes anything else for a reply).
"""
from __future__ import annotations

from worker.protos.glue import outcome
from worker.ecs import transaction_event
from worker.protos.redis.config import RedisConfig
from worker.protos.redis.parser import RedisMessage

# Commands that take a subcommand: the two words are the method. This covers
# every two-word entry of Packetbeat's table (CLIENT GETNAME, CONFIG GET,
# DEBUG OBJECT, SCRIPT LOAD, ...) and the containers Redis added since.
# Packetbeat's table has OBJECT, PUBSUB and SLOWLOG as one-word commands:
# they stay so (``OBJECT ENCODING k``: method OBJECT, resource ENCODING).
_CONTAINERS = frozenset((
    b"ACL", b"CLIENT", b"CLUSTER", b"COMMAND", b"CONFIG", b"DEBUG", b"FUNCTION", b"LATENCY",
    b"MEMORY", b"MODULE", b"SCRIPT", b"XGROUP", b"XINFO",
))


def split_command(args: list[bytes]) -> tuple[bytes, bytes]:
    """(method as sent, resource) of a request's elements."""
    if not args:
        return b"", b""
    first = args[0]
    n = len(args)
    if n == 1:
        return first, b""
    if first.upper() in _CONTAINERS:
        return first + b" " + args[1], (args[2] if n > 2 else b"")
    return first, args[1]


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# Bounded caches of the few texts every event repeats (cleared when full).
_CONTAINER_OF: dict = {}    # first element as sent -> is a container command (takes a subcommand)
_METHODS: dict = {}         # method as sent -> (``method``, ``event.action``)
_CACHE_MAX = 4096


def _is_container(first: bytes) -> bool:
    hit = _CONTAINER_OF.get(first)
    if hit is None:
        if len(_CONTAINER_OF) >= _CACHE_MAX:
            _CONTAINER_OF.clear()
        hit = _CONTAINER_OF[first] = first.upper() in _CONTAINERS
    return hit


def _method(method: bytes) -> tuple:
    hit = _METHODS.get(method)
    if hit is None:
        method_s = _s(method).upper()
        if len(_METHODS) >= _CACHE_MAX:
            _METHODS.clear()
        hit = _METHODS[method] = (method_s, "redis." + method_s.lower())
    return hit


def to_event(req: RedisMessage | None, resp: RedisMessage | None, cfg: RedisConfig, tcptuple) -> dict:
    """One event for a transaction; either side may be None (unmatched)."""
    if req is not None and resp is not None:
        # glue.outcome for a pair, inline
        notes = req.notes + resp.notes if resp.notes else req.notes[:]
        status = "Error" if resp.is_error else "OK"
    else:
        status, notes = outcome(req, resp, resp is not None and resp.is_error)
    ev = transaction_event(
        "redis", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status,
        notes,
    )
    if req is not None:
        args = req.args
        n = len(args)
        resource = b""
        if n:
            method = args[0]
            if n > 1:
                if _is_container(method):
                    method = method + b" " + args[1]
                    if n > 2:
                        resource = args[2]
                else:
                    resource = args[1]
        else:
            method = b""
        method_s, action = _method(method)
        ev["event"]["action"] = action
        ev["method"] = method_s
        if resource:
            ev["resource"] = _s(resource)
        query = _s(req.message)
        ev["query"] = query
        if cfg.send_request:
            ev["request"] = query
    redis: dict = {}
    if resp is not None:
        value = _s(resp.message)
        if resp.is_error:
            redis["error"] = value
            ev["event"]["outcome"] = "failure"
        else:
            redis["return_value"] = value
        if cfg.send_response:
            ev["response"] = value
    ev["redis"] = redis
    return ev
