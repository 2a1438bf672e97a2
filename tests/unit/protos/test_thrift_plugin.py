"""ThriftPlugin: TCP callbacks -> events (seqid pairing, oneway calls,
exceptions, unmatched messages, timeouts, gaps, IDL names, options)."""
from __future__ import annotations

import struct

import pytest

from shared.confutil import ConfigError
from tests.helpers import ROOT
from worker.plugin import DIR_ORIGINAL, IpPortTuple, Packet, TcpTuple
from worker.protos.thrift import ThriftPlugin
from worker.protos.thrift.config import ThriftConfig
from worker.protos.thrift.parser import CALL, EXCEPTION, ONEWAY, REPLY

thriftpy2 = pytest.importorskip("thriftpy2")
from thriftpy2.protocol import TBinaryProtocol, TCompactProtocol  # noqa: E402
from thriftpy2.thrift import TApplicationException  # noqa: E402
from thriftpy2.transport import TMemoryBuffer  # noqa: E402

IDL_PATH = ROOT / "tests" / "golden" / "gen" / "thrift_idl" / "store.thrift"
IDL = thriftpy2.load(str(IDL_PATH))
Store, Counter, base = IDL.Store, IDL.Counter, IDL.base

TS = 1_700_000_000_000_000_000
MS = 1_000_000
TUP = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 9090, 1)


def enc(name, mtype, seqid, obj, compact=False, framed=False):
    buf = TMemoryBuffer()
    proto = TCompactProtocol(buf) if compact else TBinaryProtocol(buf)
    proto.write_message_begin(name, mtype, seqid)
    obj.write(proto) if isinstance(obj, TApplicationException) else proto.write_struct(obj)
    proto.write_message_end()
    data = buf.getvalue()
    return struct.pack(">I", len(data)) + data if framed else data


class Harness:
    def __init__(self, **cfg):
        self.events: list[dict] = []
        self.plugin = ThriftPlugin(dict({"ports": [9090]}, **cfg), self.events.append)
        self.state = None

    def send(self, direction: int, data: bytes, ts_ms: int = 0):
        ip = TUP.ip_port() if direction == DIR_ORIGINAL else IpPortTuple(
            6, TUP.dst_ip, TUP.dst_port, TUP.src_ip, TUP.src_port)
        self.state = self.plugin.parse(Packet(TS + ts_ms * MS, ip, memoryview(data)), TUP, direction, self.state)

    def gap(self, direction: int, n: int):
        self.state, drop = self.plugin.gap_in_stream(TUP, direction, n, self.state)
        return drop

    def close(self):
        self.plugin.flush(TUP, self.state, TS)
        self.state = None


def test_call_and_reply_event_fields():
    h = Harness()
    h.send(0, enc("incr", CALL, 3, Counter.incr_args(name="hits", by=2)), 0)
    h.send(1, enc("incr", REPLY, 3, Counter.incr_result(success=7)), 5)
    [ev] = h.events
    assert ev["type"] == "thrift" and ev["status"] == "OK"
    assert ev["method"] == "incr" and ev["path"] == "" and ev["query"] == 'incr(1: "hits", 2: 2)'
    assert ev["thrift"] == {"params": '(1: "hits", 2: 2)', "return_value": "7"}
    assert ev["event"]["duration"] == 5 * MS
    assert ev["source"]["bytes"] > 0 and ev["destination"]["bytes"] > 0
    assert ev["client"]["port"] == 40000 and ev["server"]["port"] == 9090
    assert "request" not in ev and "response" not in ev and "error" not in ev


def test_idl_names_service_and_exceptions():
    h = Harness(idl_files=[str(IDL_PATH)], send_response=True, send_request=True)
    h.send(0, enc("get", CALL, 1, Store.get_args(id=404)))
    h.send(1, enc("get", REPLY, 1, Store.get_result(nf=base.NotFound(key="k", code=404))))
    [ev] = h.events
    assert ev["status"] == "Error" and "error" not in ev
    assert ev["path"] == "Store" and ev["thrift"]["service"] == "Store"
    assert ev["query"] == "get(id: 404)" and ev["request"] == ev["query"]
    assert ev["thrift"]["exceptions"] == '(nf: (1: "k", 2: 404))' and ev["thrift"]["return_value"] == ""
    assert ev["response"] == 'Exceptions: (nf: (1: "k", 2: 404))'


def test_application_exception():
    for idl, text in (([], '(1: "boom", 2: 6)'), ([str(IDL_PATH)], '(message: "boom", type: 6)')):
        h = Harness(idl_files=idl)
        h.send(0, enc("crash", CALL, 1, Store.crash_args(x=1)))
        h.send(1, enc("crash", EXCEPTION, 1, TApplicationException(6, "boom")))
        [ev] = h.events
        assert ev["status"] == "Error" and ev["thrift"]["exceptions"] == text


