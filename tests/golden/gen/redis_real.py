"""Real Redis traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/redis_real.py [--out DIR] [--host 127.0.0.1] [--port 6379]

Drives redis-py (RESP2 and RESP3 via ``HELLO 3``) and raw sockets against the
running Redis server while ``tcpdump -i lo -U -w FILE 'tcp port PORT'``
captures: plain commands, nil / integer / array replies, a big value,
pipelines, MULTI/EXEC (with an error inside EXEC), errors (WRONGTYPE, unknown
command, wrong number of arguments), RESP3 maps, sets, doubles, booleans, big
numbers, verbatim strings and nulls (Lua ``redis.setresp(3)``), pub/sub in
RESP2 and RESP3 (subscriber on one connection, PUBLISH on another), and
inline commands over a raw socket. Every key starts with ``pbgen:`` and is
deleted at the end (inside the capture).

The truth file is written from the client side: each connection records the
commands its client packed and every reply its client read back, in order
(``RecordingConnection``); pub/sub messages a subscriber received are listed
apart (they answer no command). The script refuses to write the files unless,
for every client port, the bytes of the capture's client-to-server stream are
exactly the bytes the client wrote, and tcpdump reported no drops.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams

MAX_PCAP_BYTES = 300_000
PREFIX = "pbgen:"
PUBSUB_CONFIRMS = {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"}
PUBSUB_MESSAGES = {"message", "pmessage", "smessage"}


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


LONG = 200


def _long(t: str):
    """A long text as its length and digest (keeps the truth file small)."""
    if len(t) <= LONG:
        return t
    b = t.encode()
    return {"long": len(b), "sha256": hashlib.sha256(b).hexdigest()}


def jsonable(v):
    """A reply as redis-py parsed it, in JSON: errors as {"error": text},
    sets as {"set": [...]}, maps as {"map": [[k, v], ...]} (wire order),
    doubles as {"double": x}, booleans as {"bool": b}."""
    if isinstance(v, redis.ResponseError):
        return {"error": str(v)}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, float):
        return {"double": v}
    if isinstance(v, (bytes, bytearray, str)):
        return _long(_text(v))
    if isinstance(v, int) or v is None:
        return v
    if isinstance(v, dict):
        return {"map": [[jsonable(k), jsonable(x)] for k, x in v.items()]}
    if isinstance(v, (set, frozenset)):
        return {"set": sorted((jsonable(x) for x in v), key=json.dumps)}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    raise TypeError("unexpected reply type %r" % type(v))


class RecordingConnection(redis.Connection):
    """A redis-py connection that records what its client wrote and read:
    the arguments of every command it packed, the raw bytes it sent, and
    every reply (or error reply) it read, in order."""

    def __init__(self, *args, registry: list | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if registry is not None:
            registry.append(self)
        self.commands: list[list[str]] = []
        self.replies: list = []
        self.sent = bytearray()
        packer = self._command_packer
        orig = packer.pack

        def pack(*cmd):
            if isinstance(cmd[0], str) and " " in cmd[0]:
                cmd = tuple(cmd[0].split()) + cmd[1:]      # as redis-py's packer sends it
            self.commands.append([_text(a) if isinstance(a, (bytes, str)) else str(a) for a in cmd])
            return orig(*cmd)
        packer.pack = pack

    def send_packed_command(self, command, check_health=True):
        if isinstance(command, (bytes, bytearray, memoryview)):
            self.sent += command
        else:
            for chunk in command:
                self.sent += chunk
        return super().send_packed_command(command, check_health)

    def read_response(self, *args, **kwargs):
        try:
            reply = super().read_response(*args, **kwargs)
        except redis.ResponseError as e:
            self.replies.append(e)
            raise
        self.replies.append(reply)
        return reply

    @property
    def client_port(self) -> int:
        return self._sock.getsockname()[1]


class Recorder:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.txns: list[dict] = []
        self.pushes: list[dict] = []
        self.sent: dict[int, bytes] = {}     # client port -> bytes the client wrote
        self.connections: list[RecordingConnection] = []

    def client(self, protocol: int) -> redis.Redis:
        """A client whose connections (its own, and those of its pipelines
        and pub/sub objects) record what they do."""
        pool = redis.ConnectionPool(connection_class=RecordingConnection, host=self.host, port=self.port,
                                    protocol=protocol, registry=self.connections)
        return redis.Redis(connection_pool=pool, single_connection_client=True)

    def record_all(self, case: str, proto: int) -> None:
        """Record every connection opened since the last call, in order."""
        for conn in self.connections:
            self.record(case, conn, proto)
        self.connections.clear()

    def add(self, case: str, client_port: int, args: list[str], reply, *, proto: int, inline: bool = False,
            no_reply: bool = False) -> None:
        self.txns.append({"case": case, "client_ip": self.host, "client_port": client_port,
                          "server_ip": self.host, "server_port": self.port, "protocol": proto,
                          "args": [_long(a) for a in args], "reply": None if no_reply else jsonable(reply),
                          "no_reply": no_reply, "inline": inline})

    def record(self, case: str, conn: RecordingConnection, proto: int) -> None:
        """Pair a plain connection's commands with its replies, in order."""
        if len(conn.commands) != len(conn.replies):
            raise RuntimeError(f"{case}: {len(conn.commands)} commands but {len(conn.replies)} replies")
        for args, reply in zip(conn.commands, conn.replies):
            self.add(case, conn.client_port, args, reply, proto=proto)
        self.sent[conn.client_port] = bytes(conn.sent)

    def record_pubsub(self, case: str, conn: RecordingConnection, proto: int) -> None:
        """A subscriber's replies: the first (un)subscribe confirmation answers
        its command; the further confirmations of a command naming several
        channels (or of an UNSUBSCRIBE of every channel) and the published
        messages answer none (redis-py reads them all alike)."""
        cmds = list(conn.commands)
        subs: dict[str, set] = {}           # family ("", "p", "s") -> subscribed names
        extra, extra_kind = 0, ""
        port = conn.client_port
        for reply in conn.replies:
            kind = _text(reply[0]).lower() if isinstance(reply, list) and reply else ""
            if kind in PUBSUB_MESSAGES:
                self.pushes.append({"case": case, "client_port": port, "message": jsonable(reply)})
                continue
            if kind in PUBSUB_CONFIRMS:
                family = kind[:-len("subscribe")].replace("un", "")
                names = subs.setdefault(family, set())
                before = len(names)
                (names.discard if "unsub" in kind else names.add)(_text(reply[1]))
                if extra and kind == extra_kind:
                    extra -= 1
                    continue
            args = cmds.pop(0)
            self.add(case, port, args, reply, proto=proto)
            if kind in PUBSUB_CONFIRMS:
                channels = len(args) - 1
                extra = channels - 1 if channels else max(0, before - 1)
                extra_kind = kind
        if cmds:
            raise RuntimeError(f"{case}: commands without a reply: {cmds}")
        self.sent[port] = bytes(conn.sent)


