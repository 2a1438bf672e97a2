"""Process attribution (``packetbeat.procs``): which local process owns a packet's endpoint.

Theory of operation
-------------------
Attribution has to happen on the host where the packets were captured, and
as early as possible: a connection that lasts 50 ms is gone from the socket
table long before its transaction event exists. So it runs in the *capture*
process, at the first packet of a connection:

1. :class:`ProcTagger` (capture side) is shown each decoded packet that opens
   a flow: a TCP SYN (either direction of the handshake) or the first
   datagram of a UDP pair it has not seen. For each endpoint that is an
   address of this host it asks the :class:`SocketTable` for the owning pid
   and the :class:`ProcessCache` for that process, and returns small records
   ``[transport, ip, port, process]``. The capture ships them to the worker
   that owns the flow as a ``procs`` message *before* the batch that holds the
   packet (same PUSH socket, so the order is kept).
2. :class:`ProcAttributor` (worker side, no psutil) keeps the latest record
   per ``(transport, ip, port)`` (bounded) and adds ``process`` objects to
   the events the worker ships: ``source.process`` / ``destination.process``
   (and ``client.process`` / ``server.process`` when the event has them), plus
   the root ``process`` as Packetbeat 8.x does (destination's when both match).

:class:`SocketTable` is psutil's socket list (``net_connections``) indexed by
(transport, local ip, local port, remote ip, remote port), by local endpoint,
and by port for wildcard listeners. It is refreshed every
``refresh_period`` seconds and on a miss, at most once per
``min_interval`` seconds (``max_proc_read_age``), so a connection that is
still open when its first packet is seen is found even when it lasts only a
few milliseconds. Sockets whose owner psutil cannot see (another user's, when
the capture runs unprivileged) have no pid and are not attributed.
"""
from __future__ import annotations

import collections
import os
import socket
import struct
import time
from typing import Callable

# psutil (~9 ms of start-up) is imported by the functions that read the host's tables: a
# worker imports this module (worker/engine.py) and uses it only with packetbeat.procs enabled

_NS = 1_000_000_000
_WILDCARD = frozenset(("0.0.0.0", "::", ""))
_TRANSPORT = {socket.SOCK_STREAM: 6, socket.SOCK_DGRAM: 17}
_TRANSPORT_NUM = {"tcp": 6, "udp": 17}


