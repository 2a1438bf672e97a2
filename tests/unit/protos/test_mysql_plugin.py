"""MysqlPlugin: TCP callbacks to events (pairing, prepared statements,
unmatched and expired commands, TLS, compression, gaps, options)."""
from __future__ import annotations

import struct

from tests.unit.protos.test_mysql_parser import (CLIENT_CAPS, coldef, compress, eof, err, execute, greeting,
                                                 handshake_response, lstr, ok, pkt, prepare_ok, query,
                                                 result_set, ssl_request, text_row)
from worker.plugin import IpPortTuple, Packet, TcpTuple
from worker.protos.mysql import MysqlPlugin
from worker.protos.mysql import plugin as mysql_plugin
from worker.protos.mysql.parser import CLIENT_COMPRESS

TT = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 3306, 1)
FWD = IpPortTuple(6, "10.0.0.1", 40000, "10.0.0.2", 3306)
MS = 1_000_000
T0 = 1_700_000_000_000_000_000


class Conv:
    def __init__(self, **cfg):
        self.events: list[dict] = []
        self.plugin = MysqlPlugin(dict({"ports": [3306]}, **cfg), self.events.append)
        self.state = None
        self.t = T0

    def c(self, data: bytes, dt: int = MS):
        self.t += dt
        self.state = self.plugin.parse(Packet(self.t, FWD, memoryview(data)), TT, 0, self.state)

    def s(self, data: bytes, dt: int = MS):
        self.t += dt
        self.state = self.plugin.parse(Packet(self.t, FWD.reverse(), memoryview(data)), TT, 1, self.state)

    def close(self):
        self.plugin.flush(TT, self.state, self.t)


def test_login_query_error_ping_initdb():
    v = Conv(send_request=True, send_response=True)
    v.s(greeting())
    v.c(handshake_response())
    v.s(pkt(2, ok()))
    v.c(query(b"  select *\nfrom t  "))
    v.s(result_set(1, [coldef(b"db", b"t", b"a"), coldef(b"db", b"t", b"b")],
                   [text_row(b"1", b"x, y"), text_row(None, b"2")]), dt=3 * MS)
    v.c(pkt(0, b"\x0e"))
    v.s(pkt(1, ok()))
    v.c(query(b"nodb", 2))
    v.s(pkt(1, err(1049, b"42000", b"Unknown database 'nodb'")))
    v.c(query(b"update t set a=1"))
    v.s(pkt(1, ok(5, 0)))
    v.c(pkt(0, b"\x01"))
    v.close()
    assert len(v.events) == 3
    sel, use, upd = v.events
    assert (sel["method"], sel["query"], sel["path"], sel["status"]) == ("SELECT", "select *\nfrom t", "db.t", "OK")
    assert sel["mysql"] == {"affected_rows": 0, "insert_id": 0, "num_rows": 2, "num_fields": 2}
    assert sel["event"]["duration"] == 3 * MS
    assert sel["request"] == "  select *\nfrom t  "
    assert sel["response"] == 'a,b\n1,"x, y"\nNULL,2\n'
    assert sel["source"]["bytes"] == len(query(b"  select *\nfrom t  "))
    assert (use["method"], use["query"], use["status"]) == ("USE", "USE nodb", "Error")
    assert use["mysql"]["error_code"] == 1049
    assert use["mysql"]["error_message"] == "42000: Unknown database 'nodb'"
    assert upd["mysql"]["affected_rows"] == 5 and "error_code" not in upd["mysql"]
    assert "response" in upd and upd["response"] == ""


def test_prepared_statements():
    v = Conv()
    v.c(query(b"SELECT a FROM t WHERE id = ? AND n = ?", 0x16))
    v.s(pkt(1, prepare_ok(5, 1, 2)) + pkt(2, coldef(b"", b"", b"?")) + pkt(3, coldef(b"", b"", b"?"))
        + pkt(4, eof()) + pkt(5, coldef(b"db", b"t", b"a")) + pkt(6, eof()))
    v.c(execute(5, [(8, 0), (0xFD, 0)], struct.pack("<q", 12) + lstr(b"bob")))
    v.s(pkt(1, b"\x01") + pkt(2, coldef(b"db", b"t", b"a")) + pkt(3, eof())
        + pkt(4, b"\x00\x00" + lstr(b"v")) + pkt(5, eof()))
    v.c(execute(5, [(8, 0), (0xFD, 0)], struct.pack("<q", 13), nulls=2, bound=False))
    v.s(pkt(1, b"\x01") + pkt(2, coldef(b"db", b"t", b"a")) + pkt(3, eof()) + pkt(4, eof()))
    v.c(pkt(0, b"\x19" + struct.pack("<I", 5)))              # COM_STMT_CLOSE: no answer, no event
    v.c(execute(5, [(3, 0)], struct.pack("<i", 1)))           # closed: unknown now
    v.s(pkt(1, err(1243, b"HY000", b"Unknown prepared statement handler")))
    v.close()
    prep, ex1, ex2, ex3 = v.events
    assert (prep["method"], prep["query"], prep["mysql"]["num_fields"]) == ("SELECT", "SELECT a FROM t WHERE id = ? AND n = ?", 1)
    assert prep["path"] == "db.t" and "params" not in prep
    assert ex1["query"] == prep["query"] and ex1["params"] == ["12", "bob"] and ex1["mysql"]["num_rows"] == 1
    assert ex2["params"] == ["13", "NULL"] and ex2["mysql"]["num_rows"] == 0
    assert ex3["query"] == "Request Execute Statement" and ex3["status"] == "Error"
    assert ex3["error"]["message"] == "The actual query being used is unknown"


