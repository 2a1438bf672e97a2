"""The memcache analyser's events against what the clients really did.

``pcaps/memcache_real.pcap`` was captured while real clients talked to a real
memcached (``gen/memcache_real.py``); ``memcache_real.truth.json`` lists, from
the client side, every transaction: command, keys, what came back. Each one
must come out as exactly one event with those facts, and nothing else may.
"""
from __future__ import annotations

import collections
import json
import pathlib

from coordinator.capture.pcapfile import open_capture
from worker.engine import Engine
from worker.protos.memcache import MemcachePlugin
from worker.protos.registry import Registry

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"

_TEXT_ERRORS = {"NOT_STORED": "Error", "NOT_FOUND": "Error", "ERROR": "Error",
                "CLIENT_ERROR": "Client Error", "SERVER_ERROR": "Server Error"}


def run_engine(pcap, port: int, **options) -> list[dict]:
    """Events of the memcache analyser alone over ``pcap``, in a worker engine."""
    reg = Registry()
    reg.register("memcache", MemcachePlugin)
    engine = Engine([dict({"type": "memcache", "ports": [port]}, **options)], reg)
    reader = open_capture(str(pcap))
    try:
        batch = []
        for rec in reader:
            batch.append(rec)
            if len(batch) == 128:
                engine.handle(batch)
                batch = []
        if batch:
            engine.handle(batch)
    finally:
        reader.close()
    engine.finish()
    assert not engine.counters["tcp.parse_errors"] and not engine.counters["udp.parse_errors"], engine.counters
    return engine.take_events()


def expected_status(t: dict) -> str:
    r = t["response"]
    if r is None:
        return "OK" if (t["noreply"] or t["quiet"] or t["command"] == "quit") else "Server Error"
    if t["protocol"] == "binary":
        code = r["status_code"]
        return "OK" if code == 0 else "Server Error" if code > 0x80 else "Error"
    return _TEXT_ERRORS.get(r["command"], "OK")


def check_events(events: list[dict], truth: dict) -> None:
    txs = truth["transactions"]
    assert len(events) == len(txs), "events %d != transactions %d" % (len(events), len(txs))
    by_client: dict = collections.defaultdict(list)
    for ev in events:           # stable sort: events of one segment keep their order
        by_client[(ev["network"]["transport"], ev["client"]["port"])].append(ev)
    for evs in by_client.values():
        evs.sort(key=lambda e: e["event"]["start"])
    want: dict = collections.defaultdict(list)
    for t in txs:
        want[(t["transport"], t["client_port"])].append(t)
    assert sorted(by_client) == sorted(want)
    for key, ts in want.items():
        for t, ev in zip(ts, by_client[key]):
            _check_one(t, ev)


def _check_one(t: dict, ev: dict) -> None:
    where = "%s %s %s %s" % (t["case"], t["command"], t["keys"], ev.get("memcache"))
    assert ev["type"] == "memcache" and ev["event"]["dataset"] == "memcache", where
    assert ev["server"]["ip"] == t["server_ip"] and ev["server"]["port"] == t["server_port"], where
    assert ev["client"]["ip"] == t["client_ip"], where
    assert ev["network"]["transport"] == t["transport"], where
    mc = ev["memcache"]
    assert mc["protocol_type"] == t["protocol"], where
    req = mc["request"]
    assert req["command"] == t["command"], where
    assert req.get("keys", []) == t["keys"], where
    assert ev["destination"]["bytes"] > 0, where          # request size (sic, Packetbeat)
    assert ev["event"]["action"] == "memcache." + req["type"].lower(), where
    if t["value_bytes"] is not None:
        assert req["bytes"] == t["value_bytes"] and req["count_values"] == 1, where
    if "delta" in t:
        assert req["delta"] == t["delta"], where
    if "verbosity" in t:
        assert req["verbosity"] == t["verbosity"], where
    if "raw_args" in t:
        assert req["raw_args"] == t["raw_args"], where
    if t["protocol"] == "binary":
        assert req["quiet"] == t["quiet"] and req["opcode_value"] == t["opcode"], where
        if t["opaque"] is not None:          # None: the client does not tell (pylibmc, bmemcached set)
            assert req["opaque"] == t["opaque"], where
    elif "noreply" in req:
        assert req["noreply"] == t["noreply"], where
    assert ev["status"] == expected_status(t), where
    r = t["response"]
    if r is None:
        assert "response" not in mc and "duration" not in ev["event"], where
        assert "bytes" not in ev["source"], where
        if t["quiet"]:
            assert "no response" in str(ev.get("error", {}).get("message")), where
        return
    resp = mc["response"]
    assert "error" not in ev, where
    assert ev["event"]["duration"] >= 0 and ev["source"]["bytes"] > 0, where
    if t["protocol"] == "binary":
        assert resp["status"] == r["status"] and resp["status_code"] == r["status_code"], where
        assert resp["opaque"] == (t["opaque"] if t["opaque"] is not None else req["opaque"]), where
        assert resp["opcode_value"] == t["opcode"], where
        assert ev["event"].get("outcome") == ("success" if r["status_code"] == 0 else None), where
    else:
        assert resp["command"] == r["command"], where
    if "error_msg" in r:
        assert resp["error_msg"] == r["error_msg"], where
    if "keys" in r:                          # binary GetK/GetKQ answers name their key
        assert resp.get("keys") == r["keys"], where
    if "count_values" in r:
        assert resp.get("count_values", 0) == r["count_values"], where
    elif t["protocol"] == "binary" and r["status_code"] == 0:       # error answers carry a text
        assert "count_values" not in resp, where
    if "value" in r:
        assert resp["value"] == r["value"], where
    if "stats" in r:
        assert len(resp["stats"]) == r["stats"] and r["stats"] > 10, where


