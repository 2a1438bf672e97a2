"""Hypothesis: the MySQL parser raises only its ParseError on arbitrary bytes,
in any expectation state and any split, and the plugin never raises at all
(a garbage or truncated stream never crashes a worker)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.protos.test_mysql_parser import (coldef, greeting, handshake_response, ok, pkt, query,
                                                 result_set, text_row)
from worker.plugin import IpPortTuple, Packet, TcpTuple
from worker.protos.mysql import MysqlPlugin
from worker.protos.mysql.parser import MysqlParser, ParseError, Resp, State

TT = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 3306, 1)
FWD = IpPortTuple(6, "10.0.0.1", 40000, "10.0.0.2", 3306)
VALID = (greeting() + pkt(2, ok())
         + result_set(1, [coldef(b"d", b"t", b"a"), coldef(b"d", b"t", b"b")], [text_row(b"1", None)] * 3))

chunks = st.lists(st.binary(max_size=300), max_size=12)
expects = st.lists(st.sampled_from(list(Resp)), max_size=4)


def _feed(p: MysqlParser, parts) -> None:
    for part in parts:
        try:
            p.feed(part, 1)
        except ParseError:
            p.reset()
    assert p.state in set(State)


@settings(max_examples=400, deadline=None)
@given(chunks, expects, st.booleans())
def test_arbitrary_bytes_only_parse_error(parts, exp, is_client):
    p = MysqlParser(is_client, keep=256)
    for e in exp:
        p.expect(e)
    _feed(p, parts)
    p.on_gap(10)
    p.flush()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID)), st.binary(max_size=200), expects)
def test_truncated_or_corrupted_valid_stream(cut, noise, exp):
    p = MysqlParser(False)
    for e in exp:
        p.expect(e)
    _feed(p, [VALID[:cut], noise, VALID[cut:]])


@settings(max_examples=300, deadline=None)
@given(chunks, chunks, st.booleans())
def test_compressed_garbage(c_parts, s_parts, client):
    p = MysqlParser(client)
    p.enable_compression()
    _feed(p, c_parts + s_parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=200)), max_size=15), st.booleans())
def test_plugin_never_raises(segments, prefix):
    events: list[dict] = []
    plugin = MysqlPlugin({"ports": [3306], "send_request": True, "send_response": True}, events.append)
    state = None
    t = 1
    if prefix:
        segments = [(1, greeting()), (0, handshake_response()), (1, pkt(2, ok())), (0, query(b"select 1"))] + segments
    for direction, data in segments:
        t += 1000
        tup = FWD if direction == 0 else FWD.reverse()
        state = plugin.parse(Packet(t, tup, memoryview(data)), TT, direction, state)
    state, _ = plugin.gap_in_stream(TT, 1, 7, state) if state is not None and t % 2 else (state, False)
    plugin.flush(TT, state, t)
    assert all(e["type"] == "mysql" for e in events)