# --------------------------------------------------------------------------- scenarios
def resp2_basic(rec: Recorder) -> None:
    r = rec.client(2)
    k = PREFIX + "r2:"
    r.set(k + "greeting", "hello world")
    r.get(k + "greeting")
    r.get(k + "missing")
    r.incr(k + "counter")
    r.incrby(k + "counter", 41)
    r.rpush(k + "list", "a", "b", "c")
    r.lrange(k + "list", 0, -1)
    r.lindex(k + "list", 1)
    r.hset(k + "hash", mapping={"f1": "v1", "f2": "v2"})
    r.hgetall(k + "hash")
    r.exists(k + "greeting", k + "missing")
    r.expire(k + "greeting", 300)
    r.ttl(k + "greeting")
    r.sadd(k + "set", "x")
    r.smembers(k + "set")
    r.config_get("maxmemory")
    r.client_setname("pbgen-resp2")
    r.object("encoding", k + "list")
    for call in (lambda: r.lpush(k + "greeting", "x"),                 # WRONGTYPE
                 lambda: r.execute_command("PBGEN-NOSUCHCMD", "arg"),  # unknown command
                 lambda: r.execute_command("GET")):                    # wrong number of arguments
        try:
            call()
        except redis.ResponseError:
            pass
    big = (b"0123456789abcdef" * 3200)                                  # 51200 bytes
    r.set(k + "big", big)
    assert r.get(k + "big") == big
    r.ping()
    rec.record_all("resp2_basic", 2)
    r.close()