def _norm_ip(ip: str) -> str:
    """``::ffff:a.b.c.d`` (a dual-stack socket's view of IPv4) -> ``a.b.c.d``."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return ip


def _hex_addr(ip: str) -> str:
    """``ip`` as /proc/net/{tcp,udp}[6] prints it (32-bit words in host order, upper-case hex)."""
    if ":" in ip:
        packed = socket.inet_pton(socket.AF_INET6, ip)
        return "".join("%08X" % w for w in struct.unpack("=4I", packed))
    return "%08X" % struct.unpack("=I", socket.inet_aton(ip))[0]


def proc_net_inode(transport: int, ip: str, port: int, rip: str | None = None, rport: int | None = None,
                   root: str = "/proc") -> int | None:
    """The inode of the socket bound to local ``(ip, port)`` (connected to ``(rip, rport)`` when
    given), read from ``/proc/net``; a socket bound to the wildcard address when none is."""
    name = "tcp" if transport == 6 else "udp"
    v6 = ":" in ip
    connected = rip is not None and rport is not None
    files = []
    if v6:
        files.append((name + "6", _hex_addr(ip), _hex_addr(rip) if connected else None, "0" * 32))
    else:
        files.append((name, _hex_addr(ip), _hex_addr(rip) if connected else None, "0" * 8))
        mapped = "0000000000000000FFFF0000"       # an IPv4 peer of a dual-stack socket: ::ffff:a.b.c.d
        files.append((name + "6", mapped + _hex_addr(ip), mapped + _hex_addr(rip) if connected else None,
                      "0" * 32))
    suffix = ":%04X" % port
    fallback = None
    for fname, local, remote, wild in files:
        local_b = (local + suffix).encode()
        wild_b = (wild + suffix).encode()
        remote_b = (remote + ":%04X" % rport).encode() if remote is not None else None
        try:
            with open("%s/net/%s" % (root, fname), "rb") as f:
                f.readline()
                for line in f:
                    parts = line.split()
                    if len(parts) < 10 or parts[9] == b"0":
                        continue
                    if parts[1] == local_b and (remote_b is None or parts[2] == remote_b):
                        return int(parts[9])
                    if fallback is None and parts[1] in (local_b, wild_b):
                        fallback = int(parts[9])
        except OSError:
            continue
    return fallback


def pid_of_inode(inode: int, pids, root: str = "/proc") -> int | None:
    """The first of ``pids`` holding a descriptor on socket ``inode``."""
    target = "socket:[%d]" % inode
    for pid in pids:
        fd_dir = "%s/%d/fd" % (root, pid)
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir + "/" + fd) == target:
                    return pid
            except OSError:
                continue
    return None


def _net_connections() -> list:
    import psutil
    return psutil.net_connections(kind="inet")


class SocketTable:
    """Local endpoint -> pid, from the host's socket table; refreshed on a period and on a miss.

    Between full refreshes a miss first tries a targeted lookup (Linux): the endpoint's socket
    inode from ``/proc/net``, then the descriptors of the likely owners first: processes started
    since the last refresh, processes that owned sockets then, then the rest, newest first; it
    stops at the owner. Usually a fraction of a millisecond (at worst what a full refresh costs),
    so it is not rate limited, and a connection opened right after a refresh is still found."""

    def __init__(self, refresh_period: float = 1.0, min_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic,
                 list_sockets: Callable[[], list] | None = None, targeted: bool | None = None):
        self.refresh_period = refresh_period
        self.min_interval = min_interval
        self.clock = clock
        self.list_sockets = list_sockets or _net_connections
        self._conn: dict[tuple, int] = {}     # (t, lip, lport, rip, rport) -> pid
        self._local: dict[tuple, int] = {}    # (t, lip, lport) -> pid
        self._wild: dict[tuple, int] = {}     # (t, lport) -> pid (bound to a wildcard address)
        self._last = float("-inf")
        self.refreshes = 0
        self.targeted_hits = 0
        self._owners: set[int] = set()       # pids owning sockets at the last refresh
        self._pids: set[int] = set()         # every pid at the last refresh
        self.targeted = targeted if targeted is not None else (list_sockets is None
                                                                and os.path.exists("/proc/net/tcp"))

    def refresh(self) -> None:
        import psutil
        conn: dict[tuple, int] = {}
        local: dict[tuple, int] = {}
        wild: dict[tuple, int] = {}
        for c in self.list_sockets():
            if c.pid is None or not c.laddr:
                continue
            t = _TRANSPORT.get(c.type)
            if t is None:
                continue
            lip, lport = _norm_ip(c.laddr[0]), c.laddr[1]
            if c.raddr:
                conn[(t, lip, lport, _norm_ip(c.raddr[0]), c.raddr[1])] = c.pid
            if lip in _WILDCARD:
                # a listener (or an unconnected UDP socket) owns the port; prefer it over accepted sockets
                if c.status == psutil.CONN_LISTEN or (t, lport) not in wild:
                    wild[(t, lport)] = c.pid
            elif c.status == psutil.CONN_LISTEN or (t, lip, lport) not in local:
                local[(t, lip, lport)] = c.pid
        self._conn, self._local, self._wild = conn, local, wild
        if self.targeted:
            self._owners = set(conn.values()) | set(local.values()) | set(wild.values())
            self._pids = set(psutil.pids())
        self._last = self.clock()
        self.refreshes += 1

    def _find(self, t: int, lip: str, lport: int, rip: str | None, rport: int | None) -> int | None:
        pid = self._conn.get((t, lip, lport, rip, rport)) if rip is not None else None
        if pid is None:
            pid = self._local.get((t, lip, lport))
        if pid is None:
            pid = self._wild.get((t, lport))
        return pid

    def may_refresh(self) -> bool:
        """Whether a miss may re-read the table now (the rate limit has passed)."""
        return self.clock() - self._last >= self.min_interval

    def find(self, transport: int, ip: str, port: int, rip: str | None = None, rport: int | None = None
             ) -> int | None:
        """Lookup without any refresh."""
        return self._find(transport, ip, port, rip, rport)

    def pid(self, transport: int, ip: str, port: int, rip: str | None = None, rport: int | None = None
            ) -> int | None:
        """The pid owning local endpoint ``(ip, port)`` (of the connection to ``(rip, rport)``)."""
        now = self.clock()
        if now - self._last >= self.refresh_period:
            self.refresh()
            return self._find(transport, ip, port, rip, rport)
        pid = self._find(transport, ip, port, rip, rport)
        if pid is None and self.targeted:
            pid = self._targeted(transport, ip, port, rip, rport)
        if pid is None and now - self._last >= self.min_interval:
            self.refresh()
            pid = self._find(transport, ip, port, rip, rport)
        return pid

    def _targeted(self, transport: int, ip: str, port: int, rip: str | None, rport: int | None) -> int | None:
        try:
            inode = proc_net_inode(transport, ip, port, rip, rport)
        except (OSError, ValueError):
            return None
        if inode is None:
            return None
        import psutil
        # likely owners first: processes started since the last refresh, then the known socket
        # owners, then everyone else, newest first (a process that started just before the
        # refresh and connected after it is in none of the first two groups)
        pids = sorted(psutil.pids(), reverse=True)
        owners = self._owners
        known = self._pids
        order = [p for p in pids if p not in known] + [p for p in pids if p in owners]
        order += [p for p in pids if p in known and p not in owners]
        pid = pid_of_inode(inode, order)
        if pid is not None:
            self.targeted_hits += 1
            if rip is not None and rport is not None:
                self._conn[(transport, ip, port, rip, rport)] = pid
            self._owners.add(pid)
        return pid


class ProcessCache:
    """pid -> the ECS ``process`` object (pid, ppid, name, executable, args, start, working_directory)."""

    def __init__(self, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic, limit: int = 4096,
                 accept: Callable[[dict], bool] | None = None):
        self.max_age = max_age
        self.clock = clock
        self.limit = limit
        self.accept = accept        # packetbeat.procs.monitored: only the processes it accepts are attributed
        self._cache: dict[int, tuple[float, dict | None]] = {}

    def get(self, pid: int) -> dict | None:
        now = self.clock()
        hit = self._cache.get(pid)
        if hit is not None and now - hit[0] < self.max_age:
            return hit[1]
        info = read_process(pid)
        if info is not None and self.accept is not None and not self.accept(info):
            info = None
        if len(self._cache) >= self.limit:
            self._cache.clear()
        self._cache[pid] = (now, info)
        return info


def read_process(pid: int) -> dict | None:
    """The ECS process object of ``pid``, or None when it is gone or not visible."""
    import psutil
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            info = {"pid": pid, "ppid": p.ppid(), "name": p.name()}
            start = p.create_time()
            try:
                args = p.cmdline()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                args = []
            try:
                exe = p.exe()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                exe = ""
            try:
                cwd = p.cwd()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                cwd = ""
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if args:
        info["args"] = args
    if exe:
        info["executable"] = exe
    info["start"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + ".%03dZ" % (int(start * 1000) % 1000)
    if cwd:
        info["working_directory"] = cwd
    return info


def local_addresses() -> set[str]:
    """Every address of this host's interfaces (text form)."""
    import psutil
    out = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.add(a.address.split("%", 1)[0])
    return out


