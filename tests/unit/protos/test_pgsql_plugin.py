"""PgsqlPlugin: TCP callbacks -> events (pairing, resync at ReadyForQuery,
unmatched and unanswered messages, SSL, gaps, options), and Packetbeat's
own pgsql captures read in place from ../shared/conformance."""
from __future__ import annotations

import struct

import pytest

from shared.confutil import ConfigError
from tests.helpers import CONFORMANCE, run_packetbeat
from worker.plugin import DIR_ORIGINAL, DIR_REVERSE, IpPortTuple, Packet, TcpTuple
from worker.protos.pgsql import PgsqlPlugin
from worker.protos.pgsql.config import PgsqlConfig
from worker.protos.pgsql.event import dump_csv, query_method

TS = 1_700_000_000_000_000_000
MS = 1_000_000
TUP = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 5432, 1)


def msg(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack("!I", len(body) + 4) + body


def cstr(s: bytes) -> bytes:
    return s + b"\0"


def query(q: bytes) -> bytes:
    return msg(b"Q", cstr(q))


def row_description(*names: bytes) -> bytes:
    body = struct.pack("!H", len(names))
    for n in names:
        body += cstr(n) + struct.pack("!IHIhiH", 0, 0, 25, -1, -1, 0)
    return msg(b"T", body)


def data_row(*vals: bytes) -> bytes:
    return msg(b"D", struct.pack("!H", len(vals)) + b"".join(struct.pack("!I", len(v)) + v for v in vals))


def complete(tag: bytes) -> bytes:
    return msg(b"C", cstr(tag))


def error(code: bytes, text: bytes, sev: bytes = b"ERROR") -> bytes:
    return msg(b"E", b"S" + cstr(sev) + b"C" + cstr(code) + b"M" + cstr(text) + b"\0")


READY = msg(b"Z", b"I")
SYNC = msg(b"S")


class Conn:
    """Drives one connection through a plugin, as the TCP layer would."""

    def __init__(self, **cfg):
        self.events: list[dict] = []
        self.plugin = PgsqlPlugin(dict({"ports": [5432]}, **cfg), self.events.append)
        self.state = None
        self.ts = TS

    def send(self, direction: int, data: bytes, dt_ms: int = 1) -> "Conn":
        self.ts += dt_ms * MS
        ipt = IpPortTuple(6, *(TUP[:4] if direction == DIR_ORIGINAL else (TUP[2], TUP[3], TUP[0], TUP[1])))
        self.state = self.plugin.parse(Packet(self.ts, ipt, memoryview(data)), TUP, direction, self.state)
        return self

    def c(self, data: bytes, dt_ms: int = 1) -> "Conn":
        return self.send(DIR_ORIGINAL, data, dt_ms)

    def s(self, data: bytes, dt_ms: int = 1) -> "Conn":
        return self.send(DIR_REVERSE, data, dt_ms)

    def flush(self) -> "Conn":
        self.plugin.flush(TUP, self.state, self.ts)
        self.state = None
        return self


def notes(ev: dict) -> list[str]:
    m = ev.get("error", {}).get("message")
    return [] if m is None else (m if isinstance(m, list) else [m])


def test_simple_select_event():
    q = query(b"select * from test;")
    resp = row_description(b"a", b"b") + data_row(b"1", b"x,y") + data_row(b"2", b" z") + complete(b"SELECT 2")
    conn = Conn(send_request=True, send_response=True).c(q).s(resp + READY, dt_ms=38)
    [ev] = conn.events
    assert ev["type"] == "pgsql" and ev["status"] == "OK"
    assert ev["method"] == "SELECT" and ev["query"] == "select * from test"
    assert ev["pgsql"] == {"num_rows": 2, "num_fields": 2}
    assert ev["source"]["bytes"] == len(q) and ev["destination"]["bytes"] == len(resp)
    assert ev["event"]["duration"] == 38 * MS and ev["event"]["dataset"] == "pgsql"
    assert ev["client"] == {"ip": "10.0.0.1", "port": 40000, "bytes": len(q)}
    assert ev["server"]["port"] == 5432 and ev["network"]["protocol"] == "pgsql"
    assert ev["request"] == "select * from test"
    assert ev["response"] == 'a,b\n1,"x,y"\n2," z"\n'
    assert "error" not in ev


def test_error_event_fields():
    e = error(b"23505", b'duplicate key value violates unique constraint "unique_a"')
    conn = Conn().c(query(b"insert into test values (1)")).s(e).s(READY)
    [ev] = conn.events
    assert ev["status"] == "Error" and ev["method"] == "INSERT"
    assert ev["pgsql"] == {"num_rows": 0, "num_fields": 0, "error_code": "23505",
                           "error_message": 'duplicate key value violates unique constraint "unique_a"',
                           "error_severity": "ERROR"}
    assert ev["destination"]["bytes"] == len(e) and "response" not in ev and "request" not in ev


def test_multi_statement_error_resyncs_at_ready():
    conn = Conn()
    conn.c(query(b"select 1; select 1/0; select 3"))
    conn.s(row_description(b"one") + data_row(b"1") + complete(b"SELECT 1") + error(b"22012", b"division by zero"))
    conn.s(READY)
    conn.c(query(b"select 4")).s(row_description(b"x") + data_row(b"4") + complete(b"SELECT 1") + READY)
    assert [(e["query"], e["status"]) for e in conn.events] == [
        ("select 1", "OK"), ("select 1/0", "Error"), ("select 3", "Error"), ("select 4", "OK")]
    third = conn.events[2]
    assert notes(third) == ["no response"] and "pgsql" not in third and "duration" not in third["event"]
    assert conn.events[3]["pgsql"]["num_rows"] == 1


def test_pipelined_simple_queries():
    conn = Conn().c(query(b"select 1") + query(b"select 2"))
    conn.s(complete(b"SELECT 0") + READY + complete(b"SELECT 0") + READY)
    assert [e["query"] for e in conn.events] == ["select 1", "select 2"]
    assert all(e["status"] == "OK" for e in conn.events)


def test_extended_query_and_hidden_prepare():
    parse = msg(b"P", cstr(b"s1") + cstr(b"select $1") + b"\0\0")
    bad = msg(b"P", cstr(b"s2") + cstr(b"selec $1") + b"\0\0")
    run = msg(b"B", cstr(b"") + cstr(b"s1") + b"\0\0\0\0\0\0") + msg(b"D", b"P\0") + msg(b"E", b"\0" + b"\0" * 4)
    conn = Conn()
    conn.c(parse + SYNC).s(msg(b"1") + READY)               # prepare: no event
    conn.c(run + SYNC).s(msg(b"2") + row_description(b"x") + data_row(b"7") + complete(b"SELECT 1") + READY)
    conn.c(bad + SYNC).s(error(b"42601", b'syntax error at or near "selec"') + READY)   # failed prepare: event
    assert [(e["query"], e["status"]) for e in conn.events] == [("select $1", "OK"), ("selec $1", "Error")]
    assert conn.events[0]["source"]["bytes"] == len(run + SYNC)
    assert conn.events[1]["pgsql"]["error_code"] == "42601"


def test_set_statement_hidden_unless_it_fails():
    def set_stmt(text: bytes) -> bytes:
        return (msg(b"P", cstr(b"") + cstr(text) + b"\0\0") + msg(b"B", b"\0\0" + b"\0" * 6)
                + msg(b"E", b"\0" + b"\0" * 4) + SYNC)
    conn = Conn().c(set_stmt(b"SET extra_float_digits = 3")).s(msg(b"1") + msg(b"2") + complete(b"SET") + READY)
    assert conn.events == []
    conn.c(set_stmt(b"SET nosuch = 1")).s(error(b"42704", b'unrecognized configuration parameter "nosuch"') + READY)
    assert [e["query"] for e in conn.events] == ["SET nosuch = 1"]


def test_unmatched_response_and_flush():
    conn = Conn()
    conn.s(complete(b"SELECT 1") + READY)                  # capture began mid-conversation
    conn.c(query(b"select pg_sleep(100)"))
    conn.flush()
    [unmatched, pending] = conn.events
    assert unmatched["status"] == "Error" and notes(unmatched) == ["Unmatched response"]
    assert "query" not in unmatched and unmatched["pgsql"]["num_rows"] == 0
    assert pending["query"] == "select pg_sleep(100)" and notes(pending) == ["no response"]


def test_startup_error_is_an_unmatched_response():
    startup = struct.pack("!II", 41, 196608) + cstr(b"user") + cstr(b"nobody") + cstr(b"database") + cstr(b"x") + b"\0"
    startup = struct.pack("!I", len(startup) - 4 + 4) + startup[4:]
    conn = Conn().c(startup).s(error(b"28000", b'role "nobody" does not exist', b"FATAL"))
    conn.flush()
    [ev] = conn.events
    assert ev["pgsql"]["error_severity"] == "FATAL" and notes(ev) == ["Unmatched response"]


def test_ssl_accepted_stops_analysis():
    conn = Conn()
    conn.c(struct.pack("!II", 8, 80877103)).s(b"S")
    conn.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)))
    conn.s(b"\x16\x03\x03\x00\x7a\x02" + bytes(range(100)))
    conn.flush()
    assert conn.events == [] and conn.plugin.parse_errors == 0


