"""Live capture (root, network namespace) with flows and process attribution on: a known client
process (its pid printed by itself) talks HTTP to a known server process, both on the capture host;
the transactions and flows name both processes, also for a connection that lasts about 30 ms, and
the flow counters equal tcpdump's count of what the capture dumped."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import pytest

from tests.integration.test_flows_pipeline import tcpdump_counts
from tests.live_capture.conftest import LiveRun
from tests.live_capture.netns import Veth, netns_available

CLIENT = r"""
import os, socket, sys, time
print(os.getpid(), flush=True)
ip = sys.argv[1]
for i, hold in enumerate((0.3, 0.0)):          # the second connection: about 30 ms, end to end
    t0 = time.monotonic()
    s = socket.create_connection((ip, 8080))
    s.sendall(b"GET /?pid=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % i)
    while s.recv(65536):
        pass
    time.sleep(max(0.0, hold - (time.monotonic() - t0)) if hold else max(0.0, 0.03 - (time.monotonic() - t0)))
    s.close()
    print("%d %.4f" % (i, time.monotonic() - t0), flush=True)
    time.sleep(0.5)
"""

_nets = itertools.count(60 + os.getpid() % 30)


@pytest.fixture
def veth():
    why = netns_available()
    if why:
        pytest.skip(why)
    v = Veth("p%d" % next(_nets), next(_nets))
    yield v
    v.close()


def test_live_flows_and_processes(veth, tmp_path):
    if subprocess.run(["which", "tcpdump"], capture_output=True).returncode:
        pytest.skip("tcpdump is not installed: no independent count")
    server = subprocess.Popen(veth.srv(sys.executable, "-m", "http.server", "8080", "--bind", veth.srv_ip),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    run = None
    try:
        dump = tmp_path / "lo.pcap"
        # client and server share the capture's namespace: their traffic runs over lo
        run = LiveRun(veth, tmp_path, {"packetbeat.interfaces.device": "lo",
                                       "packetbeat.procs.enabled": True,
                                       "packetbeat.flows": {"timeout": "10s", "period": "-1s"}},
                      args=("--dump", str(dump)))
        run.wait_ready()
        deadline = time.monotonic() + 10
        while subprocess.run(veth.srv("curl", "-s", "-o", "/dev/null", "http://%s:8080/warm" % veth.srv_ip)
                             ).returncode and time.monotonic() < deadline:
            time.sleep(0.1)
        client = subprocess.run(veth.srv(sys.executable, "-c", CLIENT, veth.srv_ip), capture_output=True,
                                text=True, timeout=30)
        assert client.returncode == 0, client.stderr
        lines = client.stdout.split()
        client_pid = int(lines[0])
        time.sleep(0.5)
        assert run.stop() == 0, run.text()
    finally:
        server.kill()
        server.wait()
    events = run.events()
    http = {e["url"]["query"]: e for e in events if e.get("type") == "http" and "pid=" in e["url"].get("query", "")}
    assert set(http) == {"pid=0", "pid=1"}, run.text()
    for q, ev in http.items():
        assert ev["client"]["process"]["pid"] == client_pid, (q, ev.get("client"))
        assert ev["source"]["process"]["pid"] == client_pid
        assert ev["client"]["process"]["args"][1:] == ["-c", CLIENT, veth.srv_ip]
        assert os.path.realpath(ev["client"]["process"]["executable"]) == os.path.realpath(sys.executable)
        assert ev["server"]["process"]["pid"] == server.pid, (q, ev.get("server"))
        assert ev["server"]["process"]["args"][1:] == ["-m", "http.server", "8080", "--bind", veth.srv_ip]
    flows = [e for e in events if e.get("type") == "flow" and e["destination"].get("port") == 8080]
    by_port = {e["source"]["port"]: e for e in flows}
    for ev in http.values():
        f = by_port[ev["client"]["port"]]
        assert f["source"]["process"]["pid"] == client_pid
        assert f["destination"]["process"]["pid"] == server.pid
    short = by_port[http["pid=1"]["client"]["port"]]
    assert short["event"]["duration"] < 50_000_000, short["event"]      # the connection lasted < 50 ms
    convs, _ = tcpdump_counts(dump)
    for f in flows:
        c = convs[("tcp", frozenset(((f["source"]["ip"], f["source"]["port"]),
                                     (f["destination"]["ip"], f["destination"]["port"]))))]
        assert f["source"]["packets"] == c["n"]["pk", True] and f["source"]["bytes"] == c["n"]["by", True]
        assert f["destination"]["packets"] == c["n"]["pk", False]
        assert f["destination"]["bytes"] == c["n"]["by", False]
