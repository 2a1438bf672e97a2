"""The SIP analyser's events against what the SIP clients really sent and read.

``pcaps/sip_real.pcap`` was captured by ``gen/sip_real.py`` while SIPp (UAC and
UAS, over UDP and TCP: a call, REGISTER with a 401 challenge, CANCEL, OPTIONS,
486 and 503 answers) and the script's own client (compact headers, no
Content-Length over UDP, two messages in one TCP segment, one message over
three segments) talked on loopback. The truth file lists every message each
client sent or read, from SIPp's message log and the client's sockets, with the
facts the generator read in it. Every message must come out as exactly one
event, with Packetbeat 8's fields matching those facts.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
SERVER_PORT = 5060


def _key(transport, from_client, port, f) -> tuple:
    what = f["method"] if f["type"] == "request" else f["code"]
    return (transport, from_client, port, f["call_id"], f["cseq_code"], f["cseq_method"], f["type"], what)


def _event_key(ev) -> tuple:
    sip = ev["sip"]
    from_client = ev["destination"]["port"] == SERVER_PORT
    port = ev["source"]["port"] if from_client else ev["destination"]["port"]
    what = sip["method"] if sip["type"] == "request" else sip["code"]
    return (ev["network"]["transport"], from_client, port, sip["call_id"], sip["cseq"]["code"],
            sip["cseq"]["method"], sip["type"], what)


def _dedup(xs):
    out = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out


def check_message(ev: dict, m: dict, opts: dict) -> None:
    f = m["facts"]
    sip = ev["sip"]
    raw = m["raw"]
    ident = (m["scenario"], m["transport"], f["start_line"])
    assert ev["type"] == "sip" and ev["network"]["protocol"] == "sip", ident
    assert ev["network"]["transport"] == m["transport"]
    assert ev["network"]["iana_number"] == ("17" if m["transport"] == "udp" else "6")
    client = {"ip": "127.0.0.1", "port": m["client_port"]}
    server = {"ip": "127.0.0.1", "port": SERVER_PORT}
    src, dst = (client, server) if m["from_client"] else (server, client)
    assert ev["source"] == src and ev["destination"] == dst, ident
    assert ev["client"] == src and ev["server"] == dst, ident
    assert ev["related"]["ip"][-1] == "127.0.0.1"
    e = ev["event"]
    assert e["kind"] == "event" and e["dataset"] == "sip" and e["type"] == ["info", "protocol"]
    assert e["start"] == e["end"] and e["duration"] == 0
    assert ev["@timestamp"][:23] == e["start"][:23]
    assert e["sequence"] == f["cseq_code"]
    assert sip["version"] == "2.0"
    assert sip["type"] == f["type"]
    assert sip["call_id"] == f["call_id"]
    assert sip["cseq"] == {"code": f["cseq_code"], "method": f["cseq_method"]}
    if f["type"] == "request":
        assert sip["method"] == f["method"] and sip["uri"]["original"] == f["uri"], ident
        assert sip["uri"]["scheme"] == "sip" and sip["uri"]["host"] == "127.0.0.1"
        assert e["action"] == "sip-" + f["method"].lower()
        assert "outcome" not in e and "code" not in sip and "status" not in sip
        assert ev["status"] == "OK"
    else:
        assert sip["code"] == f["code"] and sip["status"] == f["phrase"], ident
        assert e["reason"] == f["phrase"]
        assert e["action"] == "sip-" + f["cseq_method"].lower()
        code = f["code"]
        assert e.get("outcome") == (None if code < 200 else "success" if code < 300 else "failure"), ident
        assert ev["status"] == ("Error" if code >= 400 else "OK")
        assert "method" not in sip
    for side in ("from", "to"):
        obj = sip[side]
        assert obj.get("tag") == f[side + "_tag"], (ident, side)
        assert obj["uri"].get("username") == f[side + "_user"], (ident, side)
    assert sip["via"]["original"] == _dedup(f["via"]), ident
    assert sip.get("user_agent", {}).get("original") == f.get("user_agent")
    assert sip.get("content_length") == (f.get("content_length") or None), ident
    assert sip.get("content_type") == f.get("content_type")
    assert sip.get("allow") == f.get("allow"), ident
    if "contact_uri" in f:
        assert sip["contact"]["uri"]["original"] == f["contact_uri"], ident
        assert sip["contact"].get("expires") == f.get("contact_expires")
    else:
        assert "contact" not in sip
    # Authorization: parsed (never the digest response), or not at all
    if "auth_user" in f:
        assert "authentication" in e["category"]
        if opts.get("parse_authorization", True):
            assert ev["user"] == {"name": f["auth_user"]}
            assert sip["auth"]["scheme"] == f["auth_scheme"] and sip["auth"]["realm"] == f["auth_realm"]
            assert f["auth_user"] in ev["related"]["user"]
            assert "response" not in json.dumps(sip["auth"])
        else:
            assert "auth" not in sip and "user" not in ev
    else:
        assert e["category"] == ["network"] and "auth" not in sip and "user" not in ev
    # SDP
    if "sdp_owner" in f and opts.get("parse_body", True):
        sdp = sip["sdp"]
        user, sess, ver, _in, _ip4, ip = f["sdp_owner"]
        owner = {"session_id": sess, "version": ver, "ip": ip}
        if user != "-":
            owner["username"] = user
        assert sdp["owner"] == owner, ident
        assert sdp["version"] == "0"
        assert sdp.get("session", {}).get("name") == (None if f["sdp_session"] == "-" else f["sdp_session"])
        assert sdp["connection"] == {"info": f["sdp_connection"], "address": f["sdp_connection"].split()[-1]}
        assert sdp["body"]["original"] == raw.split("\r\n\r\n", 1)[1]
        assert ev["related"]["ip"][0] == ip
    else:
        assert "sdp" not in sip
    if opts.get("keep_original", True):
        assert e["original"] == raw, ident
    else:
        assert "original" not in e
    assert "error" not in ev, (ident, ev.get("error"))


def check_events(events: list[dict], truth: dict, opts: dict) -> None:
    msgs = truth["messages"]
    assert len(events) == len(msgs), "events %d != messages %d" % (len(events), len(msgs))
    by_key: dict[tuple, list[dict]] = {}
    for ev in sorted(events, key=lambda ev: ev["event"]["start"]):
        by_key.setdefault(_event_key(ev), []).append(ev)
    for m in msgs:
        k = _key(m["transport"], m["from_client"], m["client_port"], m["facts"])
        evs = by_key.get(k)
        assert evs, "no event for %s" % (k,)
        check_message(evs.pop(0), m, opts)
    # within a call, the events come in the order the client saw the messages
    # (a request and its immediate answer can share a timestamp's ms, never swap)
    calls: dict[str, list] = {}
    for ev in sorted(events, key=lambda ev: ev["event"]["start"]):
        calls.setdefault(ev["sip"]["call_id"], []).append(_event_key(ev))
    order: dict[str, list] = {}
    for m in msgs:
        order.setdefault(m["facts"]["call_id"], []).append(
            _key(m["transport"], m["from_client"], m["client_port"], m["facts"]))
    for call_id, keys in order.items():
        if call_id.startswith("py-tcp-"):
            continue    # pipelined over one connection: checked below
        assert calls[call_id] == keys, call_id


@pytest.fixture(scope="module")
def truth():
    return json.loads((PCAPS / "sip_real.truth.json").read_text())


def test_sip_real_truth(tmp_path, truth):
    proc, events = run_packetbeat(tmp_path, PCAPS / "sip_real.pcap",
                                  protocols=[{"type": "sip", "ports": [5060]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth, {})
    by_call = {ev["sip"]["call_id"]: ev for ev in events if ev["sip"]["type"] == "request"}
    # two requests written in one TCP segment: same packet, same time
    assert by_call["py-tcp-1"]["event"]["start"] == by_call["py-tcp-2"]["event"]["start"]
    # one request over three segments: timed by its first
    split = [m for m in truth["messages"] if m.get("segment") == "split"][0]
    assert by_call["py-tcp-3"]["event"]["original"] == split["raw"]
    # every transport, every kind of message the issue asks for
    kinds = {(m["transport"], m["facts"].get("method") or m["facts"]["code"]) for m in truth["messages"]}
    for t in ("udp", "tcp"):
        for k in ("INVITE", "ACK", "BYE", "REGISTER", "CANCEL", "OPTIONS", "MESSAGE", 100, 180, 200, 401,
                  486, 487, 503):
            assert (t, k) in kinds, (t, k)


@pytest.mark.parametrize("opts", [
    {"parse_body": False, "parse_authorization": False, "keep_original": False},
    {"send_request": True, "send_response": True},
])
def test_sip_real_options(tmp_path, truth, opts):
    proc, events = run_packetbeat(tmp_path, PCAPS / "sip_real.pcap",
                                  protocols=[{"type": "sip", "ports": [5060], **opts}], workers=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth, opts)
    if opts.get("send_request"):
        for ev in events:
            field = "request" if ev["sip"]["type"] == "request" else "response"
            assert ev[field] == ev["event"]["original"]