def test_ssl_refused_then_plain_session():
    conn = Conn()
    conn.c(struct.pack("!II", 8, 80877103)).s(b"N")
    startup = struct.pack("!I", 196608) + cstr(b"user") + cstr(b"root") + b"\0"
    conn.c(struct.pack("!I", len(startup) + 4) + startup)
    conn.s(msg(b"R", b"\0\0\0\0") + msg(b"S", cstr(b"a") + cstr(b"b")) + msg(b"K", b"\0" * 8) + READY)
    conn.c(query(b"select 1")).s(complete(b"SELECT 1") + READY)
    assert [e["query"] for e in conn.events] == ["select 1"]


def test_copy_in_event():
    q = query(b"copy t from stdin")
    data = msg(b"d", b"1\tone\n") + msg(b"c")
    copy_in = msg(b"G", b"\0\0\1\0\0")
    conn = Conn().c(q).s(copy_in).c(data).s(complete(b"COPY 1") + READY)
    [ev] = conn.events
    assert ev["method"] == "COPY" and ev["status"] == "OK"
    assert ev["source"]["bytes"] == len(q) + len(data)
    assert ev["destination"]["bytes"] == len(copy_in) + len(complete(b"COPY 1"))


def test_garbage_drops_the_direction_then_recovers():
    conn = Conn()
    conn.c(b"\x01\x02\x03 not postgres at all")
    assert conn.plugin.parse_errors == 1
    conn.c(query(b"select 1")).s(complete(b"SELECT 1") + READY)
    assert [e["query"] for e in conn.events] == ["select 1"]


