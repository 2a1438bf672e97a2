"""Cassandra parser and body decoder: hand-made frames of the CQL native
protocol v3/v4/v5 (``cql_frames.py``), fed whole, byte by byte and at random
split points; compression, v5 segments, limits, gaps, errors."""
from __future__ import annotations

import random
import struct
import uuid

import pytest

from tests.unit.protos.cql_frames import (
    frame, i32, ls, lz4_body, query, rows_body, s, segment, segments, sl, snappy_body, startup, u16,
)
from worker.protos.cassandra.body import (
    BodyError, decode_request, decode_response, go_quote, headers, startup_options,
)
from worker.protos.cassandra.parser import (
    NOTE_DECOMPRESS, NOTE_GAP, NOTE_TOO_LARGE, CassandraParser, Codec, ParseError, crc24,
)

COLS = [("user_id", 0x09), ("fname", 0x0D), ("lname", 0x0D)]
ROWS = [[i32(1745), b"john", b"smith"], [i32(1746), b"jane", b"doe"]]


def feed_all(chunks, is_request, codec=None, limit=10 * 1024 * 1024):
    p = CassandraParser(is_request, limit, frozenset(), codec or Codec())
    out = []
    for i, c in enumerate(chunks):
        out += p.feed(memoryview(c), 1000 + i)
    return p, out


def key(msgs):
    return [(m.is_request, m.version, m.flags, m.stream, m.opcode, m.length, m.size, m.body, m.notes)
            for m in msgs]


def splits(data: bytes, rng: random.Random):
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
        yield [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def check_splits(data: bytes, is_request: bool, codec_factory=Codec):
    rng = random.Random(len(data))
    ref = None
    for chunks in splits(data, rng):
        _, msgs = feed_all(chunks, is_request, codec_factory())
        k = key(msgs)
        if ref is None:
            ref = k
        assert k == ref
    return ref


REQUESTS = (startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}) + query("SELECT * FROM users;", 253)
            + frame(0x0B, sl(["SCHEMA_CHANGE"]), 5) + frame(0x05, b"", 6))
RESPONSES = (frame(0x02, b"", 0, response=True)
             + frame(0x08, rows_body("mykeyspace", "users", COLS, ROWS), 253, response=True)
             + frame(0x0C, s("SCHEMA_CHANGE") + s("CREATED") + s("KEYSPACE") + s("ks1"), -1, response=True))


def test_frames_any_split():
    ref = check_splits(REQUESTS, True)
    assert [(m[4], m[3]) for m in ref] == [(0x01, 0), (0x07, 253), (0x0B, 5), (0x05, 6)]
    ref = check_splits(RESPONSES, False)
    assert [(m[4], m[3]) for m in ref] == [(0x02, 0), (0x08, 253), (0x0C, 65535)]
    assert ref[1][6] == 9 + ref[1][5]