def test_pipelined_calls_paired_by_seqid_out_of_order():
    h = Harness()
    h.send(0, enc("incr", CALL, 1, Counter.incr_args(name="a", by=1))
           + enc("incr", CALL, 2, Counter.incr_args(name="b", by=1)), 0)
    h.send(1, enc("incr", REPLY, 2, Counter.incr_result(success=20)), 3)
    h.send(1, enc("incr", REPLY, 1, Counter.incr_result(success=10)), 4)
    assert [(e["thrift"]["params"], e["thrift"]["return_value"], e["status"]) for e in h.events] == [
        ('(1: "b", 2: 1)', "20", "OK"), ('(1: "a", 2: 1)', "10", "OK")]


def test_oneway_published_at_once_without_response():
    h = Harness()
    h.send(0, enc("touch", ONEWAY, 0, Store.touch_args(id=1)))
    [ev] = h.events
    assert ev["status"] == "OK" and "error" not in ev and "return_value" not in ev["thrift"]
    assert "duration" not in ev["event"] and "bytes" not in ev["destination"]


def test_oneway_sent_as_call_is_presumed_from_the_next_call_or_idl():
    h = Harness()
    h.send(0, enc("touch", CALL, 0, Store.touch_args(id=1)), 0)     # old libraries: CALL
    assert h.events == []
    h.send(0, enc("ping", CALL, 0, Store.ping_args(msg="x")), 1)
    h.send(1, enc("ping", REPLY, 0, Store.ping_result(success="y")), 2)
    assert [(e["method"], e["status"], "error" in e) for e in h.events] == [("touch", "OK", False),
                                                                          ("ping", "OK", False)]
    h = Harness(idl_files=[str(IDL_PATH)])
    h.send(0, enc("touch", CALL, 0, Store.touch_args(id=1)))
    assert [(e["method"], e["status"]) for e in h.events] == [("touch", "OK")]


def test_unmatched_response_and_request():
    h = Harness()
    h.send(1, enc("incr", REPLY, 9, Counter.incr_result(success=1)))
    h.send(0, enc("incr", CALL, 4, Counter.incr_args(name="a", by=1)))
    h.close()
    assert [(e["status"], e["error"]["message"]) for e in h.events] == [
        ("Error", "Unmatched response"), ("Error", "Unmatched request")]
    assert h.events[0]["method"] == "incr" and "query" not in h.events[0]
    assert h.plugin.unmatched_responses == 1 and h.plugin.unmatched_requests == 1


def test_reply_naming_another_method_does_not_pair():
    h = Harness()
    h.send(0, enc("incr", CALL, 1, Counter.incr_args(name="a", by=1)))
    h.send(1, enc("total", REPLY, 1, Counter.total_result(success=1)))
    h.send(1, enc("incr", REPLY, 1, Counter.incr_result(success=2)))
    assert [(e.get("query"), e["status"]) for e in h.events] == [(None, "Error"), ('incr(1: "a", 2: 1)', "OK")]


def test_transaction_timeout_by_packet_time():
    h = Harness(transaction_timeout="1s")
    h.send(0, enc("incr", CALL, 1, Counter.incr_args(name="a", by=1)), 0)
    h.send(0, enc("incr", CALL, 2, Counter.incr_args(name="b", by=1)), 1500)
    assert [e["error"]["message"] for e in h.events] == ["no response (transaction timeout)"]
    assert h.plugin.expired == 1


def test_multiplexed_call_service_and_bare_reply_name():
    h = Harness(idl_files=[str(IDL_PATH)])
    h.send(0, enc("Counter:incr", CALL, 1, Counter.incr_args(name="a", by=1), compact=True, framed=True))
    h.send(1, enc("incr", REPLY, 1, Counter.incr_result(success=1), compact=True, framed=True))
    [ev] = h.events
    assert (ev["method"], ev["path"], ev["query"], ev["status"]) == ("incr", "Counter", 'incr(name: "a", by: 1)', "OK")


def test_call_from_the_server_side_has_the_server_as_client():
    h = Harness()
    h.send(1, enc("ping", CALL, 5, Store.ping_args(msg="x")))
    h.send(0, enc("ping", REPLY, 5, Store.ping_result(success="y")))
    [ev] = h.events
    assert ev["client"]["port"] == 9090 and ev["server"]["port"] == 40000 and ev["status"] == "OK"


def test_detection_per_connection_and_direction():
    for compact in (False, True):
        for framed in (False, True):
            h = Harness()
            h.send(0, enc("ping", CALL, 1, Store.ping_args(msg="x"), compact, framed))
            h.send(1, enc("ping", REPLY, 1, Store.ping_result(success="y"), compact, framed))
            assert [e["thrift"]["return_value"] for e in h.events] == ['"y"']


