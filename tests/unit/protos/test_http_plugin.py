"""HttpPlugin driven directly with Packet/TcpTuple: correlation, half
transactions, FIN-delimited bodies, gaps, and every option checked on the
emitted event. The last part replays the conformance pcaps (read in place,
skipped when absent) through a small test-side TCP reassembler and compares
the events with what Packetbeat recorded, through check.py's projection."""
from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import zlib
from pathlib import Path

import pytest

from worker.plugin import Packet, TcpTuple, TcpPlugin
from worker.protos.http import HttpPlugin
from worker.protos.http.config import HttpConfig
from shared.confutil import ConfigError, build

T0 = 1_600_000_000_000_000_000
MS = 1_000_000
TUPLE = TcpTuple("10.1.1.1", 40000, "10.2.2.2", 8080, 7)


class Conn:
    """One client/server connection fed by hand."""

    def __init__(self, cfg: dict | None = None, tcptuple: TcpTuple = TUPLE):
        self.events: list[dict] = []
        self.plugin = HttpPlugin(build(HttpConfig, cfg or {}, "http"), self.events.append)
        self.t = tcptuple
        self.state = None

    def send(self, direction: int, data: bytes, ts: int) -> "Conn":
        ipp = self.t.ip_port() if direction == 0 else self.t.ip_port().reverse()
        self.state = self.plugin.parse(Packet(ts, ipp, memoryview(data)), self.t, direction, self.state)
        return self

    def req(self, data: bytes, ts: int = T0) -> "Conn":
        return self.send(0, data, ts)

    def resp(self, data: bytes, ts: int = T0 + 5 * MS) -> "Conn":
        return self.send(1, data, ts)

    def fin(self, direction: int) -> "Conn":
        self.state = self.plugin.received_fin(self.t, direction, self.state)
        return self

    def gap(self, direction: int, n: int) -> bool:
        self.state, drop = self.plugin.gap_in_stream(self.t, direction, n, self.state)
        return drop

    def flush(self) -> "Conn":
        self.plugin.flush(self.t, self.state, T0 + 10**10)
        self.state = None
        return self

    @property
    def event(self) -> dict:
        assert len(self.events) == 1, self.events
        return self.events[0]


GET = b"GET /p/index.html?b=2&a=1 HTTP/1.1\r\nHost: www.example.com:8080\r\nUser-Agent: curl/8\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"


def test_plugin_shape():
    c = Conn()
    assert isinstance(c.plugin, TcpPlugin)
    assert c.plugin.ports() == [80, 8080, 8000, 5000, 8002]
    assert Conn({"transaction_timeout": "3s"}).plugin.connection_timeout() == 3.0


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="http.send_all_header"):
        build(HttpConfig, {"send_all_header": True}, "http")
    with pytest.raises(ConfigError, match="max_message_size"):
        build(HttpConfig, {"max_message_size": 0}, "http")


def test_simple_transaction_fields():
    ev = Conn().req(GET).resp(OK).event
    assert ev["type"] == "http" and ev["status"] == "OK"
    assert ev["method"] == "GET" and ev["query"] == "GET /p/index.html"
    assert ev["event"]["duration"] == 5 * MS
    assert ev["source"]["bytes"] == len(GET) and ev["destination"]["bytes"] == len(OK)
    assert ev["url"] == {"scheme": "http", "domain": "www.example.com", "port": 8080,
                         "path": "/p/index.html", "extension": "html", "query": "a=1&b=2",
                         "full": "http://www.example.com:8080/p/index.html?a=1&b=2"}
    assert ev["destination"]["domain"] == "www.example.com"
    assert ev["user_agent"] == {"original": "curl/8"}
    h = ev["http"]
    assert h["version"] == "1.1"
    assert h["request"]["method"] == "GET" and h["request"]["bytes"] == len(GET)
    assert h["request"]["headers"] == {"content-length": 0}
    assert h["response"]["status_code"] == 200 and h["response"]["status_phrase"] == "ok"
    assert h["response"]["headers"] == {"content-length": 5, "content-type": "text/html"}
    assert h["response"]["body"] == {"bytes": 5}
    assert "request" not in ev and "response" not in ev and "error" not in ev