def test_header_fields_and_query():
    _, msgs = feed_all([REQUESTS], True)
    q = msgs[1]
    assert headers(q) == {"version": "4", "flags": "Default", "stream": 253, "op": "QUERY", "length": q.length}
    assert decode_request(q) == {"query": "SELECT * FROM users;"}
    assert decode_request(msgs[2]) == {}
    assert startup_options(msgs[0]) == {"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}


def test_v1_v2_and_v3_headers():
    data = frame(0x07, ls("SELECT 1") + u16(1), 7, version=2) + frame(0x07, ls("SELECT 2") + u16(1) + b"\0", 300,
                                                                         version=3)
    _, msgs = feed_all([data], True)
    assert [(m.version, m.stream, m.size) for m in msgs] == [(2, 7, 8 + msgs[0].length), (3, 300, 9 + msgs[1].length)]
    assert decode_request(msgs[0]) == {"query": "SELECT 1"}


@pytest.mark.parametrize("algo,enc", [("lz4", lz4_body), ("snappy", snappy_body)])
def test_compressed_frames(algo, enc):
    body = rows_body("ks", "t", COLS, ROWS * 20)
    data = frame(0x08, enc(body), 9, response=True, flags=0x01)
    for codec in (lambda: Codec(algo), lambda: Codec("")):      # negotiated, or guessed
        ref = check_splits(data, False, codec)
        assert ref[0][7] == body and ref[0][5] == len(enc(body)) and ref[0][8] == []
    _, msgs = feed_all([frame(0x08, b"\x05garbage", 1, response=True, flags=0x01)], False, Codec(algo))
    assert msgs[0].body is None and msgs[0].notes == [NOTE_DECOMPRESS]


def test_decompression_bomb_is_refused():
    body = b"\0" * 100_000
    data = frame(0x08, lz4_body(body), 1, response=True, flags=0x01)
    _, msgs = feed_all([data], False, Codec("lz4"), limit=50_000)
    assert msgs[0].body is None and msgs[0].notes == [NOTE_DECOMPRESS]


def _v5_conversation(lz4: bool):
    opts = {"CQL_VERSION": "3.0.0"}
    if lz4:
        opts["COMPRESSION"] = "lz4"
    big = "x" * 200_000
    req = (startup(opts, 0, 5)
           + segments(query("SELECT * FROM t", 1, 5), lz4)
           + segments(query("INSERT INTO t (a) VALUES ('%s')" % big, 2, 5), lz4))
    resp = (frame(0x02, b"", 0, 5, True)
            + segment(frame(0x08, i32(1), 1, 5, True) + frame(0x0C, s("SCHEMA_CHANGE") + s("CREATED")
                      + s("KEYSPACE") + s("k"), -1, 5, True), True, lz4)
            + segments(frame(0x08, i32(1), 2, 5, True), lz4))
    return req, resp, big


@pytest.mark.parametrize("lz4", [False, True], ids=["plain", "lz4"])
def test_v5_segments(lz4):
    req, resp, big = _v5_conversation(lz4)
    codec = Codec("lz4" if lz4 else "")
    rp = CassandraParser(False, 10 << 20, frozenset(), codec)
    qp = CassandraParser(True, 10 << 20, frozenset(), codec)
    # the STARTUP, then READY switches both directions (the codec is shared)
    st_len = 9 + struct.unpack(">I", req[5:9])[0]
    msgs_q = qp.feed(memoryview(req[:st_len]), 1)
    msgs_r = rp.feed(memoryview(resp), 2)
    assert codec.segments
    msgs_q += qp.feed(memoryview(req[st_len:]), 3)
    assert [(m.opcode, m.stream) for m in msgs_q] == [(0x01, 0), (0x07, 1), (0x07, 2)]
    assert decode_request(msgs_q[2]) == {"query": "INSERT INTO t (a) VALUES ('%s')" % big}
    assert [(m.opcode, m.stream, m.version) for m in msgs_r] == [(0x02, 0, 5), (0x08, 1, 5), (0x0C, 65535, 5),
                                                                 (0x08, 2, 5)]
    assert msgs_q[2].size == 9 + msgs_q[2].length


@pytest.mark.parametrize("lz4", [False, True], ids=["plain", "lz4"])
def test_v5_any_split(lz4):
    req, resp, _ = _v5_conversation(lz4)
    ref = check_splits(resp, False, lambda: Codec("lz4" if lz4 else ""))
    assert [m[4] for m in ref] == [0x02, 0x08, 0x0C, 0x08]


def test_v5_caught_midstream():
    """No STARTUP seen: a stream of segments is recognised by its CRC24."""
    data = segment(query("SELECT 1", 3, 5)) + segment(query("SELECT 2", 4, 5))
    _, msgs = feed_all([data], True)
    assert [m.stream for m in msgs] == [3, 4]
    _, msgs = feed_all([segment(query("SELECT 3", 5, 5), lz4=True, compress=False)], True)
    assert [m.stream for m in msgs] == [5]


def test_v5_crc_mismatch_is_a_parse_error():
    seg = bytearray(segment(query("SELECT 1", 3, 5)))
    codec = Codec()
    codec.segments = True
    bad_payload = bytes(seg[:-1]) + bytes([seg[-1] ^ 1])
    with pytest.raises(ParseError):
        CassandraParser(True, 1 << 20, frozenset(), codec).feed(memoryview(bad_payload), 1)
    bad_header = bytes([seg[0] ^ 1]) + bytes(seg[1:])
    with pytest.raises(ParseError):
        CassandraParser(True, 1 << 20, frozenset(), codec).feed(memoryview(bad_header), 1)
    assert crc24(b"\x00\x00\x00") != 0


@pytest.mark.parametrize("data,is_request", [
    (b"\x09\x00\x00\x01\x07\x00\x00\x00\x00", True),          # version 9
    (b"\x84\x00\x00\x01\x08\x00\x00\x00\x00", True),          # a response on the client side
    (b"\x04\x00\x00\x01\x08\x00\x00\x00\x00", True),          # RESULT is not a request
    (b"\x04\x40\x00\x01\x07\x00\x00\x00\x00", True),          # unknown flag
    (b"\x04\x00\x00\x01\x07\x7f\xff\xff\xff", True),          # over 256 MiB
    (b"GET / HTTP/1.1\r\n\r\n", True),
])
def test_garbage_is_a_parse_error(data, is_request):
    with pytest.raises(ParseError):
        feed_all([data], is_request)


def test_too_large_body_is_skipped_with_a_note():
    big = frame(0x07, ls("x" * 5000) + u16(1) + b"\0", 1)
    data = big + query("SELECT 2", 2)
    for chunks in (data, [data[i:i + 700] for i in range(0, len(data), 700)]):
        p, msgs = feed_all(chunks if isinstance(chunks, list) else [chunks], True, limit=1000)
        assert [(m.stream, m.body is None, m.notes) for m in msgs] == [(1, True, [NOTE_TOO_LARGE]), (2, False, [])]
        assert msgs[0].size == len(big)
        assert len(p.buf) == 0


def test_gap_inside_a_skipped_body_is_crossed():
    big = frame(0x07, ls("x" * 5000) + u16(1) + b"\0", 1)
    p = CassandraParser(True, 1000, frozenset(), Codec())
    assert p.feed(memoryview(big[:1000]), 1) == []
    assert p.on_gap(2000) is True
    assert p.drain() == []
    rest = big[3000:] + query("SELECT 2", 2)
    msgs = p.feed(memoryview(rest), 2)
    assert [(m.stream, m.notes) for m in msgs] == [(1, [NOTE_TOO_LARGE, NOTE_GAP[0]]), (2, [])]
    q = CassandraParser(True, 1 << 20, frozenset(), Codec())
    q.feed(memoryview(query("SELECT 1", 1)[:5]), 1)
    assert q.on_gap(10) is False


def test_ignored_ops_are_not_decoded():
    p = CassandraParser(True, 1 << 20, frozenset({0x07}), Codec())
    msgs = p.feed(memoryview(query("SELECT 1", 1) + frame(0x05, b"", 2)), 1)
    assert [(m.opcode, m.ignored, m.body) for m in msgs] == [(0x07, True, None), (0x05, False, b"")]


def _resp(op, body, version=4, flags=0, stream=1):
    _, msgs = feed_all([frame(op, body, stream, version, True, flags)], False)
    return msgs[0]


def test_rows_packetbeat_offset_and_exact_count():
    m = _resp(0x08, rows_body("mykeyspace", "users", COLS, ROWS))
    pb = decode_response(m, True)["result"]
    assert pb["type"] == "rows"
    assert pb["rows"]["meta"] == {"flags": "GlobalTableSpec", "col_count": 3, "keyspace": "mykeyspace",
                                  "table": "users"}
    assert pb["rows"]["num_rows"] == 488819          # Packetbeat 5.5.3's value for this metadata
    assert decode_response(m, False)["result"]["rows"]["num_rows"] == 2


def test_rows_paging_and_no_metadata():
    m = _resp(0x08, rows_body("ks", "t", COLS, ROWS, paging=b"\x01\x02"))
    rows = decode_response(m, False)["result"]["rows"]
    assert rows["meta"] == {"flags": "FLAG_3", "col_count": 3, "paging_state": "0102", "keyspace": "ks", "table": "t"}
    assert rows["num_rows"] == 2
    m = _resp(0x08, rows_body("ks", "t", COLS, ROWS, no_meta=True))
    for quirks in (True, False):
        rows = decode_response(m, quirks)["result"]["rows"]
        assert rows == {"meta": {"flags": "NoMetaData", "col_count": 3}, "num_rows": 2}


def test_rows_with_collections_udt_tuple_custom_types():
    cols = (s("a") + u16(0x20) + u16(0x0D) + s("b") + u16(0x21) + u16(0x0D) + u16(0x09)
            + s("c") + u16(0x30) + s("ks") + s("addr") + u16(2) + s("street") + u16(0x0D) + s("zip") + u16(0x09)
            + s("d") + u16(0x31) + u16(2) + u16(0x09) + u16(0x22) + u16(0x0C)
            + s("e") + u16(0x00) + s("org.apache.cassandra.db.marshal.DurationType"))
    body = i32(2) + i32(1) + i32(5) + s("ks") + s("t") + cols + i32(0)
    assert decode_response(_resp(0x08, body), False)["result"]["rows"]["num_rows"] == 0


@pytest.mark.parametrize("version", [4, 5])
def test_prepared(version):
    pid = uuid.UUID("0123456789abcdef0123456789abcdef").bytes
    body = i32(4) + u16(16) + pid
    if version >= 5:
        body += u16(2) + b"\xaa\xbb"
    body += i32(1) + i32(2) + i32(1) + u16(0) + s("ks") + s("t") + s("id") + u16(0x09) + s("name") + u16(0x0D)
    body += i32(1) + i32(1) + s("ks") + s("t") + s("name") + u16(0x0D)
    res = decode_response(_resp(0x08, body, version), True)["result"]
    assert res["type"] == "prepared"
    assert res["prepared"] == {
        "prepared_id": "01234567-89ab-cdef-0123-456789abcdef",
        "req_meta": {"flags": "GlobalTableSpec", "col_count": 2, "pkey_columns": [0], "keyspace": "ks", "table": "t"},
        "resp_meta": {"flags": "GlobalTableSpec", "col_count": 1, "keyspace": "ks", "table": "t"},
    }


def test_other_results():
    assert decode_response(_resp(0x08, i32(1)))["result"] == {"type": "void"}
    assert decode_response(_resp(0x08, i32(3) + s("ks")))["result"] == {"type": "set_keyspace", "keyspace": "ks"}
    sc = decode_response(_resp(0x08, i32(5) + s("CREATED") + s("TABLE") + s("ks") + s("users")))["result"]
    assert sc == {"type": "schemaChanged", "schema_change": {"change": "CREATED", "target": "TABLE",
                                                             "keyspace": "ks", "object": "users"}}
    fn = decode_response(_resp(0x08, i32(5) + s("DROPPED") + s("FUNCTION") + s("ks") + s("f") + sl(["int", "text"])))
    assert fn["result"]["schema_change"] == {"change": "DROPPED", "target": "FUNCTION", "keyspace": "ks",
                                             "name": "f", "args": ["int", "text"]}
    old = decode_response(_resp(0x08, i32(5) + s("UPDATED") + s("ks") + s("t"), version=2))
    assert old["result"]["schema_change"] == {"change": "UPDATED", "keyspace": "ks", "table": "t"}


@pytest.mark.parametrize("code,extra,details,version", [
    (0x1000, u16(4) + i32(3) + i32(1), {"read_consistency": "QUORUM", "required": 3, "alive": 1}, 4),
    (0x1100, u16(1) + i32(0) + i32(1) + s("SIMPLE"),
     {"read_consistency": "ONE", "received": 0, "blockfor": 1, "write_type": "SIMPLE"}, 4),
    (0x1200, u16(10) + i32(0) + i32(1) + b"\x01",
     {"read_consistency": "LOCAL_ONE", "received": 0, "blockfor": 1, "data_present": True}, 4),
    (0x1300, u16(5) + i32(1) + i32(2) + i32(1) + b"\x00",
     {"read_consistency": "ALL", "received": 1, "blockfor": 2, "num_failures": 1, "data_present": False}, 4),
    (0x1300, u16(5) + i32(1) + i32(2) + i32(1) + b"\x04\x7f\x00\x00\x01" + u16(0) + b"\x00",
     {"read_consistency": "ALL", "received": 1, "blockfor": 2, "num_failures": 1, "data_present": False}, 5),
    (0x1500, u16(4) + i32(1) + i32(2) + i32(1) + s("BATCH"),
     {"read_consistency": "QUORUM", "received": 1, "blockfor": 2, "num_failures": 1, "write_type": "BATCH"}, 4),
    (0x1400, s("ks") + s("f") + sl(["int"]), {"keyspace": "ks", "function": "f", "arg_types": ["int"]}, 4),
    (0x2400, s("ks") + s("t"), {"keyspace": "ks", "table": "t"}, 4),
    (0x2500, u16(2) + b"\xab\xcd", {"stmt_id": "abcd"}, 4),
    (0x2000, b"", None, 4),
])
def test_errors(code, extra, details, version):
    m = _resp(0x00, i32(code) + s("boom") + extra, version)
    err = decode_response(m)["error"]
    assert err["code"] == code and err["msg"] == "boom"
    assert err.get("details") == details
    assert err["type"].startswith("err")


def test_supported_auth_event_warnings_tracing():
    sup = u16(2) + s("COMPRESSION") + sl(["snappy", "lz4"]) + s("CQL_VERSION") + sl(["3.4.6"])
    assert decode_response(_resp(0x06, sup)) == {"supported": {"COMPRESSION": ["snappy", "lz4"],
                                                               "CQL_VERSION": ["3.4.6"]}}
    auth = decode_response(_resp(0x03, s("org.apache.cassandra.auth.PasswordAuthenticator")))
    assert auth == {"authentication": {"class": "org.apache.cassandra.auth.PasswordAuthenticator"}}
    assert decode_response(_resp(0x10, i32(-1))) == {"authentication": {"data": '""'}}
    assert decode_response(_resp(0x0E, i32(3) + b"a\x00\xff")) == {"authentication": {"data": '"a\\x00\\xff"'}}
    ev = decode_response(_resp(0x0C, s("STATUS_CHANGE") + s("UP") + b"\x04\x7f\x00\x00\x01" + i32(9042)))
    assert ev == {"event": {"type": "STATUS_CHANGE", "change": "UP", "host": "127.0.0.1", "port": 9042}}
    ev = decode_response(_resp(0x0C, s("TOPOLOGY_CHANGE") + s("NEW_NODE") + b"\x10" + bytes(15) + b"\x01"
                               + i32(9042)))
    assert ev["event"]["host"] == "::1"
    warn_trace = bytes(range(16)) + sl(["Aggregation query used without partition key"]) + i32(1)
    r = decode_response(_resp(0x08, warn_trace, flags=0x0A))
    assert r == {"warnings": ["Aggregation query used without partition key"], "result": {"type": "void"}}
    payload = u16(1) + s("k") + i32(1) + b"v"
    assert decode_response(_resp(0x08, payload + i32(1), flags=0x04)) == {"result": {"type": "void"}}
    assert headers(_resp(0x08, warn_trace, flags=0x0A))["flags"] == "UnknownFlag_10"


@pytest.mark.parametrize("body", [b"", i32(2) + i32(1), i32(9), i32(0) + u16(99), i32(5) + s("X")])
def test_short_or_bad_bodies_raise_body_error(body):
    op = 0x08 if not body.startswith(i32(0)) else 0x00
    with pytest.raises(BodyError):
        decode_response(_resp(op, body), False)


def test_go_quote():
    assert go_quote(None) == '""'
    assert go_quote(b'a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert go_quote("é".encode()) == '"é"'
    assert go_quote(b"\x80\x01") == '"\\x80\\x01"'
