"""MemcachePlugin: TCP and UDP callbacks -> events (correlation, notes, timeouts, config)."""
from __future__ import annotations

import struct

import pytest

from shared.confutil import ConfigError, build
from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.memcache import MemcachePlugin
from worker.protos.memcache.config import MemcacheConfig
from worker.protos.memcache.parser import ParseError

TT = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 11211, 1)
CLI = IpPortTuple(UDP, "10.0.0.1", 40000, "10.0.0.2", 11211)
SRV = CLI.reverse()
MS = 1_000_000
HDR = struct.Struct("!BBHBBHIIQ")


def binmsg(magic, opcode, key=b"", extras=b"", value=b"", status=0, opaque=0):
    return HDR.pack(magic, opcode, len(key), len(extras), 0, status,
                    len(extras) + len(key) + len(value), opaque, 0) + extras + key + value


def udp(rid, payload, seq=0, total=1):
    return struct.pack("!HHHH", rid, seq, total, 0) + payload


def make(**cfg):
    events = []
    return MemcachePlugin(dict({"ports": [11211]}, **cfg), events.append), events


def tcp(plugin, state, direction, data, ts):
    tup = TT.ip_port() if direction == 0 else TT.ip_port().reverse()
    return plugin.parse(Packet(ts, tup, memoryview(data)), TT, direction, state)


def test_text_transaction_event_fields():
    p, events = make()
    st = tcp(p, None, 0, b"set k 1 0 3\r\nabc\r\n", 1000 * MS)
    st = tcp(p, st, 1, b"STORED\r\n", 1003 * MS + 5)
    [ev] = events
    assert ev["type"] == "memcache" and ev["status"] == "OK"
    assert ev["event"]["duration"] == 3 * MS + 5 and ev["event"]["action"] == "memcache.store"
    assert ev["event"]["outcome"] == "success"
    # Packetbeat's assignment: source.bytes = response size, destination.bytes = request size
    assert ev["source"]["bytes"] == 8 and ev["destination"]["bytes"] == 18 and ev["network"]["bytes"] == 26
    assert ev["network"]["transport"] == "tcp" and ev["client"]["port"] == 40000
    assert ev["memcache"] == {
        "protocol_type": "text",
        "request": {"command": "set", "type": "Store", "count_values": 1, "keys": ["k"], "flags": 1,
                    "exptime": 0, "bytes": 3, "noreply": False},
        "response": {"command": "STORED", "type": "Success"},
    }
    assert "error" not in ev


def test_multi_get_merged_and_values_kept():
    p, events = make(maxvalues=-1, maxbytespervalue=2)
    st = tcp(p, None, 0, b"get a b c\r\n", 1)
    st = tcp(p, st, 1, b"VALUE a 0 3\r\nxyz\r\nVALUE c 5 1\r\n", 2)
    assert events == []
    st = tcp(p, st, 1, b"q\r\nEND\r\n", 3)
    [ev] = events
    r = ev["memcache"]["response"]
    assert r["keys"] == ["a", "c"] and r["count_values"] == 2 and r["bytes"] == 4
    assert r["values"] == ["eHk=", "cQ=="] and r["cas_unique"] == 0
    assert ev["source"]["bytes"] == len(b"VALUE a 0 3\r\nxyz\r\nVALUE c 5 1\r\nq\r\nEND\r\n")


def test_noreply_and_quit_are_not_paired_with_later_answers():
    p, events = make()
    st = tcp(p, None, 0, b"set k 0 0 1 noreply\r\nx\r\nget k\r\n", 1)
    assert len(events) == 1 and "response" not in events[0]["memcache"] and events[0]["status"] == "OK"
    st = tcp(p, st, 1, b"VALUE k 0 1\r\nx\r\nEND\r\n", 2)
    assert events[1]["memcache"]["request"]["command"] == "get"
    assert events[1]["memcache"]["response"]["count_values"] == 1
    tcp(p, st, 0, b"quit\r\n", 3)
    assert events[2]["memcache"]["request"]["command"] == "quit" and "error" not in events[2]


