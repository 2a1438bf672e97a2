"""The AMQP analyser's events against what the AMQP clients really did.

``pcaps/amqp_real.pcap`` was captured by ``gen/amqp_real.py`` while pika and
py-amqp talked to a real RabbitMQ broker; its truth file lists, per client
connection and in order, every operation the clients performed, with what
they sent and what their library handed back (declare-ok counts, message
bodies and delivery tags, publisher confirms, returns, the reply codes of the
closes the broker sent). Every operation must come out as exactly one event
with the same method, side, status and ``amqp.*`` values; nothing else may
come out (the connection set-up is hidden by default).
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
MAX_BODY = 40
TRUTH = json.loads((PCAPS / "amqp_real.truth.json").read_text())
SERVER_PORT = TRUTH["server_port"]


def render(head: bytes, size: int, fields: dict) -> str:
    """A message body as Packetbeat renders it (text for text/JSON content
    types without an encoding, else decimal octets; cut at max_body_length)."""
    body = head[:MAX_BODY]
    ctype = fields.get("content-type")
    if not fields.get("content-encoding") and isinstance(ctype, str) and ("text" in ctype or "json" in ctype):
        s = body.decode("utf-8", "replace")
    else:
        s = " ".join(str(c) for c in body)
    return s + " [...]" if size > len(body) else s


def client_port(ev: dict) -> int:
    return ev["server"]["port"] if ev["client"]["port"] == SERVER_PORT else ev["client"]["port"]


def run(tmp_path, **opts):
    proc, events = run_packetbeat(tmp_path, PCAPS / "amqp_real.pcap",
                                  protocols=[{"type": "amqp", "ports": [SERVER_PORT], "send_request": True,
                                              "send_response": True, "max_body_length": MAX_BODY, **opts}],
                                  workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(ev["type"] == "amqp" for ev in events)
    return events


def check_events(events: list[dict], txns: list[dict]) -> None:
    groups: dict[tuple[int, str], list[dict]] = {}
    for ev in events:
        groups.setdefault((client_port(ev), ev["method"]), []).append(ev)
    for evs in groups.values():
        evs.sort(key=lambda e: e["event"]["start"])
    for t in txns:
        evs = groups.get((t["client_port"], t["method"]))
        assert evs, "no event for %s on port %d" % (t["method"], t["client_port"])
        # the first event of the group with the truth's values: operations of one channel come
        # in order; those of channels used at the same time (aio-pika) may interleave
        ev = next((e for e in evs if all(e["amqp"].get(k) == v for k, v in t["amqp"].items())), evs[0])
        evs.remove(ev)
        what = (t["method"], t["client_port"], ev["amqp"])
        assert ev["event"]["action"] == "amqp." + t["method"]
        assert ev["status"] == t["status"], what
        assert ev["server"]["ip"] == ev["client"]["ip"] == TRUTH["server_ip"]
        if t["from_server"]:
            # the broker sent the request (a close, a publisher confirm)
            assert ev["client"]["port"] == SERVER_PORT and ev["server"]["port"] == t["client_port"], what
        else:
            assert ev["server"]["port"] == SERVER_PORT and ev["client"]["port"] == t["client_port"], what
        for k, v in t["amqp"].items():
            assert k in ev["amqp"] and ev["amqp"][k] == v, (k, v, what)
        if t["amqp"].get("user-id"):
            assert ev["user"]["id"] == t["amqp"]["user-id"]
        if "body_size" in t:
            head = t["body_head"].encode("latin-1")
            text = render(head, t["body_size"], ev["amqp"])
            if t["method"] == "basic.publish":
                assert ev["source"]["bytes"] == t["body_size"], what
                assert ev["request"] == text, what
            else:
                # deliver / return / get: the body is the response
                assert ev["destination"]["bytes"] == t["body_size"], what
                assert ev["response"] == text, what
        elif t.get("no_response"):
            assert ev["error"]["message"].startswith("no response: channel.close by the server"), what
            assert "destination" not in ev or "bytes" not in ev["destination"]
        elif t["method"] in ("basic.ack", "basic.nack", "basic.reject"):
            # asynchronous: no answer, published at once
            assert "end" not in ev["event"] and ev["source"]["bytes"] == 21, what
        else:
            assert ev["response"] == "OK" and ev["event"]["duration"] >= 0, what
            assert ev["source"]["bytes"] >= 12 and ev["destination"]["bytes"] >= 12, what
            assert ev["request"].split(" ")[0] == ev["method"].replace("basic.get-empty", "basic.get")
    left = {k: len(v) for k, v in groups.items() if v}
    assert not left, "events with no transaction: %s" % left


def test_amqp_real_truth(tmp_path):
    events = run(tmp_path)
    check_events(events, TRUTH["transactions"])
    # the three client libraries, the channel error and the refused connection are there
    assert len({t["client_port"] for t in TRUTH["transactions"]}) == 4
    assert any(e["method"] == "channel.close" and e["amqp"]["reply-code"] == 404 for e in events)
    assert any(e["method"] == "connection.close" and e["amqp"]["reply-code"] == 530 for e in events)


def test_amqp_real_connection_information(tmp_path):
    """hide_connection_information: false adds the set-up methods and the
    normal closes (reply code 200), with their answers' values merged."""
    events = run(tmp_path, hide_connection_information=False)
    shown = [e for e in events if e["method"].startswith(("connection.", "channel.")) or e["method"] == "basic.qos"]
    by_method: dict[str, list[dict]] = {}
    for e in shown:
        by_method.setdefault(e["method"], []).append(e)
    # four connections: each was started and tuned and asked to open a virtual host
    assert len(by_method["connection.start"]) == 4
    for e in by_method["connection.start"]:
        assert e["client"]["port"] == SERVER_PORT          # the broker starts the dialogue
        a = e["amqp"]
        assert a["version-major"] == 0 and a["version-minor"] == 9
        assert "PLAIN" in a["mechanisms"] and a["server-properties"]["product"] == "RabbitMQ"
        assert a["mechanism"] in ("PLAIN", "AMQPLAIN") and "client-properties" in a
    tune = by_method["connection.tune"]
    assert len(tune) == 4 and all(e["amqp"]["frame-max"] > 0 for e in tune)
    opens = by_method["connection.open"]
    assert sorted(e["amqp"]["virtual-host"] for e in opens) == ["/", "/", "/", "pbpy-amqp-no-such-vhost"]
    qos = by_method["basic.qos"]
    assert len(qos) == 1 and qos[0]["amqp"]["prefetch-count"] == 5 and qos[0]["amqp"]["global"] is False
    assert len(by_method["channel.open"]) == 6
    closes = [e for e in by_method["channel.close"] + by_method["connection.close"]
              if e["amqp"]["reply-code"] < 300]
    assert closes and all(e["status"] == "OK" and e["response"] == "OK" for e in closes)
    # the refused connection.open: the broker's 530 close leaves it unanswered
    refused = [e for e in opens if e["amqp"]["virtual-host"] == "pbpy-amqp-no-such-vhost"][0]
    assert refused["status"] == "Error" and "connection.close by the server (530" in refused["error"]["message"]
    setup = [e for e in shown if e["method"] not in ("channel.close", "connection.close")
             or e["amqp"]["reply-code"] < 300]
    check_events([e for e in events if e not in setup], TRUTH["transactions"])


