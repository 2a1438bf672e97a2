"""The Cassandra analyser's events against what the DataStax Python driver did.

``pcaps/cassandra_real.pcap`` was captured by ``gen/cassandra_real.py``: the
real driver (protocol v3, v4 with lz4 and snappy, v5 with lz4-compressed and
plain segments) against ``gen/cql_responder.py``, a wire-level CQL responder
(no Cassandra server can be installed here). The truth file lists every
request the driver sent (port, stream, opcode, frame flags and length, query)
and what it decoded of the response; pushed events apart.

With ``packetbeat_quirks: false`` (pairing by stream, real row counts) every
request must come out as one event with the same headers, query, result,
error and warnings; with the default (Packetbeat's arrival-order pairing,
which equals stream pairing here as the responder answers in order) the same,
except ``num_rows`` (Packetbeat's offset: checked against the value it reads).
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
HEAD_FLAGS = {0: "Default", 1: "Compress", 2: "Tracing", 4: "CustomPayload", 8: "Warning"}
ROW_FLAGS = {1: "GlobalTableSpec", 2: "HasMorePages", 4: "NoMetaData"}


def _flags(f: int) -> str:
    return HEAD_FLAGS.get(f, "UnknownFlag_%d" % f)


def _truth():
    return json.loads((PCAPS / "cassandra_real.truth.json").read_text())


def _run(tmp_path, quirks: bool):
    truth = _truth()
    proto = {"type": "cassandra", "ports": truth["ports"], "packetbeat_quirks": quirks}
    proc, events = run_packetbeat(tmp_path, PCAPS / "cassandra_real.pcap", protocols=[proto])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return truth, events


def _check_headers(h: dict, version: int, op: str, flags: int, length: int, stream: int) -> None:
    assert h == {"version": str(version), "op": op, "flags": _flags(flags), "length": length,
                 "stream": stream}, (h, op, flags, length, stream)


def check_events(events: list[dict], truth: dict, quirks: bool) -> None:
    assert all(ev["type"] == "cassandra" for ev in events)
    pushed = [ev for ev in events if ev["cassandra"].get("no_request")]
    txns = [ev for ev in events if not ev["cassandra"].get("no_request")]
    assert len(txns) == len(truth["transactions"]), (len(txns), len(truth["transactions"]))
    by_key = {}
    for ev in txns:
        key = (ev["client"]["port"], ev["cassandra"]["request"]["headers"]["stream"], ev["event"]["start"])
        by_key.setdefault(key[:2], []).append(ev)
    for lst in by_key.values():
        lst.sort(key=lambda e: e["event"]["start"])
    for t in truth["transactions"]:
        ev = by_key[(t["port"], t["stream"])].pop(0)
        rq, rs = ev["cassandra"]["request"], ev["cassandra"]["response"]
        r = t["response"]
        assert ev["status"] == ("Error" if r["op"] == "ERROR" and not quirks else "OK"), (t, ev["status"])
        assert "error" not in ev, ev.get("error")
        assert ev["source"]["bytes"] == t["length"] + 9 and ev["destination"]["bytes"] == r["length"] + 9
        _check_headers(rq["headers"], t["version"], t["op"], t["flags"], t["length"], t["stream"])
        _check_headers(rs["headers"], t["version"], r["op"], r["flags"], r["length"], r["stream"])
        if "query" in t:
            assert rq["query"] == t["query"]
        else:
            assert "query" not in rq
        if r.get("warnings"):
            assert rs["warnings"] == r["warnings"]
        else:
            assert "warnings" not in rs
        if r["op"] == "ERROR":
            err = rs["error"]
            assert (err["code"], err["msg"]) == (r["code"], r["msg"])
            info = r.get("info") or {}
            if r["code"] == 0x1000:
                assert err["details"] == {"read_consistency": "THREE", "required": info["required_replicas"],
                                          "alive": info["alive_replicas"]}
            if r["code"] == 0x2400:
                assert err["details"] == {"keyspace": info["keyspace"], "table": info["table"]}
        elif r["op"] == "SUPPORTED":
            assert rs["supported"] == r["supported"]
        elif r["op"] == "AUTHENTICATE":
            assert rs["authentication"] == {"class": r["authenticator"]}
        elif r["op"] == "AUTH_SUCCESS":
            assert rs["authentication"] == {"data": '""'}
        elif r["op"] == "RESULT":
            res = rs["result"]
            assert res["type"] == r["kind"]
            if r["kind"] == "rows":
                rows = res["rows"]
                meta = rows["meta"]
                if "keyspace" in r:
                    assert (meta["keyspace"], meta["table"], meta["col_count"]) == \
                        (r["keyspace"], r["table"], r["col_count"])
                    flags = 1 | (2 if "paging_state" in r else 0)
                else:                               # EXECUTE with skip_metadata
                    assert "keyspace" not in meta
                    flags = 4 | (2 if "paging_state" in r else 0)
                assert meta["flags"] == ROW_FLAGS.get(flags, "FLAG_%d" % flags)
                if "paging_state" in r:
                    assert meta["paging_state"] == r["paging_state"]
                if not quirks:                      # quirks: test_quirk_num_rows_is_packetbeats_offset
                    assert rows["num_rows"] == r["num_rows"]
            elif r["kind"] == "set_keyspace":
                assert res["keyspace"] == r["keyspace"]
            elif r["kind"] == "schemaChanged":
                sc, exp = res["schema_change"], r["schema_change"]
                assert sc["change"] == exp["change_type"] and sc["target"] == exp["target_type"]
                assert sc["keyspace"] == exp["keyspace"]
                if "table" in exp:
                    assert sc["object"] == exp["table"]
            elif r["kind"] == "prepared":
                assert res["prepared"]["prepared_id"] == r["prepared_id"]
                assert res["prepared"]["req_meta"]["flags"] == "GlobalTableSpec"
    assert not any(by_key.values())
    assert len(pushed) == len(truth["events"])
    got = sorted((ev["client"]["port"], ev["cassandra"]["response"]["event"]["schema_change"]["keyspace"],
                  ev["cassandra"]["response"]["event"]["schema_change"].get("object", ""),
                  ev["cassandra"]["response"]["headers"]["stream"]) for ev in pushed)
    want = sorted((e["port"], e["args"]["keyspace"], e["args"].get("table", ""), 65535) for e in truth["events"])
    assert got == want
    assert {t["version"] for t in truth["transactions"]} == {3, 4, 5}
    # v5 envelopes larger than one segment, both ways
    big = 128 * 1024
    assert any(t["version"] == 5 and t["length"] > big for t in truth["transactions"])
    assert any(t["version"] == 5 and t["response"]["length"] > big for t in truth["transactions"])


def _first_col(t: dict) -> str:
    q = t.get("query") or ""
    low = q.lower()
    if low.startswith("select ") and " from " in low:
        cols = q[7:low.index(" from ")].strip()
        if cols != "*":
            return cols.split(",")[0].strip()
    return ""


@pytest.mark.parametrize("quirks", [False, True], ids=["by-stream", "packetbeat-quirks"])
def test_cassandra_real_capture(tmp_path, quirks):
    truth, events = _run(tmp_path, quirks)
    check_events(events, truth, quirks)


def test_quirk_num_rows_is_packetbeats_offset(tmp_path):
    """Packetbeat's num_rows is the [int] at the first column spec: the
    [string] length of the first column's name and its first two bytes."""
    truth, events = _run(tmp_path, True)
    seen = 0
    for ev in events:
        rq = ev["cassandra"].get("request", {})
        q = rq.get("query", "")
        rows = ev["cassandra"].get("response", {}).get("result", {}).get("rows")
        if not rows or rows["meta"]["flags"] != "GlobalTableSpec":
            continue
        first = _first_col({"query": q})
        if first and first.isidentifier():
            want = (len(first) << 16) | (ord(first[0]) << 8) | ord(first[1] if len(first) > 1 else "\0")
            if len(first) > 1:
                assert rows["num_rows"] == want, (q, rows)
                seen += 1
    assert seen >= 5