def test_gap_inside_a_row_keeps_the_transaction():
    conn = Conn().c(query(b"select big"))
    rows = row_description(b"a") + data_row(b"x" * 3000)
    conn.s(rows[:1000])
    state, drop = conn.plugin.gap_in_stream(TUP, DIR_REVERSE, 1500, conn.state)
    assert not drop
    conn.state = state
    conn.s(rows[2500:] + complete(b"SELECT 1") + READY)
    [ev] = conn.events
    assert ev["status"] == "OK" and ev["pgsql"]["num_rows"] == 1
    assert notes(ev) == ["Packet loss while capturing the response"]


def test_gap_at_a_boundary_drops_and_flushes():
    conn = Conn().c(query(b"select 1"))
    state, drop = conn.plugin.gap_in_stream(TUP, DIR_ORIGINAL, 100, conn.state)
    assert drop and state is None and conn.plugin.gap_drops == 1
    assert [notes(e) for e in conn.events] == [["no response"]]


def test_incomplete_response_at_flush():
    conn = Conn().c(query(b"select g from generate_series(1, 1000) g"))
    conn.s(row_description(b"g") + data_row(b"1") + data_row(b"2"))
    conn.flush()
    [ev] = conn.events
    assert ev["pgsql"]["num_rows"] == 2 and notes(ev) == ["response incomplete"]


def test_query_method_and_csv():
    assert query_method("select\n1") == "SELECT" and query_method("  vacuum") == "VACUUM"
    assert query_method("") == ""
    assert dump_csv([b"a\nb", b"c"], [[b"1\r\n", b'q"uote'], [b"", b"\\."]]) == 'a\\nb,c\n1\\r\\n,"q""uote"\n,"\\."\n'
    assert dump_csv([], []) == ""


def test_config_options_and_validation():
    cfg = PgsqlPlugin({"ports": [5433], "max_rows": 3, "max_row_length": 7, "send_request": True,
                       "transaction_timeout": "30s"}, lambda e: None).cfg
    assert (cfg.ports, cfg.max_rows, cfg.max_row_length, cfg.send_request) == ([5433], 3, 7, True)
    assert PgsqlPlugin({"transaction_timeout": "30s"}, lambda e: None).connection_timeout() == 30.0
    assert PgsqlConfig().ports == [5432] and PgsqlConfig().max_rows == 10 and PgsqlConfig().max_row_length == 1024
    with pytest.raises(ConfigError, match="max_rows"):
        PgsqlPlugin({"max_rows": -1}, lambda e: None)
    with pytest.raises(ConfigError, match="max_row_len"):
        PgsqlPlugin({"max_row_len": 5}, lambda e: None)
    with pytest.raises(ConfigError, match="ports"):
        PgsqlPlugin({"ports": [70000]}, lambda e: None)


PB_CASES = {
    # pcap -> (bytes_in, bytes_out, method, num_rows, num_fields, status, error code)
    "pgsql_insert.pcap": (63, 16, "INSERT", 0, 0, "OK", None),
    "pgsql_insert_error.pcap": (63, 147, "INSERT", 0, 0, "Error", "23505"),
    "pgsql_rt.pcap": (25, 95, "SELECT", 2, 2, "OK", None),
    "pgsql_request_response.pcap": (25, 202, "SELECT", 4, 3, "OK", None),
}


@pytest.mark.parametrize("pcap", sorted(PB_CASES))
def test_packetbeat_captures(pcap, tmp_path):
    path = CONFORMANCE / "pcaps" / pcap
    if not path.exists():
        pytest.skip("Packetbeat's captures are not here (%s missing)" % path)
    proc, events = run_packetbeat(tmp_path, path, protocols=[{"type": "pgsql", "ports": [5432]}], workers=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [ev] = events
    bytes_in, bytes_out, method, rows, fields, status, code = PB_CASES[pcap]
    assert (ev["source"]["bytes"], ev["destination"]["bytes"], ev["method"]) == (bytes_in, bytes_out, method)
    assert (ev["pgsql"]["num_rows"], ev["pgsql"]["num_fields"], ev["status"]) == (rows, fields, status)
    assert ev["pgsql"].get("error_code") == code
    if pcap == "pgsql_rt.pcap":
        assert ev["event"]["duration"] // MS == 38