def test_gap_in_a_framed_reply_is_published_with_a_note_and_parsing_goes_on():
    h = Harness()
    big = enc("ping", REPLY, 1, Store.ping_result(success="z" * 500), framed=True)
    h.send(0, enc("ping", CALL, 1, Store.ping_args(msg="x"), framed=True))
    h.send(1, big[:50])
    assert h.gap(1, 100) is False            # the stream goes on
    h.send(1, big[150:])
    h.send(0, enc("ping", CALL, 2, Store.ping_args(msg="again"), framed=True))
    h.send(1, enc("ping", REPLY, 2, Store.ping_result(success="ok"), framed=True))
    assert [(e["thrift"].get("return_value"), e.get("error", {}).get("message")) for e in h.events] == [
        ("", "Packet loss while capturing the response"), ('"ok"', None)]


def test_gap_unframed_drops_the_stream_with_notes():
    h = Harness()
    h.send(0, enc("ping", CALL, 1, Store.ping_args(msg="x")))
    assert h.gap(1, 10) is True
    [ev] = h.events
    assert ev["error"]["message"] == ["Packet loss while capturing the response", "Unmatched request"]
    assert ev["status"] == "Error"
    assert h.plugin.gap_drops == 1


def test_capture_reply_off():
    h = Harness(capture_reply=False)
    h.send(0, enc("get", CALL, 1, Store.get_args(id=1)))
    h.send(1, enc("get", REPLY, 1, Store.get_result(nf=base.NotFound(key="k", code=1))))
    h.send(0, enc("get", CALL, 2, Store.get_args(id=2)))
    h.send(1, enc("get", REPLY, 2, Store.get_result(success=base.Item(id=2, name="n"))))
    assert [(e["status"], e["thrift"]["return_value"], e["thrift"].get("exceptions")) for e in h.events] == [
        ("Error", "", None), ("OK", "", None)]


def test_parse_errors_counted_and_stream_resyncs():
    h = Harness()
    h.send(0, b"GET / HTTP/1.1\r\n\r\n")
    assert h.plugin.parse_errors == 1
    h.send(0, enc("ping", CALL, 1, Store.ping_args(msg="x")))
    h.send(1, enc("ping", REPLY, 1, Store.ping_result(success="y")))
    assert len(h.events) == 1 and h.events[0]["status"] == "OK"


@pytest.mark.parametrize("key,value", [("transport_type", "http"), ("protocol_type", "json"),
                                       ("string_max_size", -1), ("idl_files", ["/nonexistent.thrift"]),
                                       ("ports", [0])])
def test_config_errors(key, value):
    from shared.confutil import build
    with pytest.raises(ConfigError) as e:
        build(ThriftConfig, {key: value}, "packetbeat.protocols.thrift")
    assert key in str(e.value)


def test_config_defaults_and_bad_idl(tmp_path):
    cfg = ThriftConfig()
    assert (cfg.ports, cfg.transport_type, cfg.protocol_type, cfg.string_max_size, cfg.collection_max_size,
            cfg.drop_after_n_struct_fields, cfg.capture_reply, cfg.obfuscate_strings) == \
        ([9090], "", "", 200, 15, 500, True, False)
    bad = tmp_path / "bad.thrift"
    bad.write_text("service S { void f(1: i32 x }\n")
    with pytest.raises(ConfigError):
        ThriftConfig(idl_files=[str(bad)]).validate("thrift")


def test_idl_includes_resolved_relative_to_the_file():
    from worker.protos.thrift.idl import load_idl
    idl = load_idl([str(IDL_PATH)])
    assert idl.find("ping").service == "Health" and idl.find("ping", "Store").params == {1: "msg"}
    assert idl.find("get").exceptions == {1: "nf", 2: "bad"} and idl.find("touch").oneway


def test_idl_with_syntax_newer_than_thriftpy2(tmp_path):
    """Annotations on namespace lines and the uuid type (Thrift 0.19, as in
    Apache Thrift's own test/ThriftTest.thrift), in a file and in one it
    includes: the methods are still named."""
    from worker.protos.thrift.idl import load_idl
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "types.thrift").write_text(
        "namespace xsd test (uri = 'http://example.org/ns')\n"
        "struct Ref { 1: uuid id, 2: string uuid_text }\n"
        "service Base { uuid newId(1: map<string, uuid> hints) }\n")
    (tmp_path / "api.thrift").write_text(
        'include "sub/types.thrift"\n'
        "namespace py api\n"
        "service Api extends types.Base {\n"
        "  types.Ref lookup(1: uuid id, 2: list<uuid> more) throws (1: Missing m),\n"
        "  oneway void forget(1: uuid id)\n"
        "}\n"
        "exception Missing { 1: string uuid }\n")
    idl = load_idl([str(tmp_path / "api.thrift")])
    assert idl.find("lookup").params == {1: "id", 2: "more"} and idl.find("lookup").exceptions == {1: "m"}
    assert idl.find("forget").oneway and idl.find("newId").service == "Base"
    assert idl.find("newId", "Api").params == {1: "hints"}