@pytest.mark.parametrize("opts", [{"parse_headers": False, "parse_arguments": False}])
def test_amqp_real_no_headers_no_arguments(tmp_path, opts):
    events = run(tmp_path, **opts)
    assert events
    assert not any("content-type" in e["amqp"] or "headers" in e["amqp"] or "arguments" in e["amqp"]
                   for e in events)
    # without a content type, bodies are shown as decimal octets
    (pub,) = [e for e in events if e["method"] == "basic.publish" and e["amqp"]["routing-key"] == "pb.greet.0"]
    assert pub["request"] == " ".join(str(c) for c in b"hello pika 1")


# (class, method) of the methods the truth names, written out independently of the analyser
WIRE = {"exchange.declare": (40, 10), "exchange.delete": (40, 20), "exchange.bind": (40, 30),
        "exchange.unbind": (40, 40), "queue.declare": (50, 10), "queue.bind": (50, 20),
        "queue.purge": (50, 30), "queue.delete": (50, 40), "queue.unbind": (50, 50),
        "basic.consume": (60, 20), "basic.cancel": (60, 30), "basic.publish": (60, 40),
        "basic.return": (60, 50), "basic.deliver": (60, 60), "basic.get": (60, 70), "basic.get-empty": (60, 70),
        "basic.ack": (60, 80), "basic.reject": (60, 90), "basic.recover": (60, 110), "basic.nack": (60, 120),
        "confirm.select": (85, 10), "tx.select": (90, 10), "tx.commit": (90, 20), "tx.rollback": (90, 30),
        "channel.close": (20, 40), "connection.close": (10, 50)}
SERVER_SENT = {"basic.return", "basic.deliver"}


def test_truth_matches_the_frames_on_the_wire():
    """Independent of the analyser: walk the frames of every client connection
    (scapy reassembly) and count the methods each side sent; the truth's
    operations are exactly those (the set-up and normal closes aside)."""
    from collections import Counter
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap
    segs: dict[tuple[int, bool], dict[int, bytes]] = {}
    for p in rdpcap(str(PCAPS / "amqp_real.pcap")):
        if TCP in p and bytes(p[TCP].payload):
            t = p[TCP]
            up = t.dport == SERVER_PORT
            segs.setdefault((t.sport if up else t.dport, up), {})[t.seq] = bytes(t.payload)
    seen: Counter = Counter()
    for (port, up), d in segs.items():
        data = b"".join(v for _, v in sorted(d.items()))
        pos = 8 if data.startswith(b"AMQP") else 0
        while pos + 7 <= len(data):
            ftype, size = data[pos], int.from_bytes(data[pos + 3:pos + 7], "big")
            payload = data[pos + 7:pos + 7 + size]
            assert data[pos + 7 + size] == 0xCE
            if ftype == 1:
                cm = (int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:4], "big"))
                code = int.from_bytes(payload[4:6], "big") if cm in ((20, 40), (10, 50)) else None
                if cm in WIRE.values() and (code is None or code >= 300):
                    seen[(port, up, cm)] += 1
            pos += 8 + size
        assert pos == len(data)
    want: Counter = Counter()
    for t in TRUTH["transactions"]:
        up = not (t["from_server"] or t["method"] in SERVER_SENT)
        want[(t["client_port"], up, WIRE[t["method"]])] += 1
    assert seen == want
