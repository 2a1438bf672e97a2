#!/usr/bin/env python3
"""Real memcache traffic on loopback, captured with tcpdump.

Usage (from the repository root, as root: tcpdump needs CAP_NET_RAW)::

    .venv/bin/python tests/golden/gen/memcache_real.py [--out tests/golden/pcaps] [--port 11311]

Starts a private ``memcached -u root -l 127.0.0.1 -p PORT -U PORT -m 16``, starts
``tcpdump -i lo -nn -U --immediate-mode -s 0 -w FILE 'port PORT'``, and drives real clients:

- TCP text protocol: pymemcache's ``Client`` (set/add/replace/append/prepend,
  get/gets/get_many, cas, incr/decr, touch, delete, flush_all, version, stats,
  noreply stores, a 40 kB value) and a raw socket for what pymemcache does not
  send (verbosity, pipelined commands, an incr on a non-numeric value,
  ``noreply`` followed by a get, ``quit``);
- TCP binary protocol: a raw client with struct-packed 24-byte headers
  (Set/Get/GetK/Add/Replace/Append/Increment/Decrement/Delete/Touch/Version/
  Noop/Stat/Flush, pipelined quiet SetQ/GetKQ/DeleteQ closed by a Noop,
  Quit), and raw runs of quiet gets closed by a Noop (GetQ with an opaque per
  request, GetKQ all with opaque 0);
- TCP text commands memcached rejects (``ERROR``, ``CLIENT_ERROR ...``),
  through pymemcache's ``raw_command``;
- TCP binary quiet multi-gets of real clients: python-binary-memcached
  (GetKQ..., GetK, all opaque 0) and pylibmc (libmemcached: GetKQ..., Noop);
- UDP, text and binary: a raw client writing the 8-byte frame header
  (request id, sequence, datagram count, reserved) and reassembling
  multi-datagram replies (``stats``, a 3 kB value); a binary quiet multi-get
  in one datagram (GetKQ per key + Noop), answered message by message.

It stops tcpdump with SIGINT, checks that tcpdump reported 0 dropped packets,
and writes ``memcache_real.pcap`` and ``memcache_real.truth.json``: one record
per transaction, from the client side (command, keys, what came back).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump

HOST = "127.0.0.1"
MAX_PCAP_BYTES = 300 * 1024
HDR = struct.Struct("!BBHBBHIIQ")
UDP_HDR = struct.Struct("!HHHH")

# binary opcodes used here
GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08
NOOP, VERSION, GETK, GETKQ, APPEND, STAT, SETQ, DELETEQ = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x10, 0x11, 0x14
VERBOSITY, TOUCH = 0x1B, 0x1C
STATUS_NAMES = {0: "Success", 1: "Key not found", 2: "Key exists", 5: "Item not stored",
                6: "Incr/Decr on non-numeric value.", 0x81: "Unknown command"}


class Truth:
    def __init__(self):
        self.records: list[dict] = []

    def add(self, case, transport, protocol, client_port, command, keys=(), *, response,
            noreply=False, quiet=False, value_bytes=None, server_port=0, **extra):
        """``response``: None (nothing came back) or a dict: text ``command``
        (first word, ``<counter_op_res>`` for a number), binary ``status``,
        ``count_values``, ``value`` (counter), ``stats`` (entry count)."""
        r = {"case": case, "transport": transport, "protocol": protocol, "client_ip": HOST,
             "client_port": client_port, "server_ip": HOST, "server_port": server_port,
             "command": command, "keys": list(keys), "noreply": noreply, "quiet": quiet,
             "value_bytes": value_bytes, "response": response}
        r.update(extra)
        self.records.append(r)


# ------------------------------------------------------------------ TCP text
def text_pymemcache(truth: Truth, port: int) -> None:
    from pymemcache.client.base import Client
    c = Client((HOST, port), default_noreply=False, connect_timeout=5, timeout=5)
    c.version()
    cp = c.sock.getsockname()[1]

    def add(command, keys=(), response=None, **kw):
        truth.add("text_pymemcache", "tcp", "text", cp, command, keys, response=response, server_port=port, **kw)

    add("version", response={"command": "VERSION"})
    ok = c.set("alpha", b"first value", expire=0)
    add("set", ["alpha"], {"command": "STORED" if ok else "NOT_STORED"}, value_bytes=11)
    v = c.get("alpha")
    add("get", ["alpha"], {"command": "VALUE", "count_values": 1} if v is not None else {"command": "END"})
    v = c.get("missing-key")
    add("get", ["missing-key"], {"command": "VALUE", "count_values": 1} if v is not None else {"command": "END"})
    c.set("beta", b"22", expire=60)
    add("set", ["beta"], {"command": "STORED"}, value_bytes=2)
    got = c.get_many(["alpha", "beta", "nope"])
    add("get", ["alpha", "beta", "nope"], {"command": "VALUE", "count_values": len(got)})
    val, cas = c.gets("alpha")
    add("gets", ["alpha"], {"command": "VALUE", "count_values": 1})
    r = c.cas("alpha", b"second", cas)
    add("cas", ["alpha"], {"command": {True: "STORED", False: "EXISTS", None: "NOT_FOUND"}[r]}, value_bytes=6)
    r = c.cas("alpha", b"third", cas)                      # stale cas: EXISTS
    add("cas", ["alpha"], {"command": {True: "STORED", False: "EXISTS", None: "NOT_FOUND"}[r]}, value_bytes=5)
    r = c.add("alpha", b"x")
    add("add", ["alpha"], {"command": "STORED" if r else "NOT_STORED"}, value_bytes=1)
    r = c.replace("beta", b"33")
    add("replace", ["beta"], {"command": "STORED" if r else "NOT_STORED"}, value_bytes=2)
    r = c.append("beta", b"4")
    add("append", ["beta"], {"command": "STORED" if r else "NOT_STORED"}, value_bytes=1)
    r = c.prepend("beta", b"1")
    add("prepend", ["beta"], {"command": "STORED" if r else "NOT_STORED"}, value_bytes=1)
    n = c.incr("beta", 10)
    add("incr", ["beta"], {"command": "<counter_op_res>", "value": n}, delta=10)
    n = c.decr("beta", 3)
    add("decr", ["beta"], {"command": "<counter_op_res>", "value": n}, delta=3)
    n = c.incr("no-counter", 1)
    add("incr", ["no-counter"], {"command": "NOT_FOUND"} if n is None else {"command": "<counter_op_res>", "value": n},
        delta=1)
    r = c.touch("alpha", expire=300)
    add("touch", ["alpha"], {"command": "TOUCHED" if r else "NOT_FOUND"})
    big = (b"0123456789abcdef" * 2600)[:40000]
    c.set("big", big)
    add("set", ["big"], {"command": "STORED"}, value_bytes=len(big))
    v = c.get("big")
    assert v == big
    add("get", ["big"], {"command": "VALUE", "count_values": 1})
    c.set("quiet-store", b"nr", noreply=True)
    add("set", ["quiet-store"], None, noreply=True, value_bytes=2)
    r = c.delete("alpha")
    add("delete", ["alpha"], {"command": "DELETED" if r else "NOT_FOUND"})
    r = c.delete("alpha")
    add("delete", ["alpha"], {"command": "DELETED" if r else "NOT_FOUND"})
    st = c.stats()
    add("stats", [], {"command": "STAT", "stats": len(st)})
    st = c.stats("settings")
    add("stats", [], {"command": "STAT", "stats": len(st)}, raw_args="settings")
    c.flush_all(delay=0)
    add("flush_all", [], {"command": "OK"})
    c.quit()
    add("quit", [], None)


def text_rejected(truth: Truth, port: int) -> None:
    """Commands memcached rejects (ERROR / CLIENT_ERROR ...), sent with
    pymemcache's ``raw_command``; pymemcache raises on the answer and closes
    its socket, so every command has a connection of its own (opened by a
    ``version``)."""
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheClientError, MemcacheServerError, MemcacheUnknownCommandError
    cases = [("get", "get", []), ("touch alpha", "touch", ["alpha"]),
             ("incr beta abc", "incr", ["beta"]), ("set k 0 0 x", "set", ["k"]),
             ("flush_all abc", "flush_all", []), ("verbosity", "verbosity", []),
             ("delete", "delete", []), ("slabs frobnicate 1", "slabs", [])]
    for line, command, keys in cases:
        c = Client((HOST, port), connect_timeout=5, timeout=5)
        c.version()
        cp = c.sock.getsockname()[1]
        truth.add("text_rejected", "tcp", "text", cp, "version", [], response={"command": "VERSION"},
                  server_port=port)
        # pymemcache raises one exception class per error reply, with the
        # message after the first word
        try:
            answer = c.raw_command(line)
            resp = {"command": answer.split(b" ")[0].decode()}
        except MemcacheUnknownCommandError:
            resp = {"command": "ERROR"}
        except MemcacheClientError as e:
            resp = {"command": "CLIENT_ERROR", "error_msg": e.args[0].decode()}
        except MemcacheServerError as e:
            resp = {"command": "SERVER_ERROR", "error_msg": e.args[0].decode()}
        truth.add("text_rejected", "tcp", "text", cp, command, keys, response=resp, server_port=port,
                  request_line=line)
        c.close()


def _read_until(sock: socket.socket, buf: bytearray, pattern: bytes) -> bytes:
    while pattern not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    i = buf.index(pattern) + len(pattern)
    out = bytes(buf[:i])
    del buf[:i]
    return out


def text_raw(truth: Truth, port: int) -> None:
    s = socket.create_connection((HOST, port))
    cp = s.getsockname()[1]
    buf = bytearray()

    def add(command, keys=(), response=None, **kw):
        truth.add("text_raw", "tcp", "text", cp, command, keys, response=response, server_port=port, **kw)

    s.sendall(b"verbosity 1\r\n")
    add("verbosity", [], {"command": _read_until(s, buf, b"\r\n").split()[0].decode()}, verbosity=1)
    s.sendall(b"verbosity 0\r\n")
    add("verbosity", [], {"command": _read_until(s, buf, b"\r\n").split()[0].decode()}, verbosity=0)
    # noreply then a get: the get's answer must not be paired with the set
    s.sendall(b"set nr 5 0 3 noreply\r\nabc\r\nget nr\r\n")
    add("set", ["nr"], None, noreply=True, value_bytes=3)
    reply = _read_until(s, buf, b"END\r\n")
    add("get", ["nr"], {"command": "VALUE", "count_values": reply.count(b"VALUE ")})
    # three pipelined commands in one segment
    s.sendall(b"set word 0 0 4\r\ntext\r\nincr word 1\r\nget word nr\r\n")
    r1 = _read_until(s, buf, b"\r\n")
    add("set", ["word"], {"command": r1.split()[0].decode()}, value_bytes=4)
    r2 = _read_until(s, buf, b"\r\n")
    add("incr", ["word"], {"command": r2.split()[0].decode()}, delta=1)       # CLIENT_ERROR non-numeric
    r3 = _read_until(s, buf, b"END\r\n")
    add("get", ["word", "nr"], {"command": "VALUE", "count_values": r3.count(b"VALUE ")})
    s.sendall(b"delete nr noreply\r\n")
    add("delete", ["nr"], None, noreply=True)
    s.sendall(b"version\r\n")
    add("version", [], {"command": _read_until(s, buf, b"\r\n").split()[0].decode()})
    s.sendall(b"quit\r\n")
    add("quit", [], None)
    s.recv(10)            # server closes
    s.close()


# ---------------------------------------------------------------- TCP binary
def bin_request(opcode: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"",
                opaque: int = 0, cas: int = 0) -> bytes:
    total = len(extras) + len(key) + len(value)
    return HDR.pack(0x80, opcode, len(key), len(extras), 0, 0, total, opaque, cas) + extras + key + value


def bin_read(sock: socket.socket, buf: bytearray) -> dict:
    while len(buf) < 24:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    magic, op, klen, elen, _dt, status, total, opaque, cas = HDR.unpack_from(buf, 0)
    while len(buf) < 24 + total:
        buf += sock.recv(65536)
    body = bytes(buf[24:24 + total])
    del buf[:24 + total]
    return {"opcode": op, "status": status, "opaque": opaque, "cas": cas,
            "extras": body[:elen], "key": body[elen:elen + klen], "value": body[elen + klen:]}


def binary_tcp(truth: Truth, port: int) -> None:
    s = socket.create_connection((HOST, port))
    cp = s.getsockname()[1]
    buf = bytearray()
    opaque = [0]

    def call(opcode, command, key=b"", extras=b"", value=b"", **kw):
        opaque[0] += 1
        s.sendall(bin_request(opcode, key, extras, value, opaque[0]))
        r = bin_read(s, buf)
        assert r["opaque"] == opaque[0] and r["opcode"] == opcode, r
        resp = {"status": STATUS_NAMES.get(r["status"], str(r["status"])), "status_code": r["status"]}
        if command in ("incr", "decr") and r["status"] == 0:
            resp["value"] = struct.unpack("!Q", r["value"])[0]
        if command == "get" and r["status"] == 0:
            resp["count_values"] = 1
        truth.add("binary_tcp", "tcp", "binary", cp, command, [key.decode()] if key else [],
                  response=resp, server_port=port, opaque=opaque[0], opcode=opcode,
                  value_bytes=len(value) if value else None, **kw)
        return r

    flags_exp = struct.pack("!II", 7, 0)
    call(VERSION, "version")
    call(NOOP, "noop")
    call(SET, "set", b"bkey", flags_exp, b"binary value")
    call(GET, "get", b"bkey")
    call(GETK, "get", b"bmissing")
    call(ADD, "add", b"bkey", flags_exp, b"again")                    # Key exists
    call(REPLACE, "replace", b"bkey", flags_exp, b"replaced")
    call(APPEND, "append", b"bkey", b"", b"+tail")
    counter = struct.pack("!QQI", 5, 100, 0)
    call(INCR, "incr", b"bcount", counter)                            # created with initial 100
    call(INCR, "incr", b"bcount", struct.pack("!QQI", 5, 0, 0))
    call(DECR, "decr", b"bcount", struct.pack("!QQI", 7, 0, 0))
    call(INCR, "incr", b"bkey", struct.pack("!QQI", 1, 0, 0))         # non-numeric value
    call(TOUCH, "touch", b"bkey", struct.pack("!I", 600))
    big = bytes(range(256)) * 20
    call(SET, "set", b"bbig", flags_exp, big)
    call(GET, "get", b"bbig")
    call(DELETE, "delete", b"bkey")
    call(DELETE, "delete", b"bkey")                                   # Key not found

    # Stat: one response per entry, then one without key
    opaque[0] += 1
    s.sendall(bin_request(STAT, opaque=opaque[0]))
    n = 0
    while True:
        r = bin_read(s, buf)
        if not r["key"]:
            break
        n += 1
    truth.add("binary_tcp", "tcp", "binary", cp, "stats", [], response={"status": "Success", "status_code": 0,
              "stats": n}, server_port=port, opaque=opaque[0], opcode=STAT, value_bytes=None)

    # quiet commands pipelined, closed by a Noop: only misses/errors... answer
    batch = []
    quiet = [(SETQ, "set", b"q1", flags_exp, b"one"), (SETQ, "set", b"q2", flags_exp, b"two"),
             (GETKQ, "get", b"q1", b"", b""), (GETKQ, "get", b"qmissing", b"", b""),
             (DELETEQ, "delete", b"q2", b"", b"")]
    ops = []
    for op, cmd, key, ext, val in quiet:
        opaque[0] += 1
        batch.append(bin_request(op, key, ext, val, opaque[0]))
        ops.append((opaque[0], op, cmd, key, val))
    opaque[0] += 1
    noop_opaque = opaque[0]
    batch.append(bin_request(NOOP, opaque=noop_opaque))
    s.sendall(b"".join(batch))
    answered = {}
    while True:
        r = bin_read(s, buf)
        if r["opaque"] == noop_opaque:
            break
        answered[r["opaque"]] = r
    for op_opaque, op, cmd, key, val in ops:
        r = answered.get(op_opaque)
        resp = None
        if r is not None:
            resp = {"status": STATUS_NAMES.get(r["status"], str(r["status"])), "status_code": r["status"]}
            if cmd == "get" and r["status"] == 0:
                resp["count_values"] = 1
        truth.add("binary_tcp_quiet", "tcp", "binary", cp, cmd, [key.decode()], response=resp, quiet=True,
                  server_port=port, opaque=op_opaque, opcode=op, value_bytes=len(val) if val else None)
    truth.add("binary_tcp_quiet", "tcp", "binary", cp, "noop", [], response={"status": "Success", "status_code": 0},
              server_port=port, opaque=noop_opaque, opcode=NOOP, value_bytes=None)
    call(FLUSH, "delete", b"", struct.pack("!I", 0))
    call(QUIT, "quit")
    s.close()


GETQ = 0x09


def binary_multiget_clients(truth: Truth, port: int) -> None:
    """Quiet multi-gets as real binary clients send them: python-binary-memcached
    (GetKQ for all keys but the last, GetK for the last, every opaque 0) and
    pylibmc / libmemcached (GetKQ for every key, then a Noop; opaques of its own,
    not visible to the caller, so not in the truth)."""
    import bmemcached
    b = bmemcached.Client(["%s:%d" % (HOST, port)])
    vals = {"mga": b"apple", "mgc": b"cherry!"}
    for k, v in vals.items():
        assert b.set(k, v)
    cp = None
    for srv in b.servers:
        cp = srv.connection.getsockname()[1]
    keys = ["mga", "mgb", "mgc", "mgd"]
    got = b.get_multi(keys)
    b.disconnect_all()
    for k, v in vals.items():
        truth.add("binary_bmemcached", "tcp", "binary", cp, "set", [k], response={"status": "Success", "status_code": 0},
                  server_port=port, opaque=None, opcode=SET, value_bytes=len(v))
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if k in got:
            resp = {"status": "Success", "status_code": 0, "count_values": 1, "keys": [k]}
        else:
            resp = {"status": "Key not found", "status_code": 1, "keys": [k]} if last else None
        truth.add("binary_bmemcached", "tcp", "binary", cp, "get", [k], response=resp, quiet=not last,
                  server_port=port, opaque=0, opcode=GETK if last else GETKQ, value_bytes=None)

    import pylibmc
    c = pylibmc.Client(["%s:%d" % (HOST, port)], binary=True)
    vals = {"lma": b"1", "lmc": b"three", "lme": b"five5"}
    for k, v in vals.items():
        assert c.set(k, v)
    keys = ["lma", "lmb", "lmc", "lmd", "lme"]
    got = c.get_multi(keys)
    # libmemcached's socket is not reachable from Python: its port is that of
    # this process's one open connection to the server
    import psutil
    proc = psutil.Process()
    conns = proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    ports = {x.laddr.port for x in conns if x.raddr and x.raddr.port == port and x.status == "ESTABLISHED"}
    assert len(ports) == 1, ports
    cp = ports.pop()
    c.disconnect_all()
    recs = []
    for k, v in vals.items():
        recs.append(dict(command="set", keys=[k], response={"status": "Success", "status_code": 0},
                         opaque=None, opcode=SET, value_bytes=len(v), quiet=False))
    for k in keys:
        resp = {"status": "Success", "status_code": 0, "count_values": 1, "keys": [k]} if k in got else None
        recs.append(dict(command="get", keys=[k], response=resp, opaque=None, opcode=GETKQ, value_bytes=None,
                         quiet=True))
    recs.append(dict(command="noop", keys=[], response={"status": "Success", "status_code": 0}, opaque=None,
                     opcode=NOOP, value_bytes=None, quiet=False))
    recs.append(dict(command="quit", keys=[], response={"status": "Success", "status_code": 0}, opaque=None,
                     opcode=QUIT, value_bytes=None, quiet=False))
    for r in recs:
        truth.add("binary_pylibmc", "tcp", "binary", cp, r.pop("command"), r.pop("keys"), response=r.pop("response"),
                  server_port=port, **r)


def binary_quiet_runs(truth: Truth, port: int) -> None:
    """Raw runs of quiet gets closed by a Noop: GetQ with an opaque per request
    (the answers carry no key) and GetKQ all with opaque 0 (the answers carry
    the key). Misses are not answered at all."""
    s = socket.create_connection((HOST, port))
    cp = s.getsockname()[1]
    buf = bytearray()
    s.sendall(bin_request(SET, b"rqa", struct.pack("!II", 0, 0), b"A-value", 500))
    r = bin_read(s, buf)
    truth.add("binary_quiet_runs", "tcp", "binary", cp, "set", ["rqa"],
              response={"status": STATUS_NAMES[r["status"]], "status_code": r["status"]},
              server_port=port, opaque=500, opcode=SET, value_bytes=7)
    s.sendall(bin_request(SET, b"rqc", struct.pack("!II", 0, 0), b"C", 501))
    r = bin_read(s, buf)
    truth.add("binary_quiet_runs", "tcp", "binary", cp, "set", ["rqc"],
              response={"status": STATUS_NAMES[r["status"]], "status_code": r["status"]},
              server_port=port, opaque=501, opcode=SET, value_bytes=1)
    for op, opaques in ((GETQ, True), (GETKQ, False)):
        keys = [b"rqa", b"rqb", b"rqc", b"rqd"]
        ops = [(k, 600 + i if opaques else 0) for i, k in enumerate(keys)]
        noop_opaque = 700 if opaques else 0
        s.sendall(b"".join(bin_request(op, k, opaque=o) for k, o in ops) + bin_request(NOOP, opaque=noop_opaque))
        answers = []
        while True:
            r = bin_read(s, buf)
            if r["opcode"] == NOOP:
                break
            answers.append(r)
        # the server answers in order: with GetKQ the key names the request,
        # with GetQ the opaque does
        for k, o in ops:
            hit = next((a for a in answers if (a["key"] == k if op == GETKQ else a["opaque"] == o)), None)
            resp = None
            if hit is not None:
                resp = {"status": STATUS_NAMES[hit["status"]], "status_code": hit["status"], "count_values": 1}
                if op == GETKQ:
                    resp["keys"] = [k.decode()]
            truth.add("binary_quiet_runs", "tcp", "binary", cp, "get", [k.decode()], response=resp, quiet=True,
                      server_port=port, opaque=o, opcode=op, value_bytes=None)
        truth.add("binary_quiet_runs", "tcp", "binary", cp, "noop", [], response={"status": "Success", "status_code": 0},
                  server_port=port, opaque=noop_opaque, opcode=NOOP, value_bytes=None)
    s.close()


# ----------------------------------------------------------------------- UDP
class UdpClient:
    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((HOST, port))
        self.sock.settimeout(3)
        self.port = self.sock.getsockname()[1]
        self.rid = 100

    def send(self, payload: bytes) -> int:
        self.rid += 1
        self.sock.send(UDP_HDR.pack(self.rid, 0, 1, 0) + payload)
        return self.rid

    def reply(self, rid: int, end: bytes | None = None) -> tuple[bytes, int]:
        """The reply to ``rid`` and the number of datagrams it took. memcached
        numbers the datagrams of each response message separately (a
        multi-get answers with one message per VALUE, then END), so messages
        are collected until the reply ends with ``end`` (one message when None)."""
        out = b""
        ndg = 0
        while True:
            parts: dict[int, bytes] = {}
            total = None
            while total is None or len(parts) < total:
                d = self.sock.recv(65536)
                r, seq, tot, _ = UDP_HDR.unpack_from(d, 0)
                if r != rid:
                    continue
                total = tot
                parts[seq] = d[8:]
            ndg += total
            out += b"".join(parts[i] for i in range(total))
            if end is None or out.endswith(end):
                return out, ndg


def udp_text(truth: Truth, port: int) -> None:
    u = UdpClient(port)

    def add(command, keys, response, **kw):
        truth.add("udp_text", "udp", "text", u.port, command, keys, response=response, server_port=port, **kw)

    rid = u.send(b"set ukey 3 0 5\r\nhello\r\n")
    rep, _ = u.reply(rid)
    add("set", ["ukey"], {"command": rep.split()[0].decode()}, value_bytes=5, request_id=rid)
    val = b"u" * 3000
    rid = u.send(b"set ubig 0 0 %d\r\n%s\r\n" % (len(val), val))
    rep, _ = u.reply(rid)
    add("set", ["ubig"], {"command": rep.split()[0].decode()}, value_bytes=len(val), request_id=rid)
    rid = u.send(b"get ukey ubig umissing\r\n")
    rep, ndg = u.reply(rid, b"END\r\n")
    add("get", ["ukey", "ubig", "umissing"], {"command": "VALUE", "count_values": rep.count(b"VALUE ")},
        request_id=rid, datagrams=ndg)
    rid = u.send(b"set unr 0 0 2 noreply\r\nnr\r\n")
    add("set", ["unr"], None, noreply=True, value_bytes=2, request_id=rid)
    rid = u.send(b"incr ukey 1\r\n")
    rep, _ = u.reply(rid)
    add("incr", ["ukey"], {"command": rep.split()[0].decode()}, delta=1, request_id=rid)
    rid = u.send(b"stats\r\n")
    rep, ndg = u.reply(rid, b"END\r\n")
    add("stats", [], {"command": "STAT", "stats": rep.count(b"STAT ")}, request_id=rid, datagrams=ndg)
    rid = u.send(b"delete ukey\r\n")
    rep, _ = u.reply(rid)
    add("delete", ["ukey"], {"command": rep.split()[0].decode()}, request_id=rid)
    rid = u.send(b"delete unr noreply\r\n")
    add("delete", ["unr"], None, noreply=True, request_id=rid)
    u.sock.close()


def udp_binary(truth: Truth, port: int) -> None:
    u = UdpClient(port)

    def call(op, command, key=b"", extras=b"", value=b"", quiet=False):
        opaque = u.rid + 1
        rid = u.send(bin_request(op, key, extras, value, opaque))
        resp = None
        if not quiet:
            rep, _ = u.reply(rid)
            _m, rop, _k, _e, _d, status, _t, ropaque, _c = HDR.unpack_from(rep, 0)
            resp = {"status": STATUS_NAMES.get(status, str(status)), "status_code": status}
            if command == "get" and status == 0:
                resp["count_values"] = 1
            if command in ("incr", "decr") and status == 0:
                resp["value"] = struct.unpack_from("!Q", rep, 24)[0]
        truth.add("udp_binary", "udp", "binary", u.port, command, [key.decode()] if key else [],
                  response=resp, quiet=quiet, server_port=port, opaque=opaque, opcode=op,
                  request_id=rid, value_bytes=len(value) if value else None)

    fe = struct.pack("!II", 1, 0)
    call(SET, "set", b"ubin", fe, b"over udp")
    call(GET, "get", b"ubin")
    call(SETQ, "set", b"ubinq", fe, b"quiet", quiet=True)
    call(GETK, "get", b"ubinq")
    call(INCR, "incr", b"ucnt", struct.pack("!QQI", 1, 41, 0))
    call(VERSION, "version")
    call(DELETE, "delete", b"ubin")
    u.sock.close()


def udp_binary_multiget(truth: Truth, port: int) -> None:
    """A quiet multi-get in one datagram (GetKQ per key, then a Noop): memcached
    answers every hit and the Noop in a message of its own, all with the
    datagram's request id; misses are not answered."""
    u = UdpClient(port)
    fe = struct.pack("!II", 0, 0)
    for i, (k, v) in enumerate(((b"uma", b"udp-a"), (b"umc", b"udp-c-value"))):
        rid = u.send(bin_request(SET, k, fe, v, 900 + i))
        rep, _ = u.reply(rid)
        status = HDR.unpack_from(rep, 0)[5]
        truth.add("udp_binary_multiget", "udp", "binary", u.port, "set", [k.decode()],
                  response={"status": STATUS_NAMES[status], "status_code": status}, server_port=port,
                  opaque=900 + i, opcode=SET, request_id=rid, value_bytes=len(v))
    keys = [b"uma", b"umb", b"umc", b"umd"]
    rid = u.send(b"".join(bin_request(GETKQ, k, opaque=910 + i) for i, k in enumerate(keys))
                 + bin_request(NOOP, opaque=920))
    answers = {}
    while True:
        rep, _ = u.reply(rid)
        _m, rop, _k, _e, _d, status, _t, ropaque, _c = HDR.unpack_from(rep, 0)
        if rop == NOOP:
            break
        answers[ropaque] = status
    for i, k in enumerate(keys):
        status = answers.get(910 + i)
        resp = None if status is None else {"status": STATUS_NAMES[status], "status_code": status,
                                            "count_values": 1, "keys": [k.decode()]}
        truth.add("udp_binary_multiget", "udp", "binary", u.port, "get", [k.decode()], response=resp, quiet=True,
                  server_port=port, opaque=910 + i, opcode=GETKQ, request_id=rid, value_bytes=None)
    truth.add("udp_binary_multiget", "udp", "binary", u.port, "noop", [], response={"status": "Success",
              "status_code": 0}, server_port=port, opaque=920, opcode=NOOP, request_id=rid, value_bytes=None)
    u.sock.close()


