#!/usr/bin/env python3
"""Real HTTP traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/http_real.py [--out tests/golden/pcaps] [--port 8080]

Starts Python's ``http.server.ThreadingHTTPServer`` on 127.0.0.1:PORT with the
handler below, starts ``tcpdump -i lo -w FILE -U 'tcp port PORT'``, drives real
clients against it (``http.client`` keep-alive connections and raw sockets for
pipelining, HTTP/1.0 and ``Expect: 100-continue``), stops tcpdump with SIGINT,
and writes ``http_real.pcap`` plus ``http_real.truth.json``: one record per
transaction the client made (method, path, query, status, body sizes, client
port), taken from what the client sent and received.

The capture is not byte-reproducible (ports, times, Date headers differ per
run); the committed file is one run, and its truth file goes with it.
Before writing, the script checks the capture against the truth: per client
port, the number of request lines and status lines seen on the wire must equal
what the clients did, and tcpdump must report no drops.
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from httpmsg import Txn
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams

HOST = "127.0.0.1"
BASIC_OK = "Basic YWxpY2U6d29uZGVybGFuZA=="        # alice:wonderland
LARGE_SIZE = 200 * 1024
MAX_PCAP_BYTES = 500 * 1024


def _large_body() -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ packetbeat large body\n"
    return (line * (LARGE_SIZE // len(line) + 1))[:LARGE_SIZE]


# --------------------------------------------------------------------------- server
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "packetbeat-gen/1.0"

    def log_message(self, format, *args):          # quiet: the truth file is the log
        pass

    def _reply(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
               headers: list[tuple[str, str]] = (), send_body: bool = True, length: bool = True) -> None:
        self.send_response(status)
        if status not in (204, 304) and (body or ctype):
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if length and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body and status not in (204, 304):
            self.wfile.write(body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_HEAD(self) -> None:
        path = urlsplit(self.path).path
        if path == "/search":
            self._reply(200, b"x" * 1234, "text/html; charset=utf-8", send_body=False)
        else:
            self._reply(404, b"not found\n", send_body=False)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/search":
            q = query.get("q", [""])[0]
            self._reply(200, f"<html><body>results for {q}</body></html>\n".encode(), "text/html; charset=utf-8")
        elif path == "/gzip":
            raw = b"compressible text, repeated. " * 200
            self._reply(200, gzip.compress(raw, mtime=0), "text/plain", [("Content-Encoding", "gzip"),
                                                                         ("Vary", "Accept-Encoding")])
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(4):
                piece = f"chunk {i}: ".encode() + b"z" * (100 * (i + 1)) + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.005)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/empty":
            self._reply(204)
        elif path == "/cached":
            if self.headers.get("If-None-Match") == '"v1"':
                self._reply(304, headers=[("ETag", '"v1"')])
            else:
                self._reply(200, b"cacheable\n", headers=[("ETag", '"v1"')])
        elif path == "/large":
            self._reply(200, _large_body(), "application/octet-stream")
        elif path == "/private":
            if self.headers.get("Authorization") == BASIC_OK:
                self._reply(200, b"secret data for alice\n")
            else:
                self._reply(401, b"authentication required\n", headers=[("WWW-Authenticate", 'Basic realm="gen"')])
        elif path == "/whoami":
            xff = self.headers.get("X-Forwarded-For", "")
            self._reply(200, json.dumps({"peer": self.client_address[0], "forwarded_for": xff}).encode(),
                        "application/json")
        elif path == "/login":
            self._reply(200, b"welcome\n", headers=[("Set-Cookie", "session=abc123; Path=/; HttpOnly"),
                                                    ("Set-Cookie", "theme=dark; Path=/")])
        elif path == "/account":
            if "session=abc123" in (self.headers.get("Cookie") or ""):
                self._reply(200, b'{"user":"alice"}', "application/json")
            else:
                self._reply(401, b"no session\n")
        elif path == "/legacy":
            # No Content-Length: the body ends when the server closes (HTTP/1.0 client).
            self.close_connection = True
            self._reply(200, b"legacy body, delimited by connection close\n" * 20, length=False,
                        headers=[("Connection", "close")])
        else:
            self._reply(404, b"not found\n")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        ctype = self.headers.get("Content-Type", "")
        if path == "/form" and ctype.startswith("application/x-www-form-urlencoded"):
            fields = parse_qs(body.decode())
            self._reply(200, f"received {len(fields)} fields\n".encode())
        elif path == "/api/items" and ctype.startswith("application/json"):
            item = json.loads(body)
            self._reply(201, json.dumps({"id": 17, **item}).encode(), "application/json",
                        [("Location", "/api/items/17")])
        elif path == "/upload":
            self._reply(200, f"stored {len(body)} bytes\n".encode())
        else:
            self._reply(400, b"bad request\n")


# --------------------------------------------------------------------------- clients
class Recorder:
    def __init__(self, port: int) -> None:
        self.port = port
        self.txns: list[Txn] = []

    def add(self, case: str, client_port: int, method: str, target: str, status: int,
            req_body: int, resp_body: int, notes: list[str] = ()) -> None:
        path, _, query = target.partition("?")
        self.txns.append(Txn(case, HOST, client_port, HOST, self.port, method, path,
                             query if "?" in target else None, status, req_body, resp_body, None, None,
                             list(notes)))


def keepalive_session(rec: Recorder, case: str, steps: list[tuple]) -> None:
    """Several requests on one ``http.client`` connection; each step is
    (method, target, body, headers, notes)."""
    conn = http.client.HTTPConnection(HOST, rec.port, timeout=10)
    conn.connect()
    cport = conn.sock.getsockname()[1]
    for method, target, body, headers, notes in steps:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if conn.sock is None or conn.sock.getsockname()[1] != cport:
            raise RuntimeError(f"{case}: connection was not kept alive across {method} {target}")
        rec.add(case, cport, method, target, resp.status, len(body or b""), len(data), notes)
    conn.close()


def parse_responses(buf: bytes, methods: list[str]) -> list[tuple[int, int, list[int]]]:
    """Split what a raw-socket client received into (status, entity body bytes, interim statuses)."""
    out, pos = [], 0
    for method in methods:
        interim = []
        while True:
            end = buf.index(b"\r\n\r\n", pos)
            head = buf[pos:end].decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            hdrs = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            pos = end + 4
            if 100 <= status < 200:
                interim.append(status)
                continue
            break
        if method == "HEAD" or status in (204, 304):
            n = 0
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            n = 0
            while True:
                eol = buf.index(b"\r\n", pos)
                size = int(buf[pos:eol].split(b";")[0], 16)
                pos = eol + 2 + size + 2
                n += size
                if size == 0:
                    break
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            pos += n
        else:
            n = len(buf) - pos
            pos = len(buf)
        out.append((status, n, interim))
    if pos != len(buf):
        raise RuntimeError(f"{len(buf) - pos} unexpected trailing bytes from the server")
    return out


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        d = sock.recv(65536)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


def raw_exchange(rec: Recorder, case: str, requests: list[tuple[str, str, bytes, str]], notes: list[str]) -> None:
    """Write all ``requests`` (method, target, body, raw bytes) at once; the last asks to close."""
    with socket.create_connection((HOST, rec.port), timeout=10) as sock:
        cport = sock.getsockname()[1]
        sock.sendall(b"".join(r[3] for r in requests))
        got = parse_responses(_recv_all(sock), [r[0] for r in requests])
    for (method, target, body, _), (status, n, interim) in zip(requests, got):
        rec.add(case, cport, method, target, status, len(body), n, notes)


def expect_continue(rec: Recorder) -> None:
    body = b"data=" + b"u" * 3000
    head = (f"POST /upload HTTP/1.1\r\nHost: {HOST}:{rec.port}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((HOST, rec.port), timeout=10) as sock:
        cport = sock.getsockname()[1]
        sock.sendall(head)
        first = b""
        while b"\r\n\r\n" not in first:
            d = sock.recv(4096)
            if not d:
                raise RuntimeError("server closed before 100 Continue")
            first += d
        if not first.startswith(b"HTTP/1.1 100"):
            raise RuntimeError(f"expected 100 Continue, got {first[:40]!r}")
        sock.sendall(body)
        (status, n, interim), = parse_responses(first + _recv_all(sock), ["POST"])
    rec.add("expect_100_continue", cport, "POST", "/upload", status, len(body), n,
            ["interim 100 Continue before the final response; body sent after it"])


def _req(method: str, target: str, port: int, headers: str = "", body: bytes = b"", version: str = "1.1") -> bytes:
    cl = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {target} HTTP/{version}\r\nHost: {HOST}:{port}\r\n{headers}{cl}\r\n".encode() + body


def drive_clients(rec: Recorder) -> None:
    ua = {"User-Agent": "http-real-gen/1.0"}
    form = b"name=alice&lang=en&comment=hello+world"
    item = json.dumps({"name": "widget", "price": 9.5}).encode()
    keepalive_session(rec, "keepalive_mixed", [
        ("GET", "/search?q=packetbeat&lang=en", None, ua, []),
        ("GET", "/missing", None, ua, []),
        ("POST", "/form", form, {**ua, "Content-Type": "application/x-www-form-urlencoded"}, []),
        ("POST", "/api/items", item, {**ua, "Content-Type": "application/json"}, []),
        ("GET", "/gzip", None, {**ua, "Accept-Encoding": "gzip"}, ["Content-Encoding: gzip; sizes are compressed bytes"]),
        ("GET", "/chunked", None, ua, ["Transfer-Encoding: chunked; size is the de-chunked body"]),
        ("HEAD", "/search?q=head", None, ua, ["HEAD: Content-Length 1234 but no body"]),
        ("GET", "/empty", None, ua, []),
        ("GET", "/cached", None, ua, []),
        ("GET", "/cached", None, {**ua, "If-None-Match": '"v1"'}, []),
    ])
    keepalive_session(rec, "keepalive_auth_cookies", [
        ("GET", "/private", None, ua, []),
        ("GET", "/private", None, {**ua, "Authorization": BASIC_OK}, ["Basic auth"]),
        ("GET", "/whoami", None, {**ua, "X-Forwarded-For": "203.0.113.7, 10.0.0.2"}, ["X-Forwarded-For"]),
        ("GET", "/login", None, ua, ["two Set-Cookie headers"]),
        ("GET", "/account", None, {**ua, "Cookie": "session=abc123; theme=dark"}, ["Cookie"]),
    ])
    keepalive_session(rec, "large_body", [("GET", "/large", None, ua, ["200 kB body"])])
    p = rec.port
    pipelined = [
        ("GET", "/search?q=one", b"", _req("GET", "/search?q=one", p)),
        ("HEAD", "/search", b"", _req("HEAD", "/search", p)),
        ("POST", "/form", b"a=1&b=2", _req("POST", "/form", p, "Content-Type: application/x-www-form-urlencoded\r\n",
                                          b"a=1&b=2")),
        ("GET", "/missing?x=y", b"", _req("GET", "/missing?x=y", p, "Connection: close\r\n")),
    ]
    raw_exchange(rec, "pipelined", pipelined, ["requests written in one send() call"])
    raw_exchange(rec, "http10_close", [("GET", "/legacy", b"", _req("GET", "/legacy", p, version="1.0"))],
                 ["HTTP/1.0 request; response has no Content-Length and ends at the server's close"])
    expect_continue(rec)
    # Three clients at once, so connections interleave on the wire.
    threads = [threading.Thread(target=keepalive_session, args=(rec, "concurrent", [
        ("GET", f"/search?q=parallel{i}-{j}", None, ua, []) for j in range(2)])) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------- capture






def check_capture(pcap: Path, rec: Recorder) -> int:
    """Compare request/status line counts per client port with the truth; returns the packet count."""
    streams, npackets = tcp_streams(pcap, rec.port)
    req_re = re.compile(rb"(?:GET|POST|HEAD|PUT|DELETE) /\S* HTTP/1\.[01]\r\n")
    resp_re = re.compile(rb"HTTP/1\.[01] \d{3} ")
    for cport in sorted({t.client_port for t in rec.txns}):
        want = [t for t in rec.txns if t.client_port == cport]
        up = b"".join(v for _, v in sorted(streams.get((cport, True), {}).items()))
        down = b"".join(v for _, v in sorted(streams.get((cport, False), {}).items()))
        interim = sum(1 for t in want if t.case == "expect_100_continue")
        if len(req_re.findall(up)) != len(want) or len(resp_re.findall(down)) != len(want) + interim:
            raise RuntimeError(f"client port {cport}: capture does not match what the client did")
    return npackets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    args.out.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((HOST, args.port), Handler)
    server.daemon_threads = True
    srv_thread = threading.Thread(target=server.serve_forever, daemon=True)
    srv_thread.start()
    rec = Recorder(args.port)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "http_real.pcap"
        Path(tmp).chmod(0o777)            # tcpdump may drop root privileges before writing
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % args.port)
        try:
            drive_clients(rec)
        finally:
            report = stop_tcpdump(dump)
            server.shutdown()
            server.server_close()
        n = check_capture(tmp_pcap, rec)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            sys.exit(f"http_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "http_real.pcap")
    truth = {
        "pcap": "http_real.pcap",
        "generator": "tests/golden/gen/http_real.py",
        "linktype": 1,
        "packets": n,
        "server": f"Python {sys.version.split()[0]} http.server.ThreadingHTTPServer on {HOST}:{args.port}",
        "clients": "http.client (keep-alive) and raw sockets (pipelining, HTTP/1.0, Expect: 100-continue)",
        "transactions": [t.to_dict() for t in rec.txns],
    }
    (args.out / "http_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'http_real.pcap'}: {n} packets, {len(rec.txns)} transactions, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