class ProcTagger:
    """Capture side: ``records(dec)`` for a packet that opens a flow -> ``[[t, ip, port, process], ...]``."""

    def __init__(self, table: SocketTable, processes: ProcessCache,
                 addresses: Callable[[], set[str]] = local_addresses, addresses_period: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.table = table
        self.processes = processes
        self._addresses = addresses
        self._addresses_period = addresses_period
        self.clock = clock
        self._local: set[str] = set()
        self._local_at = float("-inf")
        self._udp_seen: dict[tuple, None] = {}
        self.counters: collections.Counter = collections.Counter()
        # lookups that missed (often: inside the refresh rate limit); retried once by retry()
        self.pending: list[tuple] = []
        self.pending_limit = 4096

    def opens_flow(self, dec: tuple) -> bool:
        """Cheap test on the decode() tuple: a TCP SYN, or a UDP pair not seen yet."""
        t = dec[0]
        if t == 6:
            return bool(dec[5] & 0x02)
        if t == 17:
            a = (dec[1], dec[3], dec[2], dec[4])
            if a in self._udp_seen or (a[2], a[3], a[0], a[1]) in self._udp_seen:
                return False
            if len(self._udp_seen) >= 65536:
                self._udp_seen.clear()
            self._udp_seen[a] = None
            return True
        return False

    def records(self, dec: tuple, ip_text: Callable[[bytes], str], shard: int = 0) -> list[list]:
        now = self.clock()
        if now - self._local_at >= self._addresses_period:
            self._local = self._addresses()
            self._local_at = now
        t = dec[0]
        src, dst = ip_text(dec[1]), ip_text(dec[2])
        out = []
        for ip, port, rip, rport in ((src, dec[3], dst, dec[4]), (dst, dec[4], src, dec[3])):
            if ip not in self._local:
                continue
            self.counters["procs.lookups"] += 1
            pid = self.table.pid(t, ip, port, rip, rport)
            if pid is None:
                self.counters["procs.misses"] += 1
                if len(self.pending) < self.pending_limit:
                    self.pending.append((shard, t, ip, port, rip, rport))
                continue
            info = self.processes.get(pid)
            if info is not None:
                out.append([t, ip, port, info])
        return out

    def retry(self) -> list[tuple[int, list]]:
        """Look the pending misses up again once the table may be re-read: ``[(shard, records)]``.

        Each miss gets this one more try (a connection still open a refresh interval after its
        first packet is found); what is still missing then is dropped."""
        if not self.pending or not self.table.may_refresh():
            return []
        pending, self.pending = self.pending, []
        self.table.refresh()
        by_shard: dict[int, list] = {}
        for shard, t, ip, port, rip, rport in pending:
            pid = self.table.find(t, ip, port, rip, rport)
            info = self.processes.get(pid) if pid is not None else None
            if info is None:
                self.counters["procs.lost"] += 1
                continue
            self.counters["procs.retried"] += 1
            by_shard.setdefault(shard, []).append([t, ip, port, info])
        return list(by_shard.items())


class ProcAttributor:
    """Worker side: endpoint -> process records from the capture; adds ``process`` to events."""

    def __init__(self, limit: int = 65536):
        self.limit = limit
        self._by_endpoint: dict[tuple, dict] = {}

    def update(self, records: list) -> None:
        table = self._by_endpoint
        for t, ip, port, info in records:
            if len(table) >= self.limit:
                table.clear()
            table[(t, ip, port)] = info

    def __call__(self, event: dict) -> dict:
        table = self._by_endpoint
        if not table:
            return event
        net = event.get("network")
        t = _TRANSPORT_NUM.get(net.get("transport")) if isinstance(net, dict) else None
        if t is None:
            return event
        found = None
        for side, role in (("source", "client"), ("destination", "server")):
            ep = event.get(side)
            if not isinstance(ep, dict) or "port" not in ep:
                continue
            info = table.get((t, ep.get("ip"), ep["port"]))
            if info is None:
                continue
            ep["process"] = dict(info)
            peer = event.get(role)
            if isinstance(peer, dict) and peer.get("ip") == ep.get("ip") and peer.get("port") == ep["port"]:
                peer["process"] = dict(info)
            found = info
        if found is not None:
            event["process"] = dict(found)
        return event


def monitored_filter(monitored) -> Callable[[dict], bool] | None:
    """``packetbeat.procs.monitored`` (``[{process: NAME, cmdline_grep: TEXT}]``): a process
    is attributed when its command line contains one entry's ``cmdline_grep`` (default: its
    ``process`` name), as Packetbeat's process watcher matches; None (everything) for no list."""
    greps = [str(m.get("cmdline_grep") or m.get("process") or "") for m in monitored or ()]
    greps = [g for g in greps if g]
    if not greps:
        return None

    def accept(info: dict) -> bool:
        cmdline = " ".join(info.get("args") or ()) or str(info.get("name") or "")
        return any(g in cmdline for g in greps)
    return accept


def make_tagger(procs_cfg: dict | None) -> ProcTagger | None:
    """The capture's tagger for ``settings.procs`` (None when attribution is off)."""
    if not procs_cfg or not procs_cfg.get("enabled"):
        return None
    period = float(procs_cfg.get("refresh_process_info_period") or 1.0)
    table = SocketTable(refresh_period=period, min_interval=float(procs_cfg.get("max_proc_read_age") or 0.1))
    return ProcTagger(table, ProcessCache(max_age=period, accept=monitored_filter(procs_cfg.get("monitored"))))
