"""The Redis analyser's events against what the Redis clients really did.

``pcaps/redis_real.pcap`` was captured by ``gen/redis_real.py`` while redis-py
(RESP2 and RESP3) and raw sockets talked to a real Redis server; its truth
file lists, per connection and in order, every command the clients sent and
the reply they read back. Every command must come out as exactly one event
(per client port, in order) with the same command line, method, key, status
and reply; pub/sub messages answer no command and must not come out.
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
CONTAINERS = {"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY",
              "MEMORY", "MODULE", "SCRIPT", "XGROUP", "XINFO"}


def _is_long(v) -> bool:
    return isinstance(v, dict) and "long" in v


def _long_matches(text: str, v: dict) -> bool:
    b = text.encode()
    return len(b) == v["long"] and hashlib.sha256(b).hexdigest() == v["sha256"]


def render(v) -> str:
    """A reply as the client read it (truth JSON), in Packetbeat's text form."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        raise AssertionError("booleans are recorded as {'bool': ...}")
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(render(x) for x in v) + "]"
    if "error" in v:
        return v["error"]
    if "bool" in v:
        return "true" if v["bool"] else "false"
    if "double" in v:
        return repr(v["double"])
    if "map" in v:
        return "{" + ", ".join(render(k) + ": " + render(x) for k, x in v["map"]) + "}"
    if "set" in v:
        return "[" + ", ".join(render(x) for x in v["set"]) + "]"
    raise AssertionError("cannot render %r" % (v,))


def check_query(query: str, args: list) -> None:
    pos = 0
    for i, a in enumerate(args):
        if i:
            assert query[pos] == " ", (query[:200], args[:3])
            pos += 1
        if _is_long(a):
            n = a["long"]                         # the generator's long values are ASCII
            assert _long_matches(query[pos:pos + n], a)
            pos += n
        else:
            assert query[pos:pos + len(a)] == a, (query[:200], a)
            pos += len(a)
    assert pos == len(query)


def check_events(events: list[dict], truth: dict) -> None:
    txs = truth["transactions"]
    assert all(ev["type"] == "redis" for ev in events)
    assert len(events) == len(txs), "events %d != transactions %d" % (len(events), len(txs))
    by_port: dict[int, list[dict]] = {}
    for ev in events:
        by_port.setdefault(ev["client"]["port"], []).append(ev)
    for evs in by_port.values():
        evs.sort(key=lambda e: e["event"]["start"])        # stable: pipelined ones keep their order
    for t in txs:
        evs = by_port.get(t["client_port"])
        assert evs, "no event left for %s %s" % (t["case"], t["args"][:2])
        ev = evs.pop(0)
        args = t["args"]
        assert ev["server"] == {"ip": t["server_ip"], "port": t["server_port"], "bytes": ev["server"]["bytes"]}
        assert ev["client"]["ip"] == t["client_ip"]
        check_query(ev["query"], args)
        cmd = args[0].upper()
        two = cmd in CONTAINERS and len(args) > 1
        method = cmd + " " + args[1].upper() if two else cmd
        assert ev["method"] == method
        assert ev["event"]["action"] == "redis." + method.lower()
        key = args[2 if two else 1] if len(args) > (2 if two else 1) else None
        if key is None:
            assert "resource" not in ev
        elif _is_long(key):
            assert _long_matches(ev["resource"], key)
        else:
            assert ev["resource"] == key
        reply = t["reply"]
        assert ev["event"]["duration"] >= 0 and ev["source"]["bytes"] > 0 and ev["destination"]["bytes"] > 0
        if isinstance(reply, dict) and "error" in reply:
            assert ev["status"] == "Error" and ev["event"]["outcome"] == "failure"
            # redis-py drops the generic "ERR " prefix of an error reply
            assert ev["redis"]["error"] in (reply["error"], "ERR " + reply["error"]), ev["redis"]
            continue
        assert ev["status"] == "OK" and "error" not in ev, ev
        got = ev["redis"]["return_value"]
        if _is_long(reply):
            assert _long_matches(got, reply)
        elif isinstance(reply, dict) and "double" in reply:
            assert float(got) == reply["double"]
        else:
            assert got == render(reply), (t["case"], args[:3])
    left = {p: len(v) for p, v in by_port.items() if v}
    assert not left, "events with no transaction: %s" % left


def test_redis_real_truth(tmp_path):
    truth = json.loads((PCAPS / "redis_real.truth.json").read_text())
    proc, events = run_packetbeat(tmp_path, PCAPS / "redis_real.pcap",
                                  protocols=[{"type": "redis", "ports": [6379]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth)
    # the pub/sub messages the subscribers received answered no command
    assert truth["pushes"]
    assert not any(ev["redis"].get("return_value", "").startswith(("[message, ", "[pmessage, "))
                   for ev in events)


@pytest.mark.parametrize("opts", [{"send_request": True, "send_response": True}])
def test_redis_real_send_options(tmp_path, opts):
    proc, events = run_packetbeat(tmp_path, PCAPS / "redis_real.pcap",
                                  protocols=[{"type": "redis", "ports": [6379], **opts}], workers=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert events and all(ev["request"] == ev["query"] for ev in events)
    assert all(ev["response"] == ev["redis"].get("return_value", ev["redis"].get("error")) for ev in events)
