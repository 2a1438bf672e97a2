"""Cassandra plugin: events from hand-made conversations (pairing in arrival
order or by stream, compression negotiated by STARTUP, pushed EVENTs,
ignored_ops, send_* options, unmatched and expired transactions, gaps) and
the configuration checks."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError
from tests.unit.protos.cql_frames import frame, i32, lz4_body, query, rows_body, s, snappy_body, startup
from worker.plugin import Packet, TcpTuple
from worker.protos.cassandra import CassandraPlugin
from worker.protos.glue import NOTE_NO_RESPONSE, NOTE_UNMATCHED_RESPONSE

TUPLE = TcpTuple("10.1.1.1", 40000, "10.2.2.2", 9042, 7)
COLS = [("id", 0x09), ("name", 0x0D)]
S = 1_000_000_000


class Conv:
    def __init__(self, **cfg):
        self.events = []
        self.plugin = CassandraPlugin(dict({"ports": [9042]}, **cfg), self.events.append)
        self.state = None

    def send(self, direction, data, ts):
        ipp = TUPLE.ip_port() if direction == 0 else TUPLE.ip_port().reverse()
        self.state = self.plugin.parse(Packet(ts, ipp, memoryview(data)), TUPLE, direction, self.state)

    def close(self, ts=0):
        self.plugin.flush(TUPLE, self.state, ts)
        self.state = None


def _void(stream, flags=0, body=i32(1)):
    return frame(0x08, body, stream, response=True, flags=flags)


def test_query_event_fields():
    c = Conv()
    c.send(0, query("INSERT INTO users (id) VALUES (1)", 252), 10 * S)
    c.send(1, _void(252), 10 * S + 19_000_000)
    (ev,) = c.events
    assert ev["type"] == "cassandra" and ev["status"] == "OK"
    assert ev["event"]["duration"] == 19_000_000
    assert ev["network"]["protocol"] == "cassandra"
    assert ev["source"]["bytes"] == len(query("INSERT INTO users (id) VALUES (1)", 252))
    assert ev["destination"]["bytes"] == 13
    assert ev["cassandra"] == {
        "request": {"query": "INSERT INTO users (id) VALUES (1)",
                    "headers": {"version": "4", "flags": "Default", "stream": 252, "op": "QUERY",
                                "length": ev["source"]["bytes"] - 9}},
        "response": {"result": {"type": "void"},
                     "headers": {"version": "4", "flags": "Default", "stream": 252, "op": "RESULT", "length": 4}},
    }
    assert "method" not in ev and "query" not in ev and "request" not in ev and "response" not in ev


def test_pairing_in_arrival_order_like_packetbeat_or_by_stream():
    frames_q = query("SELECT a FROM t", 21) + query("SELECT b FROM t", 22)
    frames_r = frame(0x08, i32(3) + s("x"), 22, response=True) + frame(0x08, i32(3) + s("y"), 21, response=True)
    for quirks, want in ((True, [(21, 22), (22, 21)]), (False, [(22, 22), (21, 21)])):
        c = Conv(packetbeat_quirks=quirks)
        c.send(0, frames_q, S)
        c.send(1, frames_r, 2 * S)
        got = [(e["cassandra"]["request"]["headers"]["stream"], e["cassandra"]["response"]["headers"]["stream"])
               for e in c.events]
        assert got == want


def test_error_status_follows_packetbeat_unless_quirks_off():
    err = frame(0x00, i32(0x2300) + s("Cannot drop non existing keyspace 'k'."), 275, response=True)
    for quirks, status in ((True, "OK"), (False, "Error")):
        c = Conv(packetbeat_quirks=quirks)
        c.send(0, query("DROP KEYSPACE k;", 275, flags=0x02), S)
        c.send(1, err, 2 * S)
        (ev,) = c.events
        assert ev["status"] == status
        assert ev["cassandra"]["request"]["headers"]["flags"] == "Tracing"
        assert ev["cassandra"]["response"]["error"] == {"code": 0x2300, "type": "errConfig",
                                                        "msg": "Cannot drop non existing keyspace 'k'."}


@pytest.mark.parametrize("algo,enc", [("lz4", lz4_body), ("snappy", snappy_body)])
def test_compression_from_startup(algo, enc):
    c = Conv()
    c.send(0, startup({"CQL_VERSION": "3.0.0", "COMPRESSION": algo}), S)
    c.send(1, frame(0x02, enc(b""), 0, response=True, flags=1), S + 1)
    body = rows_body("ks", "t", COLS, [[i32(1), b"a"]])
    c.send(0, frame(0x07, enc(query("SELECT * FROM t", 0)[9:]), 64, flags=1), 2 * S)
    c.send(1, frame(0x08, enc(body), 64, response=True, flags=1), 2 * S + 1)
    assert len(c.events) == 2
    ev = c.events[1]
    assert ev["cassandra"]["request"]["query"] == "SELECT * FROM t"
    assert ev["cassandra"]["request"]["headers"]["flags"] == "Compress"
    assert ev["cassandra"]["response"]["result"]["rows"]["meta"]["table"] == "t"
    assert c.state.codec.compression == algo


def test_pushed_event_alone():
    c = Conv()
    c.send(0, query("SELECT 1", 5), S)
    ev_frame = frame(0x0C, s("SCHEMA_CHANGE") + s("CREATED") + s("TABLE") + s("ks") + s("t"), -1, response=True)
    c.send(1, ev_frame + _void(5), 2 * S)
    assert len(c.events) == 2
    push = c.events[0]
    assert push["status"] == "OK" and "error" not in push
    assert push["cassandra"]["no_request"] is True
    assert push["cassandra"]["response"]["event"] == {"type": "SCHEMA_CHANGE", "schema_change": {
        "change": "CREATED", "target": "TABLE", "keyspace": "ks", "object": "t"}}
    assert push["cassandra"]["response"]["headers"]["stream"] == 65535
    assert c.events[1]["cassandra"]["request"]["headers"]["stream"] == 5


def test_ignored_ops_drop_the_pair():
    c = Conv(ignored_ops=["options", "QUERY"])
    c.send(0, frame(0x05, b"", 1), S)
    c.send(1, frame(0x06, b"\x00\x00", 1, response=True), S)
    c.send(0, query("SELECT 1", 2), S)
    c.send(1, _void(2), S)
    c.send(0, frame(0x0B, b"\x00\x00", 3), S)
    c.send(1, frame(0x02, b"", 3, response=True), S)
    assert [e["cassandra"]["request"]["headers"]["op"] for e in c.events] == ["REGISTER"]
    assert c.plugin.ignored_transactions == 2


def test_ignored_startup_still_sets_the_compression():
    c = Conv(ignored_ops=["STARTUP"])
    c.send(0, startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "snappy"}), S)
    c.send(1, frame(0x02, snappy_body(b""), 0, response=True, flags=1), S)
    c.send(0, frame(0x07, snappy_body(query("SELECT 1", 0)[9:]), 3, flags=1), S)
    c.send(1, frame(0x08, snappy_body(i32(1)), 3, response=True, flags=1), S)
    assert [e["cassandra"]["request"].get("query") for e in c.events] == ["SELECT 1"]
    assert c.events[0]["cassandra"]["response"]["result"] == {"type": "void"}


def test_send_options():
    c = Conv(send_request_header=False, send_response=False)
    c.send(0, query("SELECT 1", 2), S)
    c.send(1, _void(2), S)
    assert c.events[0]["cassandra"] == {"request": {"query": "SELECT 1"}}
    c = Conv(send_request=False, send_response_header=False)
    c.send(0, frame(0x05, b"", 2), S)
    c.send(1, _void(2), S)
    assert c.events[0]["cassandra"] == {"response": {"result": {"type": "void"}}}
    c = Conv(send_request=False, send_response=False)
    c.send(0, frame(0x05, b"", 2), S)
    c.send(1, _void(2), S)
    assert "cassandra" not in c.events[0]


def test_unmatched_and_flushed():
    c = Conv()
    c.send(1, _void(9), S)
    c.send(0, query("SELECT 1", 1), 2 * S)
    c.close()
    assert [(e["status"], e["error"]["message"]) for e in c.events] == [
        ("Error", NOTE_UNMATCHED_RESPONSE), ("Error", NOTE_NO_RESPONSE)]
    assert c.plugin.unmatched_responses == 1 and c.plugin.unmatched_requests == 1


def test_transaction_timeout_by_packet_time():
    c = Conv(transaction_timeout="1s", packetbeat_quirks=True)
    c.send(0, query("SELECT lost", 1), S)
    c.send(0, query("SELECT 2", 2), 5 * S)
    c.send(1, _void(2), 5 * S + 1)
    assert [(e["cassandra"]["request"]["query"], e["status"]) for e in c.events] == [
        ("SELECT lost", "Error"), ("SELECT 2", "OK")]


def test_gap_in_request_header_drops_the_connection_with_notes():
    c = Conv()
    c.send(0, query("SELECT 1", 1), S)
    c.send(0, query("SELECT 2", 2)[:4], S)
    state, drop = c.plugin.gap_in_stream(TUPLE, 0, 100, c.state)
    assert drop and state is None
    (ev,) = c.events
    assert "Packet loss while capturing the request" in ev["error"]["message"]
    assert c.plugin.gap_drops == 1


def test_garbage_resynchronises():
    c = Conv()
    c.send(0, b"\xff" * 20, S)
    c.send(0, query("SELECT 1", 1), 2 * S)
    c.send(1, _void(1), 2 * S)
    assert c.plugin.parse_errors == 1
    assert c.events[0]["cassandra"]["request"]["query"] == "SELECT 1"


def test_frames_before_garbage_in_one_segment_are_kept():
    c = Conv()
    c.send(0, query("SELECT 1", 1) + b"\xff" * 12, S)
    c.send(1, _void(1), S)
    assert c.plugin.parse_errors == 1
    assert [e["cassandra"]["request"]["query"] for e in c.events] == ["SELECT 1"]


def test_waiting_requests_are_bounded_by_bytes(monkeypatch):
    from worker.protos.cassandra import plugin as plugin_mod
    monkeypatch.setattr(plugin_mod, "MAX_PENDING_BYTES", 300)
    c = Conv()
    for i in range(10):
        c.send(0, query("SELECT %s" % ("x" * 50), i), S)
    assert 0 < len(c.state.correlator.pending) <= 4
    assert c.events and all("evicted" in e["error"]["message"] for e in c.events)
    assert len(c.events) + len(c.state.correlator.pending) == 10
    c.close()
    assert c.plugin.unmatched_requests == 10


def test_body_error_is_a_note():
    c = Conv()
    c.send(0, query("SELECT 1", 1), S)
    c.send(1, frame(0x08, i32(2) + i32(1), 1, response=True), S)
    (ev,) = c.events
    assert ev["error"]["message"].startswith("Cassandra frame body could not be decoded")
    assert ev["cassandra"]["response"] == {"headers": {"version": "4", "flags": "Default", "stream": 1,
                                                      "op": "RESULT", "length": 8}}
    assert c.plugin.body_errors == 1


@pytest.mark.parametrize("cfg,key", [
    ({"compressor": "deflate"}, "cassandra.compressor"),
    ({"ignored_ops": ["NOPE"]}, "cassandra.ignored_ops"),
    ({"ports": [70000]}, "cassandra.ports"),
    ({"bogus": 1}, "cassandra.bogus"),
])
def test_config_errors(cfg, key):
    with pytest.raises(ConfigError) as e:
        CassandraPlugin(cfg, lambda ev: None)
    assert key in str(e.value)


def test_defaults_are_packetbeats():
    cfg = CassandraPlugin(None, lambda ev: None).cfg
    assert (cfg.ports, cfg.send_request, cfg.send_response, cfg.send_request_header,
            cfg.send_response_header, cfg.compressor, cfg.ignored_ops) == ([9042], True, True, True, True, "", [])
