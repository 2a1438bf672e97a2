"""Process attribution: socket table and process cache against real sockets of this machine,
the capture-side tagger, and the enrichment of engine events (transactions and flows)."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest

from coordinator.capture.process import Sharder
from shared.procs import ProcAttributor, ProcessCache, ProcTagger, SocketTable, make_tagger, read_process
from worker.engine import Engine
from worker.protos.registry import load_registry

S = 1_000_000_000

CLIENT_WAITS = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /procs HTTP/1.1\r\nHost: t\r\n\r\n")
s.recv(100)          # keep the connection open until the test server answers
s.close()
"""

# A connection made after the table's last refresh, closed as soon as the test has looked it up
# (it once lived a fixed 20 ms: on a loaded machine it was gone before the lookup read /proc).
CLIENT_SHORT = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x")
s.recv(1)            # the test server closes its side after the lookup
s.close()
"""


@pytest.fixture
def server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(20)
    yield srv
    srv.close()


def _spawn(code: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(port), "procs-test-marker"])


def test_table_finds_client_and_server_pids(server):
    port = server.getsockname()[1]
    child = _spawn(CLIENT_WAITS, port)
    try:
        conn, (cip, cport) = server.accept()
        table = SocketTable(refresh_period=60, min_interval=0)
        assert table.pid(6, "127.0.0.1", cport, "127.0.0.1", port) == child.pid
        assert table.pid(6, "127.0.0.1", port, "127.0.0.1", cport) == os.getpid()
        assert table.pid(6, "127.0.0.1", port) == os.getpid()            # the listener
        assert table.pid(17, "127.0.0.1", cport) is None                # transport is part of the key
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        conn.close()
    finally:
        assert child.wait(20) == 0


@pytest.mark.parametrize("targeted", [False, True])
def test_short_connection_found_by_the_lookup_on_miss(server, targeted):
    """``targeted=False``: the miss re-reads the whole table. ``targeted=True``: the rate limit
    forbids that (as right after another connection's refresh), and the targeted lookup
    (/proc/net inode, then the new processes' descriptors) finds it."""
    if targeted and not os.path.exists("/proc/net/tcp"):
        pytest.skip("the targeted lookup reads Linux /proc")
    port = server.getsockname()[1]
    table = SocketTable(refresh_period=3600, min_interval=3600 if targeted else 0.001, targeted=targeted)
    table.refresh()                              # the table is fresh and does not know the connection yet
    before = table.refreshes
    child = _spawn(CLIENT_SHORT, port)
    try:
        conn, (_, cport) = server.accept()       # what the capture learns from the SYN
        assert table.pid(6, "127.0.0.1", cport, "127.0.0.1", port) == child.pid
        if targeted:
            assert table.refreshes == before and table.targeted_hits == 1
        else:
            assert table.refreshes == before + 1     # found by the refresh a miss triggered, not a period
        conn.recv(10)
        conn.close()
    finally:
        assert child.wait(20) == 0
    # the connection is over: its client socket is gone from the host's table
    table.refresh()
    assert table.find(6, "127.0.0.1", cport, "127.0.0.1", port) != child.pid


def _sock(t, lip, lport, rip=None, rport=None, pid=1, status="ESTABLISHED"):
    return SimpleNamespace(type=socket.SOCK_STREAM if t == 6 else socket.SOCK_DGRAM, laddr=(lip, lport),
                           raddr=(rip, rport) if rip else (), pid=pid, status=status)


def test_refresh_period_and_miss_rate_limit():
    now = [100.0]
    socks = [_sock(6, "0.0.0.0", 80, pid=10, status=psutil.CONN_LISTEN)]
    table = SocketTable(refresh_period=5.0, min_interval=0.5, clock=lambda: now[0], list_sockets=lambda: socks)
    assert table.pid(6, "10.0.0.1", 80) == 10 and table.refreshes == 1    # wildcard listener
    socks.append(_sock(6, "::ffff:10.0.0.1", 5555, "10.0.0.2", 80, pid=11))
    now[0] += 0.1
    assert table.pid(6, "10.0.0.1", 5555, "10.0.0.2", 80) is None       # miss inside the rate limit
    assert table.refreshes == 1
    now[0] += 0.5
    assert table.pid(6, "10.0.0.1", 5555, "10.0.0.2", 80) == 11         # miss after it: refreshed
    assert table.refreshes == 2
    socks.append(_sock(6, "10.0.0.1", 81, pid=12, status=psutil.CONN_LISTEN))
    now[0] += 1.0
    assert table.pid(6, "10.0.0.1", 80) == 10 and table.refreshes == 2  # hits never refresh early
    now[0] += 5.0
    assert table.pid(6, "10.0.0.1", 81) == 12 and table.refreshes == 3  # the period did
    socks.append(_sock(6, "10.0.0.1", 9999, pid=None))                  # owner not visible
    now[0] += 1.0
    assert table.pid(6, "10.0.0.1", 9999) is None


def test_process_info_of_a_known_child():
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()",
                              "procs-test-marker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # right after fork the child may not have exec'd yet (its cmdline is still ours or empty)
        assert child.stdout.readline() == b"up\n"
        info = read_process(child.pid)
        assert info["pid"] == child.pid and info["ppid"] == os.getpid()
        assert info["args"][-1] == "procs-test-marker"
        assert os.path.realpath(info["executable"]) == os.path.realpath(psutil.Process(child.pid).exe())
        assert info["name"] == psutil.Process(child.pid).name()
        assert info["start"].endswith("Z") and info["start"][:4].isdigit()
        cache = ProcessCache(max_age=60)
        assert cache.get(child.pid) == info
    finally:
        child.stdin.close()
        child.wait(20)
        child.stdout.close()
    assert read_process(child.pid) is None


def _frame(src, sport, dst, dport, flags, seq, ack, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return b"\0" * 12 + b"\x08\x00" + ip + tcp


def test_capture_tagger_to_engine_events(server):
    """A real connection's endpoints in synthetic packets: the SYN makes the capture ship procs
    records; the worker's HTTP transaction and flow events carry both processes."""
    port = server.getsockname()[1]
    child = _spawn(CLIENT_WAITS, port)
    try:
        conn, (_, cport) = server.accept()
        req = b"GET /procs HTTP/1.1\r\nHost: t\r\n\r\n"
        resp = b"HTTP/1.1 204 No Content\r\n\r\n"
        c, s = ("127.0.0.1", cport), ("127.0.0.1", port)
        pkts = [_frame(*c, *s, 0x02, 100, 0), _frame(*s, *c, 0x12, 500, 101), _frame(*c, *s, 0x10, 101, 501),
                _frame(*c, *s, 0x18, 101, 501, req), _frame(*s, *c, 0x18, 501, 101 + len(req), resp)]
        shipped = []
        tagger = make_tagger({"enabled": True, "refresh_process_info_period": 1.0, "max_proc_read_age": 0.0})
        sh = Sharder(1, lambda i, recs: shipped.append(("pkts", recs)), keep_empty_tcp=True,
                     procs=tagger, send_procs=lambda i, recs: shipped.append(("procs", recs)))
        sh.feed([(S + i * 1000, 1, p) for i, p in enumerate(pkts)])
        sh.flush()
        conn.sendall(resp)
        conn.close()
    finally:
        assert child.wait(20) == 0
    assert [k for k, _ in shipped] == ["procs", "procs", "pkts"]     # SYN, SYN-ACK, then the batch
    eng = Engine([{"type": "http", "ports": [port]}], load_registry(),
                 flows={"timeout": "10s", "period": "-1s"}, procs={"enabled": True})
    for kind, recs in shipped:
        if kind == "procs":
            eng.handle_procs(recs)
        else:
            eng.handle([list(r) for r in recs])
    eng.finish()
    events = eng.take_events()
    http = next(e for e in events if e["type"] == "http")
    flow = next(e for e in events if e["type"] == "flow")
    for ev in (http, flow):
        assert ev["source"]["process"]["pid"] == child.pid
        assert ev["source"]["process"]["args"][-1] == "procs-test-marker"
        assert ev["destination"]["process"]["pid"] == os.getpid()
        assert ev["process"]["pid"] == os.getpid()
    assert http["client"]["process"]["pid"] == child.pid
    assert http["server"]["process"]["pid"] == os.getpid()
    assert http["server"]["process"]["name"] == psutil.Process(os.getpid()).name()


def test_tagger_only_local_endpoints_and_first_udp_packet():
    table = SocketTable(list_sockets=lambda: [_sock(17, "10.0.0.1", 53, pid=os.getpid())], min_interval=0)
    tagger = ProcTagger(table, ProcessCache(), addresses=lambda: {"10.0.0.1"})
    a, b = socket.inet_aton("10.0.0.1"), socket.inet_aton("192.0.2.7")
    q = (17, b, a, 4000, 53, 0, 0, 0, 0, 0, 14)
    r = (17, a, b, 53, 4000, 0, 0, 0, 0, 0, 14)
    assert tagger.opens_flow(q) and not tagger.opens_flow(r) and not tagger.opens_flow(q)
    recs = tagger.records(q, socket.inet_ntoa)
    assert len(recs) == 1 and recs[0][:3] == [17, "10.0.0.1", 53] and recs[0][3]["pid"] == os.getpid()
    assert tagger.counters["procs.lookups"] == 1      # the remote 192.0.2.7 is not looked up


def test_attributor_leaves_other_events_alone():
    att = ProcAttributor()
    ev = {"network": {"transport": "tcp"}, "source": {"ip": "10.0.0.1", "port": 1}}
    assert att(ev) == {"network": {"transport": "tcp"}, "source": {"ip": "10.0.0.1", "port": 1}}
    att.update([[6, "10.0.0.1", 1, {"pid": 7, "name": "x"}]])
    udp = {"network": {"transport": "udp"}, "source": {"ip": "10.0.0.1", "port": 1}}
    assert "process" not in att(udp)["source"]
    assert att(ev)["source"]["process"] == {"pid": 7, "name": "x"} and ev["process"]["pid"] == 7


def test_proc_net_inode_matches_the_sockets_own_inode():
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("Linux /proc only")
    from shared.procs import pid_of_inode, proc_net_inode
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port))
    a, _ = srv.accept()
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::", 0))
    s6.listen(1)
    try:
        cport = c.getsockname()[1]
        assert proc_net_inode(6, "127.0.0.1", cport, "127.0.0.1", port) == os.fstat(c.fileno()).st_ino
        assert proc_net_inode(6, "127.0.0.1", port, "127.0.0.1", cport) == os.fstat(a.fileno()).st_ino
        assert proc_net_inode(6, "127.0.0.1", port) in (os.fstat(srv.fileno()).st_ino, os.fstat(a.fileno()).st_ino)
        p6 = s6.getsockname()[1]
        assert proc_net_inode(6, "127.0.0.1", p6) == os.fstat(s6.fileno()).st_ino   # dual-stack wildcard
        assert proc_net_inode(6, "::1", p6) == os.fstat(s6.fileno()).st_ino
        assert proc_net_inode(17, "127.0.0.1", cport) is None
        assert pid_of_inode(os.fstat(c.fileno()).st_ino, [os.getpid()]) == os.getpid()
    finally:
        for x in (c, a, srv, s6):
            x.close()


def test_sharder_retries_a_rate_limited_miss_at_flush():
    now = [10.0]
    socks = []
    table = SocketTable(refresh_period=60, min_interval=0.1, clock=lambda: now[0], list_sockets=lambda: socks,
                        targeted=False)
    tagger = ProcTagger(table, ProcessCache(), addresses=lambda: {"10.0.0.1"}, clock=lambda: now[0])
    sent = []
    sh = Sharder(2, lambda i, recs: sent.append(("pkts", i)), keep_empty_tcp=True, procs=tagger,
                 send_procs=lambda i, recs: sent.append(("procs", i, recs)))
    syn = _frame("10.0.0.1", 40000, "192.0.2.9", 80, 0x02, 1, 0)
    sh.feed([(S, 1, syn)])                         # first lookup: period refresh, socket not there yet
    assert tagger.pending and not [x for x in sent if x[0] == "procs"]
    socks.append(_sock(6, "10.0.0.1", 40000, "192.0.2.9", 80, pid=os.getpid()))
    now[0] += 0.05
    sh.flush()                                      # inside the rate limit: still pending
    assert tagger.pending and not [x for x in sent if x[0] == "procs"]
    now[0] += 0.1
    sh.flush()                                      # allowed now: re-read, found, shipped to the flow's shard
    (procs,) = [x for x in sent if x[0] == "procs"]
    (pk,) = [x for x in sent if x[0] == "pkts"]
    assert procs[1] == pk[1] and procs[2][0][:3] == [6, "10.0.0.1", 40000]
    assert procs[2][0][3]["pid"] == os.getpid() and not tagger.pending
    assert tagger.counters["procs.retried"] == 1
