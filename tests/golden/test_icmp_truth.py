"""ICMP events of the committed real capture against what the clients did.

``pcaps/icmp_real.pcap`` was captured on loopback while ``gen/icmp_real.py``
ran ping (v4 and v6), UDP datagrams to closed ports and raw-socket ICMP
clients; ``icmp_real.truth.json`` records what they sent and got back. Every
transaction there must come out as exactly one event with the same
addresses, types, codes, sizes, status and notes, and nothing else may come
out. :func:`check_events` is shared with the live-server test.
"""
from __future__ import annotations

import json
import pathlib

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"


def _notes(ev: dict) -> list:
    m = ev.get("error", {}).get("message")
    return m if isinstance(m, list) else [m] if m else []


def check_events(events: list[dict], truth: dict) -> None:
    """Every truth transaction is exactly one event with its facts."""
    txns = truth["transactions"]
    assert len(events) == len(txns), "events %d != transactions %d" % (len(events), len(txns))
    assert all(ev["type"] == "icmp" for ev in events)
    # ICMP events carry no id/seq (as in Packetbeat): events with the same
    # version, types and codes are told apart by their start time order,
    # which is the order the clients ran in.
    events = sorted(events, key=lambda e: e["@timestamp"])
    pool: dict = {}
    for ev in events:
        icmp = ev["icmp"]
        req, resp = icmp.get("request"), icmp.get("response")
        k = (icmp["version"], req and (req["type"], req["code"]), resp and (resp["type"], resp["code"]))
        pool.setdefault(k, []).append(ev)
    for t in txns:
        req, resp = t["request"], t["response"]
        k = (t["version"], req and (req["type"], req["code"]), resp and (resp["type"], resp["code"]))
        cands = pool.get(k)
        assert cands, "no event for %s %s" % (t["case"], k)
        ev = cands.pop(0)
        ctx = (t["case"], ev)
        assert ev["client"]["ip"] == ev["source"]["ip"] == t["client_ip"], ctx
        assert ev["server"]["ip"] == ev["destination"]["ip"] == ev["path"] == t["server_ip"], ctx
        assert "port" not in ev["source"] and "port" not in ev["destination"], ctx
        assert ev["network"]["transport"] == ("icmp" if t["version"] == 4 else "ipv6-icmp"), ctx
        assert ev["network"]["type"] == ("ipv4" if t["version"] == 4 else "ipv6"), ctx
        assert ev["event"]["dataset"] == "icmp" and ev["event"]["type"] == ["connection"], ctx
        assert ev["source"].get("bytes", 0) == t["request_bytes"], ctx
        assert ev["destination"].get("bytes", 0) == t["response_bytes"], ctx
        assert _notes(ev) == t["notes"], ctx
        error_type = req is not None and req["type"] in ((3, 4, 11, 12) if t["version"] == 4 else (1, 2, 3, 4))
        ok = req is not None and resp is not None and not error_type
        assert ev["status"] == ("OK" if ok else "Error"), ctx
        if req is not None and resp is not None:
            d = ev["event"]["duration"]
            assert d > 0, ctx
            if "client_rtt_ms" in t:
                # the wire sees the request after ping sent it and the reply
                # before ping read it (µs capture stamps, ms/µs ping text)
                assert d <= t["client_rtt_ms"] * 1_000_000 + 1_000_000, ctx
        else:
            assert "duration" not in ev["event"], ctx
        if req is not None:
            assert ev["icmp"]["request"]["message"], ctx
    assert all(not v for v in pool.values()), "events with no transaction: %s" % [v for v in pool.values() if v]


def test_icmp_real_capture_matches_truth(tmp_path):
    truth = json.loads((PCAPS / "icmp_real.truth.json").read_text())
    proc, events = run_packetbeat(tmp_path, PCAPS / "icmp_real.pcap", protocols=[{"type": "icmp"}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth)
    # the ping messages by name, as Packetbeat 8.x prints them
    texts = {(e["icmp"]["version"], e["icmp"].get("request", {}).get("message")) for e in events}
    assert (4, "EchoRequest(0)") in texts and (6, "EchoRequest(0)") in texts
    assert (4, "DestinationUnreachable(Port)") in texts
    assert (6, "DestinationUnreachable(PortUnreachable)") in texts