def test_text_status_values():
    p, events = make()
    st = tcp(p, None, 0, b"incr k 1\r\nincr j 1\r\nadd k 0 0 1\r\nx\r\n", 1)
    tcp(p, st, 1, b"CLIENT_ERROR cannot increment\r\nNOT_FOUND\r\nSERVER_ERROR out of memory\r\n", 2)
    assert [e["status"] for e in events] == ["Client Error", "Error", "Server Error"]
    assert events[0]["memcache"]["response"]["error_msg"] == "cannot increment"


def test_binary_quiet_requests_and_opaque_pairing():
    p, events = make()
    reqs = (binmsg(0x80, 0x11, b"a", b"\0" * 8, b"1", opaque=1)        # SetQ: no answer
            + binmsg(0x80, 0x00, b"b", opaque=2)                      # Get: answer lost
            + binmsg(0x80, 0x0A, opaque=3))                           # Noop
    st = tcp(p, None, 0, reqs, 10)
    tcp(p, st, 1, binmsg(0x81, 0x0A, opaque=3), 20)
    assert [e["memcache"]["request"]["opcode"] for e in events] == ["SetQ", "Get", "No-op"]
    assert events[0]["status"] == "OK" and "no response" in events[0]["error"]["message"]
    assert events[1]["status"] == "Server Error"
    assert events[1]["error"]["message"] == "Missing response for non-quiet request"
    assert events[2]["memcache"]["response"]["status"] == "Success" and events[2]["event"]["duration"] == 10


def test_binary_error_status():
    p, events = make()
    st = tcp(p, None, 0, binmsg(0x80, 0x0C, b"k", opaque=5), 1)
    tcp(p, st, 1, binmsg(0x81, 0x0C, b"", struct.pack("!I", 0), b"Not found", status=1, opaque=5), 2)
    [ev] = events
    assert ev["status"] == "Error" and "outcome" not in ev["event"]
    assert ev["memcache"]["response"]["status"] == "Key not found"
    assert ev["memcache"]["response"]["status_code"] == 1


def test_response_without_request_and_flush():
    p, events = make()
    st = tcp(p, None, 1, b"STORED\r\n", 5)
    assert events[0]["status"] == "Client Error" and "unmatched response" in events[0]["error"]["message"]
    assert events[0]["event"]["duration"] == 0
    st = tcp(p, st, 0, b"get x\r\nget y\r\n", 6)
    p.flush(TT, st, 7)
    assert [e["status"] for e in events[1:]] == ["Server Error", "Server Error"]
    assert all("no response" in e["error"]["message"] for e in events[1:])


def test_parse_error_publishes_pending_then_raises():
    p, events = make()
    st = tcp(p, None, 0, b"get x\r\n", 1)
    with pytest.raises(ParseError):
        tcp(p, st, 0, b"bogus command\r\n", 2)
    assert len(events) == 1 and events[0]["memcache"]["request"]["keys"] == ["x"]
    assert p.parse_errors == 1


def test_gap_inside_value_keeps_the_stream():
    p, events = make()
    st = tcp(p, None, 0, b"set k 0 0 100\r\n" + b"a" * 10, 1)
    st, drop = p.gap_in_stream(TT, 0, 50, st)
    assert not drop
    st = tcp(p, st, 0, b"b" * 40 + b"\r\n", 2)
    tcp(p, st, 1, b"STORED\r\n", 3)
    [ev] = events
    assert ev["error"]["message"] == "Packet loss while capturing the request"
    assert ev["memcache"]["request"]["bytes"] == 100 and ev["destination"]["bytes"] == 15 + 50 + 2
    st2 = tcp(p, None, 0, b"get a\r\nget b", 4)
    st2, drop = p.gap_in_stream(TT, 0, 5, st2)
    assert drop and st2 is None and events[-1]["memcache"]["request"]["keys"] == ["a"]