def test_memcache_real_capture():
    truth = json.loads((PCAPS / "memcache_real.truth.json").read_text())
    events = run_engine(PCAPS / truth["pcap"], truth["server_port"])
    check_events(events, truth)


def test_memcache_real_capture_values_kept():
    """maxvalues -1 keeps every value, cut to maxbytespervalue (base64 in the event)."""
    import base64
    truth = json.loads((PCAPS / "memcache_real.truth.json").read_text())
    events = run_engine(PCAPS / truth["pcap"], truth["server_port"], maxvalues=-1, maxbytespervalue=4)
    check_events(events, truth)
    multi = [e for e in events if e["memcache"]["request"].get("keys") == ["alpha", "beta", "nope"]]
    assert len(multi) == 1
    values = [base64.b64decode(v) for v in multi[0]["memcache"]["response"]["values"]]
    assert values == [b"firs", b"22"]


def test_memcache_real_capture_quiet_multi_gets():
    """Quiet multi-gets of real binary clients (and over UDP, a run in one
    datagram): every get is one event, a hit
    with its own answer (one value, the answer's key is the request's), a miss
    without one; per run, the hits are what the client got back."""
    import base64
    truth = json.loads((PCAPS / "memcache_real.truth.json").read_text())
    events = run_engine(PCAPS / truth["pcap"], truth["server_port"], maxvalues=-1)
    cases = {"binary_bmemcached", "binary_pylibmc", "binary_quiet_runs", "udp_binary_multiget"}
    gets = [t for t in truth["transactions"] if t["case"] in cases and t["command"] == "get"]
    assert len(gets) == 21 and sum(1 for t in gets if t["response"] and t["response"]["status_code"] == 0) == 11
    quiet_gets = [e for e in events if e["memcache"]["protocol_type"] == "binary"
                  and e["memcache"]["request"].get("quiet") and e["memcache"]["request"]["command"] == "get"]
    by_key = collections.Counter()
    for e in quiet_gets:
        mc = e["memcache"]
        if "response" in mc:
            resp = mc["response"]
            assert resp["count_values"] == 1 and len(resp["values"]) == 1
            if "keys" in resp:
                assert resp["keys"] == mc["request"]["keys"]
            by_key[mc["request"]["keys"][0]] += len(base64.b64decode(resp["values"][0]))
        else:
            assert e["status"] == "OK" and e["error"]["message"] == "no response (quiet request)"
    assert by_key == {"mga": 5, "mgc": 7, "lma": 1, "lmc": 5, "lme": 5, "rqa": 14, "rqc": 2,
                      "uma": 5, "umc": 11,       # over UDP, one datagram
                      "q1": 3}                  # binary_tcp_quiet: SetQ q1 "one", then GetKQ q1
