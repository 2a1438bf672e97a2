"""Hypothesis properties of the PostgreSQL analyser: arbitrary bytes raise
only the pgsql ParseError; split points never change the messages of valid
streams; the plugin survives any sequence of segments, gaps and flushes in
both directions (a truncated or garbage stream never crashes a worker)."""
from __future__ import annotations

import os
import struct

from hypothesis import given, settings, strategies as st

from worker.plugin import IpPortTuple, Packet, TcpTuple
from worker.protos.pgsql import PgsqlPlugin
from worker.protos.pgsql import parser as pgparser
from worker.protos.pgsql.parser import ParseError, PgsqlParser, split_statements

TS = 1_000
N = int(os.environ.get("PGSQL_FUZZ_N", "400"))   # examples per property; raise for long runs


def msg(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack("!I", len(body) + 4) + body


FRONTEND = [
    msg(b"Q", b"select 1; select 'a;b'\0"), msg(b"Q", b"\0"), msg(b"Q", b"copy t from stdin\0"),
    msg(b"P", b"s1\0select $1\0\0\0"), msg(b"P", b"\0SET x = 1\0\0\0"),
    msg(b"B", b"p1\0s1\0\0\0\0\0\0\0"), msg(b"B", b"\0\0\0\0\0\0\0\0"), msg(b"D", b"P\0"), msg(b"D", b"Sp1\0"),
    msg(b"E", b"\0\0\0\0\0"), msg(b"E", b"p1\0\0\0\0\1"), msg(b"S"), msg(b"H"), msg(b"C", b"Ss1\0"),
    msg(b"d", b"1\tx\n"), msg(b"c"), msg(b"f", b"no\0"), msg(b"X"), msg(b"F", b"\0" * 10),
    struct.pack("!II", 8, 80877103), struct.pack("!II", 12, 196608) + b"\0\0\0\0",
    struct.pack("!IIII", 16, 80877102, 1, 2),
]
BACKEND = [
    msg(b"T", b"\0\1a\0" + b"\0" * 18), msg(b"T", b"\0\0"), msg(b"D", b"\0\1\0\0\0\1x"),
    msg(b"D", b"\0\2\xff\xff\xff\xff\0\0\0\0"), msg(b"C", b"SELECT 1\0"), msg(b"I"), msg(b"s"),
    msg(b"E", b"SERROR\0C42P01\0Mno\0\0"), msg(b"N", b"SNOTICE\0Mhi\0\0"), msg(b"Z", b"I"),
    msg(b"1"), msg(b"2"), msg(b"3"), msg(b"n"), msg(b"t", b"\0\0"), msg(b"G", b"\0\0\0"), msg(b"H", b"\0\0\0"),
    msg(b"d", b"row\n"), msg(b"c"), msg(b"R", b"\0\0\0\0"), msg(b"S", b"a\0b\0"), msg(b"K", b"\0" * 8),
    b"N", b"S",
]

front_like = st.lists(st.sampled_from(FRONTEND) | st.binary(max_size=6), max_size=25).map(b"".join)
back_like = st.lists(st.sampled_from(BACKEND) | st.binary(max_size=6), max_size=25).map(b"".join)


def run(client: bool, chunks, ssl=False, max_rows=3, max_row_length=4):
    p = PgsqlParser(client, max_rows, max_row_length)
    if ssl:
        p.expect_ssl_answer()
    msgs = []
    err = None
    for c in chunks:
        try:
            msgs += p.feed(memoryview(c), TS)
        except ParseError as e:
            msgs += e.messages
            err = "error"
            break
    return msgs, err


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@settings(max_examples=N, deadline=None)
@given(st.booleans(), st.booleans(), st.binary(max_size=512) | front_like | back_like)
def test_only_parse_error(client, ssl, data):
    run(client, [data], ssl)          # anything else than ParseError fails the test


@settings(max_examples=N, deadline=None)
@given(st.booleans(), st.lists(st.sampled_from(FRONTEND), max_size=12),
       st.lists(st.sampled_from(BACKEND[:-2]), max_size=12), st.lists(st.integers(0, 4096), max_size=10))
def test_splits_do_not_change_valid_streams(client, fmsgs, bmsgs, cuts):
    data = b"".join(fmsgs if client else bmsgs)
    whole = run(client, [data])
    assert run(client, _chunks(data, cuts)) == whole
    assert run(client, [data[i:i + 1] for i in range(len(data))]) == whole


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=300))
def test_split_statements_never_fails(text):
    parts = split_statements(text)
    assert all(p and p == p.strip() for p in parts)
    assert sum(len(p) for p in parts) <= len(text)


OPS = st.lists(st.tuples(st.sampled_from(["c", "s", "gap_c", "gap_s", "flush"]),
                         front_like | back_like | st.binary(max_size=64), st.integers(1, 3000)), max_size=20)


@settings(max_examples=N, deadline=None)
@given(OPS, st.booleans())
def test_plugin_survives_anything(ops, small):
    if small:   # also exercise the messages-too-big path
        pgparser_max = pgparser.MAX_MESSAGE_SIZE
        pgparser.MAX_MESSAGE_SIZE = 32
    try:
        events: list[dict] = []
        plugin = PgsqlPlugin({"ports": [5432], "send_request": True, "send_response": True,
                              "max_rows": 2, "max_row_length": 3}, events.append)
        tup = TcpTuple("127.0.0.1", 5555, "127.0.0.1", 5432, 1)
        state = None
        ts = TS
        for op, data, n in ops:
            ts += 1000
            if op in ("c", "s"):
                d = 0 if op == "c" else 1
                ipt = IpPortTuple(6, "127.0.0.1", 5555, "127.0.0.1", 5432)
                state = plugin.parse(Packet(ts, ipt if d == 0 else ipt.reverse(), memoryview(data)), tup, d, state)
            elif op.startswith("gap"):
                state, _drop = plugin.gap_in_stream(tup, 0 if op == "gap_c" else 1, n, state)
            else:
                plugin.flush(tup, state, ts)
                state = None
        plugin.flush(tup, state, ts)
        for ev in events:
            assert ev["type"] == "pgsql" and ev["status"] in ("OK", "Error")
            assert ev["event"].get("duration", 0) >= 0
    finally:
        if small:
            pgparser.MAX_MESSAGE_SIZE = pgparser_max
