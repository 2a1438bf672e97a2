"""Sockets that cross hosts: CurveZMQ options, key files, connection watching.

- ``connect_shard`` / ``bind_shard``: the capture's PUSH and the worker's PULL
  for one shard, on the endpoints of ``shared/endpoints.py``. A tcp://
  endpoint to another host gets CurveZMQ (the worker host is the curve
  server, the capture host a client that knows the server's public key);
  ``cluster.curve.client_keys_dir`` adds a ZAP handler on the worker host that
  only lets those clients' public keys in.
- ``ConnectionWatch``: a capture's view of its remote shards, from ZeroMQ
  socket monitors. A refused handshake (wrong key) or an unreachable worker
  is logged when it happens and again every ``SAY_EVERY_S`` seconds while it
  lasts: file mode waits (ZeroMQ keeps the batches, nothing is lost), live
  mode drops and counts once the queue is full (coordinator/capture/live.py).
- ``keygen``: a CurveZMQ keypair in the ZeroMQ certificate format
  (``NAME.key`` public, ``NAME.key_secret`` secret, mode 0600).
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time

import zmq
from zmq.utils import z85

from shared import endpoints
from shared.confutil import ConfigError

log = logging.getLogger("packetbeat.transport")

ROLES = ("all", "capture", "workers")
SAY_EVERY_S = 5.0
# A file-mode capture host, at the end: a shard whose worker closed its end is taken as finished only
# once it has stayed closed this long. Nothing comes back across hosts, so a worker killed after the
# last batches and the end-of-stream were sent looks like one that finished; its worker host restarts
# it (0.5 s back-off, then its start-up), it reconnects and gets what was still queued for it.
RETURN_GRACE_S = 10.0


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def validate_cluster(c, path: str) -> None:
    """The multi-host keys of ClusterConfig ``c`` (called from its validate)."""
    if c.role not in ROLES:
        raise ConfigError(path + ".role", "must be all, capture or workers, got %r" % c.role)
    if c.role == "capture":
        if not c.shards:
            raise ConfigError(path + ".shards", "role capture needs the workers' endpoints "
                              "(a list of tcp://host:port, the same on every capture host)")
        for i, ep in enumerate(c.shards):
            try:
                endpoints.split_tcp(ep)
            except ValueError as exc:
                raise ConfigError("%s.shards[%d]" % (path, i), str(exc)) from None
        if len(c.shards) > 256:
            raise ConfigError(path + ".shards", "at most 256")
        if len(set(c.shards)) != len(c.shards):
            raise ConfigError(path + ".shards", "an endpoint is listed twice")
    elif c.shards:
        raise ConfigError(path + ".shards", "only for role capture (this host's role is %s)" % c.role)
    if c.role == "workers":
        if not c.listen:
            raise ConfigError(path + ".listen", "role workers needs the address the captures connect to "
                              "(tcp://0.0.0.0:7000: worker k listens on port 7000 + k)")
        try:
            host, port = endpoints.split_tcp(c.listen)
        except ValueError as exc:
            raise ConfigError(path + ".listen", str(exc)) from None
        if not c.workers:
            raise ConfigError(path + ".workers", "role workers needs an explicit number of workers (the capture "
                              "hosts' cluster.shards name one port per worker)")
        if port + c.workers - 1 > 65535:
            raise ConfigError(path + ".listen", "port %d + %d workers is past 65535" % (port, c.workers))
        if c.first_shard < 0:
            raise ConfigError(path + ".first_shard", "must be >= 0")
    else:
        if c.listen:
            raise ConfigError(path + ".listen", "only for role workers (this host's role is %s)" % c.role)
        if c.replay:
            raise ConfigError(path + ".replay", "only for role workers (this host's role is %s)" % c.role)
    cv = c.curve
    if curve_on(c):
        p = path + ".curve"
        if c.role == "capture":
            need = ("secret_key_file", "public_key_file", "server_public_key_file")
        elif c.role == "workers":
            need = ("secret_key_file", "public_key_file")
        else:
            need = ()
        for key in need:
            if not getattr(cv, key):
                remote = _remote_endpoints(c)
                why = ("%s crosses hosts and is encrypted with CurveZMQ" % remote[0] if remote
                       else "cluster.curve.enabled is true")
                raise ConfigError("%s.%s" % (p, key), "required: %s (make keys with 'packetbeat keygen DIR'; "
                                  "cluster.curve.enabled: false turns encryption off)" % why)
    if cv.client_keys_dir and c.role != "workers":
        raise ConfigError(path + ".curve.client_keys_dir", "only for role workers")


def _remote_endpoints(c) -> list[str]:
    if c.role == "capture":
        return [ep for ep in c.shards if not endpoints.is_loopback(ep)]
    if c.role == "workers" and c.listen and not endpoints.is_loopback(c.listen):
        return [c.listen]
    return []


def curve_on(c) -> bool:
    """Encryption is on when asked, or by default when an endpoint crosses hosts
    (``c``: a ClusterConfig or the settings' cluster dict)."""
    get = c.get if isinstance(c, dict) else (lambda k, d=None: getattr(c, k, d))
    cv = get("curve") or {}
    enabled = cv.get("enabled") if isinstance(cv, dict) else cv.enabled
    if enabled is not None:
        return bool(enabled) and get("role") in ("capture", "workers")
    if get("role") == "capture":
        return any(not endpoints.is_loopback(ep) for ep in get("shards") or ())
    if get("role") == "workers":
        return bool(get("listen")) and not endpoints.is_loopback(get("listen"))
    return False


def read_key(path: str, secret: bool = False) -> bytes:
    """A Z85 key (40 characters) from a ZeroMQ certificate file (``public-key = "..."``,
    ``secret-key = "..."``) or a file holding the bare key; raises ConfigError."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", "cannot read key file %s: %s" % (path, exc)) from None
    want = "secret-key" if secret else "public-key"
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(want) and "=" in line:
            key = line.split("=", 1)[1].strip().strip('"').strip("'")
            break
    else:
        bare = text.strip()
        if len(bare) == 40 and "\n" not in bare:
            key = bare
        else:
            raise ConfigError("", "%s holds no %s" % (path, want))
    if len(key) != 40:
        raise ConfigError("", "%s: the %s is not a 40-character Z85 key" % (path, want))
    try:
        z85.decode(key.encode("ascii"))
    except Exception:
        raise ConfigError("", "%s: the %s is not valid Z85" % (path, want)) from None
    return key.encode("ascii")


def curve_keys(cluster: dict) -> dict:
    """The keys this host needs, read from their files (ConfigError naming the key)."""
    cv = cluster.get("curve") or {}
    out = {}
    names = [("secret_key_file", "secret", True), ("public_key_file", "public", False)]
    if cluster.get("role") == "capture":
        names.append(("server_public_key_file", "server", False))
    for key, short, secret in names:
        try:
            out[short] = read_key(cv.get(key) or "", secret)
        except ConfigError as exc:
            raise ConfigError("cluster.curve." + key, str(exc)) from None
    return out


def check_keys(settings) -> None:
    """Read the key files once before the run starts, so that a missing or bad
    file is one clear error instead of every child failing."""
    cluster = settings.cluster
    if curve_on(cluster):
        curve_keys(cluster)
    cdir = (cluster.get("curve") or {}).get("client_keys_dir") or ""
    if cdir and not os.path.isdir(cdir):
        raise ConfigError("cluster.curve.client_keys_dir", "no such directory: %s" % cdir)


# --------------------------------------------------------------------------
# Sockets
# --------------------------------------------------------------------------

_watches: dict = {}
_monitor_ids = itertools.count()
_auths: dict = {}


def connect_shard(sock, settings, run_dir: str, i: int, name: str = "", counters=None) -> str:
    """Connect a capture's PUSH ``sock`` to shard ``i`` (curve client options
    when needed); remote shards are watched (ConnectionWatch; link trouble is
    counted in ``counters``: ``capture.remote_refused`` / ``_unreachable`` /
    ``_down``). Returns the endpoint."""
    cluster = settings.cluster
    ep = endpoints.shard_connect(cluster, run_dir, i)
    if ep.startswith("tcp://"):
        if curve_on(cluster):
            keys = curve_keys(cluster)
            sock.curve_secretkey = keys["secret"]
            sock.curve_publickey = keys["public"]
            sock.curve_serverkey = keys["server"]
        watch = _watches.get(id(sock.context))
        if watch is None:
            watch = _watches[id(sock.context)] = ConnectionWatch(sock.context, name or "capture", counters)
        watch.add(sock, i, ep, encrypted=curve_on(cluster))
    sock.connect(ep)
    return ep


def bind_shard(sock, settings, run_dir: str, k: int) -> list[str]:
    """Bind worker ``k``'s PULL ``sock``: its ipc endpoint (plain: the local
    coordinator's), then on a worker host the tcp one as a curve server."""
    cluster = settings.cluster
    eps = endpoints.shard_binds(cluster, run_dir, k)
    for ep in eps:
        if ep.startswith("tcp://"):
            if curve_on(cluster):
                keys = curve_keys(cluster)
                cdir = (cluster.get("curve") or {}).get("client_keys_dir") or ""
                if cdir and id(sock.context) not in _auths:
                    from zmq.auth.thread import ThreadAuthenticator
                    auth = ThreadAuthenticator(sock.context, log=logging.getLogger("packetbeat.transport.zap"))
                    auth.start()
                    auth.configure_curve(domain="*", location=cdir)
                    _auths[id(sock.context)] = auth
                sock.curve_secretkey = keys["secret"]
                sock.curve_publickey = keys["public"]
                sock.curve_server = True
            sock.bind(ep)
            log.info("worker-%d (shard %d) listens on %s%s", k, cluster.get("first_shard", 0) + k, ep,
                     " (CurveZMQ)" if curve_on(cluster) else " (not encrypted)")
        else:
            sock.bind(ep)
    return eps


