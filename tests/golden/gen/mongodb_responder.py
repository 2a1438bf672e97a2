"""A small wire-level MongoDB responder, for capturing real drivers when no
mongod can be installed (no Debian package; the npm/PyPI wrappers download
the server from the vendor's site at run time).

It speaks what a MongoDB 7.0 standalone speaks to a driver: the OP_QUERY
handshake (``isMaster``/``hello`` on ``admin.$cmd``), OP_MSG commands (kind-0
body and kind-1 document sequences, moreToCome requests answered with
nothing, exhaust getMore answered with a chain of moreToCome replies),
OP_COMPRESSED in and out with the compressor the handshake chose (snappy,
zlib, zstd), and the legacy opcodes a 3.x server answered (OP_QUERY find,
OP_GET_MORE, OP_INSERT, OP_UPDATE, OP_DELETE, OP_KILL_CURSORS).

Commands: hello/isMaster, ping, buildInfo, endSessions, listCollections,
create, drop, insert, update, delete, find, getMore, killCursors, count,
aggregate ($match, $sort, $skip, $limit, $group with $sum, $count, $project of fields),
findAndModify; anything else answers ``CommandNotFound``. Errors are the
server's: duplicate ``_id`` (E11000 in writeErrors), NamespaceExists,
CursorNotFound, unknown operators (BadValue). Filters support equality and
``$gt/$gte/$lt/$lte/$ne/$in/$exists``; updates ``$set/$inc/$unset`` or a
replacement. Data lives in memory for the life of the process.

Usage: ``python mongodb_responder.py --port 27117`` (loopback only), or
``Responder(port).start()`` in a thread.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import socket
import struct
import threading
import zlib

import bson
from bson import ObjectId
from bson.son import SON

try:
    import cramjam
except ImportError:          # pragma: no cover
    cramjam = None
try:
    import zstandard
except ImportError:          # pragma: no cover
    zstandard = None

OP_REPLY, OP_UPDATE, OP_INSERT, OP_QUERY, OP_GET_MORE, OP_DELETE, OP_KILL_CURSORS = 1, 2001, 2002, 2004, 2005, 2006, 2007
OP_COMPRESSED, OP_MSG = 2012, 2013
COMPRESSORS = {"snappy": 1, "zlib": 2, "zstd": 3}
HEADER = struct.Struct("<iiii")
MORE_TO_COME = 2
EXHAUST_ALLOWED = 1 << 16
NOT_COMPRESSED = {"hello", "ismaster", "saslstart", "saslcontinue", "getnonce", "authenticate",
                  "createuser", "updateuser", "copydbsaslstart", "copydbgetnonce", "copydb"}


class CommandError(Exception):
    def __init__(self, code: int, name: str, msg: str):
        super().__init__(msg)
        self.code, self.name, self.msg = code, name, msg


def _cmp_ok(v, op, arg):
    try:
        if op == "$gt":
            return v is not None and v > arg
        if op == "$gte":
            return v is not None and v >= arg
        if op == "$lt":
            return v is not None and v < arg
        if op == "$lte":
            return v is not None and v <= arg
    except TypeError:
        return False
    if op == "$ne":
        return v != arg
    if op == "$in":
        return v in arg
    if op == "$exists":
        return (v is not None) == bool(arg)
    raise CommandError(2, "BadValue", "unknown operator: %s" % op)


def matches(doc: dict, flt: dict) -> bool:
    for k, cond in (flt or {}).items():
        v = doc.get(k)
        if isinstance(cond, dict) and cond and all(str(x).startswith("$") for x in cond):
            if not all(_cmp_ok(v, op, arg) for op, arg in cond.items()):
                return False
        elif v != cond:
            return False
    return True


def apply_update(doc: dict, upd: dict) -> dict:
    if upd and all(k.startswith("$") for k in upd):
        for op, fields in upd.items():
            for k, x in fields.items():
                if op == "$set":
                    doc[k] = x
                elif op == "$inc":
                    doc[k] = doc.get(k, 0) + x
                elif op == "$unset":
                    doc.pop(k, None)
                else:
                    raise CommandError(9, "FailedToParse", "Unknown modifier: %s. Expected a valid update modifier"
                                       " or pipeline-style update specified as an array" % op)
        return doc
    new = {"_id": doc["_id"]}
    new.update({k: x for k, x in upd.items() if k != "_id"})
    return new


class Store:
    def __init__(self) -> None:
        self.dbs: dict[str, dict[str, list[dict]]] = {}
        self.cursors: dict[int, tuple[str, list]] = {}
        self.next_cursor = itertools.count(7_000_000_000_001)
        self.lock = threading.Lock()

    def coll(self, db: str, name: str, create: bool = True) -> list | None:
        colls = self.dbs.setdefault(db, {})
        if name not in colls:
            if not create:
                return None
            colls[name] = []
        return colls[name]

    def cursor(self, ns: str, docs: list, first: int) -> tuple[list, int]:
        batch, rest = docs[:first], docs[first:]
        if not rest:
            return batch, 0
        cid = next(self.next_cursor)
        self.cursors[cid] = (ns, rest)
        return batch, cid

    def more(self, cid: int, n: int) -> tuple[str, list, int]:
        if cid not in self.cursors:
            raise CommandError(43, "CursorNotFound", "cursor id %d not found" % cid)
        ns, rest = self.cursors.pop(cid)
        n = n if n > 0 else len(rest)
        batch, rest = rest[:n], rest[n:]
        if rest:
            self.cursors[cid] = (ns, rest)
            return ns, batch, cid
        return ns, batch, 0


class Connection:
    def __init__(self, srv: "Responder", sock: socket.socket, conn_id: int) -> None:
        self.srv, self.sock, self.conn_id = srv, sock, conn_id
        self.compressor = 0          # chosen at handshake; 0 = none
        self.req_ids = itertools.count(conn_id * 1_000_000 + 1)

    # --------------------------------------------------------------- framing
    def read_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return bytes(out)

    def send(self, opcode: int, response_to: int, body: bytes, compress: bool, flags_note=None) -> int:
        rid = next(self.req_ids)
        if compress and self.compressor:
            cid = self.compressor
            if cid == 1:
                data = bytes(cramjam.snappy.compress_raw(body))
            elif cid == 2:
                data = zlib.compress(body)
            else:
                data = zstandard.ZstdCompressor().compress(body)
            body = struct.pack("<iiB", opcode, len(body), cid) + data
            opcode = OP_COMPRESSED
        self.sock.sendall(HEADER.pack(16 + len(body), rid, response_to, opcode) + body)
        return rid

    def reply_msg(self, response_to: int, doc, compress: bool, flags: int = 0) -> int:
        return self.send(OP_MSG, response_to, struct.pack("<I", flags) + b"\0" + bson.encode(doc), compress)

    def reply_legacy(self, response_to: int, docs: list, cursor_id: int = 0, start: int = 0,
                     flags: int = 0) -> int:
        body = struct.pack("<iqii", flags, cursor_id, start, len(docs)) + b"".join(bson.encode(d) for d in docs)
        return self.send(OP_REPLY, response_to, body, False)

    # --------------------------------------------------------------- loop
    def serve(self) -> None:
        try:
            while True:
                head = self.read_exact(16)
                length, rid, _rto, opcode = HEADER.unpack(head)
                body = self.read_exact(length - 16)
                compressed = False
                if opcode == OP_COMPRESSED:
                    opcode, size, cid = struct.unpack_from("<iiB", body)
                    data = body[9:]
                    if cid == 1:
                        body = bytes(cramjam.snappy.decompress_raw(data))
                    elif cid == 2:
                        body = zlib.decompress(data)
                    elif cid == 3:
                        body = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
                    else:
                        body = data
                    compressed = True
                self.handle(opcode, rid, body, compressed)
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            self.sock.close()

    def handle(self, opcode: int, rid: int, body: bytes, compressed: bool) -> None:
        store = self.srv.store
        if opcode == OP_MSG:
            flags = struct.unpack_from("<I", body)[0]
            end = len(body) - (4 if flags & 1 else 0)
            off, cmd = 4, None
            seqs = {}
            while off < end:
                kind = body[off]
                off += 1
                if kind == 0:
                    n = struct.unpack_from("<i", body, off)[0]
                    cmd = bson.decode(body[off:off + n], bson.CodecOptions(document_class=SON))
                    off += n
                else:
                    size = struct.unpack_from("<i", body, off)[0]
                    z = body.index(b"\0", off + 4)
                    ident = body[off + 4:z].decode()
                    docs, p = [], z + 1
                    while p < off + size:
                        n = struct.unpack_from("<i", body, p)[0]
                        docs.append(bson.decode(body[p:p + n], bson.CodecOptions(document_class=SON)))
                        p += n
                    seqs[ident] = docs
                    off += size
            for k, v in seqs.items():
                cmd[k] = v
            name = next(iter(cmd))
            with store.lock:
                reply = self.command(cmd)
            if flags & MORE_TO_COME:
                return
            compress = compressed and name.lower() not in NOT_COMPRESSED
            if flags & EXHAUST_ALLOWED and name == "getMore" and reply.get("ok") == 1:
                # exhaust: keep sending batches, each a reply to the previous one
                to = rid
                while reply["cursor"]["id"]:
                    to = self.reply_msg(to, reply, compress, MORE_TO_COME)
                    with store.lock:
                        reply = self.command(cmd)
                self.reply_msg(to, reply, compress)
                return
            self.reply_msg(rid, reply, compress)
        elif opcode == OP_QUERY:
            flags = struct.unpack_from("<i", body)[0]
            z = body.index(b"\0", 4)
            ns = body[4:z].decode()
            skip, ret = struct.unpack_from("<ii", body, z + 1)
            n = struct.unpack_from("<i", body, z + 9)[0]
            query = bson.decode(body[z + 9:z + 9 + n], bson.CodecOptions(document_class=SON))
            db, _, coll = ns.partition(".")
            with store.lock:
                if coll == "$cmd":
                    if "$query" in query:
                        query = query["$query"]
                    query.setdefault("$db", db)
                    self.reply_legacy(rid, [self.command(query)])
                    return
                docs = [d for d in store.coll(db, coll) if matches(d, query.get("$query", query))][skip:]
                first = abs(ret) if ret else 101
                batch, cid = store.cursor(ns, docs, first)
                if ret < 0:
                    cid = 0
                self.reply_legacy(rid, batch, cid)
        elif opcode == OP_GET_MORE:
            z = body.index(b"\0", 4)
            ret, cid = struct.unpack_from("<iq", body, z + 1)
            with store.lock:
                try:
                    _ns, batch, cid = store.more(cid, ret)
                    self.reply_legacy(rid, batch, cid)
                except CommandError:
                    self.reply_legacy(rid, [], 0, flags=1)     # CursorNotFound
        elif opcode in (OP_INSERT, OP_UPDATE, OP_DELETE):
            with store.lock:
                self.legacy_write(opcode, body)
        elif opcode == OP_KILL_CURSORS:
            n = struct.unpack_from("<i", body, 4)[0]
            with store.lock:
                for (cid,) in struct.iter_unpack("<q", body[8:8 + 8 * n]):
                    store.cursors.pop(cid, None)

    def legacy_write(self, opcode: int, body: bytes) -> None:
        store = self.srv.store
        if opcode == OP_INSERT:
            z = body.index(b"\0", 4)
            db, _, coll = body[4:z].decode().partition(".")
            docs = bson.decode_all(body[z + 1:])
            target = store.coll(db, coll)
            for d in docs:
                d.setdefault("_id", ObjectId())
                if not any(x["_id"] == d["_id"] for x in target):
                    target.append(d)
            return
        z = body.index(b"\0", 4)
        db, _, coll = body[4:z].decode().partition(".")
        flags = struct.unpack_from("<i", body, z + 1)[0]
        docs = bson.decode_all(body[z + 5:])
        target = store.coll(db, coll)
        if opcode == OP_UPDATE:
            sel, upd = docs
            for i, d in enumerate(target):
                if matches(d, sel):
                    target[i] = apply_update(d, upd)
                    if not flags & 2:
                        break
        else:
            sel = docs[0]
            keep = []
            removed = False
            for d in target:
                if matches(d, sel) and not (removed and flags & 1):
                    removed = True
                    continue
                keep.append(d)
            target[:] = keep

    # --------------------------------------------------------------- commands
    def command(self, cmd) -> dict:
        name = next(iter(cmd))
        try:
            fn = getattr(self, "cmd_" + name.lower(), None)
            if fn is None:
                raise CommandError(59, "CommandNotFound", "no such command: '%s'" % name)
            reply = fn(cmd, cmd.get("$db", "admin"))
            reply["ok"] = 1.0
            return reply
        except CommandError as e:
            return SON([("ok", 0.0), ("errmsg", e.msg), ("code", e.code), ("codeName", e.name)])

    def cmd_hello(self, cmd, db):
        r = SON([("helloOk", True), ("isWritablePrimary", True),
                 ("maxBsonObjectSize", 16777216), ("maxMessageSizeBytes", 48000000),
                 ("maxWriteBatchSize", 100000),
                 ("localTime", datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)),
                 ("logicalSessionTimeoutMinutes", 30), ("connectionId", self.conn_id),
                 ("minWireVersion", 0), ("maxWireVersion", 21), ("readOnly", False)])
        if "ismaster" in (k.lower() for k in cmd):
            r["ismaster"] = True
            del r["isWritablePrimary"]
        wanted = [c for c in cmd.get("compression", []) if c in COMPRESSORS]
        if wanted:
            self.compressor = COMPRESSORS[wanted[0]]
            r["compression"] = [wanted[0]]
        return r

    cmd_ismaster = cmd_hello

    def cmd_ping(self, cmd, db):
        return SON()

    def cmd_endsessions(self, cmd, db):
        return SON()

    def cmd_buildinfo(self, cmd, db):
        return SON([("version", "7.0.0-responder"), ("versionArray", [7, 0, 0, 0]), ("bits", 64),
                    ("maxBsonObjectSize", 16777216)])

    def cmd_listcollections(self, cmd, db):
        names = sorted(self.srv.store.dbs.get(db, {}))
        batch = [SON([("name", n), ("type", "collection"), ("options", SON()),
                      ("info", SON([("readOnly", False)]))]) for n in names]
        return SON([("cursor", SON([("id", bson.Int64(0)), ("ns", db + ".$cmd.listCollections"),
                                    ("firstBatch", batch)]))])

    def cmd_create(self, cmd, db):
        name = cmd["create"]
        if self.srv.store.coll(db, name, create=False) is not None:
            raise CommandError(48, "NamespaceExists", "Collection %s.%s already exists." % (db, name))
        self.srv.store.coll(db, name)
        return SON()

    def cmd_drop(self, cmd, db):
        colls = self.srv.store.dbs.get(db, {})
        name = cmd["drop"]
        colls.pop(name, None)
        return SON([("nIndexesWas", 1), ("ns", "%s.%s" % (db, name))])

    def cmd_insert(self, cmd, db):
        target = self.srv.store.coll(db, cmd["insert"])
        n, errors = 0, []
        for i, d in enumerate(cmd.get("documents", [])):
            d.setdefault("_id", ObjectId())
            if any(x["_id"] == d["_id"] for x in target):
                errors.append(SON([("index", i), ("code", 11000), (
                    "errmsg", "E11000 duplicate key error collection: %s.%s index: _id_ dup key: { _id: %r }"
                    % (db, cmd["insert"], d["_id"]))]))
                if cmd.get("ordered", True):
                    break
                continue
            target.append(d)
            n += 1
        r = SON([("n", n)])
        if errors:
            r["writeErrors"] = errors
        return r

    def cmd_update(self, cmd, db):
        target = self.srv.store.coll(db, cmd["update"])
        n = modified = 0
        upserted = []
        for i, u in enumerate(cmd.get("updates", [])):
            hit = False
            for j, d in enumerate(target):
                if matches(d, u.get("q", {})):
                    new = apply_update(dict(d), u.get("u", {}))
                    n += 1
                    hit = True
                    if new != d:
                        target[j] = new
                        modified += 1
                    if not u.get("multi"):
                        break
            if not hit and u.get("upsert"):
                new = apply_update(dict(u.get("q", {}), _id=ObjectId()), u.get("u", {}))
                target.append(new)
                upserted.append(SON([("index", i), ("_id", new["_id"])]))
                n += 1
        r = SON([("n", n), ("nModified", modified)])
        if upserted:
            r["upserted"] = upserted
        return r

    def cmd_delete(self, cmd, db):
        target = self.srv.store.coll(db, cmd["delete"])
        n = 0
        for d in cmd.get("deletes", []):
            keep, removed = [], 0
            for x in target:
                if matches(x, d.get("q", {})) and not (d.get("limit") == 1 and removed):
                    removed += 1
                    continue
                keep.append(x)
            target[:] = keep
            n += removed
        return SON([("n", n)])

    def _cursor_reply(self, ns: str, docs: list, first: int, key: str = "firstBatch"):
        batch, cid = self.srv.store.cursor(ns, docs, first)
        return SON([("cursor", SON([(key, batch), ("id", bson.Int64(cid)), ("ns", ns)]))])

    def cmd_find(self, cmd, db):
        name = cmd["find"]
        docs = [d for d in self.srv.store.coll(db, name) if matches(d, cmd.get("filter", {}))]
        if cmd.get("sort"):
            for k, direction in reversed(list(cmd["sort"].items())):
                docs.sort(key=lambda d: (d.get(k) is None, d.get(k)), reverse=direction < 0)
        docs = docs[cmd.get("skip", 0):]
        if cmd.get("limit"):
            docs = docs[:abs(cmd["limit"])]
        first = cmd.get("batchSize", 101)
        return self._cursor_reply("%s.%s" % (db, name), docs, first)

    def cmd_getmore(self, cmd, db):
        ns, batch, cid = self.srv.store.more(int(cmd["getMore"]), cmd.get("batchSize", 0))
        return SON([("cursor", SON([("nextBatch", batch), ("id", bson.Int64(cid)), ("ns", ns)]))])

    def cmd_killcursors(self, cmd, db):
        killed, missing = [], []
        for cid in cmd.get("cursors", []):
            (killed if self.srv.store.cursors.pop(int(cid), None) else missing).append(cid)
        return SON([("cursorsKilled", killed), ("cursorsNotFound", missing), ("cursorsAlive", []),
                    ("cursorsUnknown", [])])

    def cmd_count(self, cmd, db):
        docs = self.srv.store.coll(db, cmd["count"])
        return SON([("n", sum(1 for d in docs if matches(d, cmd.get("query", {}))))])

    def cmd_findandmodify(self, cmd, db):
        target = self.srv.store.coll(db, cmd[next(iter(cmd))])
        for j, d in enumerate(target):
            if matches(d, cmd.get("query", {})):
                new = apply_update(dict(d), cmd.get("update", {}))
                target[j] = new
                return SON([("lastErrorObject", SON([("n", 1), ("updatedExisting", True)])),
                            ("value", new if cmd.get("new") else d)])
        return SON([("lastErrorObject", SON([("n", 0), ("updatedExisting", False)])), ("value", None)])

    def cmd_aggregate(self, cmd, db):
        coll = cmd["aggregate"]
        docs = list(self.srv.store.coll(db, coll)) if isinstance(coll, str) else []
        for stage in cmd.get("pipeline", []):
            op, arg = next(iter(stage.items()))
            if op == "$match":
                docs = [d for d in docs if matches(d, arg)]
            elif op == "$sort":
                for k, direction in reversed(list(arg.items())):
                    docs.sort(key=lambda d: (d.get(k) is None, d.get(k)), reverse=direction < 0)
            elif op == "$skip":
                docs = docs[arg:]
            elif op == "$limit":
                docs = docs[:arg]
            elif op == "$group":
                groups: dict = {}
                for d in docs:
                    key = arg["_id"]
                    if isinstance(key, str) and key.startswith("$"):
                        key = d.get(key[1:])
                    g = groups.setdefault(repr(key), SON([("_id", key)]))
                    for f, acc in arg.items():
                        if f == "_id":
                            continue
                        if set(acc) != {"$sum"}:
                            raise CommandError(15952, "Location15952", "unknown group operator '%s'" % next(iter(acc)))
                        x = acc["$sum"]
                        x = d.get(x[1:], 0) if isinstance(x, str) else x
                        g[f] = g.get(f, 0) + x
                docs = list(groups.values())
            elif op == "$count":
                docs = [SON([(arg, len(docs))])]
            elif op == "$project":
                docs = [SON([(k, d.get(k)) for k in ["_id"] + [f for f, on in arg.items() if on and f != "_id"]
                             if k in d]) for d in docs]
            else:
                raise CommandError(40324, "Location40324", "Unrecognized pipeline stage name: '%s'" % op)
        ns = "%s.%s" % (db, coll if isinstance(coll, str) else "$cmd.aggregate")
        return self._cursor_reply(ns, docs, cmd.get("cursor", {}).get("batchSize", 101))


class Responder:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.store = Store()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(64)
        self.ids = itertools.count(1)
        self.threads: list[threading.Thread] = []

    def start(self) -> "Responder":
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Connection(self, sock, next(self.ids))
            t = threading.Thread(target=c.serve, daemon=True)
            t.start()
            self.threads.append(t)

    def close(self) -> None:
        self.lsock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=27117)
    args = ap.parse_args()
    r = Responder(args.port).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        r.close()


if __name__ == "__main__":
    main()