def test_statement_timeout():
    v = Conv(statement_timeout="2s")
    v.c(query(b"SELECT ?", 0x16))
    v.s(pkt(1, prepare_ok(1, 1, 1)) + pkt(2, coldef(b"", b"", b"?")) + pkt(3, eof())
        + pkt(4, coldef(b"", b"", b"?")) + pkt(5, eof()))
    v.c(execute(1, [(3, 0)], struct.pack("<i", 1)), dt=3_000 * MS)
    v.s(pkt(1, ok()))
    assert v.events[1]["query"] == "Request Execute Statement"


def test_prepared_statements_are_bounded(monkeypatch):
    monkeypatch.setattr(mysql_plugin, "MAX_STATEMENTS", 2)
    v = Conv()

    def prepare(sid: int):
        v.c(query(b"SELECT %d, ?" % sid, 0x16))
        v.s(pkt(1, prepare_ok(sid, 1, 1)) + pkt(2, coldef(b"", b"", b"?")) + pkt(3, eof())
            + pkt(4, coldef(b"", b"", b"?")) + pkt(5, eof()))

    def run(sid: int) -> str:
        v.c(execute(sid, [(3, 0)], struct.pack("<i", 1)))
        v.s(pkt(1, ok()))
        return v.events[-1]["query"]

    prepare(1)
    prepare(2)
    assert run(1) == "SELECT 1, ?"                 # used: now the most recent
    prepare(3)                                     # over the bound: the least recently used (2) goes
    assert list(v.state.statements) == [1, 3]
    assert run(2) == "Request Execute Statement"
    assert (run(1), run(3)) == ("SELECT 1, ?", "SELECT 3, ?")


def test_unmatched_and_expired():
    v = Conv(transaction_timeout="1s")
    v.s(pkt(1, ok(1)))                                      # answer to nothing seen
    v.c(query(b"select sleep(5)"))
    v.c(query(b"select 2"), dt=2_000 * MS)                  # the first one is given up now
    v.s(pkt(1, b"\x01") + pkt(2, coldef(b"", b"", b"s")) + pkt(3, eof()) + pkt(4, text_row(b"0")) + pkt(5, eof()))
    v.s(pkt(1, ok()))
    v.c(query(b"select 3"))
    v.close()
    msgs = [(e.get("query"), e["status"], e.get("error", {}).get("message")) for e in v.events]
    assert msgs == [(None, "Error", "Unmatched response"),
                    ("select sleep(5)", "Error", "Unmatched request"),
                    (None, "Error", "Unmatched response"),       # the late answer is not paired with select 2
                    ("select 2", "OK", None),
                    ("select 3", "Error", "Unmatched request")]


def test_tls_stops_analysis():
    v = Conv()
    v.s(greeting())
    v.c(ssl_request())
    v.s(b"\x16\x03\x03\x00\x5a\x02" + b"\x00" * 100)
    v.c(b"\x17\x03\x03\x00\x20" + b"\x03" * 32)
    v.close()
    assert v.events == [] and v.plugin.tls_streams == 1 and v.state.tls


def test_compressed_connection():
    v = Conv()
    v.s(greeting())
    v.c(handshake_response(caps=CLIENT_CAPS | CLIENT_COMPRESS))
    v.s(pkt(2, ok()))
    v.c(compress(query(b"select 1")))
    v.s(compress(result_set(1, [coldef(b"", b"", b"1")], [text_row(b"1")]), 0))
    v.c(compress(query(b"select nope")))
    v.s(compress(pkt(1, err(1054, b"42S22", b"Unknown column")), 0, raw=True))
    v.close()
    assert [(e["query"], e["status"], e["mysql"]["num_rows"]) for e in v.events] == \
        [("select 1", "OK", 1), ("select nope", "Error", 0)]
    assert v.plugin.compressed_streams == 1


def test_gap_publishes_loss_and_drops():
    v = Conv()
    v.c(query(b"select * from big"))
    data = result_set(1, [coldef(b"test", b"big", b"a")], [text_row(b"x" * 200)] * 50)
    v.s(data[:3000])
    state, drop = v.plugin.gap_in_stream(TT, 1, 1000, v.state)
    assert drop and state is None
    (ev,) = v.events
    assert ev["error"]["message"] == "Packet loss while capturing the response"
    assert ev["status"] == "OK" and ev["mysql"]["num_rows"] > 5 and "bytes" not in ev["destination"]


def test_garbage_never_raises():
    v = Conv()
    v.c(b"\x05\x00\x00\x00\x03sel")
    v.s(b"\x07\x00\x00\x01\xfc\xff\xff\xff\xff\x00\x00" * 3)
    v.s(b"\x03\x00\x00\x01\x00\x00\x00")
    v.c(b"\xff" * 50)
    v.c(query(b"sel"))
    v.s(pkt(1, b"\x02") + pkt(2, b"\xff not a column definition"))
    v.s(pkt(1, ok(3)))
    v.close()
    assert v.plugin.parse_errors == 1
    assert all(e["type"] == "mysql" for e in v.events)


def test_config_defaults_and_errors():
    p = MysqlPlugin(None, lambda e: None)
    assert p.ports() == [3306, 3307] and p.cfg.max_rows == 10 and p.cfg.max_row_length == 1024
    assert p.cfg.statement_timeout == 3600.0
    import pytest
    from shared.confutil import ConfigError
    with pytest.raises(ConfigError):
        MysqlPlugin({"max_rows": -1}, lambda e: None)
    with pytest.raises(ConfigError):
        MysqlPlugin({"bogus": 1}, lambda e: None)
