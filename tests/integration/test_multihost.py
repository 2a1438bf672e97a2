"""Two hosts, each a network namespace, joined by a veth: a worker host (``cluster.role: workers``,
2 workers, file output) and a capture host (``cluster.role: capture``, shards = the worker host's
two tcp endpoints), CurveZMQ on. Real processes, real sockets.

- a file replayed on the capture host gives the worker host exactly the all-in-one run's events;
- with a wrong server key the capture host says the handshake failed, and nothing is written;
- live capture with process attribution on the capture host: the events published by the worker
  host name the client process of the capture host.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import PCAPS, ROOT, canonical, read_events, run_packetbeat
from tests.live_capture.netns import Veth, netns_available

PCAP = PCAPS / "http_real.pcap"
PROTOCOLS = [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}]
PORT = 7400

_nets = itertools.count(170 + os.getpid() % 40)


@pytest.fixture
def hosts():
    why = netns_available()
    if why:
        pytest.skip(why)
    net = next(_nets)
    v = Veth("m%d" % net, net)      # srv namespace: the worker host; cli namespace: the capture host
    yield v
    v.close()


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def keygen(d, name):
    r = subprocess.run([sys.executable, "-m", "coordinator", "keygen", str(d), name], capture_output=True,
                       text=True, cwd=str(ROOT), env=_env())
    assert r.returncode == 0, r.stderr
    return d / (name + ".key"), d / (name + ".key_secret")


class Host:
    """``packetbeat -c FILE`` inside a namespace, its log in a file."""

    def __init__(self, argv_prefix, tmp, name, cfg, args=()):
        self.dir = tmp / name
        self.dir.mkdir()
        self.out = self.dir / "out"
        self.log = self.dir / "packetbeat.log"
        path = self.dir / (name + ".yml")
        path.write_text(yaml.safe_dump(cfg))
        self.fh = open(self.log, "w")
        self.proc = subprocess.Popen(argv_prefix + [sys.executable, "-m", "coordinator", "-c", str(path), "-e",
                                                    "-v", *args],
                                     cwd=str(ROOT), stdout=self.fh, stderr=subprocess.STDOUT, env=_env(),
                                     start_new_session=True)     # kill() takes its children along

    def text(self):
        return self.log.read_text()

    def wait_for(self, needle, count=1, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError("exited early (%s) before %r:\n%s" % (self.proc.returncode, needle, self.text()))
            time.sleep(0.1)
        raise AssertionError("no %r within %.0f s:\n%s" % (needle, timeout, self.text()))

    def wait(self, timeout=120.0):
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def stop(self, timeout=60.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # this run's own process group (its children too)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.fh.close()

    def events(self):
        return read_events(self.out)


def worker_cfg(v, host, keys, replay, extra=None):
    pub, sec = keys
    cfg = {"packetbeat.protocols": PROTOCOLS,
           "output.file": {"path": str(host / "out"), "filename": "events"},
           "logging.to_stderr": True,
           "cluster": {"role": "workers", "listen": "tcp://%s:%d" % (v.srv_ip, PORT), "workers": 2,
                       "captures": 1, "first_shard": 0, "replay": replay,
                       "curve": {"secret_key_file": str(sec), "public_key_file": str(pub)}}}
    cfg.update(extra or {})
    return cfg


def capture_cfg(v, keys, server_pub, extra=None):
    pub, sec = keys
    cfg = {"packetbeat.protocols": PROTOCOLS,
           "logging.to_stderr": True,
           "cluster": {"role": "capture", "name": "hostA",
                       "shards": ["tcp://%s:%d" % (v.srv_ip, PORT), "tcp://%s:%d" % (v.srv_ip, PORT + 1)],
                       "curve": {"secret_key_file": str(sec), "public_key_file": str(pub),
                                 "server_public_key_file": str(server_pub)}}}
    cfg.update(extra or {})
    return cfg


def replaying_worker_host(v, tmp_path):
    """Keys for both sides, and the worker host (2 workers, replay) started in ``v``'s server namespace:
    (host, its keypair, the capture host's keypair)."""
    keys = tmp_path / "keys"
    server, client = keygen(keys, "workers"), keygen(keys, "capture")
    return Host(v.srv(), tmp_path, "workers", worker_cfg(v, tmp_path / "workers", server, replay=True)), server, client


@pytest.mark.parametrize("capture", ["http_real", "bench_http_20k"])
def test_file_replay_across_two_hosts_equals_all_in_one(hosts, tmp_path, capture):
    if capture == "http_real":
        pcap = PCAP
    else:                       # the benchmarks' generated HTTP capture: 20000 packets, 100 connections at a time
        pcap = tmp_path / "bench_http.pcap"
        r = subprocess.run([sys.executable, str(ROOT / "bench" / "gen_http_pcap.py"), str(pcap), "--packets", "20000"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    (tmp_path / "all").mkdir()
    proc, expected = run_packetbeat(tmp_path / "all", pcap, PROTOCOLS, workers=2)
    assert proc.returncode == 0, proc.stderr
    assert len(expected) > 10
    wk, server, client = replaying_worker_host(hosts, tmp_path)
    cap = None
    try:
        wk.wait_for("listens on", 2)
        cap = Host(hosts.cli(), tmp_path, "capture", capture_cfg(hosts, client, server[0]), args=("-I", str(pcap)))
        assert cap.wait(120) == 0, cap.text()
        assert wk.wait(120) == 0, wk.text()          # replay: ends when both workers had the capture's eos
    finally:
        wk.kill()
        if cap is not None:
            cap.kill()
    assert "CurveZMQ handshake done" in cap.text()
    got = wk.events()
    assert canonical(got) == canonical(expected)
    assert all(e["host"]["name"] for e in got)


def test_wrong_server_key_is_reported_and_nothing_is_written(hosts, tmp_path):
    wk, server, client = replaying_worker_host(hosts, tmp_path)
    other, _ = keygen(tmp_path / "keys", "someone-else")
    cap = None
    try:
        wk.wait_for("listens on", 2)
        cap = Host(hosts.cli(), tmp_path, "capture", capture_cfg(hosts, client, other), args=("-I", str(PCAP)))
        cap.wait_for("the CurveZMQ handshake failed", 2, timeout=30)
        cap.wait_for("waiting for it (file mode: nothing is lost", 2, timeout=30)    # said again while it lasts
        assert cap.proc.poll() is None                 # waits, never pretends to be done
        cap.proc.send_signal(signal.SIGINT)
        cap.wait_for("stop requested while a remote shard is not up")
        assert cap.proc.poll() is None
        cap.proc.send_signal(signal.SIGINT)            # the drain cannot finish: the second signal stops it
        assert cap.wait(30) == 130, cap.text()
        assert wk.stop(60) == 0, wk.text()             # the worker host ends its streams itself
    finally:
        wk.kill()
        if cap is not None:
            cap.kill()
    assert wk.events() == []
    text = cap.text()
    assert "shard 0 at tcp://%s:%d" % (hosts.srv_ip, PORT) in text and "shard 1 at" in text


CLIENT = r"""
import os, socket, sys, time
print(os.getpid(), flush=True)
for i in range(2):
    s = socket.create_connection(("127.0.0.1", 8080))
    s.sendall(b"GET /?pid=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % i)
    while s.recv(65536):
        pass
    time.sleep(0.3)          # held open a while: attribution of very short connections is not what this tests
    s.close()
    time.sleep(0.3)
"""


def test_process_attribution_on_the_capture_host_with_remote_workers(hosts, tmp_path):
    keys = tmp_path / "keys"
    server, client = keygen(keys, "workers"), keygen(keys, "capture")
    protocols = {"packetbeat.protocols": [{"type": "http", "ports": [8080]}]}
    wk = Host(hosts.srv(), tmp_path, "workers", worker_cfg(hosts, tmp_path / "workers", server, replay=False,
                                                           extra=protocols))
    web = cap = None
    try:
        wk.wait_for("listens on", 2)
        # client and web server both on the capture host (namespace cli), over lo
        web = subprocess.Popen(hosts.cli(sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
        cap = Host(hosts.cli(), tmp_path, "capture",
                   capture_cfg(hosts, client, server[0], extra=dict(protocols, **{
                       "packetbeat.interfaces.device": "lo", "packetbeat.procs.enabled": True})))
        cap.wait_for("capturing on")
        cap.wait_for("CurveZMQ handshake done", 2)
        deadline = time.monotonic() + 10
        while subprocess.run(hosts.cli("curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8080/warm")).returncode:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        r = subprocess.run(hosts.cli(sys.executable, "-c", CLIENT), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        client_pid = int(r.stdout.split()[0])
        time.sleep(0.5)
        assert cap.stop() == 0, cap.text()
        assert wk.stop() == 0, wk.text()
    finally:
        if web is not None:
            web.kill()
            web.wait()
        wk.kill()
        if cap is not None:
            cap.kill()
    http = {e["url"]["query"]: e for e in wk.events()
            if e.get("type") == "http" and "pid=" in e["url"].get("query", "")}
    assert set(http) == {"pid=0", "pid=1"}, wk.text() + cap.text()
    for q, ev in http.items():
        assert ev["source"]["process"]["pid"] == client_pid, (q, ev.get("source"))
        assert ev["client"]["process"]["args"][1:] == ["-c", CLIENT]
        assert ev["server"]["process"]["pid"] == web.pid, (q, ev.get("server"))


def test_unreachable_worker_host_is_reported_and_waited_for(tmp_path):
    """No namespace needed: shards on loopback ports where nothing listens (no curve on loopback)."""
    import socket
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cfg = {"packetbeat.protocols": PROTOCOLS, "logging.to_stderr": True,
           "cluster": {"role": "capture", "shards": ["tcp://127.0.0.1:%d" % p for p in ports]}}
    cap = Host([], tmp_path, "capture", cfg, args=("-I", str(PCAP)))
    try:
        cap.wait_for("cannot connect (nothing listens there, or a firewall)", 2, timeout=30)
        cap.wait_for("waiting for it (file mode: nothing is lost", 2, timeout=30)
        assert cap.proc.poll() is None
        cap.proc.send_signal(signal.SIGINT)
        cap.wait_for("stop requested while a remote shard is not up")
        cap.proc.send_signal(signal.SIGINT)
        assert cap.wait(30) == 130, cap.text()
    finally:
        cap.kill()
    assert "shard 1 at tcp://127.0.0.1:%d" % ports[1] in cap.text()


def test_client_keys_dir_admits_only_listed_capture_hosts(tmp_path):
    """ZAP allow-list on the worker host (loopback with curve.enabled: true, no namespace needed)."""
    import shutil
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    keys = tmp_path / "keys"
    server, allowed, stranger = keygen(keys, "workers"), keygen(keys, "allowed"), keygen(keys, "stranger")
    clients = tmp_path / "clients"
    clients.mkdir()
    shutil.copy(allowed[0], clients / "allowed.key")
    wcfg = {"packetbeat.protocols": PROTOCOLS, "logging.to_stderr": True,
            "output.file": {"path": str(tmp_path / "workers" / "out"), "filename": "events"},
            "cluster": {"role": "workers", "listen": "tcp://127.0.0.1:%d" % port, "workers": 1, "captures": 1,
                        "replay": True, "curve": {"enabled": True, "secret_key_file": str(server[1]),
                                                  "public_key_file": str(server[0]),
                                                  "client_keys_dir": str(clients)}}}

    def capture_cfg_for(keypair):
        return {"packetbeat.protocols": PROTOCOLS, "logging.to_stderr": True,
                "cluster": {"role": "capture", "name": keypair[0].stem, "shards": ["tcp://127.0.0.1:%d" % port],
                            "curve": {"enabled": True, "secret_key_file": str(keypair[1]),
                                      "public_key_file": str(keypair[0]),
                                      "server_public_key_file": str(server[0])}}}

    wk = Host([], tmp_path, "workers", wcfg)
    bad = good = None
    try:
        wk.wait_for("listens on")
        bad = Host([], tmp_path, "stranger", capture_cfg_for(stranger), args=("-I", str(PCAP)))
        bad.wait_for("the CurveZMQ handshake failed", timeout=30)
        bad.kill()
        assert wk.proc.poll() is None and wk.events() == []
        good = Host([], tmp_path, "allowed", capture_cfg_for(allowed), args=("-I", str(PCAP)))
        assert good.wait(120) == 0, good.text()
        assert wk.wait(120) == 0, wk.text()
    finally:
        for h in (wk, bad, good):
            if h is not None:
                h.kill()
    assert len(wk.events()) > 10


def test_capture_killed_on_the_capture_host_still_ends_the_worker_host(hosts, tmp_path):
    """The capture host's coordinator sends the end-of-stream a killed capture could not, to every remote
    shard over CurveZMQ: the worker host finishes what it got, and the capture host exits 1 saying packets
    are missing (tests/integration/test_drain.py is the one-host version)."""
    import psutil
    wk, server, client = replaying_worker_host(hosts, tmp_path)
    cap = None
    try:
        wk.wait_for("listens on", 2)
        cap = Host(hosts.cli(), tmp_path, "capture", capture_cfg(hosts, client, server[0]),
                   args=("-I", str(PCAP), "-l", "0"))             # loops for ever: only a kill ends it
        deadline = time.monotonic() + 60
        while len(wk.events()) < 30:                                # batches crossed and were analysed
            assert time.monotonic() < deadline, "no events after 60 s:\n" + cap.text() + wk.text()
            time.sleep(0.2)
        kids = [c for c in psutil.Process(cap.proc.pid).children(recursive=True)
                if "coordinator.child" in " ".join(c.cmdline())]
        assert len(kids) == 1 and "capture" in kids[0].cmdline()
        kids[0].send_signal(signal.SIGKILL)                         # gone without its end-of-stream
        assert cap.wait(90) == 1, cap.text()
        assert wk.wait(90) == 0, wk.text()                          # both workers got the forced end-of-stream
    finally:
        wk.kill()
        if cap is not None:
            cap.kill()
    text = cap.text()
    assert "hostA/capture-0 exited with code -9 before its end-of-stream" in text, text
    assert "packets it had not sent are missing from the output" in text
    assert "'coordinator.forced_eos': 1" in text
    assert "Traceback" not in text and "Traceback" not in wk.text()
    assert len(wk.events()) >= 30


def test_live_capture_host_with_a_worker_host_down_drops_counts_and_stops_promptly(hosts, tmp_path):
    """Live capture on a capture host whose worker host never comes up (loopback ports where nothing
    listens): the link trouble is reported, full shard queues drop and count instead of growing, and a stop
    does not wait 60 s per shard for end-of-streams nobody can take (no end-of-stream to a shard that is
    not up; what is queued lingers at most 10 s)."""
    import socket
    from tests.live_capture.test_live_http import curl
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    server = subprocess.Popen(hosts.srv(sys.executable, "-m", "http.server", "8080", "--bind", hosts.srv_ip),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    cfg = {"packetbeat.protocols": [{"type": "http", "ports": [8080]}], "logging.to_stderr": True,
           "packetbeat.interfaces.device": hosts.srv_dev,
           "cluster": {"role": "capture", "name": "hostA", "hwm": 1, "batch_age_ms": 5,
                       "shards": ["tcp://127.0.0.1:%d" % p for p in ports]}}
    cap = None
    try:
        cap = Host(hosts.srv(), tmp_path, "capture", cfg)
        cap.wait_for("capturing on")
        cap.wait_for("cannot connect (nothing listens there, or a firewall)", 2, timeout=30)
        for _ in range(8):                    # requests apart: several batches per shard, more than hwm
            curl(hosts, 3)
            time.sleep(0.1)
        time.sleep(2.0)                       # a batch waits up to 1 s for room before it is dropped
        t0 = time.monotonic()
        assert cap.stop(60) == 0, cap.text()
        took = time.monotonic() - t0
    finally:
        server.kill()
        server.wait()
        if cap is not None:
            cap.kill()
    text = cap.text()
    assert "shard 0 is not up: no end-of-stream sent to it" in text and "shard 1 is not up" in text, text
    assert took < 30, "stop took %.0f s:\n%s" % (took, text)
    totals = text[text.index("Total metrics:"):]
    assert "'capture.dropped_queue_full':" in totals and "'capture.remote_unreachable':" in totals, totals
    assert "Traceback" not in text
