"""Real MongoDB driver traffic on loopback, captured with tcpdump.

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/mongodb_real.py [--out DIR] [--port 27117]

No mongod can be installed here (Debian has no server package, and the npm /
PyPI wrappers download it from the vendor at run time), so the server is
``mongodb_responder.py``: a wire-level responder answering as a MongoDB 7.0
standalone. The clients are real: the official driver pymongo (one client
without compression and one each with ``compressors=snappy``, ``zlib`` and
``zstd``: pymongo 4.20 sends its ``ismaster`` handshake as an OP_MSG, not
an OP_QUERY; then OP_MSG, wrapped in OP_COMPRESSED once negotiated), running create, insert (and a
duplicate key), find with batches and getMore, an exhaust cursor, update,
delete, aggregate, count, listCollections, drop, killCursors, an
unacknowledged (w=0, moreToCome) insert and an unknown command; plus a raw
socket speaking the legacy opcodes (OP_QUERY find and commands, OP_GET_MORE,
OP_INSERT, OP_UPDATE, OP_DELETE, OP_KILL_CURSORS).

The truth file is written from the client side: pymongo's command monitoring
(each command's name, database, collection, the reply or failure the driver
got), its heartbeat and connection-pool events, and, for the raw socket, the
messages it wrote and the replies it read. Every socket the clients open
records the bytes it wrote and read (``RecSocket``): the client port of each
command comes from the ``connectionId`` in the handshake reply that socket
read, and the script refuses to write the files unless the capture's
client-to-server bytes are exactly what each client socket wrote and tcpdump
reported no drops.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import bson
import pymongo
from bson import Int64
from pymongo import CursorType, monitoring
from pymongo.write_concern import WriteConcern

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams  # noqa: E402
from mongodb_responder import Responder  # noqa: E402

MAX_PCAP_BYTES = 300_000
_real_socket = socket.socket
SOCKETS: list["RecSocket"] = []


class RecSocket(_real_socket):
    """A socket that records what it wrote and read (the client's view)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent = bytearray()
        self.received = bytearray()
        self.port = 0
        SOCKETS.append(self)

    def connect(self, addr):
        super().connect(addr)
        self.port = self.getsockname()[1]

    def sendall(self, data, *a):
        self.sent += bytes(data)
        return super().sendall(data, *a)

    def send(self, data, *a):
        n = super().send(data, *a)
        self.sent += bytes(data)[:n]
        return n

    def recv_into(self, buf, nbytes=0, *a):
        n = super().recv_into(buf, nbytes, *a)
        self.received += bytes(memoryview(buf)[:n])
        return n

    def recv(self, n, *a):
        b = super().recv(n, *a)
        self.received += b
        return b


class Recorder(monitoring.CommandListener, monitoring.ServerHeartbeatListener):
    def __init__(self, label: str) -> None:
        self.label = label
        self.started_cmds: dict[int, dict] = {}
        self.txns: list[dict] = []
        self.heartbeats = 0

    # command monitoring
    def started(self, e):
        if isinstance(e, monitoring.ServerHeartbeatStartedEvent):
            self.heartbeats += 1
            return
        cmd = e.command
        first = next(iter(cmd.values()))
        coll = cmd.get("collection") if e.command_name == "getMore" else first
        self.started_cmds[e.request_id] = {
            "client": self.label, "server_connection_id": e.server_connection_id,
            "request_id": e.request_id, "method": e.command_name,
            "resource": "%s.%s" % (e.database_name, coll if isinstance(coll, str) else "$cmd"),
            "unacknowledged": (cmd.get("writeConcern") or {}).get("w") == 0,
        }

    def succeeded(self, e):
        if isinstance(e, monitoring.ServerHeartbeatSucceededEvent):
            return
        t = self.started_cmds.pop(e.request_id)
        r = e.reply
        t["ok"] = r.get("ok") == 1
        t["error"] = None
        if r.get("writeErrors"):
            t["error"] = {"writeErrors": [w["code"] for w in r["writeErrors"]]}
        cur = r.get("cursor")
        if cur:
            t["cursorId"] = int(cur["id"])
            t["numberReturned"] = len(cur.get("firstBatch", cur.get("nextBatch", [])))
        self.txns.append(t)

    def failed(self, e):
        if isinstance(e, monitoring.ServerHeartbeatFailedEvent):
            return
        t = self.started_cmds.pop(e.request_id)
        f = e.failure
        t["ok"] = False
        t["error"] = {"errmsg": f.get("errmsg"), "code": f.get("code")}
        self.txns.append(t)


def drive_pymongo(port: int, recs: list[Recorder]) -> None:
    for comp in (None, "snappy", "zlib", "zstd"):
        label = comp or "none"
        rec = Recorder(label)
        recs.append(rec)
        uri = "mongodb://127.0.0.1:%d/?directConnection=true&appName=pbgen-%s" % (port, label)
        if comp:
            uri += "&compressors=" + comp
        client = pymongo.MongoClient(uri, event_listeners=[rec], serverSelectionTimeoutMS=3000,
                                     heartbeatFrequencyMS=500, maxPoolSize=1)
        db = client["pbgen_" + label]
        db.command("ping")
        db.create_collection("items")
        try:
            db.command("create", "items")            # NamespaceExists
        except pymongo.errors.OperationFailure:
            pass
        items = db["items"]
        items.insert_many([{"_id": i, "name": "item %d" % i, "price": 1.5 * i, "tags": ["a", "b"][: i % 3],
                            "when": bson.datetime.datetime(2026, 12, 7, 12, i)} for i in range(7)])
        try:
            items.insert_one({"_id": 3, "name": "dup"})
        except pymongo.errors.DuplicateKeyError:
            pass
        list(items.find({"price": {"$gte": 3}}).batch_size(2))
        list(items.find({}, skip=1, limit=3))
        cur = items.find({}).batch_size(2)
        next(cur)
        cur.close()                                  # killCursors
        list(items.find({}, cursor_type=CursorType.EXHAUST).batch_size(2))
        items.update_one({"_id": 1}, {"$set": {"name": "one"}})
        items.update_many({"price": {"$lt": 3}}, {"$inc": {"price": 10}})
        try:
            items.update_one({"_id": 2}, {"$bogus": {"x": 1}})
        except pymongo.errors.WriteError:
            pass
        except pymongo.errors.OperationFailure:
            pass
        items.find_one_and_update({"_id": 4}, {"$set": {"name": "four"}})
        items.delete_one({"_id": 6})
        items.count_documents({})
        list(items.aggregate([{"$match": {"price": {"$gt": 1}}}, {"$sort": {"price": -1}}, {"$limit": 2}]))
        db.list_collection_names()
        db.get_collection("items", write_concern=WriteConcern(w=0)).insert_one({"_id": 100, "fire": "forget"})
        try:
            db.command("noSuchCommand")
        except pymongo.errors.OperationFailure:
            pass
        db.drop_collection("items")
        time.sleep(0.6)                              # one polling heartbeat (OP_MSG hello)
        client.close()


def _msg(rid: int, opcode: int, body: bytes) -> bytes:
    return struct.pack("<iiii", 16 + len(body), rid, 0, opcode) + body


def _read_reply(sock) -> tuple[bytes, dict]:
    head = b""
    while len(head) < 16:
        head += sock.recv(16 - len(head))
    length, rid, rto, op = struct.unpack("<iiii", head)
    body = b""
    while len(body) < length - 16:
        body += sock.recv(length - 16 - len(body))
    flags, cursor, start, n = struct.unpack_from("<iqii", body)
    docs = bson.decode_all(body[20:])
    return head + body, {"responseTo": rto, "flags": flags, "cursorId": cursor, "startingFrom": start,
                         "numberReturned": n, "documents": docs}


def drive_legacy(port: int) -> list[dict]:
    """Legacy opcodes over a raw socket: what it sent, what it read back."""
    s = socket.create_connection(("127.0.0.1", port))
    out: list[dict] = []
    rid = [100]

    def send(opcode: int, body: bytes, record: dict) -> None:
        rid[0] += 1
        data = _msg(rid[0], opcode, body)
        s.sendall(data)
        record.update(request_id=rid[0], bytes_in=len(data))
        out.append(record)

    def query(ns: str, doc: dict, skip: int = 0, ret: int = 0, method: str = "", resource: str = "") -> None:
        body = struct.pack("<i", 0) + ns.encode() + b"\0" + struct.pack("<ii", skip, ret) + bson.encode(doc)
        rec = {"method": method, "resource": resource, "opcode": "OP_QUERY",
               "fullCollectionName": ns, "numberToSkip": skip, "numberToReturn": ret & 0xFFFFFFFF}
        send(2004, body, rec)
        raw, reply = _read_reply(s)
        rec["reply"] = {k: v for k, v in reply.items() if k != "documents"}
        rec["bytes_out"] = len(raw)
        rec["reply_docs"] = [bson.json_util.dumps(d) for d in reply["documents"]]

    query("admin.$cmd", {"isMaster": 1.0}, ret=-1, method="isMaster", resource="admin.$cmd")
    query("admin.$cmd", {"ping": 1}, ret=-1, method="otherCommand", resource="admin.$cmd")
    docs = b"".join(bson.encode({"_id": i, "legacy": True, "n": i}) for i in range(5))
    send(2002, struct.pack("<i", 0) + b"pbgen_legacy.old\0" + docs,
         {"method": "insert", "resource": "", "opcode": "OP_INSERT", "fullCollectionName": "pbgen_legacy.old"})
    query("pbgen_legacy.old", {"n": {"$gte": 1}}, skip=0, ret=2, method="find", resource="pbgen_legacy.old")
    cursor = out[-1]["reply"]["cursorId"]
    body = struct.pack("<i", 0) + b"pbgen_legacy.old\0" + struct.pack("<iq", 2, cursor)
    rec = {"method": "getMore", "resource": "", "opcode": "OP_GET_MORE", "fullCollectionName": "pbgen_legacy.old",
           "numberToReturn": 2, "cursorId_request": cursor}
    send(2005, body, rec)
    raw, reply = _read_reply(s)
    rec["reply"] = {k: v for k, v in reply.items() if k != "documents"}
    rec["bytes_out"] = len(raw)
    cursor = reply["cursorId"]
    send(2007, struct.pack("<ii", 0, 1) + struct.pack("<q", cursor),
         {"method": "killCursors", "resource": "", "opcode": "OP_KILL_CURSORS"})
    send(2001, struct.pack("<i", 0) + b"pbgen_legacy.old\0" + struct.pack("<i", 0)
         + bson.encode({"_id": 1}) + bson.encode({"$set": {"n": 10}}),
         {"method": "update", "resource": "", "opcode": "OP_UPDATE", "fullCollectionName": "pbgen_legacy.old",
          "selector": '{"_id":1}', "update": '{"$set":{"n":10}}'})
    send(2006, struct.pack("<i", 0) + b"pbgen_legacy.old\0" + struct.pack("<i", 1) + bson.encode({"_id": 4}),
         {"method": "delete", "resource": "", "opcode": "OP_DELETE", "fullCollectionName": "pbgen_legacy.old",
          "selector": '{"_id":4}'})
    query("pbgen_legacy.$cmd", {"count": "old", "query": {}}, ret=-1, method="count", resource="pbgen_legacy.old")
    query("pbgen_legacy.$cmd", {"drop": "old"}, ret=-1, method="drop", resource="pbgen_legacy.old")
    port_ = s.getsockname()[1]
    s.close()
    for r in out:
        r["client_port"] = port_
    return out


def handshake_connection_id(received: bytes) -> int | None:
    """connectionId of the first reply the socket read (the handshake)."""
    if len(received) < 36:
        return None
    length, _rid, _rto, op = struct.unpack_from("<iiii", received)
    if op == 1:                          # OP_REPLY
        doc = bson.decode_all(received[36:length])[0]
    elif op == 2013:                     # OP_MSG: flags, kind 0, body
        doc = bson.decode_all(received[21:length])[0]
    else:
        return None
    return doc.get("connectionId")


def check_capture(pcap: Path, port: int) -> int:
    streams, n = tcp_streams(pcap, port)
    for sock in SOCKETS:
        if not sock.port or not sock.sent:
            continue
        segs = streams.get((sock.port, True), {})
        wire = b"".join(segs[k] for k in sorted(segs))
        if wire != bytes(sock.sent):
            raise SystemExit("mongodb_real.py: client port %d: the capture's bytes differ from what the "
                             "client wrote (%d vs %d)" % (sock.port, len(wire), len(sock.sent)))
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--port", type=int, default=27117)
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    args.out.mkdir(parents=True, exist_ok=True)
    responder = Responder(args.port).start()
    recs: list[Recorder] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "mongodb_real.pcap"
        Path(tmp).chmod(0o777)
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % args.port)
        socket.socket = RecSocket
        try:
            drive_pymongo(args.port, recs)
            legacy = drive_legacy(args.port)
        finally:
            socket.socket = _real_socket
            report = stop_tcpdump(dump)
            responder.close()
        n = check_capture(tmp_pcap, args.port)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit(f"mongodb_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "mongodb_real.pcap")
    ports = {}
    handshakes = 0
    for sock in SOCKETS:
        if sock.port and sock.sent:
            handshakes += 1
            cid = handshake_connection_id(bytes(sock.received))
            if cid is not None:
                ports[cid] = sock.port
    txns = []
    for rec in recs:
        for t in rec.txns:
            t["client_port"] = ports.get(t.pop("server_connection_id"))
            txns.append(t)
    truth = {
        "pcap": "mongodb_real.pcap",
        "generator": "tests/golden/gen/mongodb_real.py",
        "linktype": 1,
        "packets": n,
        "server": "tests/golden/gen/mongodb_responder.py (wire-level responder answering as MongoDB 7.0, "
                  "maxWireVersion 21) on 127.0.0.1:%d" % args.port,
        "clients": "pymongo %s (compressors none, snappy via python-snappy, zlib, zstd via backports.zstd), "
                   "raw socket (legacy opcodes)" % pymongo.version,
        "pymongo_clients": len(recs),
        "pymongo_sockets": handshakes - 1,       # every socket but the raw legacy one
        "heartbeats": sum(r.heartbeats for r in recs),
        "commands": txns,
        "legacy": legacy,
    }
    (args.out / "mongodb_real.truth.json").write_text(json.dumps(truth, indent=1, default=str) + "\n")
    print(f"{args.out / 'mongodb_real.pcap'}: {n} packets, {len(txns)} commands, {len(legacy)} legacy "
          f"messages, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