def test_udp_exchange_reassembly_and_timeout():
    p, events = make(udptransactiontimeout="50ms")
    p.parse_udp(Packet(1 * MS, CLI, memoryview(udp(7, b"get a b\r\n"))))
    # reply: one message per VALUE, datagrams numbered per message, out of order
    v = b"VALUE a 0 3\r\nabc\r\n"
    p.parse_udp(Packet(2 * MS, SRV, memoryview(udp(7, v[10:], 1, 2))))
    p.parse_udp(Packet(3 * MS, SRV, memoryview(udp(7, v[:10], 0, 2))))
    p.parse_udp(Packet(4 * MS, SRV, memoryview(udp(7, b"VALUE b 0 1\r\nz\r\n"))))
    assert events == []
    p.parse_udp(Packet(5 * MS, SRV, memoryview(udp(7, b"END\r\n"))))
    [ev] = events
    assert ev["network"]["transport"] == "udp" and ev["event"]["duration"] == 1 * MS
    assert ev["memcache"]["response"]["keys"] == ["a", "b"] and ev["memcache"]["response"]["count_values"] == 2
    assert ev["source"]["bytes"] == len(v) + 16 + 5 and ev["destination"]["bytes"] == 9
    # a quiet binary request waits for udptransactiontimeout, by packet time
    p.parse_udp(Packet(10 * MS, CLI, memoryview(udp(8, binmsg(0x80, 0x11, b"q", b"\0" * 8, b"v")))))
    p.parse_udp(Packet(10 * MS + 1, SRV, memoryview(udp(8, b""))))        # memcached's empty answer
    p.expire(59 * MS)
    assert len(events) == 1
    p.expire(61 * MS)
    assert len(events) == 2 and events[1]["status"] == "OK"
    assert events[1]["memcache"]["request"]["quiet"] and "no response" in events[1]["error"]["message"]


def test_udp_noreply_immediate_response_only_oriented_and_flush():
    p, events = make()
    p.parse_udp(Packet(1, CLI, memoryview(udp(1, b"delete k noreply\r\n"))))
    assert len(events) == 1 and "error" not in events[0]
    p.parse_udp(Packet(2, SRV, memoryview(udp(2, b"STORED\r\n"))))
    p.parse_udp(Packet(3, CLI, memoryview(udp(3, b"version\r\n"))))
    p.flush_all(4)
    assert len(events) == 3
    orphan = [e for e in events if "request" not in e["memcache"]][0]
    assert orphan["client"]["port"] == 40000 and orphan["server"]["port"] == 11211
    assert orphan["status"] == "Client Error"
    lone = [e for e in events if e["memcache"].get("request", {}).get("command") == "version"][0]
    assert lone["status"] == "Server Error" and "no response" in lone["error"]["message"]


def test_udp_bad_datagrams_raise_parse_error_only():
    p, events = make()
    with pytest.raises(ParseError):
        p.parse_udp(Packet(1, CLI, memoryview(b"\x00\x01")))
    p.parse_udp(Packet(2, CLI, memoryview(udp(5, b"get k\r\n"))))
    with pytest.raises(ParseError):
        p.parse_udp(Packet(3, SRV, memoryview(udp(5, b"garbage\r\n"))))
    assert len(events) == 1 and events[0]["memcache"]["request"]["keys"] == ["k"]


def test_config_defaults_and_errors():
    cfg = build(MemcacheConfig, {}, "memcache")
    assert cfg.ports == [11211] and cfg.maxvalues == 0 and cfg.maxbytespervalue == 100
    assert cfg.udptransactiontimeout == 10.0 and not cfg.parseunknown and cfg.value_keep == 0
    assert build(MemcacheConfig, {"udptransactiontimeout": "10ms"}, "m").udptransactiontimeout == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="memcache.maxvalue"):
        build(MemcacheConfig, {"maxvalue": 1}, "memcache")
    with pytest.raises(ConfigError, match="maxvalues"):
        build(MemcacheConfig, {"maxvalues": -5}, "memcache")
    assert MemcachePlugin.transports == ("tcp", "udp") and MemcachePlugin.config_class is MemcacheConfig
