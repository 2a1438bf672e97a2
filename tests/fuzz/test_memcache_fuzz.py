"""Hypothesis properties of the memcache analyser: arbitrary bytes raise only
the memcache ParseError; split points never change the messages; after any
input the parser is in a legal state; the plugin (TCP and UDP) never lets
anything but ParseError out, whatever it is fed."""
from __future__ import annotations

import os
import struct

from hypothesis import given, settings, strategies as st

from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.memcache import MemcachePlugin
from worker.protos.memcache.parser import MemcacheParser, ParseError, State

N = int(os.environ.get("MEMCACHE_FUZZ_N", "400"))
HDR = struct.Struct("!BBHBBHIIQ")

FRAGMENTS = [
    b"get a b\r\n", b"set k 0 0 3\r\n", b"abc\r\n", b"VALUE k 0 3\r\n", b"END\r\n", b"STORED\r\n",
    b"STAT pid 1\r\n", b"12\r\n", b"incr k 1 noreply\r\n", b"quit\r\n", b"CLIENT_ERROR x\r\n",
    b"\r\n", b"\r", b" ", b"noreply", b"slabs automove 1\r\n",
    HDR.pack(0x80, 0x01, 1, 8, 0, 0, 10, 1, 0), HDR.pack(0x81, 0x05, 0, 0, 0, 0, 8, 1, 0),
    HDR.pack(0x81, 0x10, 3, 0, 0, 0, 5, 2, 0), HDR.pack(0x80, 0x11, 0, 0, 0, 0, 0, 3, 0),
    b"\x00" * 8, b"pid42",
    HDR.pack(0x80, 0x0D, 1, 0, 0, 0, 1, 0, 0) + b"a", HDR.pack(0x81, 0x0D, 1, 4, 0, 0, 6, 0, 0) + b"\0\0\0\0a1",
    HDR.pack(0x80, 0x09, 1, 0, 0, 0, 1, 5, 0) + b"b", HDR.pack(0x80, 0x0A, 0, 0, 0, 0, 0, 0, 0),
    HDR.pack(0x81, 0x0A, 0, 0, 0, 0, 0, 0, 0), b"get\r\n", b"incr k x\r\n", b"ERROR\r\n",
]
mc_like = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=30).map(b"".join)
inputs = st.binary(max_size=512) | mc_like


def run(chunks, unknown=False):
    p = MemcacheParser(value_keep=4, max_values=-1, parse_unknown=unknown, max_buffer=256)
    msgs = []
    try:
        for c in chunks:
            msgs += p.feed(c, 1)
        err = None
    except ParseError as e:
        msgs += e.messages
        err = e
    assert isinstance(p.state, State)
    return msgs, err, p


@settings(max_examples=N, deadline=None)
@given(inputs, st.booleans())
def test_only_parse_error(data, unknown):
    run([data], unknown)


@settings(max_examples=N, deadline=None)
@given(mc_like, st.lists(st.integers(min_value=0, max_value=600), max_size=6))
def test_split_invariance(data, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    whole, e1, _ = run([data])
    split, e2, _ = run(chunks)
    if e1 is None and e2 is None:
        assert whole == split
    else:
        # the error is found at the same message: the messages before it agree
        assert (e1 is None) == (e2 is None)
        assert whole == split


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs), max_size=8), st.booleans())
def test_tcp_plugin_never_crashes(segments, gap):
    events = []
    plugin = MemcachePlugin({"ports": [11211], "maxvalues": 2}, events.append)
    tt = TcpTuple("10.0.0.1", 1234, "10.0.0.2", 11211, 1)
    state = None
    for i, (d, data) in enumerate(segments):
        tup = tt.ip_port() if d == 0 else tt.ip_port().reverse()
        try:
            state = plugin.parse(Packet(i, tup, memoryview(data)), tt, d, state)
        except ParseError:
            state = None
        if gap and state is not None and i == 1:
            state, drop = plugin.gap_in_stream(tt, d, 7, state)
    plugin.flush(tt, state, 99)
    for ev in events:
        assert ev["type"] == "memcache" and "memcache" in ev


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), inputs),
                max_size=10))
