"""CQL traffic of the DataStax Python driver on loopback, captured with tcpdump.

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/cassandra_real.py [--out DIR] [--port 19042]

No Cassandra server is available here (not in Debian; its tarball needs the
internet), so the server side is ``cql_responder.py``: a wire-level CQL
*responder* that answers as a one-node Cassandra 4.1 would (see its
docstring). The client side is the real driver (``cassandra-driver``), in five
sessions:

1. protocol v4, lz4 frame compression: the connect sequence (OPTIONS,
   STARTUP, REGISTER, system.local / system.peers_v2 (refused) /
   system.peers), CREATE KEYSPACE and TABLE (schema changes, with EVENTs pushed
   to the control connection), USE, INSERTs, a paged SELECT, PREPARE/EXECUTE
   (rows without metadata), a BATCH, a traced query, an aggregate with a
   warning, errors (syntax, invalid, unavailable, already exists);
2. protocol v4, snappy compression: a few queries;
3. protocol v5, lz4-compressed segments, including a request and a response
   envelope larger than a segment (multi-segment);
4. protocol v5, uncompressed segments;
5. protocol v3 with PasswordAuthenticator (AUTHENTICATE, AUTH_RESPONSE,
   AUTH_SUCCESS) on the second port, and a refused login (bad credentials).

The truth file is written from the client side: every request the driver
sent (connection port, stream id, opcode, the frame's flags and body length,
the query) and what the driver decoded of the response (opcode, flags, body
length, result kind, rows, keyspace/table, schema change, error code and
message, warnings); pushed events the driver received are listed apart. The
script refuses to write the files unless tcpdump reported no drops.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cassandra  # noqa: E402
from cassandra import ConsistencyLevel  # noqa: E402
from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster, NoHostAvailable  # noqa: E402
from cassandra.connection import Connection  # noqa: E402
from cassandra.policies import RoundRobinPolicy  # noqa: E402
from cassandra.query import BatchStatement, SimpleStatement  # noqa: E402

from cql_responder import Db, Responder  # noqa: E402
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump  # noqa: E402

MAX_PCAP_BYTES = 600_000
OPS = {0x00: "ERROR", 0x01: "STARTUP", 0x02: "READY", 0x03: "AUTHENTICATE", 0x05: "OPTIONS",
       0x06: "SUPPORTED", 0x07: "QUERY", 0x08: "RESULT", 0x09: "PREPARE", 0x0A: "EXECUTE",
       0x0B: "REGISTER", 0x0C: "EVENT", 0x0D: "BATCH", 0x0E: "AUTH_CHALLENGE", 0x0F: "AUTH_RESPONSE",
       0x10: "AUTH_SUCCESS"}
KINDS = {1: "void", 2: "rows", 3: "set_keyspace", 4: "prepared", 5: "schemaChanged"}


class Recorder:
    """Wraps the driver's Connection.send_msg / handle_pushed: what each
    connection sent and what it decoded back."""

    def __init__(self):
        self.txns: list[dict] = []
        self.events: list[dict] = []
        self.session = ""

    def install(self):
        rec = self
        orig_send = Connection.send_msg
        orig_pushed = Connection.handle_pushed

        def send_msg(conn, msg, request_id, cb, encoder=None, decoder=None, result_metadata=None):
            port = conn._socket.getsockname()[1]
            entry = {"session": rec.session, "port": port, "stream": request_id,
                     "version": conn.protocol_version, "op": OPS[msg.opcode]}
            query = getattr(msg, "query", None)
            if msg.opcode == 0x07:
                entry["query"] = query
            elif msg.opcode == 0x09:
                entry["prepare"] = query
            rec.txns.append(entry)

            def enc(m, stream_id, protocol_version, **kw):
                frame = encoder(m, stream_id, protocol_version, **kw)
                entry["flags"] = frame[1]
                entry["length"] = int.from_bytes(frame[5:9], "big")
                return frame

            def dec(version, utm, stream_id, flags, opcode, body, decompressor, result_md, *a, **kw):
                resp = decoder(version, utm, stream_id, flags, opcode, body, decompressor, result_md, *a, **kw)
                entry["response"] = describe(resp, flags, opcode, len(body), stream_id)
                return resp

            kwargs = {}
            if result_metadata is not None:
                kwargs["result_metadata"] = result_metadata
            from cassandra.protocol import ProtocolHandler
            encoder = encoder or ProtocolHandler.encode_message
            decoder = decoder or ProtocolHandler.decode_message
            return orig_send(conn, msg, request_id, cb, encoder=enc, decoder=dec, **kwargs)

        def handle_pushed(conn, response):
            rec.events.append({"session": rec.session, "port": conn._socket.getsockname()[1],
                               "type": response.event_type, "args": _jsonable(response.event_args)})
            return orig_pushed(conn, response)

        Connection.send_msg = send_msg
        Connection.handle_pushed = handle_pushed


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def describe(resp, flags: int, opcode: int, length: int, stream: int) -> dict:
    d = {"op": OPS[opcode], "flags": flags, "length": length, "stream": stream}
    if opcode == 0x08:
        kind = KINDS[resp.kind]
        d["kind"] = kind
        if kind == "rows":
            d["num_rows"] = len(resp.parsed_rows)
            if resp.column_metadata:
                d["keyspace"], d["table"] = resp.column_metadata[0][0], resp.column_metadata[0][1]
                d["col_count"] = len(resp.column_metadata)
            if resp.paging_state is not None:
                d["paging_state"] = resp.paging_state.hex().upper()
        elif kind == "set_keyspace":
            d["keyspace"] = resp.new_keyspace
        elif kind == "schemaChanged":
            d["schema_change"] = _jsonable(resp.schema_change_event)
        elif kind == "prepared":
            d["prepared_id"] = str(uuid.UUID(bytes=resp.query_id))
        if getattr(resp, "warnings", None):
            d["warnings"] = list(resp.warnings)
        if getattr(resp, "trace_id", None):
            d["trace_id"] = str(resp.trace_id)
    elif opcode == 0x00:
        d["code"] = resp.code
        d["msg"] = resp.message
        if resp.info:
            d["info"] = _jsonable(resp.info)
    elif opcode == 0x06:
        d["supported"] = _jsonable(dict(resp.options, CQL_VERSION=resp.cql_versions))
    elif opcode == 0x03:
        d["authenticator"] = resp.authenticator
    return d


def cluster(port, version, compression, **kw):
    return Cluster(["127.0.0.1"], port=port, protocol_version=version, compression=compression,
                   load_balancing_policy=RoundRobinPolicy(), schema_metadata_enabled=False,
                   token_metadata_enabled=False, connect_timeout=5, control_connection_timeout=5, **kw)


def expect_error(session, q, **kw):
    try:
        session.execute(q, **kw)
    except Exception as e:  # the driver raises its typed errors; the truth records the frame
        return type(e).__name__
    raise SystemExit("cassandra_real.py: %r did not fail" % q)


def session_full(rec, port, version, compression, big=False):
    c = cluster(port, version, compression)
    s = c.connect()
    ks = "demo_v%d_%s" % (version, compression or "none")
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    expect_error(s, "CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 1}" % ks)
    s.set_keyspace(ks)
    s.execute("CREATE TABLE users (id int PRIMARY KEY, name text, email text, tags set<text>)")
    for i, name in enumerate(["alice", "bob", "carol", "dave", "eve"]):
        s.execute("INSERT INTO users (id, name, email, tags) VALUES (%d, '%s', '%s@example.org', {'a', 'b'})"
                  % (i, name, name))
    st = SimpleStatement("SELECT id, name, email FROM users", fetch_size=2)
    rows = list(s.execute(st))
    assert len(rows) == 5, rows
    ins = s.prepare("INSERT INTO users (id, name, email) VALUES (?, ?, ?)")
    s.execute(ins, (10, "frank", "frank@example.org"))
    sel = s.prepare("SELECT id, name FROM users WHERE id = ?")
    assert list(s.execute(sel, (10,)))[0].name == "frank"
    b = BatchStatement()
    b.add(ins, (11, "grace", "grace@example.org"))
    b.add(SimpleStatement("INSERT INTO users (id, name) VALUES (12, 'heidi')"))
    s.execute(b)
    s.execute("SELECT count(*) FROM users")
    s.execute("SELECT name FROM users WHERE id = 1", trace=True)
    expect_error(s, "SELEC * FROM users")
    expect_error(s, "SELECT * FROM nosuch")
    expect_error(s, SimpleStatement("INSERT INTO users (id, name) VALUES (20, 'ivan')",
                                    consistency_level=ConsistencyLevel.THREE))
    if big:
        s.execute("CREATE TABLE blobs (id int PRIMARY KEY, data text)")
        payload = "".join("%06d:%s;" % (i, uuid.UUID(int=i * 7919).hex) for i in range(4000))
        s.execute("INSERT INTO blobs (id, data) VALUES (1, '%s')" % payload)   # > one segment
        s.execute("INSERT INTO blobs (id, data) VALUES (2, '%s')" % payload[::-1])
        rows = list(s.execute("SELECT id, data FROM blobs"))
        assert len(rows) == 2 and len(rows[0].data) == len(payload)
    time.sleep(0.3)     # let the pushed events reach the control connection
    c.shutdown()


def session_short(rec, port, version, compression):
    c = cluster(port, version, compression)
    s = c.connect("demo_v4_lz4")
    s.execute("INSERT INTO users (id, name) VALUES (30, 'judy')")
    assert len(list(s.execute("SELECT * FROM users WHERE id = 30"))) == 1
    s.execute("USE demo_v4_lz4")
    expect_error(s, "USE nosuch_keyspace")
    c.shutdown()


def session_auth(rec, port):
    c = cluster(port, 3, None, auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
    s = c.connect()
    s.execute("SELECT release_version FROM system.local")
    s.execute("SELECT * FROM demo_v4_lz4.users WHERE id = 1")
    c.shutdown()
    bad = cluster(port, 3, None, auth_provider=PlainTextAuthProvider("cassandra", "wrong"))
    try:
        bad.connect()
    except NoHostAvailable:
        pass
    else:
        raise SystemExit("cassandra_real.py: a bad password was accepted")
    bad.shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--port", type=int, default=19042, help="the responder's port (auth: port + 1)")
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    db = Db()
    plain = Responder(args.port, db=db)
    auth = Responder(args.port + 1, auth=True, db=db)
    rec = Recorder()
    rec.install()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "cassandra_real.pcap"
        Path(tmp).chmod(0o777)
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d or tcp port %d" % (args.port, args.port + 1))
        try:
            for name, fn in (("v4-lz4", lambda: session_full(rec, args.port, 4, "lz4")),
                             ("v4-snappy", lambda: session_short(rec, args.port, 4, "snappy")),
                             ("v5-lz4", lambda: session_full(rec, args.port, 5, "lz4", big=True)),
                             ("v5-none", lambda: session_short(rec, args.port, 5, None)),
                             ("v3-auth", lambda: session_auth(rec, args.port + 1))):
                rec.session = name
                fn()
                time.sleep(0.2)
        finally:
            report = stop_tcpdump(dump)
            plain.close()
            auth.close()
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit(f"cassandra_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "cassandra_real.pcap")
    missing = [t for t in rec.txns if "response" not in t]
    truth = {
        "pcap": "cassandra_real.pcap",
        "generator": "tests/golden/gen/cassandra_real.py",
        "ports": [args.port, args.port + 1],
        "server": "tests/golden/gen/cql_responder.py (a wire-level CQL responder, not Cassandra)",
        "clients": "cassandra-driver %s (DataStax Python driver), protocol v3, v4, v5" % cassandra.__version__,
        "transactions": rec.txns,
        "events": rec.events,
    }
    (args.out / "cassandra_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'cassandra_real.pcap'}: {len(rec.txns)} requests ({len(missing)} unanswered), "
          f"{len(rec.events)} events, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
