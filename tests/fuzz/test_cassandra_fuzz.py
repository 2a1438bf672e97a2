"""Hypothesis properties of the Cassandra analyser: arbitrary bytes (and
mutated CQL frames and v5 segments) raise only the Cassandra ParseError from
the parser and BodyError from the body decoder; split points never change the
messages; the plugin never raises and its buffers stay bounded."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from tests.unit.protos.cql_frames import frame, i32, lz4_body, query, rows_body, s, segment, snappy_body, startup
from worker.plugin import Packet, TcpTuple
from worker.protos.cassandra import CassandraPlugin
from worker.protos.cassandra.body import BodyError, decode_request, decode_response
from worker.protos.cassandra.parser import CassandraParser, Codec, ParseError

N = int(os.environ.get("CASSANDRA_FUZZ_N", "300"))
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 9042, 1)
COLS = [("id", 0x09), ("name", 0x0D)]

SEEDS_REQ = [
    startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}), query("SELECT * FROM t", 3),
    query("SELECT 1", 4, 5), frame(0x05, b"", 1), frame(0x0B, b"\x00\x01" + s("SCHEMA_CHANGE"), 2),
    frame(0x07, lz4_body(query("SELECT 2", 0)[9:]), 7, flags=1), segment(query("SELECT 3", 9, 5)),
    segment(query("SELECT 4", 9, 5), lz4=True),
]
SEEDS_RESP = [
    frame(0x02, b"", 0, response=True), frame(0x08, rows_body("ks", "t", COLS, [[i32(1), b"a"]]), 3, response=True),
    frame(0x08, snappy_body(rows_body("ks", "t", COLS, [])), 3, response=True, flags=1),
    frame(0x00, i32(0x1000) + s("x") + b"\x00\x04" + i32(3) + i32(1), 2, response=True),
    frame(0x0C, s("STATUS_CHANGE") + s("UP") + b"\x04\x7f\x00\x00\x01" + i32(9042), -1, response=True),
    frame(0x08, bytes(16) + b"\x00\x01" + s("w") + i32(1), 5, response=True, flags=0x0A),
    frame(0x02, b"", 0, 5, True) + segment(frame(0x08, i32(1), 1, 5, True)),
]


def mutate(seeds):
    @st.composite
    def strat(draw):
        parts = draw(st.lists(st.sampled_from(seeds), min_size=1, max_size=4))
        data = bytearray(b"".join(parts))
        for _ in range(draw(st.integers(0, 4))):
            if not data:
                break
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
        return bytes(data)
    return strat()


def run(is_request, data, cuts, compression=""):
    p = CassandraParser(is_request, 4096, frozenset(), Codec(compression))
    msgs = []
    err = False
    pos = 0
    try:
        for c in list(cuts) + [len(data)]:
            c = min(max(c, pos), len(data))
            msgs += p.feed(memoryview(data[pos:c]), pos)
            pos = c
    except ParseError:
        err = True
    for m in msgs:
        try:
            if m.is_request:
                decode_request(m)
            else:
                decode_response(m, True)
                decode_response(m, False)
        except BodyError:
            pass
    assert len(p.buf) <= 4096 + 64 * 1024 and len(p.segbuf) <= 4096 + 2 * 128 * 1024
    return [(m.opcode, m.stream, m.length, m.body, m.notes) for m in msgs], err


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=300) | mutate(SEEDS_REQ), st.lists(st.integers(0, 400), max_size=5),
       st.sampled_from(["", "lz4", "snappy"]))
def test_requests_only_parse_error(data, cuts, comp):
    whole, err = run(True, data, [], comp)
    split, err2 = run(True, data, sorted(cuts), comp)
    if not err and not err2:
        assert whole == split


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=300) | mutate(SEEDS_RESP), st.lists(st.integers(0, 400), max_size=5),
       st.sampled_from(["", "lz4", "snappy"]))
def test_responses_only_parse_error(data, cuts, comp):
    whole, err = run(False, data, [], comp)
    split, err2 = run(False, data, sorted(cuts), comp)
    if not err and not err2:
        assert whole == split


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=200) | mutate(SEEDS_REQ + SEEDS_RESP),
                          st.integers(0, 3)), max_size=8), st.booleans())
def test_plugin_never_raises(chunks, quirks):
    events = []
    plugin = CassandraPlugin({"ports": [9042], "packetbeat_quirks": quirks}, events.append)
    state = None
    ts = 0
    for direction, data, action in chunks:
        ts += 1000
        ipp = TUPLE.ip_port() if direction == 0 else TUPLE.ip_port().reverse()
        if action == 3 and state is not None:
            state, drop = plugin.gap_in_stream(TUPLE, direction, len(data) + 1, state)
            continue
        state = plugin.parse(Packet(ts, ipp, memoryview(data)), TUPLE, direction, state)
    plugin.flush(TUPLE, state, ts)
    for ev in events:
        assert ev["type"] == "cassandra"
