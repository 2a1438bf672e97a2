#!/usr/bin/env python3
"""Synthetic HTTP captures: the cases a real TCP stack rarely produces, and the shipped sample.

Usage (from the repository root)::

    .venv/bin/python tests/golden/gen/http_synth.py [--out tests/golden/pcaps]

Writes, next to a ``<name>.truth.json`` each:

- ``http_synth.pcap`` (Ethernet): pipelined requests in one segment; a response
  and a chunked response split at awkward points; a lost segment inside a
  response body; retransmissions and out-of-order segments; IPv6; 802.1Q VLAN;
  an IPv4-fragmented request; a request with no response; a response with no
  request (capture starts mid-stream); a close-delimited body.
- ``http_synth_sll.pcap`` (Linux cooked capture, linktype 113): a classic pcap
  has one linktype, so the SLL case lives in its own file.
- ``http_sample.pcap`` (Ethernet): a small realistic mix (30 transactions,
  several clients and two servers), the capture ``packetbeat`` analyses out of
  the box.

Everything is fixed (timestamps, addresses, ISNs, IP ids, random seed), so
rerunning writes byte-identical files.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from flowbuild import CLIENT, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, SERVER, Capture, Endpoint, TcpConv
from httpmsg import Txn, request, response

T0 = 1_700_000_000_000_000          # 2023-11-14T22:13:20Z, in µs
SAMPLE_SEED = 20240611
UA_CURL = "curl/8.4.0"


def _txt(n: int, seed: int = 0) -> bytes:
    """``n`` bytes of printable, deterministic filler."""
    words = b"packet beat wire data transaction latency shard worker flow capture ".split()
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


class Synth:
    """Collects conversations and their truth records for one capture file."""

    def __init__(self, linktype: int) -> None:
        self.cap = Capture(linktype)
        self.txns: list[Txn] = []

    def conv(self, client: Endpoint, server: Endpoint, t: int, **kw) -> TcpConv:
        return TcpConv(self.cap, client, server, t, **kw)

    def txn(self, case: str, c: TcpConv, method, target, status, req_body, resp_body,
            req_ts, resp_ts, notes=()) -> None:
        path, query = (None, None)
        if target is not None:
            path, _, query = target.partition("?")
        self.txns.append(Txn(case, c.client.ip, c.client.port, c.server.ip, c.server.port,
                             method, path, query if target and "?" in target else None, status,
                             req_body, resp_body, req_ts, resp_ts, list(notes)))

    def write(self, out: Path, name: str) -> int:
        n = self.cap.write(out / f"{name}.pcap")
        truth = {
            "pcap": f"{name}.pcap",
            "generator": "tests/golden/gen/http_synth.py",
            "linktype": self.cap.linktype,
            "packets": n,
            "transactions": [t.to_dict() for t in self.txns],
        }
        (out / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        return n


def _cut_points(data: bytes, marks: list[tuple[bytes, int]]) -> list[int]:
    """Offsets ``data.find(needle) + delta`` for each (needle, delta), sorted, unique."""
    pts = set()
    for needle, delta in marks:
        i = data.find(needle)
        assert i >= 0, needle
        pts.add(i + delta)
    return sorted(p for p in pts if 0 < p < len(data))


# --------------------------------------------------------------------------- cases
def case_pipelined(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.10", 40001, "02:00:00:00:01:10"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(0x1000_0000, 0x2000_0000))
    c.handshake()
    targets = ["/static/site.css", "/static/app.js", "/img/logo.png?v=3"]
    reqs = [request("GET", tg, "shop.example", [("User-Agent", UA_CURL), ("Accept", "*/*")]) for tg in targets]
    req_ts = c.send(CLIENT, b"".join(reqs), after=200)
    c.ack(SERVER)
    bodies = [_txt(310, 1), _txt(1200, 2), bytes(range(256)) * 3]
    types = ["text/css", "application/javascript", "image/png"]
    resps = [response(200, "OK", b, [("Content-Type", ty)]) for b, ty in zip(bodies, types)]
    ts01 = c.send(SERVER, resps[0] + resps[1], after=900)       # two responses back to back in one write
    ts2 = c.send(SERVER, resps[2], after=300)
    c.ack(CLIENT)
    c.close(CLIENT)
    notes = ["three requests pipelined in one TCP segment"]
    for tg, b, rts in zip(targets, bodies, [ts01, ts01, ts2]):
        s.txn("pipelined", c, "GET", tg, 200, 0, len(b), req_ts, rts, notes)


def case_split_awkward(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.11", 40002, "02:00:00:00:01:11"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(0xFFFF_F000, 0x0000_0100))       # client seq wraps around 2^32
    c.handshake()
    req = request("GET", "/split/content-length?x=1", "shop.example", [("User-Agent", UA_CURL)])
    req_ts = c.send(CLIENT, req, splits=_cut_points(req, [(b" /split", 1), (b"HTTP/1.1", 6), (b"\r\nHost", 1),
                                                         (b"\r\n\r\n", 3)]), after=200)
    body = _txt(700, 3)
    resp = response(200, "OK", body, [("Content-Type", "text/plain"), ("X-Split", "everywhere")])
    cuts = _cut_points(resp, [(b"HTTP/1.1", 2), (b" OK", 0), (b"OK\r\n", 3), (b"Content-Type", 4),
                              (b"Content-Length:", 15), (b"\r\n\r\n", 3), (b"\r\n\r\n", 4),
                              (b"\r\n\r\n", 4 + 350)])
    resp_ts = c.send(SERVER, resp, splits=cuts, after=800)
    c.ack(CLIENT)
    s.txn("split_awkward", c, "GET", "/split/content-length?x=1", 200, 0, len(body), req_ts, resp_ts,
          ["request and response split mid-line, between CR and LF, inside the header terminator"])

    req2 = request("GET", "/split/chunked", "shop.example", [("User-Agent", UA_CURL)])
    req2_ts = c.send(CLIENT, req2, after=500)
    body2 = _txt(300, 4)
    resp2 = response(200, "OK", body2, [("Content-Type", "text/plain")], length="chunked", chunk_size=0x1a,
                     trailers=[("X-Checksum", "abc123")])
    head_end = resp2.find(b"\r\n\r\n") + 4
    cuts2 = sorted({head_end + 1,                      # inside the first chunk-size "1a"
                    head_end + 3,                      # between the size's CR and LF
                    head_end + 4 + 10,                 # inside chunk data
                    head_end + 4 + 0x1a + 1,           # between the data's CR and LF
                    resp2.rfind(b"0\r\n") + 1,         # after the last-chunk "0"
                    resp2.rfind(b"X-Checksum") + 5,    # inside the trailer
                    len(resp2) - 1})                   # before the final LF
    resp2_ts = c.send(SERVER, resp2, splits=cuts2, after=700)
    c.ack(CLIENT)
    c.close(SERVER)
    s.txn("split_awkward", c, "GET", "/split/chunked", 200, 0, len(body2), req2_ts, resp2_ts,
          ["chunked response split inside chunk sizes, CRLFs, data and trailer"])


def case_gap(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.12", 40003, "02:00:00:00:01:12"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(77_000, 990_000))
    c.handshake()
    req = request("GET", "/report.csv", "shop.example", [("User-Agent", UA_CURL)])
    req_ts = c.send(CLIENT, req, after=150)
    body = _txt(4000, 5)
    resp = response(200, "OK", body, [("Content-Type", "text/csv")])
    head = resp.find(b"\r\n\r\n") + 4
    resp_ts = c.send(SERVER, resp, splits=[head + 1200, head + 2600], drop=frozenset({1}), after=2000)
    c.ack(CLIENT)
    s.txn("gap_in_body", c, "GET", "/report.csv", 200, 0, len(body), req_ts, resp_ts,
          ["1400 bytes of the response body (one segment) are missing from the capture"])
    req2 = request("GET", "/after-gap", "shop.example", [("User-Agent", UA_CURL)])
    req2_ts = c.send(CLIENT, req2, after=400)
    body2 = b'{"ok":true}'
    resp2_ts = c.send(SERVER, response(200, "OK", body2, [("Content-Type", "application/json")]), after=600)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("gap_in_body", c, "GET", "/after-gap", 200, 0, len(body2), req2_ts, resp2_ts,
          ["same connection, after the gap"])


def case_retrans_ooo(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.13", 40004, "02:00:00:00:01:13"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(3_000_000_000, 123_456))
    c.handshake()
    req = request("GET", "/catalog?page=2&sort=price", "shop.example", [("User-Agent", UA_CURL)])
    req_ts = c.send(CLIENT, req, retransmit=frozenset({0}), gap=200_000, after=150)  # RTO-style retransmit
    body = _txt(3000, 6)
    resp = response(200, "OK", body, [("Content-Type", "text/html; charset=utf-8")])
    head = resp.find(b"\r\n\r\n") + 4
    resp_ts = c.send(SERVER, resp, splits=[head + 1000, head + 2000], order=[0, 2, 1],
                     retransmit=frozenset({2}), after=1500)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("retrans_ooo", c, "GET", "/catalog?page=2&sort=price", 200, 0, len(body), req_ts, resp_ts,
          ["request segment retransmitted", "response segments arrive 0, 2, 2 (retransmitted), 1"])


def case_ipv6(s: Synth, t: int) -> None:
    cli, srv = Endpoint("2001:db8::10", 40005, "02:00:00:00:06:10"), Endpoint("2001:db8::1", 8080, "02:00:00:00:06:01")
    c = s.conv(cli, srv, t, isn=(555, 777))
    c.handshake()
    req = request("GET", "/api/v1/status", "[2001:db8::1]:8080", [("Accept", "application/json")])
    req_ts = c.send(CLIENT, req, after=100)
    body = b'{"status":"green","nodes":3}'
    resp_ts = c.send(SERVER, response(200, "OK", body, [("Content-Type", "application/json")]), after=700)
    c.ack(CLIENT)
    s.txn("ipv6", c, "GET", "/api/v1/status", 200, 0, len(body), req_ts, resp_ts)
    pbody = b'{"name":"shard-7","replicas":2}'
    req2 = request("POST", "/api/v1/indices", "[2001:db8::1]:8080",
                   [("Content-Type", "application/json")], pbody)
    req2_ts = c.send(CLIENT, req2, after=300)
    body2 = b'{"acknowledged":true}'
    resp2_ts = c.send(SERVER, response(201, "Created", body2, [("Content-Type", "application/json")]), after=2500)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("ipv6", c, "POST", "/api/v1/indices", 201, len(pbody), len(body2), req2_ts, resp2_ts)


def case_vlan(s: Synth, t: int) -> None:
    cli, srv = Endpoint("10.42.0.20", 40006, "02:00:00:00:42:20"), Endpoint("10.42.0.1", 80, "02:00:00:00:42:01")
    c = s.conv(cli, srv, t, isn=(42, 4242), link="vlan", vlan_id=42)
    c.handshake()
    req = request("GET", "/old-page", "intranet.example", [("User-Agent", UA_CURL)])
    req_ts = c.send(CLIENT, req, after=100)
    body = b"<a href=\"/new-page\">moved</a>"
    resp_ts = c.send(SERVER, response(301, "Moved Permanently", body,
                                      [("Location", "/new-page"), ("Content-Type", "text/html")]), after=400)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("vlan", c, "GET", "/old-page", 301, 0, len(body), req_ts, resp_ts, ["802.1Q VLAN 42"])


def case_fragmented(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.14", 40007, "02:00:00:00:01:14"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(9_000, 19_000))
    c.handshake()
    form = b"comment=" + _txt(3992, 7).replace(b" ", b"+")
    req = request("POST", "/upload?album=7", "shop.example",
                  [("Content-Type", "application/x-www-form-urlencoded")], form)
    req_ts = c.send_fragmented(CLIENT, req, fragsize=1480, after=100)
    c.ack(SERVER)
    body = b"stored"
    resp_ts = c.send(SERVER, response(200, "OK", body, [("Content-Type", "text/plain")]), after=3000)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("ip_fragmented_request", c, "POST", "/upload?album=7", 200, len(form), len(body), req_ts, resp_ts,
          ["the request is one TCP segment in an IPv4 datagram split into 3 fragments"])


def case_no_response(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.15", 40008, "02:00:00:00:01:15"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(31_337, 73_313))
    c.handshake()
    req_ts = c.send(CLIENT, request("GET", "/slow?delay=60", "shop.example", [("User-Agent", UA_CURL)]), after=100)
    c.ack(SERVER)
    c.wait(30_000_000)                       # the client gives up after 30 s
    c.close(CLIENT)
    s.txn("no_response", c, "GET", "/slow?delay=60", None, 0, None, req_ts, None,
          ["the server never answered; the client closed after 30 s"])


def case_mid_stream(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.16", 40009, "02:00:00:00:01:16"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(600_000, 700_000))     # no handshake: the capture starts here
    body = _txt(900, 8)
    resp_ts = c.send(SERVER, response(200, "OK", body, [("Content-Type", "text/plain")]))
    c.ack(CLIENT)
    s.txn("mid_stream", c, None, None, 200, None, len(body), None, resp_ts,
          ["capture starts mid-stream: the response's request is not in the capture"])
    req_ts = c.send(CLIENT, request("GET", "/next", "shop.example", [("User-Agent", UA_CURL)]), after=5000)
    body2 = _txt(120, 9)
    resp2_ts = c.send(SERVER, response(200, "OK", body2, [("Content-Type", "text/plain")]), after=600)
    c.ack(CLIENT)
    c.close(CLIENT)
    s.txn("mid_stream", c, "GET", "/next", 200, 0, len(body2), req_ts, resp2_ts)


def case_close_delimited(s: Synth, t: int) -> None:
    cli, srv = Endpoint("192.168.1.17", 40010, "02:00:00:00:01:17"), Endpoint("192.168.1.1", 80, "02:00:00:00:01:01")
    c = s.conv(cli, srv, t, isn=(1, 2))
    c.handshake()
    req_ts = c.send(CLIENT, request("GET", "/legacy.txt", "shop.example", [("Connection", "close")],
                                    version="1.0"), after=100)
    body = _txt(2500, 10)
    resp_ts = c.send(SERVER, response(200, "OK", body, [("Content-Type", "text/plain"), ("Connection", "close")],
                                      version="1.0", length="close"), after=500)
    c.fin(SERVER)                            # the end of the body
    c.ack(CLIENT)
    c.fin(CLIENT)
    c.ack(SERVER)
    s.txn("close_delimited", c, "GET", "/legacy.txt", 200, 0, len(body), req_ts, resp_ts,
          ["HTTP/1.0 response without Content-Length; the body ends at the server's FIN"])


def build_synth(out: Path) -> int:
    s = Synth(LINKTYPE_ETHERNET)
    cases = [case_mid_stream, case_pipelined, case_split_awkward, case_gap, case_retrans_ooo, case_ipv6,
             case_vlan, case_fragmented, case_no_response, case_close_delimited]
    for i, case in enumerate(cases):
        case(s, T0 + i * 1_000_000)          # one case per second; they do not overlap
    return s.write(out, "http_synth")


def build_sll(out: Path) -> int:
    s = Synth(LINKTYPE_LINUX_SLL)
    for i, (cip, sip, port) in enumerate([("172.16.0.5", "172.16.0.1", 8080), ("fd00::5", "fd00::1", 80)]):
        cli, srv = Endpoint(cip, 41000 + i, "02:00:00:00:16:05"), Endpoint(sip, port, "02:00:00:00:16:01")
        c = s.conv(cli, srv, T0 + i * 1_000_000, isn=(1_111 + i, 2_222 + i), link="sll")
        c.handshake()
        req_ts = c.send(CLIENT, request("GET", "/health", f"{sip}:{port}"), after=100)
        body = b"ok\n"
        resp_ts = c.send(SERVER, response(200, "OK", body, [("Content-Type", "text/plain")]), after=300)
        c.ack(CLIENT)
        s.txn("sll", c, "GET", "/health", 200, 0, len(body), req_ts, resp_ts, ["Linux cooked capture"])
        pbody = b"level=debug"
        req2_ts = c.send(CLIENT, request("PUT", "/config/logging", f"{sip}:{port}",
                                         [("Content-Type", "application/x-www-form-urlencoded")], pbody), after=200)
        resp2_ts = c.send(SERVER, response(204, "No Content", length="none"), after=900)
        c.ack(CLIENT)
        c.close(CLIENT)
        s.txn("sll", c, "PUT", "/config/logging", 204, len(pbody), 0, req2_ts, resp2_ts, ["Linux cooked capture"])
    return s.write(out, "http_synth_sll")


# --------------------------------------------------------------------------- sample
_SAMPLE_ROUTES = [
    # (method, target, status, request body, response content type, response body size, server)
    ("GET", "/", 200, None, "text/html; charset=utf-8", 5400, "web"),
    ("GET", "/static/css/main.css", 200, None, "text/css", 2100, "web"),
    ("GET", "/static/js/app.js?v=1.4.2", 200, None, "application/javascript", 8800, "web"),
    ("GET", "/images/banner.jpg", 304, None, None, 0, "web"),
    ("GET", "/favicon.ico", 404, None, "text/html", 162, "web"),
    ("GET", "/products?category=books&page=2", 200, None, "text/html; charset=utf-8", 7300, "web"),
    ("GET", "/admin", 403, None, "text/html", 146, "web"),
    ("GET", "/api/v1/users?page=1&per_page=20", 200, None, "application/json", 3100, "api"),
    ("POST", "/api/v1/login", 200, b'{"user":"alice","password":"s3cret"}', "application/json", 96, "api"),
    ("PUT", "/api/v1/users/42", 200, b'{"email":"alice@example.com"}', "application/json", 140, "api"),
    ("DELETE", "/api/v1/sessions/9f8e7d", 204, None, None, 0, "api"),
    ("GET", "/api/v1/orders/1001", 200, None, "application/json", 640, "api"),
    ("POST", "/api/v1/orders", 201, b'{"sku":"B-0042","qty":2}', "application/json", 220, "api"),
    ("GET", "/api/v1/report?from=2023-11-01&to=2023-11-14", 500, None, "application/json", 58, "api"),
    ("GET", "/api/v1/search?q=packet+capture", 200, None, "application/json", 2600, "api"),
]
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 403: "Forbidden",
            404: "Not Found", 500: "Internal Server Error"}
_UAS = ["Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
        "python-requests/2.31.0", UA_CURL]


def build_sample(out: Path, total: int = 30) -> int:
    rng = random.Random(SAMPLE_SEED)
    s = Synth(LINKTYPE_ETHERNET)
    servers = {"web": Endpoint("10.1.0.80", 80, "02:00:0a:01:00:50"),
               "api": Endpoint("10.1.0.81", 8080, "02:00:0a:01:00:51")}
    clients = [f"10.1.0.{i}" for i in (11, 12, 13, 14, 15, 23)]
    made = 0
    conn_no = 0
    while made < total:
        kind = rng.choice(["web", "api"])
        srv = servers[kind]
        routes = [r for r in _SAMPLE_ROUTES if r[6] == kind]
        cip = clients[conn_no % len(clients)]
        cli = Endpoint(cip, 50000 + rng.randrange(10000), "02:00:0a:01:00:%02x" % int(cip.rsplit(".", 1)[1]))
        start = T0 + conn_no * 180_000 + rng.randrange(150_000)     # connections overlap in time
        c = s.conv(cli, srv, start, isn=(rng.getrandbits(32), rng.getrandbits(32)))
        conn_no += 1
        rtt = rng.randrange(100, 2000)
        c.handshake(rtt)
        ua = rng.choice(_UAS)
        for _ in range(min(rng.randrange(2, 6), total - made)):
            method, target, status, rbody, ctype, size, _ = rng.choice(routes)
            hdrs = [("User-Agent", ua), ("Accept", "application/json" if kind == "api" else "text/html,*/*;q=0.8")]
            if rbody is not None:
                hdrs.append(("Content-Type", "application/json"))
            if kind == "api":
                hdrs.append(("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.c2FtcGxl.c2lnbmF0dXJl"))
            if status == 304:
                hdrs.append(("If-Modified-Since", "Mon, 13 Nov 2023 08:00:00 GMT"))
            req = request(method, target, f"{srv.ip}:{srv.port}" if srv.port != 80 else "www.example.com",
                          hdrs, rbody or b"")
            req_ts = c.send(CLIENT, req, after=rng.randrange(2_000, 400_000))
            if len(req) > 600 or rng.random() < 0.3:
                c.ack(SERVER, after=rtt // 4)
            body = _txt(size, rng.getrandbits(16)) if size else b""
            rh = [("Server", "nginx/1.24.0" if kind == "web" else "gunicorn"),
                  ("Date", "Tue, 14 Nov 2023 22:13:20 GMT")]
            if ctype:
                rh.append(("Content-Type", ctype))
            length = "none" if status in (204, 304) else ("chunked" if kind == "api" and size > 2000 else "content-length")
            resp = response(status, _REASONS[status], body, rh, length=length, chunk_size=1024)
            resp_ts = c.send(SERVER, resp, after=rng.randrange(500, 80_000))
            c.ack(CLIENT, after=rtt // 2)
            s.txn("sample", c, method, target, status, len(rbody or b""), len(body), req_ts, resp_ts)
            made += 1
        c.close(rng.choice([CLIENT, SERVER]), rtt)
    truth_n = s.write(out, "http_sample")
    return truth_n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in (("http_synth", build_synth), ("http_synth_sll", build_sll), ("http_sample", build_sample)):
        n = build(args.out)
        print(f"{args.out / (name + '.pcap')}: {n} packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