def test_udp_plugin_never_crashes(datagrams):
    events = []
    plugin = MemcachePlugin({"ports": [11211], "udptransactiontimeout": "1ns"}, events.append)
    cli = IpPortTuple(UDP, "10.0.0.1", 1234, "10.0.0.2", 11211)
    for i, (d, rid, seq, total, data) in enumerate(datagrams):
        payload = struct.pack("!HHHH", rid, seq, total, 0) + data if i % 5 else data
        try:
            plugin.parse_udp(Packet(i, cli if d == 0 else cli.reverse(), memoryview(payload)))
        except ParseError:
            pass
        if i % 3 == 2:
            plugin.expire(i)
    plugin.flush_all(100)
    assert not plugin._udp.open


def _bin(magic, op, key=b"", value=b"", opaque=0):
    extras = b"\0\0\0\0" if magic == 0x81 and value else b""
    return HDR.pack(magic, op, len(key), len(extras), 0, 0, len(extras) + len(key) + len(value), opaque, 0) \
        + extras + key + value


@settings(max_examples=max(50, N // 4), deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.booleans(), st.booleans(), st.booleans(),
       st.lists(st.integers(1, 80), max_size=4))
def test_quiet_multi_get_pairs_every_key(hits, keyed, shared_opaque, udp, cuts):
    """A run of quiet gets closed by a Noop, any hits, keyed (GetKQ) or not
    (GetQ), one opaque or one each, over TCP (split anywhere) or UDP: one
    event per get and one for the Noop; each hit carries one value, the one
    of its own key whenever the wire tells (GetKQ, or distinct opaques)."""
    op = 0x0D if keyed else 0x09
    keys = [b"k%d" % i for i in range(len(hits))]
    opq = (lambda i: 7) if shared_opaque else (lambda i: 100 + i)
    req = b"".join(_bin(0x80, op, k, opaque=opq(i)) for i, k in enumerate(keys)) + _bin(0x80, 0x0A, opaque=1)
    resp = b"".join(_bin(0x81, op, k if keyed else b"", b"v-" + k, opaque=opq(i))
                    for i, k in enumerate(keys) if hits[i]) + _bin(0x81, 0x0A, opaque=1)
    events = []
    plugin = MemcachePlugin({"ports": [11211], "maxvalues": -1, "maxbytespervalue": 0}, events.append)
    if udp:
        cli = IpPortTuple(UDP, "10.0.0.1", 1234, "10.0.0.2", 11211)
        plugin.parse_udp(Packet(1, cli, memoryview(struct.pack("!HHHH", 3, 0, 1, 0) + req)))
        for i, k in enumerate(keys):
            if hits[i]:
                m = _bin(0x81, op, k if keyed else b"", b"v-" + k, opaque=opq(i))
                plugin.parse_udp(Packet(2, cli.reverse(), memoryview(struct.pack("!HHHH", 3, 0, 1, 0) + m)))
        plugin.parse_udp(Packet(3, cli.reverse(), memoryview(struct.pack("!HHHH", 3, 0, 1, 0)
                                                             + _bin(0x81, 0x0A, opaque=1))))
        assert not plugin._udp.open
    else:
        tt = TcpTuple("10.0.0.1", 1234, "10.0.0.2", 11211, 1)
        state = plugin.parse(Packet(1, tt.ip_port(), memoryview(req)), tt, 0, None)
        cs = sorted({c for c in cuts if c < len(resp)})
        for a, b in zip([0] + cs, cs + [len(resp)]):
            state = plugin.parse(Packet(2, tt.ip_port().reverse(), memoryview(resp[a:b])), tt, 1, state)
        plugin.flush(tt, state, 9)
    assert len(events) == len(keys) + 1
    gets = events[:-1]
    assert [e["memcache"]["request"]["keys"] for e in gets] == [[k.decode()] for k in keys]
    answered = [e for e in gets if "response" in e["memcache"]]
    assert len(answered) == sum(hits)
    for e in answered:
        r = e["memcache"]["response"]
        assert r["count_values"] == 1 and len(r["values"]) == 1
    if keyed or not shared_opaque:
        import base64
        for i, e in enumerate(gets):
            mc = e["memcache"]
            assert ("response" in mc) == hits[i]
            if hits[i]:
                assert base64.b64decode(mc["response"]["values"][0]) == b"v-" + keys[i]
    last = events[-1]["memcache"]
    assert last["request"]["opcode"] == "No-op" and "count_values" not in last["response"]
