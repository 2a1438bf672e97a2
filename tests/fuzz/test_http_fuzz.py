"""Hypothesis properties of HttpParser: arbitrary bytes raise only the HTTP
ParseError; split points never change the result; after any input the
parser is in a legal state and still usable after reset()."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from worker.protos.http.parser import HttpParser, ParseError, State

TS = 1_000
N = int(os.environ.get("HTTP_FUZZ_N", "400"))   # examples per property; raise for long runs

FRAGMENTS = [
    b"GET / HTTP/1.1\r\n", b"POST /x?a=1 HTTP/1.0\r\n", b"HEAD /h HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 204 No Content\r\n", b"HTTP/1.1 100 Continue\r\n",
    b"Content-Length: 3\r\n", b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Content-Type: text/html\r\n", b"Content-Encoding: gzip\r\n", b"Host: a\r\n",
    b"Connection: close\r\n", b"\r\n", b"\n", b"3\r\nabc\r\n", b"0\r\n\r\n", b"abc",
    b"X: 1\r\n two\r\n", b" ", b":", b"\r",
]

http_like = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=30).map(b"".join)
inputs = st.binary(max_size=512) | http_like


def run(chunks, methods, fin=True, limit=256):
    p = HttpParser(max_message_size=limit, request_body_for=(b"text",), response_body_for=(b"html",))
    for m in methods:
        p.push_request_method(m)
    msgs = []
    try:
        for c in chunks:
            msgs += p.feed(c, TS)
        if fin:
            msgs += p.on_fin()
        err = None
    except ParseError as e:
        msgs += e.messages
        err = "error"
    return msgs, err, p


@settings(max_examples=N, deadline=None)
@given(inputs, st.lists(st.sampled_from([b"GET", b"HEAD", b"CONNECT"]), max_size=3))
def test_only_parse_error(data, methods):
    _msgs, _err, p = run([data], methods)
    assert p.state in State


@settings(max_examples=N, deadline=None)
@given(http_like, st.lists(st.integers(min_value=0, max_value=600), max_size=8),
       st.lists(st.sampled_from([b"GET", b"HEAD"]), max_size=3))
def test_split_points_do_not_change_result(data, cuts, methods):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    for limit in (48, 10_000):
        whole = run([data], methods, limit=limit)
        split = run(chunks, methods, limit=limit)
        assert whole[0] == split[0] and whole[1] == split[1]


@settings(max_examples=N // 2, deadline=None)
@given(inputs, st.integers(min_value=1, max_value=5000), inputs)
def test_gap_then_reset_leaves_a_working_parser(data, gap, more):
    p = HttpParser(max_message_size=256)
    try:
        p.feed(data, TS)
        if p.on_gap(gap):
            p.drain()
            p.feed(more, TS)
    except ParseError:
        pass
    p.reset()
    [m] = p.feed(b"GET /ok HTTP/1.1\r\n\r\n", TS)
    assert m.uri == b"/ok" and p.state == State.START
