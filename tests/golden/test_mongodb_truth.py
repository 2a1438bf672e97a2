"""The MongoDB analyser's events against what the MongoDB clients really did.

``pcaps/mongodb_real.pcap`` was captured by ``gen/mongodb_real.py`` while the
official driver pymongo (no compression, snappy, zlib, zstd) and a raw socket
speaking the legacy opcodes talked to ``gen/mongodb_responder.py``; its truth
file lists, from the client side, every command the driver sent with the
reply or failure it got (command monitoring), the driver's heartbeats and
sockets, and every legacy message the raw socket wrote with the reply it read.

Every command must come out as exactly one event per reply (an exhaust
getMore answers with several), per client port and in order, with the same
method, resource, status, error, cursor id and batch length; the handshakes
and heartbeats as ``ismaster``/``hello`` events; the legacy messages with
Packetbeat's fields and sizes; and nothing unmatched.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
PORT = 27117


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    truth = json.loads((PCAPS / "mongodb_real.truth.json").read_text())
    tmp = tmp_path_factory.mktemp("mongodb")
    proc, events = run_packetbeat(tmp, PCAPS / truth["pcap"],
                                  protocols=[{"type": "mongodb", "ports": [PORT], "send_request": True,
                                              "send_response": True}])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return truth, events


def _plain(v):
    """Extended JSON as Packetbeat writes the values: dates as their text."""
    if isinstance(v, dict):
        if set(v) == {"$date"}:
            return v["$date"].replace(".000Z", "Z")
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _by_port(events):
    out: dict[int, list[dict]] = {}
    for ev in sorted(events, key=lambda e: e["event"]["start"]):
        out.setdefault(ev["client"]["port"], []).append(ev)
    return out


def test_every_event_is_a_whole_mongodb_transaction(run):
    _truth, events = run
    assert events
    for ev in events:
        assert ev["type"] == "mongodb"
        assert "error" not in ev, ev.get("error")           # no unmatched / lost side
        assert ev["server"]["port"] == PORT
        assert ev["network"]["protocol"] == "mongodb"


def test_driver_commands(run):
    truth, events = run
    by_port = _by_port(events)
    cmds_by_port: dict[int, list[dict]] = {}
    for c in truth["commands"]:
        assert c["client_port"], c
        cmds_by_port.setdefault(c["client_port"], []).append(c)
    assert len(cmds_by_port) == truth["pymongo_clients"]
    for port, cmds in cmds_by_port.items():
        evs = [e for e in by_port[port] if e["method"] not in ("ismaster", "hello")]
        assert [e["method"] for e in evs] == [c["method"] for c in cmds]
        for ev, c in zip(evs, cmds):
            m = ev["mongodb"]
            assert ev["resource"] == c["resource"], (ev["query"], c)
            assert ev["query"].startswith(c["resource"] + "." + c["method"] + "(")
            assert ev["request"].startswith(c["resource"] + "." + c["method"] + "(")
            err = c["error"]
            if c["unacknowledged"]:
                # w=0: an OP_MSG with moreToCome, which the server answers with nothing
                assert ev["status"] == "OK" and "bytes" not in ev["destination"] and "error" not in m
                continue
            assert ev["status"] == ("OK" if err is None and c["ok"] else "Error"), (ev, c)
            if err is None:
                assert "error" not in m
            elif "errmsg" in err:
                assert m["error"] == err["errmsg"]
            else:
                codes = [w["code"] for w in json.loads(m["error"])]
                assert codes == err["writeErrors"]
            if "cursorId" in c:
                assert m["cursorId"] == c["cursorId"]
                assert m["numberReturned"] == c["numberReturned"]
            assert ev["destination"]["bytes"] > 16
            assert json.loads(ev["response"].splitlines()[0])["ok"] == (1 if c["ok"] else 0)
            assert ev["event"]["duration"] >= 0


def test_exhaust_replies_are_one_event_each(run):
    truth, events = run
    cont = [e for e in events if e["method"] == "getMore" and "bytes" not in e["source"]]
    # each client's exhaust cursor: 7 documents in batches of 2 -> find + 3 getMore replies,
    # the 2 after the first one continue it (no request bytes of their own)
    assert len(cont) == 2 * truth["pymongo_clients"]
    for e in cont:
        assert e["destination"]["bytes"] > 0 and e["status"] == "OK"


def test_handshakes_and_heartbeats(run):
    truth, events = run
    legacy_port = truth["legacy"][0]["client_port"]
    hs = [e for e in events if e["method"] in ("ismaster", "hello") and e["client"]["port"] != legacy_port]
    # one handshake per socket, and every heartbeat but each monitor's first (its handshake)
    assert len(hs) == truth["pymongo_sockets"] + truth["heartbeats"] - truth["pymongo_clients"]
    for e in hs:
        assert e["status"] == "OK" and e["resource"] == "admin.$cmd"
        assert json.loads(e["response"])["maxWireVersion"] == 21


def test_compressed_connections(run):
    """The same operations cost fewer request bytes when compressed: the
    analyser read OP_COMPRESSED (the insert of 7 documents is the largest)."""
    truth, events = run
    sizes = {}
    for c in truth["commands"]:
        if c["method"] == "insert" and c["error"] is None and not c["unacknowledged"]:
            ev = next(e for e in events if e["client"]["port"] == c["client_port"] and e["method"] == "insert")
            sizes[c["resource"].split(".")[0]] = ev["source"]["bytes"]
    assert set(sizes) == {"pbgen_none", "pbgen_snappy", "pbgen_zlib", "pbgen_zstd"}
    for comp in ("snappy", "zlib", "zstd"):
        assert sizes["pbgen_" + comp] < sizes["pbgen_none"]


def test_legacy_opcodes(run):
    truth, events = run
    legacy = truth["legacy"]
    evs = _by_port(events)[legacy[0]["client_port"]]
    assert [e["method"] for e in evs] == [t["method"] for t in legacy]
    for ev, t in zip(evs, legacy):
        m = ev["mongodb"]
        assert ev["resource"] == t["resource"]
        assert ev["source"]["bytes"] == t["bytes_in"]
        assert ev["status"] == "OK"
        for k in ("fullCollectionName", "numberToSkip", "numberToReturn", "selector", "update"):
            if k in t:
                assert m[k] == t[k], (k, m, t)
        if "reply" in t:
            assert ev["destination"]["bytes"] == t["bytes_out"]
            for k in ("cursorId", "startingFrom", "numberReturned"):
                assert m[k] == t["reply"][k]
        else:
            assert "bytes" not in ev["destination"]       # no reply to OP_INSERT/UPDATE/DELETE/KILL_CURSORS
        if t.get("reply_docs"):
            got = [json.loads(x) for x in ev["response"].splitlines()]
            assert got == [_plain(json.loads(x)) for x in t["reply_docs"]]