def stop_auth(ctx) -> None:
    """Stop the ZAP handler of ``ctx`` (before ``ctx.term()``), if one runs."""
    auth = _auths.pop(id(ctx), None)
    if auth is not None:
        auth.stop()


# --------------------------------------------------------------------------
# Watching remote shards
# --------------------------------------------------------------------------

_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED
           | zmq.EVENT_CLOSED | zmq.EVENT_MONITOR_STOPPED | zmq.EVENT_HANDSHAKE_SUCCEEDED
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


class ConnectionWatch:
    """One thread per capture process reading the monitors of its remote
    shards' sockets. States: ``connecting``, ``up`` (handshake done),
    ``refused`` (handshake failed), ``unreachable`` (connect retried),
    ``down`` (disconnected). It logs a change to a bad state at once and,
    while any shard is not up, a warning every ``SAY_EVERY_S`` seconds. It
    closes a monitor when its socket is closed (ZeroMQ then stops it), so
    ``ctx.term()`` is not held up; it keeps saying why while the
    end-of-stream still waits for a shard that is not up."""

    def __init__(self, ctx, name: str, counters=None, say_every: float = SAY_EVERY_S):
        self.ctx = ctx
        self.counters = counters
        self.name = name
        self.say_every = say_every
        self.state: dict[int, str] = {}
        self.detail: dict[int, str] = {}
        self.endpoint: dict[int, str] = {}
        self.encrypted = False
        self._pending: list = []           # (index, PAIR socket) for the thread to read
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.counts = {"refused": 0, "unreachable": 0, "down": 0}
        self._been_up: set = set()
        self._down_at: dict[int, float] = {}     # when each shard last went down (monotonic)
        self._up_at: dict[int, float] = {}       # ... and up

    def add(self, sock, i: int, ep: str, encrypted: bool = False) -> None:
        addr = "inproc://pb-monitor-%d-%d-%d" % (id(self), i, next(_monitor_ids))   # never reused
        sock.monitor(addr, _EVENTS)
        m = self.ctx.socket(zmq.PAIR)      # connected before the socket connects: no event is missed
        m.connect(addr)                     # (then used only by the thread; the lock is the barrier)
        self.encrypted = self.encrypted or encrypted
        with self._lock:
            self.state[i] = "connecting"
            self.endpoint[i] = ep
            self._pending.append((i, m))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shard-watch", daemon=True)
            self._thread.start()

    def is_up(self, i: int) -> bool:
        with self._lock:
            return self.state.get(i) == "up"

    def up_at(self, i: int) -> float | None:
        with self._lock:
            return self._up_at.get(i)

    def closed_after_up(self, i: int, since: float | None = None) -> bool:
        with self._lock:
            if i not in self._been_up or self.state.get(i) != "down":
                return False
            if since is None:
                return True
            down_at = self._down_at.get(i, 0.0)
            return down_at >= since and time.monotonic() - down_at >= RETURN_GRACE_S

    def _set(self, i: int, state: str, detail: str = "") -> None:
        with self._lock:
            old = self.state.get(i)
            if state == old:
                return
            self.state[i] = state
            self.detail[i] = detail
            if state == "up":
                self._been_up.add(i)
                self._up_at[i] = time.monotonic()
            elif state == "down":
                self._down_at[i] = time.monotonic()
        if state == "up":
            log.info("%s: shard %d at %s is up%s", self.name, i, self.endpoint[i],
                     " (CurveZMQ handshake done)" if self.encrypted else "")
        elif state in self.counts:
            self.counts[state] += 1
            if self.counters is not None:
                self.counters["capture.remote_" + state] += 1
            log.error("%s: shard %d at %s: %s", self.name, i, self.endpoint[i], self._why(i))

    def _why(self, i: int) -> str:
        state, detail = self.state[i], self.detail.get(i, "")
        if state == "refused":
            return ("the CurveZMQ handshake failed%s: check cluster.curve.server_public_key_file (the worker "
                    "host's public key) and that the worker host accepts this host's key" % detail)
        if state == "unreachable":
            return "cannot connect (nothing listens there, or a firewall)%s" % detail
        if state == "down":
            return "the connection was lost%s" % detail
        return "not connected yet"

    def _run(self) -> None:
        from zmq.utils.monitor import recv_monitor_message
        mons: dict = {}                  # PAIR socket -> shard index
        poller = zmq.Poller()
        last_say = time.monotonic()
        handshaken: set = set()
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
            for i, m in pending:
                mons[m] = i
                poller.register(m, zmq.POLLIN)
            if mons:
                try:
                    ready = poller.poll(500)
                except zmq.ContextTerminated:     # the process is ending: let ctx.term() finish
                    for m in mons:
                        m.close(linger=0)
                    mons.clear()
                    ready = []
                for m, _ in ready:
                    i = mons[m]
                    try:
                        msg = recv_monitor_message(m)
                    except zmq.ZMQError:
                        continue
                    ev = msg["event"]
                    if ev == zmq.EVENT_MONITOR_STOPPED:
                        poller.unregister(m)
                        del mons[m]
                        m.close(linger=0)
                    elif ev == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        handshaken.add(i)
                        self._set(i, "up")
                    elif ev == zmq.EVENT_CONNECTED:
                        handshaken.discard(i)
                        if not self.encrypted:
                            self._set(i, "up")
                    elif ev in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                                zmq.EVENT_HANDSHAKE_FAILED_AUTH):
                        self._set(i, "refused", " (%s, code %s)" % (_event_name(ev), msg.get("value")))
                    elif ev == zmq.EVENT_DISCONNECTED:
                        if self.encrypted and i not in handshaken:
                            # a curve server drops a client whose HELLO it cannot decrypt
                            self._set(i, "refused", " (the worker host closed the connection during it)")
                        else:
                            handshaken.discard(i)
                            self._set(i, "down")
                    elif ev == zmq.EVENT_CONNECT_RETRIED and self.state.get(i) in ("connecting", "unreachable"):
                        self._set(i, "unreachable")
            else:
                time.sleep(0.5)
            now = time.monotonic()
            if now - last_say >= self.say_every:
                last_say = now
                with self._lock:
                    bad = [i for i, s in sorted(self.state.items()) if s != "up"]
                for i in bad:
                    log.warning("%s: shard %d at %s: %s; waiting for it (file mode: nothing is lost; live mode: "
                                "batches are dropped and counted once its queue is full)",
                                self.name, i, self.endpoint[i], self._why(i))
                if not bad and not mons:
                    return


