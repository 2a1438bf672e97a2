"""add_host_metadata, add_observer_metadata, add_process_metadata,
add_cloud_metadata (local fake metadata service; no cloud: nothing added
within the timeout) and add_docker_metadata (fake API socket; absent socket)."""
from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import threading
import time

import pytest

from shared.confutil import ConfigError
from worker.processors import metadata
from worker.processors.base import Context
from tests.unit.procutil import apply, chain, events


def test_add_host_metadata():
    evs = events("http_sample.pcap")
    out = apply([{"add_host_metadata": {}}], evs)
    host = out[0]["host"]
    assert host["hostname"] == socket.gethostname() and host["name"] == socket.gethostname()
    assert host["os"]["type"] == "linux" and host["os"]["kernel"] and host["architecture"]
    if os.path.exists("/etc/machine-id"):
        assert host["id"] == open("/etc/machine-id").read().strip()
    assert host["ip"] and all(ip not in ("127.0.0.1", "::1") for ip in host["ip"])
    assert all(len(m.split("-")) == 6 for m in host.get("mac", []))
    assert all(ev["host"] == host for ev in out)
    ev = chain([{"add_host_metadata": {"netinfo.enabled": False, "name": "custom",
                                       "geo": {"name": "lab", "location": "40.7, -73.9"}}}]).run(events()[0])
    assert "ip" not in ev["host"] and ev["host"]["name"] == "custom"
    assert ev["host"]["geo"] == {"name": "lab", "location": {"lat": 40.7, "lon": -73.9}}
    # replace_fields false: an event that has host fields already is left alone
    ev = {"host": {"name": "h", "ip": ["1.2.3.4"]}}
    chain([{"add_host_metadata": {"replace_fields": False}}]).run(ev)
    assert ev == {"host": {"name": "h", "ip": ["1.2.3.4"]}}
    with pytest.raises(ConfigError, match=r"add_host_metadata\.netinfo\.enable"):
        chain([{"add_host_metadata": {"netinfo": {"enable": True}}}])


def test_add_host_metadata_cache_ttl(monkeypatch):
    now = [0.0]
    calls = []
    real = metadata.host_os
    monkeypatch.setattr(metadata, "host_os", lambda: calls.append(1) or real())
    c = chain([{"add_host_metadata": {"cache.ttl": "1m", "netinfo.enabled": False}}], Context(clock=lambda: now[0]))
    for _ in range(5):
        c.run({})
    assert len(calls) == 1
    now[0] += 61
    c.run({})
    assert len(calls) == 2


def test_add_observer_metadata():
    ev = chain([{"add_observer_metadata": {"netinfo.enabled": True}}]).run(events()[0])
    assert ev["observer"]["hostname"] == socket.gethostname() and ev["observer"]["ip"]
    ev = chain([{"add_observer_metadata": {}}]).run({"observer": {"name": "keep"}})
    assert ev == {"observer": {"name": "keep"}}
    ev = chain([{"add_observer_metadata": {"overwrite": True, "netinfo.enabled": False}}]).run({"observer": {"name": "x"}})
    assert ev == {"observer": {"hostname": socket.gethostname()}}


def test_add_process_metadata():
    ev = events()[0]
    ev["process"] = {"pid": os.getpid()}
    chain([{"add_process_metadata": {"match_pids": ["process.pid"]}}]).run(ev)
    p = ev["process"]
    assert p["pid"] == os.getpid() and p["parent"]["pid"] == os.getppid()
    assert p["executable"] == os.path.realpath(os.readlink("/proc/self/exe")) or p["executable"]
    assert p["args"] and p["owner"]["id"] == str(os.getuid()) and p["start_time"].endswith("Z")
    ev = {"p": 999_999_999}
    chain([{"add_process_metadata": {"match_pids": ["p"]}}]).run(ev)
    assert ev == {"p": 999_999_999}
    ev = {"p": os.getpid()}
    chain([{"add_process_metadata": {"match_pids": ["p"], "target": "src", "include_fields": ["process.name"]}}]).run(ev)
    assert list(ev["src"]["process"]) == ["name"]
    with pytest.raises(ConfigError, match="match_pids"):
        chain([{"add_process_metadata": {}}])


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def _answer(self):
        body = self.routes.get((self.command, self.path.split("?")[0]))
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = _answer

    def log_message(self, *a):
        pass


def test_add_cloud_metadata_aws_fake_service():
    _Handler.routes = {("PUT", "/latest/api/token"): b"tok",
                       ("GET", "/latest/dynamic/instance-identity/document"):
                           {"instanceId": "i-0abc", "instanceType": "t3.micro", "region": "eu-west-1",
                            "availabilityZone": "eu-west-1a", "accountId": "123456789012", "imageId": "ami-1"}}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = metadata.AddCloudMetadata(["aws", "gcp"], 2.0, False, host="127.0.0.1", port=srv.server_address[1])
        p.start()
        ev = p.run(events()[0])
        c = ev["cloud"]
        assert c["provider"] == "aws" and c["instance"]["id"] == "i-0abc" and c["region"] == "eu-west-1"
        assert c["availability_zone"] == "eu-west-1a" and c["machine"]["type"] == "t3.micro"
        ev = p.run({"cloud": {"provider": "mine"}})          # overwrite: false keeps the event's cloud
        assert ev == {"cloud": {"provider": "mine"}}
    finally:
        srv.shutdown()
        srv.server_close()


def test_add_cloud_metadata_no_cloud_gives_up_within_timeout():
    t = time.monotonic()
    c = chain([{"add_cloud_metadata": {"timeout": "500ms"}}], Context())
    evs = [c.run(ev) for ev in events()]
    assert time.monotonic() - t < 2.0
    assert all("cloud" not in ev for ev in evs)
    t = time.monotonic()
    c.run(events()[0])
    assert time.monotonic() - t < 0.05          # gave up once: never waits again
    with pytest.raises(ConfigError, match="providers"):
        chain([{"add_cloud_metadata": {"providers": ["mycloud"]}}])


class _UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _DockerHandler(_Handler):
    def address_string(self):
        return "docker"


def test_add_docker_metadata(tmp_path):
    sock = str(tmp_path / "docker.sock")
    cid = "a" * 64
    _DockerHandler.routes = {("GET", "/containers/json"): [
        {"Id": cid, "Names": ["/web-1"], "Image": "nginx:1.25", "Labels": {"com.example.tier": "front"}}]}
    srv = _UnixHTTP(sock, _DockerHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = chain([{"add_docker_metadata": {"host": "unix://" + sock, "match_fields": ["container.id"]}}])
        ev = events()[0]
        ev["container"] = {"id": cid}
        c.run(ev)
        assert ev["container"] == {"id": cid, "name": "web-1", "image": {"name": "nginx:1.25"},
                                   "labels": {"com_example_tier": "front"}}
        ev = events()[1]
        c.run(ev)
        assert "container" not in ev
    finally:
        srv.shutdown()
        srv.server_close()


def test_add_docker_metadata_without_socket(tmp_path):
    c = chain([{"add_docker_metadata": {"host": "unix://%s/none.sock" % tmp_path}}])
    evs = events()
    out = [c.run(ev) for ev in evs]
    assert all("container" not in ev for ev in out)
    with pytest.raises(ConfigError, match=r"add_docker_metadata\.host"):
        chain([{"add_docker_metadata": {"host": "tcp://1.2.3.4:2375"}}])
