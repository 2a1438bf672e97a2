"""PgsqlParser on hand-written byte strings (PostgreSQL protocol v3). Every
fixture is fed whole, byte by byte, and split at seeded random points: the
messages must be the same."""
from __future__ import annotations

import random
import struct

import pytest

from worker.plugin import ParseError as BaseParseError
from worker.protos.pgsql import parser as pgparser
from worker.protos.pgsql.parser import (READY, REQUEST, RESPONSE, SSL_ANSWER, SSL_REQUEST, SYNC,
                                        ParseError, PgsqlParser, split_statements)

TS = 1_700_000_000_000_000_000


# ----------------------------------------------------------------- builders

def msg(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack("!I", len(body) + 4) + body


def cstr(s: bytes) -> bytes:
    return s + b"\0"


def startup(user=b"root", db=b"test") -> bytes:
    body = struct.pack("!I", 196608) + cstr(b"user") + cstr(user) + cstr(b"database") + cstr(db) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


SSL_REQ = struct.pack("!II", 8, 80877103)
CANCEL = struct.pack("!IIII", 16, 80877102, 1234, 5678)


def query(q: bytes) -> bytes:
    return msg(b"Q", cstr(q))


def parse(name: bytes, q: bytes) -> bytes:
    return msg(b"P", cstr(name) + cstr(q) + b"\0\0")


def bind(portal: bytes, stmt: bytes) -> bytes:
    return msg(b"B", cstr(portal) + cstr(stmt) + b"\0\0" + b"\0\0" + b"\0\0")


def describe(kind: bytes, name: bytes) -> bytes:
    return msg(b"D", kind + cstr(name))


def execute(portal: bytes, max_rows: int = 0) -> bytes:
    return msg(b"E", cstr(portal) + struct.pack("!I", max_rows))


SYNC_MSG = msg(b"S")
FLUSH_MSG = msg(b"H")


def row_description(*names: bytes, fmt: int = 0) -> bytes:
    body = struct.pack("!H", len(names))
    for n in names:
        body += cstr(n) + struct.pack("!IHIhiH", 0, 0, 25, -1, -1, fmt)
    return msg(b"T", body)


def data_row(*vals) -> bytes:
    body = struct.pack("!H", len(vals))
    for v in vals:
        body += struct.pack("!i", -1) if v is None else struct.pack("!I", len(v)) + v
    return msg(b"D", body)


def complete(tag: bytes) -> bytes:
    return msg(b"C", cstr(tag))


def error(code=b"42P01", text=b'relation "x" does not exist', sev=b"ERROR", kind=b"E") -> bytes:
    return msg(kind, b"S" + cstr(sev) + b"V" + cstr(sev) + b"C" + cstr(code) + b"M" + cstr(text) + b"\0")


def ready(status=b"I") -> bytes:
    return msg(b"Z", status)


AUTH_OK = msg(b"R", struct.pack("!I", 0))
PARAM = msg(b"S", cstr(b"server_version") + cstr(b"15.2"))
KEYDATA = msg(b"K", struct.pack("!II", 1, 2))


def _splits(data: bytes):
    yield "whole", [data]
    yield "bytewise", [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    for n in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        yield "random%d" % n, [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def feed_all(data: bytes, client: bool, ssl: bool = False, **kw):
    """Feed ``data`` in every split; all splits must agree; return the messages."""
    results = []
    for _name, chunks in _splits(data):
        p = PgsqlParser(client, **kw)
        if ssl:
            p.expect_ssl_answer()
        msgs = []
        for c in chunks:
            msgs += p.feed(memoryview(c), TS)
        results.append(msgs)
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def requests(msgs):
    return [m for m in msgs if m.kind == REQUEST]


# ----------------------------------------------------------------- frontend

def test_startup_ssl_cancel_and_simple_query():
    q = query(b"select * from test;")
    data = SSL_REQ + startup() + CANCEL + msg(b"p", cstr(b"md5abc")) + q + msg(b"X")
    msgs = feed_all(data, True)
    assert [m.kind for m in msgs] == [SSL_REQUEST, SYNC, REQUEST, SYNC]
    r = msgs[2]
    assert r.is_request and r.query == b"select * from test" and r.size == len(q) and r.ts == TS


def test_multi_statement_query_one_request_each():
    q = query(b"select 1; select ';' as semi;  ; update t set a = 1 ")
    msgs = feed_all(q, True)
    reqs = requests(msgs)
    assert [r.query for r in reqs] == [b"select 1", b"select ';' as semi", b"update t set a = 1"]
    assert all(r.size == len(q) for r in reqs)
    assert msgs[-1].kind == SYNC


def test_empty_query_is_one_empty_request():
    msgs = feed_all(query(b"") + query(b" ; "), True)
    assert [r.query for r in requests(msgs)] == [b"", b""]


@pytest.mark.parametrize("text,parts", [
    (b"select 1", [b"select 1"]),
    (b"  ", []),
    (b"a;b;;c;", [b"a", b"b", b"c"]),
    (b"select 'a;b', \"x;y\"; select 2", [b"select 'a;b', \"x;y\"", b"select 2"]),
    (b"select 'it''s;'; select 2", [b"select 'it''s;'", b"select 2"]),
    (b"select E'a\\';b'; select 2", [b"select E'a\\';b'", b"select 2"]),
    (b"select 1 -- c;omment\n; select 2", [b"select 1 -- c;omment", b"select 2"]),
    (b"select /* a; /* nested; */ b; */ 1; select 2", [b"select /* a; /* nested; */ b; */ 1", b"select 2"]),
    (b"do $$ begin raise notice 'x'; end $$; select 2", [b"do $$ begin raise notice 'x'; end $$", b"select 2"]),
    (b"create function f() returns int as $body$ select 1; $body$ language sql; select $1",
     [b"create function f() returns int as $body$ select 1; $body$ language sql", b"select $1"]),
    (b"select 'unterminated; still one", [b"select 'unterminated; still one"]),
])
def test_split_statements(text, parts):
    assert split_statements(text) == parts


def test_extended_unnamed_statement_and_portal():
    group = parse(b"", b"select * from t where a = $1") + bind(b"", b"") + describe(b"P", b"") + execute(b"")
    msgs = feed_all(group + SYNC_MSG, True)
    [r] = requests(msgs)
    assert r.query == b"select * from t where a = $1" and not r.hidden
    assert r.size == len(group) + len(SYNC_MSG)         # Parse..Execute, and the Sync after it
    assert msgs[-1].kind == SYNC


def test_extended_named_statement_and_portals_executed_later():
    prep = parse(b"s1", b"insert into t values ($1)") + SYNC_MSG
    run1 = bind(b"p1", b"s1") + describe(b"P", b"p1") + execute(b"p1", 5) + execute(b"p1", 5) + SYNC_MSG
    run2 = bind(b"", b"s1") + execute(b"") + SYNC_MSG
    close = msg(b"C", b"S" + cstr(b"s1")) + SYNC_MSG
    run3 = bind(b"", b"s1") + execute(b"") + SYNC_MSG
    msgs = feed_all(prep + run1 + run2 + close + run3, True)
    reqs = requests(msgs)
    # the prepare alone is hidden (published only if it fails)
    assert reqs[0].hidden and reqs[0].query == b"insert into t values ($1)"
    assert reqs[0].size == len(prep)
    assert [r.query for r in reqs[1:4]] == [b"insert into t values ($1)"] * 3
    assert not any(r.hidden for r in reqs[1:4])
    assert reqs[1].size == len(bind(b"p1", b"s1") + describe(b"P", b"p1") + execute(b"p1", 5))
    assert reqs[2].size == len(execute(b"p1", 5) + SYNC_MSG)
    # the Close forgot the statement: its text is no longer known
    assert reqs[-2].hidden                               # Close + Sync: nothing executed
    assert reqs[-1].query == b"EXECUTE s1"
    assert [m.kind for m in msgs].count(SYNC) == 5


def test_extended_pipeline_one_sync():
    data = (parse(b"_pg3_1", b"insert into t values ($1)") + bind(b"", b"_pg3_1") + execute(b"")
            + bind(b"", b"_pg3_1") + execute(b"") + FLUSH_MSG + SYNC_MSG)
    msgs = feed_all(data, True)
    reqs = requests(msgs)
    assert len(reqs) == 2 and all(r.query == b"insert into t values ($1)" for r in reqs)
    assert reqs[1].size == len(bind(b"", b"_pg3_1") + execute(b"") + FLUSH_MSG + SYNC_MSG)
    assert [m.kind for m in msgs] == [REQUEST, REQUEST, SYNC]


def test_set_through_extended_protocol_is_hidden():
    msgs = feed_all(parse(b"", b"SET extra_float_digits = 3") + bind(b"", b"") + execute(b"") + SYNC_MSG, True)
    [r] = requests(msgs)
    assert r.hidden


def test_unknown_statement_shows_its_name():
    msgs = feed_all(bind(b"", b"stmt_from_before") + execute(b"") + SYNC_MSG + execute(b"nope") + SYNC_MSG, True)
    assert [r.query for r in requests(msgs)] == [b"EXECUTE stmt_from_before", b"EXECUTE <unnamed>"]


def test_copy_in_bytes_count_for_the_copy_statement():
    q = query(b"select 1; copy t from stdin")
    data = q + msg(b"d", b"1\tone\n") + msg(b"d", b"2\ttwo\n") + msg(b"c")
    msgs = feed_all(data, True)
    sel, cp = requests(msgs)
    assert sel.size == len(q)
    assert cp.size == len(data)
    fail = query(b"copy t from stdin") + msg(b"d", b"x\n") + msg(b"f", cstr(b"client gave up"))
    [r] = requests(feed_all(fail, True))
    assert r.size == len(fail)


def test_function_call_is_a_sync_point():
    msgs = feed_all(msg(b"F", struct.pack("!IHHIH", 1234, 0, 0, 0, 0)), True)
    assert [m.kind for m in msgs] == [SYNC]


def test_request_ts_is_the_packet_where_it_began():
    p = PgsqlParser(True)
    q = query(b"select 1")
    assert p.feed(memoryview(q[:3]), TS) == []
    assert p.feed(memoryview(q[3:7]), TS + 5) == []
    msgs = p.feed(memoryview(q[7:] + query(b"select 2")[:4]), TS + 9)
    assert requests(msgs)[0].ts == TS
    msgs = p.feed(memoryview(query(b"select 2")[4:]), TS + 20)
    assert requests(msgs)[0].ts == TS + 9


# ----------------------------------------------------------------- backend

def test_select_response():
    resp = row_description(b"a", b"b") + data_row(b"1", b"x") + data_row(b"2", None) + complete(b"SELECT 2")
    data = msg(b"N", b"SNOTICE\0C00000\0Mhello\0\0") + resp + ready()
    msgs = feed_all(data, False)
    assert [m.kind for m in msgs] == [RESPONSE, READY]
    r = msgs[0]
    assert r.fields == [b"a", b"b"] and r.num_fields == 2 and r.num_rows == 2
    assert r.rows == [[b"1", b"x"], [b"2", b""]]
    assert r.size == len(resp) and not r.is_error and msgs[1].partial is None


def test_startup_answer_is_skipped_and_ready():
    msgs = feed_all(AUTH_OK + PARAM + KEYDATA + ready(), False)
    assert [m.kind for m in msgs] == [READY]


def test_error_and_notice_fields():
    e = error(b"23505", b'duplicate key value violates unique constraint "u"')
    msgs = feed_all(error(kind=b"N", sev=b"WARNING") + e + ready(), False)
    [r, z] = msgs
    assert r.is_error and r.error_code == b"23505" and r.error_severity == b"ERROR"
    assert r.error_message == b'duplicate key value violates unique constraint "u"'
    assert r.size == len(e) and z.kind == READY


def test_empty_query_response_and_command_complete():
    msgs = feed_all(msg(b"I") + ready() + complete(b"INSERT 0 1") + ready(), False)
    assert [(m.kind, m.size) for m in msgs] == [(RESPONSE, 5), (READY, 0), (RESPONSE, 16), (READY, 0)]


def test_extended_response_includes_parse_and_bind_complete():
    one = msg(b"1") + msg(b"2") + row_description(b"n") + data_row(b"7") + complete(b"SELECT 1")
    two = msg(b"2") + msg(b"n") + complete(b"INSERT 0 1")
    msgs = feed_all(one + two + ready(), False)
    assert [m.size for m in msgs[:2]] == [len(one), len(two)]
    assert msgs[0].num_rows == 1 and msgs[0].num_fields == 1 and msgs[1].num_fields == 0


def test_prepare_answer_ends_at_the_describe_result_with_or_without_ready():
    """ParseComplete, ParameterDescription, NoData/RowDescription: the whole answer to a
    prepare (Parse/Describe). asyncpg sends Flush instead of Sync: no ReadyForQuery
    follows, and the next execution's answer must not be merged into it."""
    msgs = feed_all(msg(b"1") + msg(b"t", b"\0\0") + msg(b"n") + ready(), False)
    assert [(m.kind, m.size) for m in msgs] == [(RESPONSE, 17), (READY, 0)] and msgs[1].partial is None
    data = (msg(b"1") + msg(b"t", b"\0\0") + row_description(b"x")
            + msg(b"2") + data_row(b"1") + complete(b"SELECT 1") + ready())
    msgs = feed_all(data, False)
    assert [(m.kind, m.num_rows, m.num_fields) for m in msgs] == [(RESPONSE, 0, 1), (RESPONSE, 1, 1), (READY, 0, 0)]


def test_portal_suspended_ends_a_response():
    data = row_description(b"a") + data_row(b"1") + msg(b"s") + data_row(b"2") + complete(b"SELECT 1") + ready()
    msgs = feed_all(data, False)
    assert [(m.kind, m.num_rows) for m in msgs] == [(RESPONSE, 1), (RESPONSE, 1), (READY, 0)]


def test_copy_out_and_copy_in_responses():
    out = msg(b"H", b"\0\0\1\0\0") + msg(b"d", b"1\tone\n") + msg(b"d", b"2\ttwo\n") + msg(b"c") + complete(b"COPY 2")
    inn = msg(b"G", b"\0\0\1\0\0") + complete(b"COPY 5")
    msgs = feed_all(out + ready() + inn + ready(), False)
    assert [(m.kind, m.size) for m in msgs] == [(RESPONSE, len(out)), (READY, 0), (RESPONSE, len(inn)), (READY, 0)]


def test_max_rows_and_max_row_length():
    data = row_description(b"a", b"b", b"c")
    for i in range(5):
        data += data_row(b"%d" % i * 4, b"bbbbbb", b"cc")
    data += complete(b"SELECT 5")
    [r] = feed_all(data, False, max_rows=3, max_row_length=6)
    assert r.num_rows == 5 and len(r.rows) == 3
    assert r.rows[0] == [b"0000", b"bb"]          # 4 bytes, then 2 of the next, third column left out
    [r] = feed_all(data, False, max_rows=0, max_row_length=0)
    assert r.num_rows == 5 and r.rows == []


def test_binary_columns_are_empty_and_rows_without_description_count_columns():
    data = row_description(b"bin", fmt=1) + data_row(b"\x00\x01") + complete(b"SELECT 1")
    [r] = feed_all(data, False)
    assert r.rows == [[b""]]
    [r] = feed_all(data_row(b"x", b"y") + complete(b"SELECT 1"), False)
    assert r.num_fields == 2 and r.rows == [[b"x", b"y"]]


def test_ssl_answers():
    msgs = feed_all(b"N" + AUTH_OK + ready(), False, ssl=True)
    assert [m.kind for m in msgs] == [SSL_ANSWER, READY] and msgs[0].ssl == b"N"
    p = PgsqlParser(False)
    p.expect_ssl_answer()
    msgs = p.feed(memoryview(b"S\x16\x03\x01 garbage that is TLS"), TS)
    assert [m.ssl for m in msgs] == [b"S"] and p.encrypted
    assert p.feed(memoryview(b"\xff\xff\xff anything"), TS) == []
    # a server that refuses with an error instead of a one-byte answer
    msgs = feed_all(error(b"08P01", b"unsupported", b"FATAL"), False, ssl=True)
    assert msgs[0].kind == RESPONSE and msgs[0].is_error


def test_response_ts_is_the_packet_where_it_began():
    p = PgsqlParser(False)
    resp = row_description(b"a") + data_row(b"1") + complete(b"SELECT 1")
    assert p.feed(memoryview(resp[:10]), TS) == []
    [r] = p.feed(memoryview(resp[10:]), TS + 7)
    assert r.ts == TS


# ----------------------------------------------------------------- errors, bounds, gaps

@pytest.mark.parametrize("client,data", [
    (True, b"\x01\x00\x00\x00\x05x"),                  # not a message type
    (False, b"Q\x00\x00\x00\x05x"),                    # a frontend type from the backend
    (True, b"Q\x00\x00\x00\x02"),                      # length below 4
    (True, b"\x00\x00\x00\x08\x00\x00\x00\x07"),       # unknown startup code
    (False, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),      # untyped from the backend
    (True, msg(b"Q", b"no terminator")),
    (False, msg(b"T", b"\x00\x02a\x00")),              # RowDescription cut short
    (False, msg(b"D", b"\x00\x01\x00\x00\x00\x09ab")),  # column longer than the row
])
def test_garbage_raises_parse_error(client, data):
    p = PgsqlParser(client)
    with pytest.raises(ParseError) as ei:
        p.feed(memoryview(data), TS)
    assert isinstance(ei.value, BaseParseError)


def test_parse_error_carries_messages_before_it():
    p = PgsqlParser(True)
    with pytest.raises(ParseError) as ei:
        p.feed(memoryview(query(b"select 1") + b"\x01garbage"), TS)
    assert [m.query for m in requests(ei.value.messages)] == [b"select 1"]
    p.reset()
    assert requests(p.feed(memoryview(query(b"select 2")), TS))[0].query == b"select 2"


def test_message_too_big_to_buffer_is_skipped_with_a_prefix(monkeypatch):
    monkeypatch.setattr(pgparser, "MAX_MESSAGE_SIZE", 64)
    monkeypatch.setattr(pgparser, "KEEP_PREFIX", 16)
    big = data_row(b"z" * 200)
    data = row_description(b"a") + big + data_row(b"ok") + complete(b"SELECT 2")
    [r] = feed_all(data, False)
    assert r.num_rows == 2 and r.rows == [[b"ok"]] and r.size == len(data)
    q = query(b"select '" + b"q" * 200 + b"'")
    [r] = requests(feed_all(q, True))
    assert r.query == b"select 'qqqqqqqq" and r.size == len(q)
    p = PgsqlParser(False)
    p.feed(memoryview(row_description(b"a") + big[:100]), TS)
    assert len(p._buf) == 0                          # the big row is not buffered


def test_gap_inside_a_message_is_survivable():
    p = PgsqlParser(False)
    rows = row_description(b"a") + data_row(b"x" * 100)
    assert p.feed(memoryview(rows[:-60]), TS) == []
    assert p.on_gap(40)
    assert p.drain() == []
    [r] = p.feed(memoryview(rows[-20:] + complete(b"SELECT 1")), TS + 1)
    assert r.num_rows == 1 and r.notes == [pgparser.NOTE_LOSS_RESPONSE]
    assert r.size == len(rows) + len(complete(b"SELECT 1"))
    # the gap ends exactly at the end of the terminator: the response completes in on_gap
    p = PgsqlParser(False)
    c = complete(b"SELECT 1")
    p.feed(memoryview(c[:6]), TS)
    assert p.on_gap(len(c) - 6)
    [r] = p.drain()
    assert r.kind == RESPONSE and r.notes == [pgparser.NOTE_LOSS_RESPONSE]


def test_gap_in_a_query_keeps_what_was_seen():
    p = PgsqlParser(True)
    q = query(b"select something from somewhere")
    p.feed(memoryview(q[:20]), TS)
    assert p.on_gap(len(q) - 20)
    [r, s] = p.drain()
    assert r.query == b"select somethin" and r.notes == [pgparser.NOTE_LOSS_REQUEST] and s.kind == SYNC


def test_gap_at_a_message_boundary_is_not_survivable():
    p = PgsqlParser(True)
    p.feed(memoryview(query(b"select 1")), TS)
    assert not p.on_gap(10)
    p = PgsqlParser(False)
    p.feed(memoryview(complete(b"SELECT 1")[:8]), TS)
    assert not p.on_gap(100)                         # runs past the end of the message


def test_names_are_bounded(monkeypatch):
    monkeypatch.setattr(pgparser, "MAX_NAMES", 4)
    data = b"".join(parse(b"s%d" % i, b"select %d" % i) for i in range(10)) + SYNC_MSG
    p = PgsqlParser(True)
    p.feed(memoryview(data), TS)
    assert list(p._statements) == [b"s6", b"s7", b"s8", b"s9"]