# ----------------------------------------------------------------- plumbing
def _wait_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("memcached did not start on port %d" % port)


def generate(out_dir: Path, port: int) -> tuple[Path, Path]:
    for tool in ("memcached", "tcpdump"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s is not installed" % tool)
    version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="memcache_gen_"))
    pcap_tmp = tmp / "memcache_real.pcap"
    server = subprocess.Popen(["memcached", "-u", "root", "-l", HOST, "-p", str(port), "-U", str(port), "-m", "16"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dump = None
    try:
        _wait_port(port)
        dump = start_tcpdump(find_tcpdump(), pcap_tmp, "port %d" % port)
        truth = Truth()
        text_pymemcache(truth, port)
        time.sleep(0.05)
        text_raw(truth, port)
        time.sleep(0.05)
        binary_tcp(truth, port)
        time.sleep(0.05)
        text_rejected(truth, port)
        time.sleep(0.05)
        binary_multiget_clients(truth, port)
        time.sleep(0.05)
        binary_quiet_runs(truth, port)
        time.sleep(0.05)
        udp_text(truth, port)
        time.sleep(0.05)
        udp_binary(truth, port)
        time.sleep(0.05)
        udp_binary_multiget(truth, port)
        time.sleep(0.5)
    finally:
        try:
            err = stop_tcpdump(dump) if dump is not None else ""   # exits unless tcpdump dropped nothing
        finally:
            server.terminate()
            server.wait(timeout=10)
    if os.environ.get("MEMCACHE_GEN_DEBUG"):
        print(err, file=sys.stderr)
    captured = re.search(r"(\d+) packets? captured", err)
    received = re.search(r"(\d+) packets? received by filter", err)
    if not captured or not received or 2 * int(captured.group(1)) != int(received.group(1)):
        # on lo the filter sees every packet twice (out and in) and tcpdump
        # keeps one copy; packets still in the ring when it stopped would be lost
        raise RuntimeError("tcpdump did not write every packet it received: %s" % err)
    size = pcap_tmp.stat().st_size
    if size > MAX_PCAP_BYTES:
        raise RuntimeError("capture of %d bytes is too large" % size)
    import pymemcache
    import pylibmc
    from importlib.metadata import version as dist_version
    doc = {
        "pcap": "memcache_real.pcap",
        "generator": "tests/golden/gen/memcache_real.py",
        "server": version,
        "clients": ["pymemcache %s (text, TCP; raw_command for rejected commands)" % pymemcache.__version__,
                    "python-binary-memcached %s (binary, TCP: get_multi)" % dist_version("python-binary-memcached"),
                    "pylibmc %s, libmemcached %s (binary, TCP: get_multi)" % (pylibmc.__version__,
                                                                           pylibmc.libmemcached_version),
                    "raw sockets (text pipelining, binary TCP, quiet GetQ/GetKQ runs, UDP text and binary)"],
        "linktype": 1,
        "packets": int(captured.group(1)) if captured else None,
        "server_port": port,
        "transactions": truth.records,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    pcap = out_dir / "memcache_real.pcap"
    shutil.copyfile(pcap_tmp, pcap)
    truth_path = out_dir / "memcache_real.truth.json"
    truth_path.write_text(json.dumps(doc, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return pcap, truth_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "pcaps"))
    ap.add_argument("--port", type=int, default=11311)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root (tcpdump on lo)", file=sys.stderr)
        return 2
    pcap, truth = generate(Path(a.out), a.port)
    doc = json.loads(truth.read_text())
    print("wrote %s (%d bytes, %s packets) and %s (%d transactions)"
          % (pcap, pcap.stat().st_size, doc["packets"], truth, len(doc["transactions"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
