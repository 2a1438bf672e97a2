"""MySQL analyser events against what real clients did on a real MariaDB server.

``pcaps/mysql_real.pcap`` was captured by ``gen/mysql_real.py`` (tcpdump on
loopback) while PyMySQL and mysql-connector-python talked to MariaDB; its truth
file lists, per connection and in order, every command the analyser publishes
and what the client got back. Each must come out as exactly one event with
the same query, method, status, counts, error and parameters; nothing else
may come out (COM_PING, COM_STMT_CLOSE, the login are not transactions).
"""
from __future__ import annotations

import json
import pathlib

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"


def run_capture(tmp_path, pcap: pathlib.Path, port: int) -> list[dict]:
    proc, events = run_packetbeat(tmp_path, pcap, protocols=[
        {"type": "mysql", "ports": [port], "send_request": True, "send_response": True}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return events


def check_events(events: list[dict], truth: dict) -> None:
    txs = truth["transactions"]
    assert all(ev["type"] == "mysql" for ev in events)
    by_port: dict[int, list[dict]] = {}
    for ev in events:
        by_port.setdefault(ev["client"]["port"], []).append(ev)
    for evs in by_port.values():
        evs.sort(key=lambda e: e["event"]["start"])
    want: dict[int, list[dict]] = {}
    for t in txs:
        want.setdefault(t["client_port"], []).append(t)
    assert sorted(by_port) == sorted(want), (sorted(by_port), sorted(want))
    for port, ts in want.items():
        evs = by_port[port]
        assert [e["query"][:80] for e in evs] == [(t["query"] or evs[i]["query"])[:80] for i, t in enumerate(ts)]
        for t, ev in zip(ts, evs):
            _check_one(t, ev)
    assert len(events) == len(txs)


def _check_one(t: dict, ev: dict) -> None:
    where = "%s port %d %r" % (t["case"], t["client_port"], (t["query"] or "")[:60])
    assert ev["server"]["ip"] == t["server_ip"] and ev["server"]["port"] == t["server_port"], where
    assert ev["client"]["ip"] == t["client_ip"], where
    assert ev["network"]["transport"] == "tcp" and ev["event"]["dataset"] == "mysql", where
    assert ev["method"] == t["method"], where
    if t["query"] is None:
        # a huge query: its kept prefix, cut with a note
        assert ev["query"].startswith(t["query_prefix"]) and len(ev["query"]) < t["query_bytes"], where
        assert any(str(n).startswith("Query truncated") for n in _notes(ev)), where
    else:
        assert ev["query"] == t["query"], where
    assert ev["status"] == t["status"], (where, ev)
    assert ev["event"]["duration"] >= 0, where
    assert ev["source"]["bytes"] > 4 and ev["destination"]["bytes"] > 4, where
    my = ev["mysql"]
    for k in ("num_rows", "num_fields", "affected_rows", "insert_id"):
        if t[k] is not None:
            assert my[k] == t[k], (where, k, my[k], t[k])
    if t["status"] == "Error":
        assert my["error_code"] == t["error_code"], where
        assert my["error_message"].endswith(t["error_message"]), (where, my["error_message"])
        assert my["error_message"][5:7] == ": ", where        # SQLSTATE prefix
    else:
        assert "error_code" not in my and "error_message" not in my, where
        assert "error" not in ev or t["query"] is None, (where, ev.get("error"))
    if t["params"] is not None:
        assert ev["params"] == t["params"], where
    else:
        assert "params" not in ev, where
    if t["command"] == 3 and t["query"] is not None:
        assert ev["request"] == t["query"] or ev["request"].strip(" \r\n\t") == t["query"], where
    if t["status"] == "OK" and t["num_fields"] and t["command"] != 22:
        lines = ev["response"].splitlines()
        assert lines and lines[0].count(",") >= t["num_fields"] - 1, where   # header of column names
        # the text shows the rows of the first result set (max_rows of them)
        first_rows = 1 if "two result sets" in t["notes"] else t["num_rows"]
        assert 1 + min(first_rows, 10) == len(lines), where


def test_mysql_real_events_match_truth(tmp_path):
    truth = json.loads((PCAPS / "mysql_real.truth.json").read_text())
    port = truth["transactions"][0]["server_port"]
    check_events(run_capture(tmp_path, PCAPS / truth["pcap"], port), truth)


def _notes(ev: dict) -> list:
    msg = ev.get("error", {}).get("message", [])
    return msg if isinstance(msg, list) else [msg]