def remote_shards(cluster: dict, run_dir: str) -> frozenset:
    """Indices of the shards a capture reaches over tcp:// (a capture host's)."""
    return frozenset(i for i in range(cluster["workers"])
                     if endpoints.shard_connect(cluster, run_dir, i).startswith("tcp://"))


def remote_up(ctx, i: int) -> bool:
    """Remote shard ``i`` of ``ctx``'s capture is up now (handshake done)."""
    watch = _watches.get(id(ctx))
    return watch is not None and watch.is_up(i)


def remote_up_at(ctx, i: int) -> float | None:
    """When remote shard ``i`` of ``ctx``'s capture last came up (monotonic), or None."""
    watch = _watches.get(id(ctx))
    return None if watch is None else watch.up_at(i)


def remote_closed(ctx, i: int, since: float | None = None) -> bool:
    """Remote shard ``i`` was up and its worker has closed its end since. With
    ``since`` (a file-mode capture's end-of-streams sent): closed at or after that
    time (a worker that died before is restarted on its host, reconnects and gets
    the rest) and for ``RETURN_GRACE_S`` (one that died after may come back too)."""
    watch = _watches.get(id(ctx))
    return watch is not None and watch.closed_after_up(i, since)


def _event_name(ev: int) -> str:
    for k in dir(zmq):
        if k.startswith("EVENT_HANDSHAKE_FAILED") and getattr(zmq, k) == ev:
            return k[6:].lower()
    return str(ev)


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

def keygen(directory: str, name: str) -> tuple[str, str]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (secret, 0600) in
    ``directory``; refuses to overwrite. Returns both paths."""
    os.makedirs(directory, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pub_path = os.path.join(directory, name + ".key")
    sec_path = os.path.join(directory, name + ".key_secret")
    for p in (pub_path, sec_path):
        if os.path.exists(p):
            raise FileExistsError("%s exists; not overwriting a key" % p)
    head = "#   CurveZMQ keypair written by packetbeat keygen\n#   (ZeroMQ certificate format, zmq.auth)\n"
    body = "metadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n" % (name, public.decode("ascii"))
    fd = os.open(sec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(head + body + "    secret-key = \"%s\"\n" % secret.decode("ascii"))
    os.chmod(sec_path, 0o600)
    fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(head + body)
    return pub_path, sec_path
