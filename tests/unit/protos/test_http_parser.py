"""HttpParser on hand-written byte strings. Every fixture is fed whole, byte
by byte, and split at seeded random points: the messages must be the same."""
from __future__ import annotations

import random

import pytest

from worker.plugin import ParseError as BaseParseError
from worker.protos.http.parser import HttpMessage, HttpParser, ParseError, State

TS = 1_700_000_000_000_000_000


def _splits(data: bytes):
    yield "whole", [data]
    yield "bytewise", [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    for n in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        yield "random%d" % n, [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def feed_all(data: bytes, methods=(), fin=False, **kw) -> list[HttpMessage]:
    """Feed ``data`` in every split; all splits must agree; return the messages."""
    results = []
    for _name, chunks in _splits(data):
        p = HttpParser(**kw)
        for m in methods:
            p.push_request_method(m)
        msgs = []
        for c in chunks:
            msgs += p.feed(memoryview(c), TS)
        if fin:
            msgs += p.on_fin()
        results.append(msgs)
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def test_get_request_no_body():
    raw = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n"
    [m] = feed_all(raw)
    assert m.is_request and m.method == b"GET" and m.uri == b"/index.html?a=1"
    assert m.version == b"1.1"
    assert m.headers == {b"host": b"example.com", b"user-agent": b"curl/8.0"}
    assert m.size == len(raw) and m.raw_headers == raw
    assert m.content_length == 0 and not m.has_content_length
    assert m.ts == TS


def test_content_length_bodies_and_pipelining():
    r1 = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    r2 = b"GET /b HTTP/1.1\r\n\r\n"
    r3 = b"PUT /c HTTP/1.1\r\ncontent-length: 2\r\n\r\nok"
    msgs = feed_all(r1 + r2 + r3, request_body_for=(b"text/",))
    assert [m.method for m in msgs] == [b"POST", b"GET", b"PUT"]
    assert msgs[0].body == b"hello" and msgs[0].send_body and msgs[0].size == len(r1)
    assert msgs[1].size == len(r2)
    assert msgs[2].body == b"" and not msgs[2].save_body and msgs[2].content_length == 2
    assert msgs[2].size == len(r3)


def test_response_status_and_phrase():
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nContent-Type: text/html\r\n\r\nabc"
    [m] = feed_all(raw, response_body_for=(b"html",))
    assert not m.is_request and m.status_code == 404 and m.status_phrase == b"Not Found"
    assert m.body == b"abc" and m.content_length == 3 and m.size == len(raw)


def test_chunked_with_trailers():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    body = b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"
    nxt = b"HTTP/1.1 204 No Content\r\n\r\n"
    msgs = feed_all(head + body + nxt, methods=(b"GET", b"DELETE"), response_body_for=(b"json",))
    m, m2 = msgs
    assert m.chunked and m.body == b'{"a":1}' and m.content_length == 7
    assert m.headers[b"x-checksum"] == b"abc" and m.headers[b"x-more"] == b"1"
    assert m.size == len(head) + len(body)
    assert m2.status_code == 204 and m2.size == len(nxt)


def test_close_delimited_response_ends_at_fin():
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>body</html>"
    assert feed_all(raw) == []              # no FIN: still waiting
    [m] = feed_all(raw, fin=True, response_body_for=(b"html",))
    assert m.body == b"<html>body</html>" and m.content_length == 17
    assert m.size == len(raw)


def test_head_response_and_bodyless_statuses():
    raw = (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"           # answer to HEAD
           b"HTTP/1.1 100 Continue\r\n\r\n"                              # interim
           b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    msgs = feed_all(raw, methods=(b"HEAD", b"GET", b"GET"))
    assert [m.status_code for m in msgs] == [200, 100, 304, 200]
    assert msgs[0].content_length == 1000 and msgs[0].size == 41
    assert msgs[3].content_length == 2


def test_request_with_expect_100_continue():
    raw = (b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
           b"data")
    [m] = feed_all(raw)
    assert m.headers[b"expect"] == b"100-continue" and m.content_length == 4


def test_obs_fold_repeated_headers_and_bare_lf():
    raw = (b"GET / HTTP/1.1\nX-Long: one\n  two\nSet: a\nset: b\n\n")
    [m] = feed_all(raw)
    assert m.headers == {b"x-long": b"one two", b"set": b"a, b"}
    assert m.size == len(raw)


def test_leading_empty_lines_are_skipped():
    raw = b"\r\n\r\nGET / HTTP/1.0\r\n\r\n"
    [m] = feed_all(raw)
    assert m.method == b"GET" and m.size == len(raw) - 4


def test_content_and_transfer_codings_order():
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: deflate, chunked\r\n\r\n"
           b"1\r\nx\r\n0\r\n\r\n")
    [m] = feed_all(raw, methods=(b"GET",))
    assert m.chunked and m.encodings == [b"gzip", b"deflate"]


def test_max_message_size_cuts_body_but_keeps_message():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: binary\r\nContent-Length: 2048\r\n\r\n"
    raw = head + bytes(range(256)) * 8 + b"HTTP/1.1 204 No Content\r\n\r\n"
    msgs = feed_all(raw, methods=(b"GET", b"GET"), max_message_size=1024, response_body_for=(b"binary",))
    m = msgs[0]
    assert m.content_length == 2048 and m.size == len(head) + 2048
    assert len(m.body) == 1024 - len(head) and m.body_truncated
    assert m.body == (bytes(range(256)) * 8)[:1024 - len(head)]
    assert msgs[1].status_code == 204


def test_header_section_larger_than_max_is_an_error():
    p = HttpParser(max_message_size=64)
    with pytest.raises(ParseError):
        p.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 100, TS)


def test_gap_in_content_length_body_is_noted_and_survived():
    p = HttpParser(response_body_for=(b"text",))
    p.push_request_method(b"GET")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n"
    assert p.feed(head + b"abc", TS) == []
    assert p.on_gap(4) is True
    [m] = p.feed(b"hij", TS + 5)
    assert m.notes == ["Packet loss while capturing the response"]
    assert m.body == b"abchij" and m.body_truncated and m.size == len(head) + 10
    assert m.content_length == 10 and m.ts == TS


def test_gap_reaching_the_end_completes_the_message():
    p = HttpParser()
    p.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", TS)
    assert p.on_gap(8) is True
    [m] = p.drain()
    assert m.notes == ["Packet loss while capturing the request"] and m.is_request


def test_gap_in_headers_is_fatal_and_between_messages_harmless():
    p = HttpParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: x", TS)
    assert p.on_gap(10) is False
    q = HttpParser()
    assert q.on_gap(10) is True


def test_gap_in_close_delimited_body_counts_bytes():
    p = HttpParser()
    p.feed(b"HTTP/1.0 200 OK\r\n\r\nabc", TS)
    assert p.on_gap(100) is True
    p.feed(b"def", TS)
    [m] = p.on_fin()
    assert m.content_length == 106 and m.notes == ["Packet loss while capturing the response"]


def test_fin_with_incomplete_headers_returns_nothing():
    p = HttpParser()
    p.feed(b"GET / HTTP/1.1\r\nHost", TS)
    assert p.on_fin() == []
    assert p.state == State.START


def test_message_ts_is_the_packet_where_it_began():
    p = HttpParser()
    assert p.feed(b"GET /a HTTP/1.1\r\n", 100) == []
    msgs = p.feed(b"\r\nGET /b HTT", 200)
    assert [m.ts for m in msgs] == [100]
    [m] = p.feed(b"P/1.1\r\n\r\n", 300)
    assert m.ts == 200 and m.uri == b"/b"


@pytest.mark.parametrize("raw", [
    b"HELLO\r\n",
    b"GET /\r\n",
    b"G(T / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/x.1\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
])
def test_garbage_raises_only_parse_error(raw):
    p = HttpParser()
    p.push_request_method(b"GET")
    with pytest.raises(ParseError) as ei:
        p.feed(raw, TS)
    assert isinstance(ei.value, BaseParseError)


def test_parse_error_carries_the_messages_completed_before():
    p = HttpParser()
    with pytest.raises(ParseError) as ei:
        p.feed(b"GET /ok HTTP/1.1\r\n\r\nBROKEN LINE\r\n\r\n", TS)
    assert [m.uri for m in ei.value.messages] == [b"/ok"]
    assert p.drain() == []
    p.reset()
    [m] = p.feed(b"GET /again HTTP/1.1\r\n\r\n", TS)
    assert m.uri == b"/again"


def test_field_lines_seen_before_give_the_same_fields():
    """The whole-section path remembers field lines it has split: a line seen
    again, then folded, repeated or next to a bad line, is judged as new."""
    head = b"GET / HTTP/1.1\r\nHost: a.example\r\nX-Memo-Test: one\r\n"
    [first] = feed_all(head + b"\r\n")
    assert first.headers == {b"host": b"a.example", b"x-memo-test": b"one"}
    [folded] = feed_all(head + b" two\r\n\r\n")
    assert folded.headers == {b"host": b"a.example", b"x-memo-test": b"one two"}
    [repeated] = feed_all(head + b"X-Memo-Test: three\r\n\r\n")
    assert repeated.headers == {b"host": b"a.example", b"x-memo-test": b"one, three"}
    [again] = feed_all(head + b"\r\n")
    assert again.headers == first.headers and again.raw_headers == first.raw_headers
    with pytest.raises(ParseError):
        HttpParser().feed(head + b"Bad Name: x\r\n\r\n", TS)
    status = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    for _ in range(2):
        [resp] = feed_all(status)
        assert (resp.status_code, resp.status_phrase, resp.version) == (404, b"Not Found", b"1.1")


def test_chunk_size_digits_each_byte():
    # the hex check (a C loop when compiled) against the rule, for every byte value
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for c in range(256):
        if c in b"; \t\r\n":
            continue
        p = HttpParser()
        data = head + b"1" + bytes([c]) + b"\r\n"
        if chr(c) in "0123456789abcdefABCDEF":
            assert p.feed(data, TS) == [] and p.state == State.CHUNK_DATA, c
        else:
            with pytest.raises(ParseError):
                p.feed(data, TS)


@pytest.mark.parametrize("line, method, uri, version", [
    (b"GET /a HTTP/1.1", b"GET", b"/a", b"1.1"),
    (b"GET  /a b  HTTP/1.0", b"GET", b"/a b", b"1.0"),       # inner spaces: first and last split
    (b"POST /x?y=1 HTTP/1.1", b"POST", b"/x?y=1", b"1.1"),
])
def test_request_line_split_at_first_and_last_space(line, method, uri, version):
    if b" b " in line:
        with pytest.raises(ParseError):                     # a space inside the target is refused
            HttpParser().feed(line + b"\r\n\r\n", TS)
        return
    m, = feed_all(line + b"\r\n\r\n")
    assert (m.method, m.uri, m.version) == (method, uri, version)


@pytest.mark.parametrize("line", [b"GET", b"GET /a", b" GET /a HTTP/1.1", b"GET /a HTTP/1.1 "])
def test_request_line_without_three_parts(line):
    with pytest.raises(ParseError):
        HttpParser().feed(line + b"\r\n\r\n", TS)
