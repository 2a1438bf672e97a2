"""MysqlParser on hand-written byte strings (built from the protocol documentation,
not captured). Every fixture is fed whole, byte by byte and split at seeded
random points: the messages must be the same. The builders are shared with
the plugin and fuzz tests."""
from __future__ import annotations

import struct
import zlib


def pkt(seq: int, payload: bytes) -> bytes:
    """One packet; payloads of 0xffffff bytes or more are split by the 16 MiB rule."""
    out = b""
    while True:
        part, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
        out += len(part).to_bytes(3, "little") + bytes([seq & 0xFF]) + part
        seq += 1
        if len(part) < 0xFFFFFF:
            return out


def lenenc(n: int) -> bytes:
    if n < 0xFB:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def lstr(b: bytes) -> bytes:
    return lenenc(len(b)) + b


def coldef(schema: bytes, table: bytes, name: bytes, typ: int = 0xFD, flags: int = 0) -> bytes:
    return (lstr(b"def") + lstr(schema) + lstr(table) + lstr(table) + lstr(name) + lstr(name)
            + b"\x0c" + struct.pack("<HIBHB", 33, 255, typ, flags, 0) + b"\x00\x00")


def ok(affected: int = 0, insert_id: int = 0, status: int = 2, header: int = 0) -> bytes:
    return bytes([header]) + lenenc(affected) + lenenc(insert_id) + struct.pack("<HH", status, 0)


def eof(status: int = 2) -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, status)


def err(code: int, state: bytes, msg: bytes) -> bytes:
    return b"\xff" + struct.pack("<H", code) + b"#" + state + msg


def text_row(*vals) -> bytes:
    return b"".join(b"\xfb" if v is None else lstr(v) for v in vals)


def result_set(seq: int, cols: list[bytes], rows: list[bytes], final_status: int = 2) -> bytes:
    """Column count, definitions, EOF, rows, EOF (classic, no CLIENT_DEPRECATE_EOF)."""
    out = pkt(seq, lenenc(len(cols)))
    seq += 1
    for c in cols:
        out += pkt(seq, c)
        seq += 1
    out += pkt(seq, eof())
    seq += 1
    for r in rows:
        out += pkt(seq, r)
        seq += 1
    return out + pkt(seq, eof(final_status))


def greeting(version: bytes = b"10.11.19-MariaDB", caps: int = 0xF7FE | (0x81BF << 16)) -> bytes:
    p = (b"\x0a" + version + b"\x00" + struct.pack("<I", 7) + b"abcdefgh" + b"\x00"
         + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
         + struct.pack("<H", caps >> 16) + b"\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00"
         + b"mysql_native_password\x00")
    return pkt(0, p)


CLIENT_CAPS = 0x000FA68D        # protocol 4.1, secure connection, plugin auth, connect with db


def handshake_response(user: bytes = b"root", db: bytes = b"test", caps: int = CLIENT_CAPS) -> bytes:
    p = (struct.pack("<IIB", caps, 1 << 24, 33) + b"\x00" * 23 + user + b"\x00"
         + b"\x14" + b"x" * 20 + db + b"\x00" + b"mysql_native_password\x00")
    return pkt(1, p)


def ssl_request(caps: int = CLIENT_CAPS | 0x800) -> bytes:
    return pkt(1, struct.pack("<IIB", caps, 1 << 24, 33) + b"\x00" * 23)


def query(sql: bytes, cmd: int = 3) -> bytes:
    return pkt(0, bytes([cmd]) + sql)


def compress(stream: bytes, seq: int = 0, level: int = 6, raw: bool = False) -> bytes:
    """One compressed-protocol packet carrying ``stream``."""
    if raw:
        return len(stream).to_bytes(3, "little") + bytes([seq]) + b"\x00\x00\x00" + stream
    z = zlib.compress(stream, level)
    return len(z).to_bytes(3, "little") + bytes([seq]) + len(stream).to_bytes(3, "little") + z


def prepare_ok(stmt_id: int, ncols: int, nparams: int) -> bytes:
    return struct.pack("<BIHHBH", 0, stmt_id, ncols, nparams, 0, 0)