def resp2_pipelines(rec: Recorder) -> None:
    r = rec.client(2)
    k = PREFIX + "pipe:"
    p = r.pipeline(transaction=False)
    for i in range(8):
        p.set(k + str(i), i)
    p.mget([k + str(i) for i in range(8)])
    p.delete(*[k + str(i) for i in range(0, 8, 2)])
    p.execute()
    t = r.pipeline(transaction=True)
    t.incr(k + "tx")
    t.set(k + "tx:s", "str")
    t.lpush(k + "tx:s", "boom")        # WRONGTYPE at EXEC time, inside the EXEC array
    t.get(k + "tx:s")
    t.execute(raise_on_error=False)
    rec.record_all("resp2_pipelines", 2)
    r.close()


def resp3_types(rec: Recorder) -> None:
    r = rec.client(3)                  # redis-py sends HELLO 3 on connect
    k = PREFIX + "r3:"
    r.hset(k + "hash", mapping={"a": "1", "b": "2"})
    r.hgetall(k + "hash")              # map
    r.sadd(k + "set", "m1", "m2", "m3")
    r.smembers(k + "set")              # set
    r.zadd(k + "zset", {"one": 1.5, "two": 2.25})
    r.zscore(k + "zset", "two")        # double
    r.get(k + "missing")               # null
    r.zrange(k + "zset", 0, -1, withscores=True)
    ev = "redis.setresp(3); return "
    r.eval(ev + "true", 0)             # boolean
    r.eval(ev + "false", 0)
    r.eval(ev + "{double=3.5}", 0)
    r.eval(ev + "{big_number='1234567890123456789012345678901234567890'}", 0)
    r.eval(ev + "{verbatim_string={format='txt', string='verbatim text'}}", 0)
    r.eval(ev + "{map={k1='v1', k2=2}}", 0)
    try:
        r.execute_command("PBGEN-NOSUCHCMD")
    except redis.ResponseError:
        pass
    p = r.pipeline(transaction=True)
    p.incr(k + "n")
    p.hgetall(k + "hash")
    p.execute()
    rec.record_all("resp3_types", 3)
    r.close()


def pubsub(rec: Recorder, proto: int) -> None:
    case = "pubsub_resp%d" % proto
    sub_client = rec.client(proto)
    ps = sub_client.pubsub()
    ch = PREFIX + case + ":"
    ps.subscribe(ch + "news", ch + "sport")
    ps.psubscribe(ch + "p*")
    got: list = []

    def drain(n: int) -> None:
        deadline = time.time() + 5
        while len(got) < n and time.time() < deadline:
            m = ps.get_message(timeout=0.2)
            if m is not None:
                got.append(m)
        if len(got) < n:
            raise RuntimeError(f"{case}: expected {n} pub/sub messages, got {len(got)}")

    drain(3)                           # three confirmations
    pub = rec.client(proto)
    pub.publish(ch + "news", "first")
    pub.publish(ch + "sport", "second")
    pub.publish(ch + "pattern", "third")
    drain(6)
    ps.unsubscribe()
    ps.punsubscribe()
    drain(9)
    rec.record_pubsub(case, ps.connection, proto)
    rec.connections.remove(ps.connection)
    rec.record_all(case, proto)         # the subscriber client's own connection, the publisher
    ps.close()
    pub.close()
    sub_client.close()


def _read_replies(sock: socket.socket, n: int) -> list:
    """Read ``n`` RESP2 replies with redis-py's own parser over a raw socket."""
    from redis._parsers import _RESP2Parser
    from redis._parsers.socket import SocketBuffer
    from redis.connection import Encoder
    buf = SocketBuffer(sock, 65536, 5.0)
    parser = _RESP2Parser(65536)
    parser._buffer = buf
    parser.encoder = Encoder("utf-8", "strict", False)
    out = []
    for _ in range(n):
        out.append(parser._read_response())
    return out


