"""The analyser's events against what the clients and servers really did.

Each capture under pcaps/ has a truth file written by its generator from the
client side (tests/golden/pcaps/README.md). Every transaction in it must come
out as exactly one event with the same endpoints, request line, status code
and timing, and nothing else may come out.
"""
from __future__ import annotations

import json
import pathlib
from urllib.parse import parse_qsl

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
NAMES = ["http_real", "http_synth", "http_synth_sll", "http_sample"]


def key_of_truth(t):
    return (t["client_ip"], t["client_port"], t["method"], t["path"], t["status"])


def key_of_event(ev):
    http = ev.get("http", {})
    return (ev["client"]["ip"], ev["client"]["port"], ev.get("method"),
            ev.get("url", {}).get("path") if ev.get("method") else None,
            http.get("response", {}).get("status_code"))


@pytest.mark.parametrize("name", NAMES)
def test_events_match_truth(name, tmp_path):
    truth = json.loads((PCAPS / ("%s.truth.json" % name)).read_text())
    ports = sorted({t["server_port"] for t in truth["transactions"]})
    proc, events = run_packetbeat(tmp_path, PCAPS / ("%s.pcap" % name),
                                  protocols=[{"type": "http", "ports": ports}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    txs = truth["transactions"]
    assert len(events) == len(txs), "events %d != transactions %d" % (len(events), len(txs))
    by_key: dict = {}
    for ev in events:
        by_key.setdefault(key_of_event(ev), []).append(ev)
    for t in txs:
        cands = by_key.get(key_of_truth(t))
        assert cands, "no event for %s %s" % (t["case"], key_of_truth(t))
        ev = cands.pop(0)
        assert ev["server"]["ip"] == t["server_ip"] and ev["server"]["port"] == t["server_port"]
        assert ev["type"] == "http" and ev["network"]["transport"] == "tcp"
        if t["method"] is None:
            assert ev["status"] == "Error" and "Unmatched response" in str(ev["error"]["message"])
            continue
        assert ev["query"] == "%s %s" % (t["method"], t["path"])
        if t["query"]:
            # url.query also carries the fields of a url-encoded form body (as Packetbeat 8.x)
            got = parse_qsl(ev["url"]["query"], keep_blank_values=True)
            want = parse_qsl(t["query"], keep_blank_values=True)
            assert all(p in got for p in want), (got, want)
            if ev["method"] == "GET":
                assert sorted(got) == sorted(want)
        if t["status"] is None:
            assert ev["status"] == "Error" and "Unmatched request" in str(ev["error"]["message"])
            assert "duration" not in ev["event"]
            continue
        assert ev["status"] == ("Error" if t["status"] >= 400 else "OK")
        if t["request_ts_us"] is not None:
            assert ev["event"]["start"].startswith(_iso_us(t["request_ts_us"]))
            assert ev["event"]["duration"] == (t["response_ts_us"] - t["request_ts_us"]) * 1000
        assert ev["event"]["duration"] >= 0
        if t["request_body_bytes"]:
            assert ev["source"]["bytes"] > t["request_body_bytes"]
        if t["response_body_bytes"] and not any("missing" in n for n in t["notes"]):
            assert ev["destination"]["bytes"] > t["response_body_bytes"]
        lost = any("missing" in n for n in t["notes"])
        assert any(str(n).startswith("Packet loss") for n in _notes(ev)) == lost, ev
    assert all(not v for v in by_key.values()), "events with no transaction: %s" % [v for v in by_key.values() if v]


def _notes(ev):
    m = ev.get("error", {}).get("message")
    return m if isinstance(m, list) else [m] if m else []


def _iso_us(us: int) -> str:
    import time
    sec, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%06d" % frac
