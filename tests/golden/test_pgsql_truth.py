"""The PostgreSQL analyser's events against what psycopg really did.

``pcaps/pgsql_real.pcap`` was captured while ``gen/pgsql_real.py`` drove
psycopg 3 and asyncpg against PostgreSQL 15; ``pcaps/pgsql_real.truth.json`` is what the
client sent and got back, one record per statement, in order per connection.
Every record must come out as exactly one event with the same endpoints,
statement, status, error fields, column and row counts, and (send_response)
the same rows as CSV, cut by max_rows / max_row_length as Packetbeat cuts
them; nothing else may come out.
"""
from __future__ import annotations

import csv
import io
import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"

CONFIGS = {
    "defaults": {"send_request": True, "send_response": True},
    "small_limits": {"send_response": True, "max_rows": 2, "max_row_length": 5},
    "no_raw": {},
}


def expected_csv(rec: dict, max_rows: int, max_row_length: int) -> list[list[str]]:
    """The response rows Packetbeat's rules keep: the first max_rows rows; in
    each, column texts while fewer than max_row_length bytes were taken, the
    last one cut; NULL as an empty field."""
    out: list[list[str]] = []
    if rec["columns"]:
        out.append([c.replace("\n", "\\n") for c in rec["columns"]])
    for row in rec["rows"][:max_rows]:
        kept: list[str] = []
        used = 0
        for v in row:
            b = (v or "").encode()
            if used >= max_row_length:
                break
            b = b[:max_row_length - used]
            kept.append(b.decode("utf-8", "replace").replace("\n", "\\n").replace("\r", "\\r"))
            used += len(b)
        out.append(kept)
    return out


def _notes(ev: dict) -> list[str]:
    msg = ev.get("error", {}).get("message")
    if msg is None:
        return []
    return msg if isinstance(msg, list) else [msg]


def check_events(events: list[dict], truth: dict, cfg: dict) -> None:
    max_rows = cfg.get("max_rows", 10)
    max_row_length = cfg.get("max_row_length", 1024)
    recs = truth["transactions"]
    assert len(events) == len(recs), "events %d != truth records %d" % (len(events), len(recs))
    by_port: dict[int, list[dict]] = {}
    for ev in events:           # one connection's events keep their order (one worker)
        by_port.setdefault(ev["client"]["port"], []).append(ev)
    for rec in recs:
        evs = by_port.get(rec["client_port"])
        assert evs, "no event left for %s %r (port %d)" % (rec["case"], rec["query"], rec["client_port"])
        ev = evs.pop(0)
        where = "%s %r: %s" % (rec["case"], rec["query"], json.dumps(ev)[:600])
        assert ev["type"] == "pgsql" and ev["network"]["transport"] == "tcp", where
        assert ev["client"]["ip"] == rec["client_ip"] and ev["server"]["ip"] == rec["server_ip"], where
        assert ev["server"]["port"] == rec["server_port"], where
        if rec["query"] is None:                # answer without a statement: the rejected login
            assert ev["status"] == "Error" and "Unmatched response" in _notes(ev), where
            assert "query" not in ev and "method" not in ev, where
        else:
            assert ev["query"] == rec["query"], where
            first = rec["query"].split(None, 1)
            assert ev.get("method") == (first[0].upper() if first else None), where
            assert ev["source"]["bytes"] > len(rec["query"].encode()), where
            assert ev.get("request") == (rec["query"] if cfg.get("send_request") else None), where
        if rec["status"] is None:               # never executed (an earlier statement failed)
            assert ev["status"] == "Error" and "no response" in _notes(ev), where
            assert "pgsql" not in ev and "duration" not in ev["event"] and "response" not in ev, where
            continue
        assert ev["status"] == rec["status"], where
        assert not _notes(ev) or rec["query"] is None, where
        pg = ev["pgsql"]
        assert pg["num_rows"] == rec["num_rows"], where
        assert pg["num_fields"] == rec["num_fields"], where
        if rec["status"] == "Error":
            assert pg["error_code"] == rec["error_code"], where
            assert pg["error_severity"] == rec["error_severity"], where
            assert pg["error_message"] == rec["error_message"], where
        else:
            assert "error_code" not in pg and "error_message" not in pg, where
        assert ev["destination"]["bytes"] > 0, where
        if rec["query"] is not None:
            assert ev["event"]["duration"] >= 0, where
            assert ev["event"]["start"] <= ev["event"]["end"], where
        if cfg.get("send_response") and rec.get("binary_results"):
            # asyncpg asks for binary results of a statement described earlier: the
            # response has rows but no RowDescription of its own (values are not decoded)
            got = list(csv.reader(io.StringIO(ev["response"])))
            assert len(got) == min(rec["num_rows"], max_rows), where
        elif cfg.get("send_response"):
            got = list(csv.reader(io.StringIO(ev["response"])))
            assert got == expected_csv(rec, max_rows, max_row_length), where
        else:
            assert "response" not in ev, where
    assert all(not v for v in by_port.values()), "events with no truth record: %s" % (
        [e.get("query") for v in by_port.values() for e in v])


@pytest.mark.parametrize("cfg_name", sorted(CONFIGS))
def test_events_match_truth(cfg_name, tmp_path):
    truth = json.loads((PCAPS / "pgsql_real.truth.json").read_text())
    cfg = CONFIGS[cfg_name]
    proc, events = run_packetbeat(tmp_path, PCAPS / truth["pcap"],
                                  protocols=[dict({"type": "pgsql", "ports": [5432]}, **cfg)], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth, cfg)


def test_truth_covers_the_protocol():
    """The committed capture holds what the analyser claims to handle."""
    truth = json.loads((PCAPS / "pgsql_real.truth.json").read_text())
    cases = {r["case"] for r in truth["transactions"]}
    for case in ("simple_select", "simple_error", "notice", "multi_statement", "multi_statement_error",
                 "empty_query", "copy_in", "copy_out", "extended", "extended_error", "prepared",
                 "prepared_error", "executemany", "transaction", "login_rejected", "many_rows", "long_row",
                 "asyncpg_prepared", "asyncpg_statement", "asyncpg_statement_error", "asyncpg_executemany"):
        assert case in cases, case
    assert any("0 packets dropped" in line for line in truth["tcpdump"])