def inline_commands(rec: Recorder) -> None:
    lines = [
        (b"PING\r\n", ["PING"]),
        (b'SET pbgen:inline "hello world"\r\n', ["SET", "pbgen:inline", "hello world"]),
        (b"GET pbgen:inline\r\n", ["GET", "pbgen:inline"]),
        (b"EXISTS pbgen:inline pbgen:none\n", ["EXISTS", "pbgen:inline", "pbgen:none"]),
        (b"DEL pbgen:inline\r\n", ["DEL", "pbgen:inline"]),
    ]
    with socket.create_connection((rec.host, rec.port), timeout=5) as s:
        port = s.getsockname()[1]
        sent = bytearray()
        for raw, _ in lines[:2]:       # two commands one at a time ...
            s.sendall(raw)
            sent += raw
            time.sleep(0.01)
        rest = b"".join(raw for raw, _ in lines[2:])
        s.sendall(rest)                # ... then three pipelined in one write
        sent += rest
        replies = _read_replies(s, len(lines))
    for (_, args), reply in zip(lines, replies):
        rec.add("inline", port, args, reply, proto=2, inline=True)
    rec.sent[port] = bytes(sent)


def cleanup(rec: Recorder) -> None:
    r = rec.client(2)
    keys = sorted(r.keys(PREFIX + "*"))
    if keys:
        r.delete(*keys)
    rec.record_all("cleanup", 2)
    r.close()


def drive_clients(rec: Recorder) -> None:
    resp2_basic(rec)
    resp2_pipelines(rec)
    resp3_types(rec)
    pubsub(rec, 2)
    pubsub(rec, 3)
    inline_commands(rec)
    cleanup(rec)


# --------------------------------------------------------------------------- capture






def check_capture(pcap: Path, rec: Recorder) -> int:
    """Every client's stream to the server in the capture must be exactly the
    bytes the client wrote, and every client must have been answered."""
    streams, npackets = tcp_streams(pcap, rec.port)
    ports = {port for port, _ in streams}
    if ports != set(rec.sent):
        raise RuntimeError(f"client ports in the capture {sorted(ports)} != recorded {sorted(rec.sent)}")
    for port, sent in rec.sent.items():
        up = b"".join(v for _, v in sorted(streams.get((port, True), {}).items()))
        down = streams.get((port, False))
        if up != sent or not down:
            raise RuntimeError(f"client port {port}: the capture does not hold what the client sent "
                               f"({len(up)} bytes captured, {len(sent)} sent: {up[:80]!r} / {bytes(sent[:80])!r})")
    return npackets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    probe = redis.Redis(host=args.host, port=args.port, socket_connect_timeout=2)
    try:
        server_version = probe.info("server")["redis_version"]
    except redis.ConnectionError as e:
        raise SystemExit(f"redis_real.py: no Redis server on {args.host}:{args.port}: {e}")
    finally:
        probe.close()
    args.out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(args.host, args.port)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "redis_real.pcap"
        Path(tmp).chmod(0o777)         # tcpdump may drop root privileges before writing
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % args.port)
        try:
            drive_clients(rec)
        finally:
            report = stop_tcpdump(dump)
        n = check_capture(tmp_pcap, rec)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit(f"redis_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "redis_real.pcap")
    truth = {
        "pcap": "redis_real.pcap",
        "generator": "tests/golden/gen/redis_real.py",
        "linktype": 1,
        "packets": n,
        "server": f"Redis {server_version} on {args.host}:{args.port}",
        "clients": f"redis-py {redis.__version__} (protocol=2 and protocol=3, pure-Python parser), raw sockets",
        "transactions": rec.txns,
        "pushes": rec.pushes,
    }
    (args.out / "redis_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'redis_real.pcap'}: {n} packets, {len(rec.txns)} transactions, "
          f"{len(rec.pushes)} pushes, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
