"""A small wire-level CQL native protocol *responder* for the capture generator.

No Cassandra server can be installed here (not in Debian; a tarball would need
the internet). This responder speaks the protocol as Apache Cassandra 4.1 does,
enough to serve the DataStax Python driver: OPTIONS/SUPPORTED, STARTUP/READY or
AUTHENTICATE + AUTH_RESPONSE/AUTH_SUCCESS (PasswordAuthenticator), REGISTER and
pushed EVENTs, QUERY, PREPARE/EXECUTE, BATCH, frame compression (lz4, snappy)
for v3/v4 and v5 segments (CRC24/CRC32, lz4, multi-segment envelopes). Its
"database" is a dict of keyspaces and tables parsed from a few CQL statement
shapes; the system.local/system.peers rows are those of a one-node cluster.
Error responses follow Cassandra's codes and messages (syntax error, invalid
request, unavailable, already exists, unprepared, bad credentials).

It is a test fixture: it runs on loopback only and answers one request at a
time per connection, in order.
"""
from __future__ import annotations

import hashlib
import io
import re
import socket
import struct
import threading
import uuid
import zlib

import lz4.block
import snappy

HOST_ID = uuid.UUID("6f1c0a52-3a0e-4a2b-9d6e-2b6f35a0c001")
SCHEMA_VERSION = uuid.UUID("59adb24e-f3cd-3e02-97f0-5b395827453f")

# type ids
T_BIGINT, T_BLOB, T_BOOLEAN, T_INT, T_UUID, T_VARCHAR, T_INET = 0x02, 0x03, 0x04, 0x09, 0x0C, 0x0D, 0x10
T_LIST, T_MAP, T_SET = 0x20, 0x21, 0x22
TYPE_BY_NAME = {"text": T_VARCHAR, "varchar": T_VARCHAR, "int": T_INT, "bigint": T_BIGINT,
                "uuid": T_UUID, "boolean": T_BOOLEAN, "blob": T_BLOB, "inet": T_INET,
                "set<text>": (T_SET, T_VARCHAR)}
CONSISTENCY = {0: "ANY", 1: "ONE", 2: "TWO", 3: "THREE", 4: "QUORUM", 5: "ALL", 6: "LOCAL_QUORUM",
               7: "EACH_QUORUM", 8: "SERIAL", 9: "LOCAL_SERIAL", 10: "LOCAL_ONE"}

LOCAL_COLS = [("key", T_VARCHAR), ("bootstrapped", T_VARCHAR), ("broadcast_address", T_INET),
              ("cluster_name", T_VARCHAR), ("cql_version", T_VARCHAR), ("data_center", T_VARCHAR),
              ("host_id", T_UUID), ("listen_address", T_INET), ("native_protocol_version", T_VARCHAR),
              ("partitioner", T_VARCHAR), ("rack", T_VARCHAR), ("release_version", T_VARCHAR),
              ("rpc_address", T_INET), ("schema_version", T_UUID), ("tokens", (T_SET, T_VARCHAR))]
PEERS_COLS = [("peer", T_INET), ("data_center", T_VARCHAR), ("host_id", T_UUID), ("preferred_ip", T_INET),
              ("rack", T_VARCHAR), ("release_version", T_VARCHAR), ("rpc_address", T_INET),
              ("schema_version", T_UUID), ("tokens", (T_SET, T_VARCHAR))]


class CqlError(Exception):
    def __init__(self, code: int, msg: str, extra: bytes = b""):
        super().__init__(msg)
        self.code, self.msg, self.extra = code, msg, extra