def execute(stmt_id: int, types: list[tuple[int, int]], values: bytes, nulls: int = 0,
            bound: bool = True) -> bytes:
    n = len(types)
    p = b"\x17" + struct.pack("<IBI", stmt_id, 0, 1)
    if n:
        p += nulls.to_bytes((n + 7) // 8, "little") + (b"\x01" if bound else b"\x00")
        if bound:
            p += b"".join(struct.pack("<BB", t, f) for t, f in types)
        p += values
    return pkt(0, p)


# --------------------------------------------------------------------------- harness

import random  # noqa: E402

import pytest  # noqa: E402

from worker.plugin import ParseError as BaseParseError  # noqa: E402
from worker.protos.mysql.parser import (CLIENT_COMPRESS, MESSAGE_FIELDS, Kind, MysqlParser,  # noqa: E402
                                        ParseError, Resp, State, decode_execute_params)

TS = 1_700_000_000_000_000_000


def _splits(data: bytes):
    yield "whole", [data]
    if len(data) < 5000:
        yield "bytewise", [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    for n in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        yield "random%d" % n, [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def _summary(msgs):
    return [{k: getattr(m, k) for k in MESSAGE_FIELDS} for m in msgs]


def feed_all(data: bytes, is_client: bool, expects=(), setup=None, **kw):
    """Feed ``data`` in every split; all splits must agree; return the messages."""
    results = []
    for _name, chunks in _splits(data):
        p = MysqlParser(is_client, **kw)
        if setup:
            setup(p)
        for e in expects:
            p.expect(e)
        msgs = []
        for c in chunks:
            msgs.extend(p.feed(memoryview(c), TS))
        results.append(_summary(msgs))
    for r in results[1:]:
        assert r == results[0]
    return results[0]


# --------------------------------------------------------------------------- client side

def test_commands():
    data = (query(b"select 1") + query(b"test", 2) + pkt(0, b"\x0e") + query(b"SELECT ?", 0x16)
            + execute(7, [(3, 0)], struct.pack("<i", -5)) + pkt(0, b"\x19" + struct.pack("<I", 7))
            + pkt(0, b"\x01"))
    msgs = feed_all(data, True)
    assert [(m["kind"], m["command"]) for m in msgs] == [(Kind.COMMAND, c) for c in (3, 2, 0x0E, 0x16, 0x17, 0x19, 1)]
    assert msgs[0]["query"] == b"select 1" and msgs[0]["size"] == 13
    assert msgs[1]["query"] == b"test"
    assert msgs[4]["statement_id"] == 7 and msgs[5]["statement_id"] == 7
    params, types = decode_execute_params(msgs[4]["payload"], 1, None, 1024)
    assert params == ["-5"] and types == [(3, False)]


def test_login_and_ssl():
    msgs = feed_all(handshake_response() + query(b"select 2"), True)
    assert msgs[0]["kind"] == Kind.LOGIN and msgs[0]["user"] == b"root" and msgs[0]["database"] == b"test"
    assert msgs[0]["auth_plugin"] == b"mysql_native_password"
    assert msgs[1]["query"] == b"select 2"
    # TLS: the SSLRequest stops the parser, encrypted bytes after it are ignored
    msgs = feed_all(ssl_request() + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20, True)
    assert [m["kind"] for m in msgs] == [Kind.SSL_REQUEST]


def test_auth_data_and_infile_are_not_commands():
    p = MysqlParser(True)
    msgs = p.feed(handshake_response() + pkt(3, b"\x03auth switch reply"), TS)
    assert [m.kind for m in msgs] == [Kind.LOGIN]
    p.begin_infile()
    # file contents, including a packet whose sequence id wrapped to 0, then the empty packet
    assert p.feed(pkt(2, b"a,1\n") + pkt(0, b"\x03b,2\n") + pkt(4, b""), TS) == []
    assert p.feed(query(b"select 3"), TS)[0].query == b"select 3"


def test_continuation_16mib_request_kept_prefix():
    sql = b"SELECT '" + b"q" * (0xFFFFFF + 100) + b"'"
    data = query(sql)
    assert data[:3] == b"\xff\xff\xff"
    for chunks in ([data], [data[i:i + 65536] for i in range(0, len(data), 65536)]):
        p = MysqlParser(True, keep=1000)
        msgs = []
        for c in chunks:
            msgs.extend(p.feed(c, TS))
        assert len(msgs) == 1
        m = msgs[0]
        assert m.query == sql[:999] and m.truncated
        assert m.size == len(data) == len(sql) + 1 + 8
        assert len(p._buf) == 0


def test_continuation_exact_boundary_empty_trailer():
    sql = b"x" * (0xFFFFFF - 1)
    data = query(sql)
    assert data[-4:] == b"\x00\x00\x00\x01"              # the empty packet that ends it
    p = MysqlParser(True, keep=1 << 25)
    msgs = p.feed(data + query(b"select 9"), TS)
    assert [len(m.query) for m in msgs] == [len(sql), 8]
    assert msgs[0].size == 0xFFFFFF + 8 and not msgs[0].truncated


def test_compressed_client_stream():
    inner = query(b"select 1") + query(b"select 2")
    data = compress(inner, 0) + compress(query(b"select 3"), 1, raw=True)
    msgs = feed_all(data, True, setup=lambda p: p.enable_compression())
    assert [m["query"] for m in msgs] == [b"select 1", b"select 2", b"select 3"]


# --------------------------------------------------------------------------- server side

def test_greeting_auth_switch_ok():
    data = greeting() + pkt(2, b"\xfemysql_native_password\x00" + b"s" * 20) + pkt(4, ok())
    msgs = feed_all(data, False)
    assert [m["kind"] for m in msgs] == [Kind.GREETING, Kind.AUTH_OK]
    assert msgs[0]["server_version"] == b"10.11.19-MariaDB"
    assert msgs[0]["auth_plugin"] == b"mysql_native_password"
    msgs = feed_all(greeting() + pkt(2, err(1045, b"28000", b"Access denied")), False)
    assert msgs[1]["kind"] == Kind.AUTH_ERR and msgs[1]["error_code"] == 1045


def test_text_result_set():
    cols = [coldef(b"test", b"t", b"a"), coldef(b"test", b"t", b"b"), coldef(b"", b"", b"c")]
    rows = [text_row(b"1", b"x,y", None), text_row(b"2", b'q"uote', b"line\nbreak"), text_row(b"3", b"", b" s")]
    msgs = feed_all(result_set(1, cols, rows), False, [Resp.QUERY])
    assert len(msgs) == 1
    m = msgs[0]
    assert (m["num_fields"], m["num_rows"], m["tables"]) == (3, 3, ["test.t"])
    assert m["fields"] == [b"a", b"b", b"c"]
    assert m["rows"][0] == [b"1", b"x,y", b"NULL"] and m["rows"][1][2] == b"line\nbreak"
    assert m["size"] == len(result_set(1, cols, rows)) and m["is_ok"]


def test_rows_limits():
    cols = [coldef(b"d", b"t", b"a"), coldef(b"d", b"t", b"b")]
    rows = [text_row(b"%d" % i * 3, b"z" * 10) for i in range(30)]
    m = feed_all(result_set(1, cols, rows), False, [Resp.QUERY], max_rows=4, max_row_length=5)[0]
    assert m["num_rows"] == 30 and len(m["rows"]) == 4
    assert m["rows"][1] == [b"111", b"zz"]
    m = feed_all(result_set(1, cols, rows), False, [Resp.QUERY], keep_rows=False)[0]
    assert m["num_rows"] == 30 and m["rows"] == [] and m["fields"] == []


def test_ok_err():
    data = pkt(1, ok(316, 0, 0x22)) + pkt(1, err(1046, b"3D000", b"No database selected")) + pkt(1, ok(1, 77))
    msgs = feed_all(data, False, [Resp.QUERY] * 3)
    assert [(m["affected_rows"], m["insert_id"], m["is_error"]) for m in msgs] == \
        [(316, 0, False), (0, 0, True), (1, 77, False)]
    assert msgs[1]["error_code"] == 1046 and msgs[1]["sql_state"] == b"3D000"
    assert msgs[1]["error_message"] == b"No database selected"


def test_multi_result_and_more_results_ok():
    r1 = result_set(1, [coldef(b"d", b"t", b"n")], [text_row(b"5")], final_status=0x0A)
    r2 = result_set(5, [coldef(b"d", b"u", b"a"), coldef(b"d", b"u", b"b")],
                    [text_row(b"1", b"2"), text_row(b"3", b"4")], final_status=0x0A)
    data = r1 + r2 + pkt(10, ok(3, 0, 0x02)) + pkt(1, ok(9))
    msgs = feed_all(data, False, [Resp.QUERY, Resp.QUERY])
    assert len(msgs) == 2
    m = msgs[0]
    assert (m["num_fields"], m["num_rows"], m["affected_rows"]) == (1, 3, 3)
    assert m["tables"] == ["d.t", "d.u"] and m["rows"] == [[b"5"]] and m["fields"] == [b"n"]
    assert msgs[1]["affected_rows"] == 9


def test_mariadb_progress_report_skipped():
    data = pkt(1, b"\xff\xff\xff\x01\x01\x00\x10\x27\x00\x00\x05stage") + pkt(2, ok(4))
    msgs = feed_all(data, False, [Resp.QUERY])
    assert len(msgs) == 1 and msgs[0]["affected_rows"] == 4 and not msgs[0]["is_error"]


def test_deprecate_eof_result_set():
    def setup(p):
        p.client_flags = 0x01000000 | 0x200
    cols = [coldef(b"d", b"t", b"a")]
    data = (pkt(1, b"\x01") + pkt(2, cols[0]) + pkt(3, text_row(b"v")) + pkt(4, ok(0, 0, 2, header=0xFE))
            + pkt(1, b"\x01") + pkt(2, cols[0]) + pkt(3, ok(0, 0, 2, header=0xFE)))
    msgs = feed_all(data, False, [Resp.QUERY, Resp.QUERY], setup=setup)
    assert [(m["num_rows"], m["num_fields"]) for m in msgs] == [(1, 1), (0, 1)]


def test_prepare_and_binary_execute():
    prep = (pkt(1, prepare_ok(9, 2, 1)) + pkt(2, coldef(b"", b"", b"?")) + pkt(3, eof())
            + pkt(4, coldef(b"d", b"t", b"id", 3)) + pkt(5, coldef(b"d", b"t", b"when", 0x0C)) + pkt(6, eof()))
    row = b"\x00" + b"\x00" + struct.pack("<i", -42) + b"\x0b" + struct.pack("<HBBBBBI", 2024, 2, 29, 13, 5, 7, 120)
    null_row = b"\x00" + b"\x08" + struct.pack("<i", 7)                 # second column NULL (bit 3)
    exe = (pkt(1, b"\x02") + pkt(2, coldef(b"d", b"t", b"id", 3)) + pkt(3, coldef(b"d", b"t", b"when", 0x0C))
           + pkt(4, eof()) + pkt(5, row) + pkt(6, null_row) + pkt(7, eof()))
    msgs = feed_all(prep + exe, False, [Resp.PREPARE, Resp.EXECUTE])
    assert len(msgs) == 2
    p, e = msgs
    assert (p["statement_id"], p["num_fields"], p["num_params"], p["tables"]) == (9, 2, 1, ["d.t"])
    assert p["rows"] == [] and p["num_rows"] == 0
    assert (e["num_fields"], e["num_rows"]) == (2, 2)
    assert e["rows"] == [[b"-42", b"2024-02-29 13:05:07.000120"], [b"7", b"NULL"]]


def test_prepare_without_params_or_columns_then_next_response():
    data = pkt(1, prepare_ok(3, 0, 0)) + pkt(1, ok(2))
    msgs = feed_all(data, False, [Resp.PREPARE, Resp.QUERY])
    assert [m["statement_id"] for m in msgs] == [3, 0] and msgs[1]["affected_rows"] == 2


def test_execute_params_all_types():
    types = [(1, 0), (2, 0x80), (8, 0), (4, 0), (5, 0), (6, 0), (0x0A, 0), (0x0B, 0), (0xFD, 0), (0xF6, 0), (3, 0)]
    vals = (struct.pack("<b", -1) + struct.pack("<H", 65535) + struct.pack("<q", -(1 << 40))
            + struct.pack("<f", 1.5) + struct.pack("<d", 2.25) + b"\x04" + struct.pack("<HBB", 1999, 12, 31)
            + b"\x08" + struct.pack("<BIBBB", 1, 1, 2, 3, 4) + lstr(b"h\xc3\xa9") + lstr(b"3.25"))
    payload = execute(1, types, vals, nulls=1 << 10)[4:]
    params, _ = decode_execute_params(payload, len(types), None, 1024)
    assert params == ["-1", "65535", str(-(1 << 40)), "1.5", "2.25", "NULL", "1999-12-31", "-26:03:04",
                      "hé", "3.25", "NULL"]
    # a later execution without types reuses the saved ones
    again = execute(1, [(3, 0)], struct.pack("<i", 12), bound=False)[4:]
    assert decode_execute_params(again, 1, [(3, False)], 1024)[0] == ["12"]
    with pytest.raises(ParseError):
        decode_execute_params(again, 1, None, 1024)
    with pytest.raises(ParseError):
        decode_execute_params(payload[:-3], len(types), None, 1024)


def test_field_list_statistics_fetch_change_user():
    data = (pkt(1, coldef(b"d", b"t", b"a")) + pkt(2, coldef(b"d", b"t", b"b")) + pkt(3, eof())
            + pkt(1, b"Uptime: 5  Threads: 1")
            + pkt(1, b"\x00\x00" + struct.pack("<i", 1)) + pkt(2, eof())
            + pkt(1, b"\xfemysql_native_password\x00salt") + pkt(3, ok()))
    msgs = feed_all(data, False, [Resp.FIELD_LIST, Resp.ANY, Resp.FETCH, Resp.AUTH])
    assert [m["answers"] for m in msgs] == [Resp.FIELD_LIST, Resp.ANY, Resp.FETCH, Resp.AUTH]
    assert msgs[0]["num_fields"] == 2 and msgs[2]["num_rows"] == 1 and msgs[3]["is_ok"]


def test_local_infile():
    data = pkt(1, b"\xfb/tmp/x.csv") + pkt(3, ok(40))
    msgs = feed_all(data, False, [Resp.QUERY])
    assert [m["kind"] for m in msgs] == [Kind.INFILE_REQUEST, Kind.RESPONSE]
    assert msgs[0]["query"] == b"/tmp/x.csv" and msgs[1]["affected_rows"] == 40
    assert msgs[1]["size"] == len(pkt(1, b"\xfb/tmp/x.csv")) + len(pkt(3, ok(40)))


def test_guess_mode_like_packetbeat():
    cols = [coldef(b"test", b"test", b"a")]
    data = result_set(1, cols, [text_row(b"r")]) + pkt(1, ok(1)) + pkt(1, b"\x41junk packet") + pkt(1, eof())
    msgs = feed_all(data, False)
    assert [(m["answers"], m["num_rows"], m["affected_rows"]) for m in msgs] == \
        [(Resp.GUESS, 1, 0), (Resp.GUESS, 0, 1), (Resp.GUESS, 0, 0)]


def test_long_result_size_as_packetbeat():
    cols = [coldef(b"test", b"test_long", b"a")]
    rows = [text_row(b"L" * 1000) for i in range(150)]
    data = result_set(1, cols, rows)
    m = feed_all(data, False, [Resp.QUERY])[0]
    assert m["num_rows"] == 150
    # bytes_out stops at the first row that ends past 100 KiB (Packetbeat's maxPayloadSize)
    head = len(pkt(1, b"\x01")) + len(pkt(2, cols[0])) + len(pkt(3, eof()))
    per_row = len(pkt(4, rows[0]))
    expect = head + per_row * ((100 * 1024 - head) // per_row + 1)
    assert m["size"] == expect < len(data)


def test_huge_row_streamed_and_cut():
    big = b"B" * (0xFFFFFF + 10)
    data = pkt(1, b"\x01") + pkt(2, coldef(b"d", b"t", b"b")) + pkt(3, eof()) + pkt(4, lstr(big)) + pkt(6, eof())
    p = MysqlParser(False, keep=4096, max_row_length=16)
    p.expect(Resp.QUERY)
    msgs = []
    for i in range(0, len(data), 1 << 20):
        msgs.extend(p.feed(data[i:i + (1 << 20)], TS))
        assert len(p._buf) < (1 << 20) + 8           # never buffers the row
    assert len(msgs) == 1 and msgs[0].num_rows == 1
    assert msgs[0].size == len(data) - len(pkt(6, eof()))    # Packetbeat's size of a result over 100 KiB
    assert msgs[0].rows == [[b"B" * 16]]


def test_compressed_server_after_login():
    p = MysqlParser(False)
    p.client_flags = 0x000FA68D | CLIENT_COMPRESS
    cols = [coldef(b"d", b"t", b"a")]
    inner = result_set(1, cols, [text_row(b"1"), text_row(b"2")])
    out = p.feed(greeting() + pkt(2, ok()) + compress(inner[:30], 1) + compress(inner[30:], 2, raw=True), TS)
    p.expect(Resp.QUERY)  # (the client's command would be fed before the answer; order does not matter here)
    assert [m.kind for m in out][:2] == [Kind.GREETING, Kind.AUTH_OK] and p.compressed
    p2 = MysqlParser(False)
    p2.client_flags = 0x000FA68D | CLIENT_COMPRESS
    p2.feed(greeting() + pkt(2, ok()), TS)
    p2.expect(Resp.QUERY)
    msgs = []
    data = compress(inner[:30], 1) + compress(inner[30:], 2, raw=True)
    for i in range(len(data)):
        msgs.extend(p2.feed(data[i:i + 1], TS))
    assert len(msgs) == 1 and msgs[0].num_rows == 2


def test_gap_in_rows_publishes_partial_with_note():
    cols = [coldef(b"test", b"test_long", b"a")]
    data = result_set(1, cols, [text_row(b"x" * 100) for _ in range(20)])
    p = MysqlParser(False)
    p.expect(Resp.QUERY)
    assert p.feed(data[:900], TS) == []
    msgs = p.on_gap(5000)
    assert len(msgs) == 1 and msgs[0].num_rows > 3 and msgs[0].size == 0
    assert msgs[0].notes == ["Packet loss while capturing the response"]
    p = MysqlParser(False)
    assert p.on_gap(10) == []


def test_flush_incomplete_response():
    p = MysqlParser(False)
    p.expect(Resp.QUERY)
    data = result_set(1, [coldef(b"d", b"t", b"a")], [text_row(b"1")] * 5)
    p.feed(data[:-12], TS)
    msgs = p.flush()
    assert len(msgs) == 1 and msgs[0].notes == ["Response incomplete at end of stream"]


def test_message_ts_is_first_packet():
    p = MysqlParser(False)
    p.expect(Resp.QUERY)
    data = result_set(1, [coldef(b"d", b"t", b"a")], [text_row(b"1")])
    assert p.feed(data[:7], 100) == []
    assert p.feed(data[7:20], 200) == []
    msgs = p.feed(data[20:], 300)
    assert msgs[0].ts == 100
    c = MysqlParser(True)
    assert c.feed(query(b"select 1")[:2], 5) == []
    assert c.feed(query(b"select 1")[2:] + query(b"select 2")[:3], 6)[0].ts == 5
    assert c.feed(query(b"select 2")[3:], 7)[0].ts == 6


def test_bad_bytes_raise_parse_error():
    for data, exp in ((pkt(1, b"\x02") + pkt(2, b"\xff\x00garbage"), Resp.QUERY),
                      (pkt(1, b"\x05abc"), Resp.PREPARE),
                      (pkt(1, b"\xfc\x00\x00"), Resp.QUERY)):
        p = MysqlParser(False)
        p.expect(exp)
        with pytest.raises(ParseError) as ei:
            p.feed(data, TS)
        assert isinstance(ei.value, BaseParseError)
        p.reset()
        assert p.state == State.IDLE and p.feed(b"", TS) == []


def test_stop_ignores_everything():
    p = MysqlParser(False)
    p.stop()
    assert p.feed(pkt(1, ok(1)), TS) == [] and p.flush() == []
