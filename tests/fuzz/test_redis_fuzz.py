"""Hypothesis properties of the Redis analyser: arbitrary bytes raise only
the Redis ParseError; split points never change the messages; after any
input the parser is in a legal state and usable after reset(); a truncated
or garbage stream never makes the plugin raise."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from worker.plugin import Packet, TcpTuple
from worker.protos.redis import RedisPlugin
from worker.protos.redis.parser import ParseError, RedisParser

N = int(os.environ.get("REDIS_FUZZ_N", "400"))   # examples per property; raise for long runs
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 6379, 1)

FRAGMENTS = [
    b"*1\r\n", b"*2\r\n", b"*3\r\n", b"*0\r\n", b"*-1\r\n", b"*?\r\n", b"$3\r\nGET\r\n", b"$1\r\nk\r\n",
    b"$-1\r\n", b"$0\r\n\r\n", b"$?\r\n", b";2\r\nab\r\n", b";0\r\n", b".\r\n", b"+OK\r\n", b"-ERR x\r\n",
    b":12\r\n", b"%1\r\n", b"~2\r\n", b">3\r\n", b"|1\r\n", b"_\r\n", b"#t\r\n", b",1.5\r\n", b"(99\r\n",
    b"!3\r\nERR\r\n", b"=7\r\ntxt:abc\r\n", b"PING\r\n", b'SET k "v\r\n', b"\r\n", b"\n", b"\r",
]
resp_like = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=6), max_size=40).map(b"".join)
inputs = st.binary(max_size=512) | resp_like


def run(is_request: bool, chunks, limit=300):
    p = RedisParser(is_request, max_message_size=limit)
    msgs = []
    err = None
    try:
        for i, c in enumerate(chunks):
            msgs += p.feed(c, i)
    except ParseError as e:
        msgs += e.messages
        err = e
    return p, [(m.message, m.is_error, m.size, m.args, m.push) for m in msgs], err


@settings(max_examples=N, deadline=None)
@given(inputs, st.booleans())
def test_only_parse_error(data, is_request):
    p, _, _ = run(is_request, [data])
    assert p.buffered <= len(data)
    assert len(p._stack) <= 64


@settings(max_examples=N, deadline=None)
@given(inputs, st.booleans(), st.lists(st.integers(min_value=0, max_value=512), max_size=8))
def test_split_points_do_not_matter(data, is_request, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    _, whole, err1 = run(is_request, [data], limit=10**6)
    _, split, err2 = run(is_request, parts, limit=10**6)
    if err1 is None and err2 is None:
        assert whole == split
    else:
        # the same bytes are refused; what came before the error is the same
        assert (err1 is None) == (err2 is None) and whole == split


@settings(max_examples=N, deadline=None)
@given(inputs, st.booleans())
def test_usable_after_reset(data, is_request):
    p, _, _ = run(is_request, [data])
    p.reset()
    assert p.buffered == 0 and not p._stack
    if is_request:
        assert [m.message for m in p.feed(b"*1\r\n$4\r\nPING\r\n", 1)] == [b"PING"]
    else:
        assert [m.message for m in p.feed(b"+PONG\r\n", 1)] == [b"PONG"]


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs), max_size=12),
       st.integers(0, 3), st.sampled_from([0, 1, 2, 20000]))
def test_plugin_never_raises(segments, gap_at, qmax):
    events = []
    plugin = RedisPlugin({"queue_max_messages": qmax, "queue_max_bytes": 64 if qmax == 1 else 0},
                         events.append, max_message_size=300)
    state = None
    for i, (d, data) in enumerate(segments):
        ipp = TUPLE.ip_port() if d == 0 else TUPLE.ip_port().reverse()
        state = plugin.parse(Packet(i, ipp, memoryview(data)), TUPLE, d, state)
        if i == gap_at:
            state, drop = plugin.gap_in_stream(TUPLE, d, 10, state)
            assert drop and state is None
        state = plugin.received_fin(TUPLE, d, state) if i % 5 == 4 else state
    plugin.flush(TUPLE, state, 10**9)
    for ev in events:
        assert ev["type"] == "redis" and ev["status"] in ("OK", "Error")
        assert "redis" in ev