def test_error_status_and_lower_case_phrase():
    ev = Conn().req(GET).resp(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").event
    assert ev["status"] == "Error" and ev["http"]["response"]["status_phrase"] == "service unavailable"


def test_pipelining_pairs_in_order_and_head_has_no_body():
    c = Conn()
    c.req(b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", T0)
    c.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
           b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", T0 + 3 * MS)
    c.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", T0 + 4 * MS)
    assert [(e["query"], e["http"]["response"]["status_code"]) for e in c.events] == [
        ("HEAD /a", 200), ("GET /b", 404), ("GET /c", 200)]
    assert [e["event"]["duration"] for e in c.events] == [3 * MS, 3 * MS, 4 * MS]


def test_unmatched_response_and_request():
    c = Conn().resp(OK)
    [ev] = c.events
    assert ev["status"] == "Error" and ev["error"]["message"] == "Unmatched response"
    assert "duration" not in ev["event"] and ev["source"]["ip"] == "10.1.1.1"
    c.req(GET).flush()
    ev = c.events[1]
    assert ev["status"] == "Error" and ev["error"]["message"] == "Unmatched request"
    assert ev["query"] == "GET /p/index.html" and "response" not in ev["http"]


def test_flush_publishes_message_with_complete_headers():
    c = Conn().req(GET).resp(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    assert c.events == []
    c.flush()
    ev = c.event
    assert ev["status"] == "OK" and ev["http"]["response"]["status_code"] == 200


def test_fin_delimited_body_counts_bytes():
    resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
    c = Conn().req(b"GET / HTTP/1.0\r\n\r\n").resp(resp).resp(b"a" * 1000).resp(b"b" * 500)
    assert c.events == []
    c.fin(1)
    ev = c.event
    assert ev["destination"]["bytes"] == len(resp) + 1500
    assert ev["http"]["response"]["headers"]["content-length"] == 1500


def test_gap_in_body_note_and_transaction_published():
    c = Conn()
    c.req(GET).resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"x" * 1000)
    assert c.gap(1, 1000) is False
    c.resp(b"y" * 1000, T0 + 9 * MS)
    ev = c.event
    assert ev["error"]["message"] == "Packet loss while capturing the response"
    assert ev["status"] == "OK" and ev["event"]["duration"] == 5 * MS


def test_gap_in_request_body_note():
    c = Conn().req(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
    c.gap(0, 8)
    c.resp(OK)
    assert c.event["error"]["message"] == "Packet loss while capturing the request"


def test_gap_in_headers_drops_connection_publishing_what_was_pending():
    c = Conn().req(GET).resp(b"HTTP/1.1 200 OK\r\nContent-")
    assert c.gap(1, 50) is True and c.state is None
    assert c.event["error"]["message"] == "Unmatched request"


def test_100_continue_does_not_complete_the_transaction():
    c = Conn()
    head = b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    c.req(head, T0)
    c.resp(b"HTTP/1.1 100 Continue\r\n\r\n", T0 + MS)
    c.req(b"data", T0 + 2 * MS)
    c.resp(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", T0 + 7 * MS)
    ev = c.event
    assert ev["http"]["response"]["status_code"] == 201 and ev["status"] == "OK"
    assert ev["event"]["duration"] == 7 * MS and ev["source"]["bytes"] == len(head) + 4


def test_switching_protocols_stops_parsing():
    c = Conn()
    c.req(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    c.resp(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    c.req(b"\x81\x85\x00\x00\x00\x00hello").flush()
    assert c.event["http"]["response"]["status_code"] == 101
    assert c.plugin.parse_errors <= 1


def test_garbage_resynchronises_on_next_message():
    c = Conn().req(b"\x16\x03\x01 not http at all\r\n\r\n")
    c.req(GET).resp(OK)
    assert c.event["status"] == "OK" and c.plugin.parse_errors == 1


def test_send_request_and_response_raw_text():
    ev = Conn({"send_request": True, "send_response": True}).req(GET).resp(OK).event
    assert ev["request"] == GET.decode()
    assert ev["response"] == OK[:-5].decode()          # headers only: body not included
    ev = Conn({"send_response": True, "include_body_for": ["text/html"]}).req(GET).resp(OK).event
    assert ev["response"] == OK.decode() and "request" not in ev


POST = (b"POST /login?next=%2Fhome HTTP/1.1\r\nHost: 10.2.2.2\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\n"
        b"user=bob&Password=s3cr%3Dt+")


def test_form_fields_become_params_with_hidden_keywords():
    ev = Conn({"hide_keywords": ["password", "NEXT"]}).req(POST).resp(OK).event
    assert ev["url"]["query"] == "Password=xxxxx&next=xxxxx&user=bob"
    assert ev["url"]["domain"] == "10.2.2.2" and "domain" not in ev["destination"]   # Host is an IP
    assert "content" not in ev["http"]["request"].get("body", {})
    ev = Conn().req(POST).resp(OK).event
    assert ev["url"]["query"] == "Password=s3cr%3Dt+&next=%2Fhome&user=bob"
    assert ev["url"]["path"] == "/login"


def test_include_body_for_request_and_response_separately():
    ev = Conn({"include_request_body_for": ["urlencoded"]}).req(POST).resp(OK).event
    assert ev["http"]["request"]["body"] == {"bytes": 27, "content": "user=bob&Password=s3cr%3Dt+"}
    assert ev["http"]["response"]["body"] == {"bytes": 5}
    ev = Conn({"include_response_body_for": ["html"]}).req(POST).resp(OK).event
    assert ev["http"]["response"]["body"] == {"bytes": 5, "content": "hello"}
    assert ev["http"]["response"]["mime_type"] == "text/plain; charset=utf-8"
    assert "content" not in ev["http"]["request"]["body"]


def test_decode_body_gzip_and_deflate():
    plain = b"<html><body>" + b"z" * 200 + b"</body></html>"
    gz = gzip.compress(plain)
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(gz)) + gz
    ev = Conn({"include_body_for": ["html"]}).req(GET).resp(resp).event
    assert ev["http"]["response"]["body"] == {"bytes": len(plain), "content": plain.decode()}
    assert ev["http"]["response"]["mime_type"] == "text/html; charset=utf-8"
    ev = Conn({"include_body_for": ["html"], "decode_body": False}).req(GET).resp(resp).event
    assert ev["http"]["response"]["body"]["bytes"] == len(gz)
    dfl = zlib.compress(plain)
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: deflate, chunked\r\n\r\n"
               + b"%x\r\n" % len(dfl) + dfl + b"\r\n0\r\n\r\n")
    ev = Conn({"include_body_for": ["html"]}).req(GET).resp(chunked).event
    assert ev["http"]["response"]["body"]["content"] == plain.decode()
    bad = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc"
    ev = Conn({"include_body_for": ["html"]}).req(GET).resp(bad).event
    assert "unable to decode body using br encoding" in ev["error"]["message"]


AUTH = (b"GET /secret HTTP/1.1\r\nHost: h\r\nAuthorization: Basic " + base64.b64encode(b"alice:pw")
        + b"\r\nProxy-Authorization: Basic eDp5\r\n\r\n")


def test_redact_authorization_and_user_name():
    ev = Conn({"send_all_headers": True, "send_request": True, "redact_authorization": True}).req(AUTH).resp(OK).event
    assert ev["http"]["request"]["headers"]["authorization"] == "*"
    assert ev["http"]["request"]["headers"]["proxy-authorization"] == "*"
    assert "YWxpY2U6cHc=" not in ev["request"] and "eDp5" not in ev["request"]
    assert "\r\nAuthorization:" + "*" * len(" Basic YWxpY2U6cHc=") + "\r\n" in ev["request"]
    assert ev["user"] == {"name": "alice"}
    ev = Conn({"send_all_headers": True}).req(AUTH).resp(OK).event
    assert ev["http"]["request"]["headers"]["authorization"].startswith("Basic ")
    assert ev["user"] == {"name": "alice"}


def test_send_headers_list_true_and_all():
    req = b"GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"
    ev = Conn({"send_headers": ["ACCEPT", "x-forwarded-for"]}).req(req).resp(OK).event
    assert set(ev["http"]["request"]["headers"]) == {"content-length", "accept", "x-forwarded-for"}
    assert set(ev["http"]["response"]["headers"]) == {"content-length", "content-type"}
    for opt in ({"send_headers": True}, {"send_all_headers": True}):
        ev = Conn(opt).req(req).resp(OK).event
        assert set(ev["http"]["request"]["headers"]) == {"content-length", "host", "accept", "x-forwarded-for"}


def test_redact_headers():
    req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Api-Key: k\r\n\r\n"
    ev = Conn({"send_all_headers": True, "redact_headers": ["X-API-Key"]}).req(req).resp(OK).event
    assert ev["http"]["request"]["headers"]["x-api-key"] == "REDACTED"


def test_split_cookie():
    req = b"GET / HTTP/1.1\r\nCookie: a=1; B=\"two\"; junk\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=x; Path=/; HttpOnly\r\nContent-Length: 0\r\n\r\n"
    ev = Conn({"send_all_headers": True, "split_cookie": True}).req(req).resp(resp).event
    assert ev["http"]["request"]["headers"]["cookie"] == {"a": "1", "b": "two"}
    assert ev["http"]["response"]["headers"]["set-cookie"] == {"sid": "x", "path": "/"}
    ev = Conn({"send_all_headers": True}).req(req).resp(resp).event
    assert ev["http"]["request"]["headers"]["cookie"] == "a=1; B=\"two\"; junk"


def test_real_ip_header():
    req = b"GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n\r\n"
    ev = Conn({"real_ip_header": "X-Forwarded-For"}).req(req).resp(OK).event
    assert ev["network"]["forwarded_ip"] == "203.0.113.9"
    assert "203.0.113.9" in ev["related"]["ip"]
    assert "forwarded_ip" not in Conn().req(req).resp(OK).event["network"]


def test_referrer_and_host_port_mismatch_note():
    req = b"GET /x HTTP/1.1\r\nHost: example.org:9999\r\nReferer: http://ref.example/a\r\n\r\n"
    ev = Conn().req(req).resp(OK).event
    assert ev["http"]["request"]["referrer"] == "http://ref.example/a"
    assert ev["error"]["message"] == "Host header port number mismatch"
    assert ev["url"]["full"] == "http://example.org:9999/x"


def test_max_message_size_cuts_body_keeps_transaction():
    body = bytes(range(256)) * 16
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: binary\r\nContent-Length: 4096\r\n\r\n" + body
    c = Conn({"max_message_size": 1024, "include_body_for": ["binary"]})
    for i in range(0, len(resp), 300):
        c.resp(resp[i:i + 300]) if i else c.req(GET).resp(resp[:300])
    ev = c.event
    assert ev["status"] == "OK" and ev["destination"]["bytes"] == len(resp)
    content = ev["http"]["response"]["body"]["content"]
    assert 0 < len(content) < 1024


def test_default_ports_and_event_is_msgpack_native():
    import msgpack
    ev = Conn().req(GET).resp(OK).event
    assert msgpack.unpackb(msgpack.packb(ev)) == ev


# --------------------------------------------------------------------------
# Conformance pcaps, replayed through a test-side TCP reassembler.
# --------------------------------------------------------------------------

CONF = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
HTTP_CASES = ("http", "wsgi", "tags", "realip", "hide_params", "geoip", "procs_config", "vlans")


def _cases():
    if not (CONF / "cases").is_dir():
        return []
    return sorted(p.stem for p in (CONF / "cases").glob("*.yml") if p.stem.startswith(HTTP_CASES))


def _load_check():
    spec = importlib.util.spec_from_file_location("pb_conformance_check", CONF / "check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def replay(pcap: Path, raw_cfg: dict) -> list[dict]:
    """Feed a pcap to HttpPlugin: in-order payloads per direction,
    retransmissions trimmed, holes reported as gaps, FINs, final flush."""
    from scapy.all import IP, TCP, IPv6, PcapReader
    events: list[dict] = []
    plugin = HttpPlugin(build(HttpConfig, raw_cfg, "http"), events.append)
    ports = set(plugin.ports())
    conns: dict = {}
    last_ts = 0
    with PcapReader(str(pcap)) as rd:
        for p in rd:
            if TCP not in p:
                continue
            ipl = p[IP] if IP in p else p[IPv6]
            tcp = p[TCP]
            last_ts = ts = int(p.time * 10**9)
            if tcp.dport in ports:
                d, key = 0, (ipl.src, tcp.sport, ipl.dst, tcp.dport)
            elif tcp.sport in ports:
                d, key = 1, (ipl.dst, tcp.dport, ipl.src, tcp.sport)
            else:
                continue
            c = conns.setdefault(key, {"t": TcpTuple(*key, len(conns)), "st": None, "next": [None, None]})
            if tcp.flags & 0x02:
                c["next"][d] = (tcp.seq + 1) & 0xFFFFFFFF
                continue
            payload, seq = bytes(tcp.payload), tcp.seq
            nxt = c["next"][d] if c["next"][d] is not None else seq
            if payload:
                ahead = (seq - nxt) & 0xFFFFFFFF
                if ahead >= 0x80000000:                      # old data: trim the overlap
                    payload = payload[(nxt - seq) & 0xFFFFFFFF:]
                    seq = nxt
                elif ahead:
                    c["st"], drop = plugin.gap_in_stream(c["t"], d, ahead, c["st"])
                    if drop:
                        c["st"] = None
                if payload:
                    ipp = c["t"].ip_port() if d == 0 else c["t"].ip_port().reverse()
                    c["st"] = plugin.parse(Packet(ts, ipp, memoryview(payload)), c["t"], d, c["st"])
                    c["next"][d] = (seq + len(payload)) & 0xFFFFFFFF
            if tcp.flags & 0x01:
                c["st"] = plugin.received_fin(c["t"], d, c["st"])
    for c in conns.values():
        plugin.flush(c["t"], c["st"], last_ts)
    return events


@pytest.mark.parametrize("name", _cases() or ["<corpus absent>"])
def test_conformance_case_projection(name):
    if name == "<corpus absent>":
        pytest.skip("conformance corpus not found at %s" % CONF)
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("scapy")
    check = _load_check()
    case = yaml.safe_load((CONF / "cases" / (name + ".yml")).read_text())
    [entry] = [p for p in case["config"]["packetbeat.protocols"] if p["type"] == "http"]
    events = replay(CONF / case["pcap"], {k: v for k, v in entry.items() if k != "type"})
    tags = case["config"].get("tags")
    for ev in events:
        if tags:
            ev["tags"] = list(tags)     # the worker adds configured tags
    expected = [json.loads(line) for line in (CONF / case["expected"]).read_text().splitlines() if line.strip()]
    want = sorted(repr(check.project(e, True)) for e in expected)
    got = [(repr(check.project(e, False)), e) for e in events]
    matched = sorted(r for r, _ in got if r in want)
    extra = [r for r, e in got if r not in want and not check.unpaired(e)]
    assert matched == want, "missing: %s\ngot: %s" % (want, [r for r, _ in got])
    assert extra == []


# ------------------------------------------------------------ early responses

POST_HEAD = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n"
E413 = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"
E401 = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
E417 = b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"


def pairs(c: Conn) -> list[tuple]:
    return [(e.get("http", {}).get("request", {}).get("method"), e["url"]["path"] if "url" in e else None,
             e.get("http", {}).get("response", {}).get("status_code"), e["status"]) for e in c.events]


def test_early_response_is_paired_with_its_request_and_the_next_ones_with_theirs():
    c = Conn()
    c.req(POST_HEAD + b"abcd", T0)                 # half of the body
    c.resp(E413, T0 + MS)                          # answered before the rest arrives
    assert c.events == []                          # held until its request is complete
    c.req(b"efgh" + GET, T0 + 2 * MS)              # the rest of the body, then a pipelined GET
    c.resp(OK, T0 + 3 * MS)
    assert pairs(c) == [("POST", "/upload", 413, "Error"), ("GET", "/p/index.html", 200, "OK")]
    first = c.events[0]
    assert first["event"]["duration"] == MS and first["source"]["bytes"] == len(POST_HEAD) + 8


def test_early_response_then_the_connection_closes_with_the_body_abandoned():
    c = Conn()
    c.req(POST_HEAD + b"ab", T0)
    c.resp(E401, T0 + MS)
    c.fin(1).fin(0)
    c.flush()
    assert pairs(c) == [("POST", "/upload", 401, "Error")]


def test_expect_100_continue_refused_with_a_final_status():
    c = Conn()
    head = b"PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    c.req(head, T0)
    c.resp(E417, T0 + MS)                           # no 100: the server refuses at once
    c.req(b"xyz" + GET, T0 + 2 * MS)                # the client still sends the body (keep-alive)
    c.resp(OK, T0 + 3 * MS)
    assert pairs(c) == [("PUT", "/big", 417, "Error"), ("GET", "/p/index.html", 200, "OK")]


def test_early_response_to_a_chunked_upload_and_a_head_request_after_it():
    c = Conn()
    c.req(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n", T0)
    c.resp(E413, T0 + MS)
    c.req(b"0\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n", T0 + 2 * MS)
    # the answer to HEAD has a Content-Length but no body: the parser must know it is HEAD's
    c.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", T0 + 3 * MS)
    c.req(GET, T0 + 4 * MS)
    c.resp(OK, T0 + 5 * MS)
    assert pairs(c) == [("POST", "/c", 413, "Error"), ("HEAD", "/", 200, "OK"), ("GET", "/p/index.html", 200, "OK")]


def test_plain_query_fast_path_equals_the_general_encoding():
    """url.query of a plain query string (the fast path) is what the general
    parse/group/quote path writes, on random queries over a small alphabet."""
    import random

    from worker.protos.http import event as ev_mod

    rng = random.Random(7)
    checked = 0
    for _ in range(20000):
        q = bytes(rng.choice(b"ab=&.-~_Z9%+;") for _ in range(rng.randrange(0, 12)))
        fast = ev_mod._plain_query(q)
        if fast is None:
            continue
        pairs, _bad = ev_mod._parse_query(q)
        assert fast == ev_mod._encode(ev_mod._group(pairs, frozenset())), q
        checked += 1
    assert checked > 1000
    assert ev_mod._plain_query(b"b=2&a=1&a=0") == "a=1&a=0&b=2"
    assert ev_mod._plain_query(b"id=3&page=4") == "id=3&page=4"
    assert ev_mod._plain_query(b"a=%41") is None
