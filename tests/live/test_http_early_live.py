"""HTTP early responses from a real server: aiohttp answers 413 to an upload before reading its
body (the handler returns without reading it; aiohttp then reads and discards the rest to keep the
connection), the client goes on sending the body and then pipelines two GETs on the same connection.
Captured on loopback with tcpdump; each response must be paired with its own request."""
from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time

import pytest

from tests.helpers import run_packetbeat

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "golden" / "gen"))

aiohttp_web = pytest.importorskip("aiohttp.web", reason="aiohttp (the test extra) is not installed")

PORT = 18081
BODY = 200_000


def _serve(ready: threading.Event, stop: threading.Event) -> None:
    async def upload(request):
        return aiohttp_web.Response(status=413, text="too large")      # the body is not read

    async def index(request):
        return aiohttp_web.Response(text="ok %s" % request.query.get("n", ""))

    async def main():
        app = aiohttp_web.Application()
        app.router.add_post("/upload", upload)
        app.router.add_get("/", index)
        runner = aiohttp_web.AppRunner(app)
        await runner.setup()
        site = aiohttp_web.TCPSite(runner, "127.0.0.1", PORT)
        await site.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()
    asyncio.run(main())


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed while waiting for a response: %r" % bytes(buf))
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = int([ln.split(b":", 1)[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0])
    while len(rest) < length:
        rest += sock.recv(65536)
    del buf[:]
    buf += rest[length:]
    return int(head.split(b" ", 2)[1]), rest[:length]


def test_early_413_then_pipelined_requests_are_each_paired(tmp_path):
    from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump
    import os
    if os.geteuid() != 0:
        pytest.skip("capturing on loopback needs root")
    tcpdump = find_tcpdump()
    ready, stop = threading.Event(), threading.Event()
    server = threading.Thread(target=_serve, args=(ready, stop), daemon=True)
    server.start()
    assert ready.wait(10)
    pcap = tmp_path / "early.pcap"
    tmp_path.chmod(0o777)
    dump = start_tcpdump(tcpdump, pcap, "tcp port %d" % PORT)
    got = []
    try:
        s = socket.create_connection(("127.0.0.1", PORT))
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % BODY + b"x" * 1000)
        buf = bytearray()
        got.append(_read_response(s, buf))                     # the early answer
        s.sendall(b"x" * (BODY - 1000))                        # the rest of the body, after it
        s.sendall(b"GET /?n=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /?n=2 HTTP/1.1\r\nHost: h\r\n\r\n")
        got.append(_read_response(s, buf))
        got.append(_read_response(s, buf))
        s.close()
        time.sleep(0.3)
    finally:
        stop_tcpdump(dump)
        stop.set()
        server.join(10)
    assert [c for c, _ in got] == [413, 200, 200] and got[2][1] == b"ok 2"    # what the client saw
    proc, events = run_packetbeat(tmp_path, pcap, [{"type": "http", "ports": [PORT]}], workers=1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pairs = sorted((e["event"]["start"], e["http"]["request"]["method"], e["url"].get("query", ""),
                    e["http"]["response"]["status_code"]) for e in events)
    assert [p[1:] for p in pairs] == [("POST", "", 413), ("GET", "n=1", 200), ("GET", "n=2", 200)], events
    post = next(e for e in events if e["http"]["request"]["method"] == "POST")
    assert post["source"]["bytes"] > BODY and post["status"] == "Error"
