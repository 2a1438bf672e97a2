"""MemcachePlugin: TCP and UDP callbacks -> events (correlation, notes, timeouts, config)."""
from __future__ import annotations

import random
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


# ------------------------------------------------------- scenarios, any split
def _chunkings(data: bytes, seed: int):
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
        yield [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def _run(steps, **cfg):
    """Events of ``steps`` [(direction, bytes)], each fed whole, byte by byte
    and at random split points: the events must be the same every time."""
    results = []
    for mode in range(5):
        p, events = make(**cfg)
        st = None
        ts = 1
        for i, (direction, data) in enumerate(steps):
            chunks = list(_chunkings(data, i))
            for c in chunks[min(mode, len(chunks) - 1)]:
                st = tcp(p, st, direction, c, ts)
                ts += 1
        p.flush(TT, st, ts)
        results.append([(e["memcache"], e["status"], e.get("error", {}).get("message")) for e in events])
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def _q(magic, op, key=b"", value=b"", opaque=0, status=0):
    extras = struct.pack("!I", 0) if magic == 0x81 and value else b""
    return binmsg(magic, op, key, extras, value, status=status, opaque=opaque)


@pytest.mark.parametrize("opaques", ["distinct", "zero"])
def test_binary_quiet_multi_get_getkq_noop(opaques):
    """GetKQ a b c d + Noop; b and d miss (no answer). Each hit pairs with its
    own request (by opaque, or by key when every opaque is 0 as
    python-binary-memcached / some clients send); misses are quiet requests
    without a response; the Noop pairs with its answer."""
    op = (lambda i: i + 10) if opaques == "distinct" else (lambda i: 0)
    keys = [b"a", b"b", b"c", b"d"]
    req = b"".join(_q(0x80, 0x0D, k, opaque=op(i)) for i, k in enumerate(keys)) + _q(0x80, 0x0A, opaque=op(9))
    resp = (_q(0x81, 0x0D, b"a", b"1", opaque=op(0)) + _q(0x81, 0x0D, b"c", b"333", opaque=op(2))
            + _q(0x81, 0x0A, opaque=op(9)))
    evs = _run([(0, req), (1, resp)], maxvalues=-1)
    assert len(evs) == 5
    got = [(mc["request"]["keys"] if "keys" in mc["request"] else None,
            mc.get("response", {}).get("keys"), mc.get("response", {}).get("count_values"), note)
           for mc, _st, note in evs]
    assert got == [(["a"], ["a"], 1, None), (["b"], None, None, "no response (quiet request)"),
                   (["c"], ["c"], 1, None), (["d"], None, None, "no response (quiet request)"),
                   (None, None, None, None)]
    assert evs[2][0]["response"]["values"] == ["MzMz"] and evs[2][0]["response"]["bytes"] == 3
    assert all(st == "OK" for _mc, st, _n in evs)
    assert evs[4][0]["request"]["opcode"] == "No-op" and "count_values" not in evs[4][0]["response"]


def test_binary_quiet_multi_get_closed_by_getk():
    """python-binary-memcached: GetKQ for all keys but the last, a GetK for
    the last, all with opaque 0."""
    req = b"".join(_q(0x80, 0x0D, k) for k in (b"a", b"b", b"c")) + _q(0x80, 0x0C, b"d")
    resp = _q(0x81, 0x0D, b"c", b"3") + binmsg(0x81, 0x0C, b"d", status=1)   # memcached: key, no body
    evs = _run([(0, req), (1, resp)])
    assert [(mc["request"]["keys"], mc.get("response", {}).get("count_values"), st) for mc, st, _n in evs] == [
        (["a"], None, "OK"), (["b"], None, "OK"), (["c"], 1, "OK"), (["d"], None, "Error")]
    assert evs[3][0]["response"]["status"] == "Key not found"


def test_binary_quiet_getq_run_distinct_and_shared_opaques():
    # distinct opaques: exact
    req = b"".join(_q(0x80, 0x09, k, opaque=20 + i) for i, k in enumerate((b"a", b"b", b"c"))) \
        + _q(0x80, 0x0A, opaque=30)
    resp = _q(0x81, 0x09, value=b"2", opaque=21) + _q(0x81, 0x0A, opaque=30)
    evs = _run([(0, req), (1, resp)])
    assert [(mc["request"]["keys"] if "keys" in mc["request"] else None,
             mc.get("response", {}).get("count_values"), n) for mc, _st, n in evs] == [
        (["a"], None, "no response (quiet request)"), (["b"], 1, None),
        (["c"], None, "no response (quiet request)"), (None, None, None)]
    # one opaque for all, keyless answers: paired by order, and said so
    req = b"".join(_q(0x80, 0x09, k) for k in (b"a", b"b")) + _q(0x80, 0x0A)
    resp = _q(0x81, 0x09, value=b"2") + _q(0x81, 0x0A)
    evs = _run([(0, req), (1, resp)])
    assert evs[0][0]["request"]["keys"] == ["a"] and evs[0][0]["response"]["count_values"] == 1
    assert evs[0][2] == "quiet response paired by order: its opaque is shared by several quiet requests"
    assert evs[1][2] == "no response (quiet request)" and evs[2][2] is None


@pytest.mark.parametrize("req,resp,command,keys,status", [
    (b"get\r\n", b"ERROR\r\n", "get", None, "Error"),
    (b"touch k\r\n", b"ERROR\r\n", "touch", ["k"], "Error"),
    (b"incr k abc\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n", "incr", ["k"], "Client Error"),
    (b"set k 0 0 x\r\n", b"CLIENT_ERROR bad command line format\r\n", "set", ["k"], "Client Error"),
    (b"flush_all abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n", "flush_all", None, "Client Error"),
    (b"set big 0 0 5\r\nhello\r\n", b"SERVER_ERROR object too large for cache\r\n", "set", ["big"], "Server Error"),
    (b"slabs frob\r\n", b"ERROR\r\n", "slabs", None, "Error"),
])
def test_text_rejected_command_keeps_its_request(req, resp, command, keys, status):
    evs = _run([(0, req + b"version\r\n"), (1, resp + b"VERSION 1.6.18\r\n")])
    assert len(evs) == 2
    mc, st, note = evs[0]
    assert mc["request"]["command"] == command and mc["request"].get("keys") == keys
    assert st == status and note is None
    word = resp.split(b" ")[0].strip().decode()
    assert mc["response"]["command"] == word
    if word != "ERROR":
        assert mc["response"]["error_msg"] == resp.split(b" ", 1)[1].strip().decode()
    assert evs[1][0]["request"]["command"] == "version" and evs[1][0]["response"]["command"] == "VERSION"


def test_text_rejected_command_reports_only_the_arguments_that_parsed():
    evs = _run([(0, b"set k 7 0 x\r\nincr k abc noreply\r\n"),
                (1, b"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR invalid numeric delta argument\r\n")])
    assert evs[0][0]["request"] == {"command": "set", "type": "Store", "count_values": 0, "keys": ["k"],
                                    "flags": 7, "exptime": 0}
    assert evs[1][0]["request"] == {"command": "incr", "type": "Counter", "keys": ["k"]}


def test_text_bad_data_chunk_pairs_with_client_error():
    evs = _run([(0, b"set k 0 0 3\r\nabcdef\r\n"), (1, b"CLIENT_ERROR bad data chunk\r\nERROR\r\n")],
               parseunknown=True)
    assert [(mc["request"]["command"], mc["response"]["command"], st, n) for mc, st, n in evs] == [
        ("set", "CLIENT_ERROR", "Client Error", "data block not followed by CRLF (bad data chunk)"),
        ("UNKNOWN", "ERROR", "Error", None)]


def test_udp_quiet_multi_get_in_one_datagram():
    """GetKQ a b c + Noop in one datagram; memcached answers the hits and the
    Noop each in a message of its own, with the datagram's request id."""
    p, events = make(udptransactiontimeout="50ms")
    req = b"".join(_q(0x80, 0x0D, k, opaque=10 + i) for i, k in enumerate((b"a", b"b", b"c"))) \
        + _q(0x80, 0x0A, opaque=20)
    p.parse_udp(Packet(1 * MS, CLI, memoryview(udp(9, req))))
    p.parse_udp(Packet(2 * MS, SRV, memoryview(udp(9, _q(0x81, 0x0D, b"b", b"bee", opaque=11)))))
    assert len(events) == 2                  # a: a miss (b answered after it), b with its answer
    p.parse_udp(Packet(3 * MS, SRV, memoryview(udp(9, _q(0x81, 0x0A, opaque=20)))))
    assert [(e["memcache"]["request"].get("keys"), e["memcache"].get("response", {}).get("count_values"),
             e["status"], e["network"]["transport"], e["client"]["port"]) for e in events] == [
        (["a"], None, "OK", "udp", 40000), (["b"], 1, "OK", "udp", 40000), (["c"], None, "OK", "udp", 40000),
        (None, None, "OK", "udp", 40000)]
    assert events[1]["memcache"]["response"]["keys"] == ["b"] and events[1]["event"]["duration"] == 1 * MS
    assert events[0]["error"]["message"] == "no response (quiet request)"
    assert events[3]["memcache"]["response"]["opcode"] == "No-op"
    assert p._udp.open == {}                  # done: nothing waits for a timeout
    # without the Noop's answer, the run is published at the timeout
    p.parse_udp(Packet(10 * MS, CLI, memoryview(udp(10, req))))
    p.parse_udp(Packet(11 * MS, SRV, memoryview(udp(10, _q(0x81, 0x0D, b"a", b"A", opaque=10)))))
    assert len(events) == 5
    p.expire(70 * MS)
    assert len(events) == 8
    assert [e["memcache"]["request"].get("keys") for e in events[4:]] == [["a"], ["b"], ["c"], None]
    assert events[7]["status"] == "Server Error" and "no response" in events[7]["error"]["message"]
    # a new request datagram on the same id starts a new exchange
    p.parse_udp(Packet(80 * MS, CLI, memoryview(udp(11, req))))
    p.parse_udp(Packet(81 * MS, CLI, memoryview(udp(11, b"version\r\n"))))
    assert len(events) == 12 and events[11]["memcache"]["request"]["opcode"] == "No-op"
    p.flush_all(90 * MS)
    assert events[-1]["memcache"]["request"]["command"] == "version" and len(events) == 13