# --- encoding ---------------------------------------------------------------
def s_(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def ls_(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def bytes_(b: bytes | None) -> bytes:
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def opt(t) -> bytes:
    if isinstance(t, tuple):
        return struct.pack(">H", t[0]) + b"".join(opt(x) for x in t[1:])
    return struct.pack(">H", t)


def encode_value(t, v) -> bytes | None:
    if v is None:
        return None
    if isinstance(t, tuple):
        items = sorted(v) if t[0] == T_SET else list(v)
        return struct.pack(">i", len(items)) + b"".join(bytes_(encode_value(t[1], x)) for x in items)
    if t == T_VARCHAR:
        return v.encode()
    if t == T_INT:
        return struct.pack(">i", v)
    if t == T_BIGINT:
        return struct.pack(">q", v)
    if t == T_UUID:
        return v.bytes
    if t == T_BOOLEAN:
        return b"\x01" if v else b"\x00"
    if t == T_BLOB:
        return v
    if t == T_INET:
        return socket.inet_aton(v)
    raise ValueError(t)


def decode_value(t, b: bytes | None):
    if b is None:
        return None
    if isinstance(t, tuple):
        n = struct.unpack_from(">i", b, 0)[0]
        p, out = 4, []
        for _ in range(n):
            ln = struct.unpack_from(">i", b, p)[0]
            out.append(decode_value(t[1], b[p + 4:p + 4 + ln]))
            p += 4 + ln
        return set(out) if t[0] == T_SET else out
    if t == T_VARCHAR:
        return b.decode()
    if t == T_INT:
        return struct.unpack(">i", b)[0]
    if t == T_BIGINT:
        return struct.unpack(">q", b)[0]
    if t == T_UUID:
        return uuid.UUID(bytes=b)
    if t == T_BOOLEAN:
        return b != b"\x00"
    return b


class R:
    """Reader of a request body."""

    def __init__(self, b: bytes):
        self.b, self.p = b, 0

    def take(self, n):
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def byte(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        return self.take(self.short()).decode()

    def long_string(self):
        return self.take(self.int()).decode()

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def short_bytes(self):
        return self.take(self.short())

    def string_map(self):
        return {self.string(): self.string() for _ in range(self.short())}

    def string_list(self):
        return [self.string() for _ in range(self.short())]


def query_params(r: R, version: int) -> dict:
    p = {"consistency": r.short()}
    flags = r.int() if version >= 5 else r.byte()
    values = []
    if flags & 0x01:
        for _ in range(r.short()):
            if flags & 0x40:
                r.string()
            values.append(r.bytes())
    p["values"] = values
    if flags & 0x04:
        p["page_size"] = r.int()
    if flags & 0x08:
        p["paging_state"] = r.bytes()
    if flags & 0x10:
        r.short()
    if flags & 0x20:
        r.take(8)
    if version >= 5 and flags & 0x80:
        p["keyspace"] = r.string()
    p["skip_metadata"] = bool(flags & 0x02)
    return p


# --- segments (v5) -------------------------------------------------------------
def crc24(value: int, length: int) -> int:
    crc = 0x875060
    for _ in range(length):
        crc ^= (value & 0xFF) << 16
        value >>= 8
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc


CRC32_INIT = zlib.crc32(b"\xfa\x2d\x55\xca")
MAX_SEG = 128 * 1024 - 1


def encode_segments(msg: bytes, lz4c: bool) -> bytes:
    out = io.BytesIO()
    parts = [msg[i:i + MAX_SEG] for i in range(0, len(msg), MAX_SEG)] or [b""]
    contained = len(parts) == 1
    for part in parts:
        ulen = len(part)
        payload = part
        if lz4c:
            comp = lz4.block.compress(part, store_size=False)
            if len(comp) < ulen:
                payload = comp
            else:
                ulen = 0
            word = len(payload) | (ulen << 17) | ((1 << 34) if contained else 0)
            hl = 5
        else:
            word = len(payload) | ((1 << 17) if contained else 0)
            hl = 3
        out.write(word.to_bytes(hl, "little"))
        out.write(crc24(word, hl).to_bytes(3, "little"))
        out.write(payload)
        out.write((zlib.crc32(payload, CRC32_INIT) & 0xFFFFFFFF).to_bytes(4, "little"))
    return out.getvalue()


# --- the "database" ------------------------------------------------------------
class Table:
    def __init__(self, ks, name, cols, pk):
        self.ks, self.name, self.cols, self.pk = ks, name, cols, pk
        self.rows: dict = {}

    def col_type(self, c):
        for n, t in self.cols:
            if n == c:
                return t
        raise CqlError(0x2200, "Undefined column name %s" % c)


class Db:
    def __init__(self):
        self.keyspaces: set[str] = {"system", "system_schema", "system_auth", "system_traces"}
        self.tables: dict[tuple[str, str], Table] = {}
        self.prepared: dict[bytes, tuple] = {}
        self.lock = threading.Lock()


class Conn:
    def __init__(self, server, sock):
        self.server, self.sock = server, sock
        self.version = 4
        self.compression = ""
        self.segments = False
        self.keyspace = None
        self.registered = False
        self.authenticated = not server.auth
        self.wlock = threading.Lock()
        self.inbuf = b""

    # I/O
    def recv_exact(self, n: int) -> bytes:
        while len(self.inbuf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.inbuf += chunk
        b, self.inbuf = self.inbuf[:n], self.inbuf[n:]
        return b

    def read_frame(self):
        if self.segments:
            return self._read_enveloped()
        hdr = self.recv_exact(9)
        v, flags, stream, op, ln = struct.unpack(">BBhBi", hdr)
        body = self.recv_exact(ln)
        if flags & 0x01:
            body = self._decompress(body)
        return v & 0x7F, flags, stream, op, body

    def _read_enveloped(self):
        env = b""
        while True:
            hl = 5 if self.compression == "lz4" else 3
            word = int.from_bytes(self.recv_exact(hl), "little")
            crc = int.from_bytes(self.recv_exact(3), "little")
            assert crc == crc24(word, hl), "segment header CRC"
            plen = word & MAX_SEG
            ulen = (word >> 17) & MAX_SEG if hl == 5 else 0
            payload = self.recv_exact(plen)
            c32 = int.from_bytes(self.recv_exact(4), "little")
            assert c32 == zlib.crc32(payload, CRC32_INIT) & 0xFFFFFFFF, "segment payload CRC"
            if ulen:
                payload = lz4.block.decompress(payload, uncompressed_size=ulen)
            env += payload
            if len(env) >= 9:
                v, flags, stream, op, ln = struct.unpack_from(">BBhBi", env)
                if len(env) >= 9 + ln:
                    assert len(env) == 9 + ln, "one envelope per request segment run"
                    return v & 0x7F, flags, stream, op, env[9:]

    def _decompress(self, body: bytes) -> bytes:
        if self.compression == "lz4":
            n = struct.unpack_from(">i", body)[0]
            return lz4.block.decompress(body[4:], uncompressed_size=n)
        return snappy.decompress(body)

    def send(self, stream: int, op: int, body: bytes, flags: int = 0) -> None:
        if self.compression and self.version < 5:
            if self.compression == "lz4":
                body = struct.pack(">i", len(body)) + lz4.block.compress(body, store_size=False)
            else:
                body = snappy.compress(body)
            flags |= 0x01
        frame = struct.pack(">BBhBi", 0x80 | self.version, flags, stream, op, len(body)) + body
        if self.segments:
            frame = encode_segments(frame, self.compression == "lz4")
        with self.wlock:
            self.sock.sendall(frame)

    # protocol
    def serve(self):
        try:
            while True:
                v, flags, stream, op, body = self.read_frame()
                self.version = v
                self.handle(flags, stream, op, body)
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            self.server.forget(self)
            try:
                self.sock.close()
            except OSError:
                pass

    def handle(self, flags, stream, op, body):
        r = R(body)
        if flags & 0x04:                       # custom payload
            for _ in range(r.short()):
                r.string()
                r.bytes()
        try:
            if op == 0x05:                     # OPTIONS
                m = {"CQL_VERSION": ["3.4.6"], "COMPRESSION": ["snappy", "lz4"],
                     "PROTOCOL_VERSIONS": ["3/v3", "4/v4", "5/v5"]}
                out = struct.pack(">H", len(m)) + b"".join(
                    s_(k) + struct.pack(">H", len(vs)) + b"".join(s_(x) for x in vs) for k, vs in m.items())
                return self.send(stream, 0x06, out)
            if op == 0x01:                     # STARTUP
                opts = r.string_map()
                self.compression = opts.get("COMPRESSION", "").lower()
                if self.server.auth:
                    self.send(stream, 0x03, s_("org.apache.cassandra.auth.PasswordAuthenticator"))
                else:
                    self.send(stream, 0x02, b"")
                if self.version >= 5:
                    self.segments = True
                return
            if op == 0x0F:                     # AUTH_RESPONSE
                token = r.bytes() or b""
                parts = token.split(b"\x00")
                if len(parts) == 3 and parts[1] == b"cassandra" and parts[2] == b"cassandra":
                    self.authenticated = True
                    return self.send(stream, 0x10, bytes_(None))
                raise CqlError(0x0100, "Provided username %s and/or password are incorrect"
                               % parts[1].decode(errors="replace") if len(parts) > 1 else "?")
            if not self.authenticated:
                raise CqlError(0x000A, "Unexpected message, client not authenticated")
            if op == 0x0B:                     # REGISTER
                r.string_list()
                self.registered = True
                return self.send(stream, 0x02, b"")
            if op == 0x07:                     # QUERY
                q = r.long_string()
                params = query_params(r, self.version)
                return self.execute(stream, q, params, flags)
            if op == 0x09:                     # PREPARE
                q = r.long_string()
                return self.prepare(stream, q)
            if op == 0x0A:                     # EXECUTE
                qid = r.short_bytes()
                if self.version >= 5:
                    r.short_bytes()
                params = query_params(r, self.version)
                with self.server.db.lock:
                    entry = self.server.db.prepared.get(qid)
                if entry is None:
                    raise CqlError(0x2500, "Prepared query with ID %s not found" % qid.hex(),
                                   struct.pack(">H", len(qid)) + qid)
                return self.execute(stream, entry[0], params, flags, prepared=True)
            if op == 0x0D:                     # BATCH
                return self.batch(stream, r)
            raise CqlError(0x000A, "Unknown opcode %d" % op)
        except CqlError as e:
            self.send(stream, 0x00, struct.pack(">i", e.code) + s_(e.msg) + e.extra)

    # statements
    def _table(self, name: str) -> Table:
        ks, _, t = name.rpartition(".")
        ks = ks or self.keyspace
        if ks is None:
            raise CqlError(0x2200, "No keyspace has been specified. USE a keyspace, or explicitly "
                           "specify keyspace.tablename")
        tab = self.server.db.tables.get((ks, t))
        if tab is None:
            raise CqlError(0x2200, "unconfigured table %s" % t)
        return tab

    def prepare(self, stream, q):
        m = re.match(r"\s*INSERT INTO (\S+) \(([^)]*)\) VALUES \(([^)]*)\)", q, re.I)
        s = re.match(r"\s*SELECT (.+?) FROM (\S+?)(?: WHERE (\w+) = \?)?\s*;?\s*$", q, re.I)
        if m:
            tab = self._table(m.group(1))
            cols = [c.strip() for c in m.group(2).split(",")]
            binds = [(c, tab.col_type(c)) for c, v in zip(cols, m.group(3).split(",")) if v.strip() == "?"]
            result = []
        elif s:
            tab = self._table(s.group(2))
            binds = [(s.group(3), tab.col_type(s.group(3)))] if s.group(3) else []
            result = self._select_cols(tab, s.group(1))
        else:
            raise CqlError(0x2000, "line 1:0 no viable alternative at input '%s'" % q.split()[0])
        qid = hashlib.md5((tab.ks + q).encode()).digest()
        with self.server.db.lock:
            self.server.db.prepared[qid] = (q, binds, result, tab)
        pk_idx = [i for i, (c, _) in enumerate(binds) if c in tab.pk]
        body = struct.pack(">i", 4) + struct.pack(">H", 16) + qid
        if self.version >= 5:
            body += struct.pack(">H", 16) + hashlib.md5(repr(result).encode()).digest()
        body += struct.pack(">ii", 1, len(binds))
        if self.version >= 4:
            body += struct.pack(">i", len(pk_idx)) + b"".join(struct.pack(">H", i) for i in pk_idx)
        body += s_(tab.ks) + s_(tab.name) + b"".join(s_(c) + opt(t) for c, t in binds)
        if result:
            body += struct.pack(">ii", 1, len(result)) + s_(tab.ks) + s_(tab.name) + \
                b"".join(s_(c) + opt(t) for c, t in result)
        else:
            body += struct.pack(">ii", 4, 0)
        self.send(stream, 0x08, body)

    @staticmethod
    def _select_cols(tab: Table, cols: str):
        if cols.strip() == "*":
            return list(tab.cols)
        return [(c.strip(), tab.col_type(c.strip())) for c in cols.split(",")]

    def execute(self, stream, q, params, flags, prepared=False):
        tracing = None
        if flags & 0x02:
            tracing = uuid.uuid1().bytes
        ql = q.strip().rstrip(";").strip()
        low = ql.lower()
        if params["consistency"] in (2, 3) and low.startswith(("insert", "update", "delete")):
            cl = params["consistency"]
            raise CqlError(0x1000, "Cannot achieve consistency level %s" % CONSISTENCY[cl],
                           struct.pack(">Hii", cl, cl, 1))
        m = re.match(r"create keyspace (if not exists )?(\w+)", low)
        if m:
            ks = m.group(2)
            if ks in self.server.db.keyspaces:
                if m.group(1):
                    return self._void(stream, tracing)
                raise CqlError(0x2400, "Keyspace %s already exists" % ks, s_(ks) + s_(""))
            self.server.db.keyspaces.add(ks)
            change = s_("CREATED") + s_("KEYSPACE") + s_(ks)
            self._result(stream, struct.pack(">i", 5) + change, tracing)
            return self.server.push_event(s_("SCHEMA_CHANGE") + change)
        m = re.match(r'use "?(\w+)"?$', low)
        if m:
            if m.group(1) not in self.server.db.keyspaces:
                raise CqlError(0x2200, "Keyspace '%s' does not exist" % m.group(1))
            self.keyspace = m.group(1)
            return self._result(stream, struct.pack(">i", 3) + s_(self.keyspace), tracing)
        m = re.match(r"create table (if not exists )?(\S+) \((.*)\)$", ql, re.I | re.S)
        if m:
            name = m.group(2)
            ks, _, t = name.rpartition(".")
            ks = ks or self.keyspace
            if ks not in self.server.db.keyspaces:
                raise CqlError(0x2200, "Keyspace '%s' does not exist" % ks)
            if (ks, t) in self.server.db.tables:
                if m.group(1):
                    return self._void(stream, tracing)
                raise CqlError(0x2400, "Object '%s.%s' already exists" % (ks, t), s_(ks) + s_(t))
            cols, pk = [], []
            for part in re.split(r",\s*(?![^()]*\))", m.group(3)):
                part = part.strip()
                pm = re.match(r"primary key \((.*)\)", part, re.I)
                if pm:
                    pk = [c.strip() for c in pm.group(1).split(",")]
                    continue
                words = part.split()
                cols.append((words[0], TYPE_BY_NAME[words[1].lower()]))
                if "primary" in part.lower():
                    pk = [words[0]]
            self.server.db.tables[(ks, t)] = Table(ks, t, cols, pk)
            change = s_("CREATED") + s_("TABLE") + s_(ks) + s_(t)
            self._result(stream, struct.pack(">i", 5) + change, tracing)
            return self.server.push_event(s_("SCHEMA_CHANGE") + change)
        m = re.match(r"insert into (\S+) \(([^)]*)\) values \((.*)\)$", ql, re.I | re.S)
        if m:
            tab = self._table(m.group(1))
            cols = [c.strip() for c in m.group(2).split(",")]
            vals = self._values(tab, cols, m.group(3), params["values"])
            row = dict(zip(cols, vals))
            key = tuple(row.get(c) for c in tab.pk)
            tab.rows.setdefault(key, {}).update(row)
            return self._void(stream, tracing)
        m = re.match(r"select (.+?) from (\S+?)(?: where (\w+)\s*=\s*(\S+?))?(?: limit (\d+))?$", ql, re.I | re.S)
        if m:
            return self.select(stream, m, params, tracing, prepared)
        raise CqlError(0x2000, "line 1:0 no viable alternative at input '%s' ([%s]...)"
                       % (ql.split()[0] if ql else "", ql.split()[0] if ql else ""))

    def _values(self, tab, cols, text, bound):
        vals, bi = [], 0
        for c, v in zip(cols, re.split(r",\s*(?![^{]*\})", text)):
            v = v.strip()
            t = tab.col_type(c)
            if v == "?":
                vals.append(decode_value(t, bound[bi]))
                bi += 1
            elif v.startswith("'"):
                vals.append(v[1:-1].replace("''", "'"))
            elif v.startswith("{"):
                vals.append({x.strip().strip("'") for x in v[1:-1].split(",") if x.strip()})
            elif t == T_UUID:
                vals.append(uuid.UUID(v))
            elif v.lower() in ("true", "false"):
                vals.append(v.lower() == "true")
            else:
                vals.append(int(v))
        return vals

    def select(self, stream, m, params, tracing, prepared):
        cols_text, name = m.group(1), m.group(2)
        warnings = []
        if name.lower() in ("system.local", "system.peers", "system.peers_v2"):
            if name.lower() == "system.peers_v2":
                raise CqlError(0x2200, "unconfigured table peers_v2")
            local = name.lower() == "system.local"
            allcols = LOCAL_COLS if local else PEERS_COLS
            ks, tname = "system", name.split(".")[1].lower()
            rows = [{"key": "local", "bootstrapped": "COMPLETED", "broadcast_address": "127.0.0.1",
                     "cluster_name": "Test Cluster", "cql_version": "3.4.6", "data_center": "datacenter1",
                     "host_id": HOST_ID, "listen_address": "127.0.0.1",
                     "native_protocol_version": "5", "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
                     "rack": "rack1", "release_version": "4.1.5", "rpc_address": "127.0.0.1",
                     "schema_version": SCHEMA_VERSION, "tokens": {"-9223372036854775808"}}] if local else []
            sel = allcols if cols_text.strip() == "*" else [
                (c.strip(), dict(allcols)[c.strip()]) for c in cols_text.split(",")]
        else:
            tab = self._table(name)
            ks, tname = tab.ks, tab.name
            rows = [r for _, r in sorted(tab.rows.items(), key=lambda kv: repr(kv[0]))]
            if m.group(3):
                col, val = m.group(3), m.group(4)
                t = tab.col_type(col)
                want = decode_value(t, params["values"][0]) if val == "?" else (
                    val.strip("'") if val.startswith("'") else int(val))
                rows = [r for r in rows if r.get(col) == want]
            if re.match(r"count\(\*\)", cols_text.strip(), re.I):
                if not m.group(3):
                    warnings.append("Aggregation query used without partition key")
                sel = [("count", T_BIGINT)]
                rows = [{"count": len(rows)}]
            else:
                sel = self._select_cols(tab, cols_text)
            if m.group(5):
                rows = rows[:int(m.group(5))]
        start = int(params.get("paging_state") or b"0") if params.get("paging_state") else 0
        size = params.get("page_size") or 5000
        page = rows[start:start + size]
        more = start + size < len(rows)
        flags = 0
        meta = b""
        if more:
            flags |= 0x02
            meta += bytes_(str(start + size).encode())
        if prepared and params.get("skip_metadata"):
            flags |= 0x04
        else:
            flags |= 0x01
            meta += s_(ks) + s_(tname) + b"".join(s_(c) + opt(t) for c, t in sel)
        body = struct.pack(">iii", 2, flags, len(sel)) + meta + struct.pack(">i", len(page))
        for row in page:
            body += b"".join(bytes_(encode_value(t, row.get(c))) for c, t in sel)
        self._result(stream, body, tracing, warnings)

    def batch(self, stream, r: R):
        r.byte()
        n = r.short()
        for _ in range(n):
            kind = r.byte()
            if kind == 0:
                q = r.long_string()
            else:
                qid = r.short_bytes()
                entry = self.server.db.prepared.get(qid)
                if entry is None:
                    raise CqlError(0x2500, "Prepared query with ID %s not found" % qid.hex(),
                                   struct.pack(">H", len(qid)) + qid)
                q = entry[0]
            values = [r.bytes() for _ in range(r.short())]
            m = re.match(r"insert into (\S+) \(([^)]*)\) values \((.*)\)$", q.strip().rstrip(";"), re.I | re.S)
            if m is None:
                raise CqlError(0x2200, "Invalid statement in batch: only modification statements allowed")
            tab = self._table(m.group(1))
            cols = [c.strip() for c in m.group(2).split(",")]
            row = dict(zip(cols, self._values(tab, cols, m.group(3), values)))
            tab.rows.setdefault(tuple(row.get(c) for c in tab.pk), {}).update(row)
        self._void(stream, None)

    def _void(self, stream, tracing):
        self._result(stream, struct.pack(">i", 1), tracing)

    def _result(self, stream, body, tracing, warnings=()):
        flags = 0
        prefix = b""
        if tracing:
            flags |= 0x02
            prefix += tracing
        if warnings:
            flags |= 0x08
            prefix += struct.pack(">H", len(warnings)) + b"".join(s_(w) for w in warnings)
        self.send(stream, 0x08, prefix + body, flags)


class Responder:
    """Listens on 127.0.0.1:``port``; ``auth``: PasswordAuthenticator
    (cassandra/cassandra)."""

    def __init__(self, port: int, auth: bool = False, db: Db | None = None):
        self.port, self.auth = port, auth
        self.db = db or Db()
        self.conns: list[Conn] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Conn(self, s)
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=c.serve, daemon=True).start()

    def forget(self, c):
        with self.lock:
            if c in self.conns:
                self.conns.remove(c)

    def push_event(self, body: bytes):
        with self.lock:
            targets = [c for c in self.conns if c.registered]
        for c in targets:
            try:
                c.send(-1, 0x0C, body)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
