#!/usr/bin/env python3
"""Real PostgreSQL traffic on loopback, captured with tcpdump.

Usage (from the repository root, as root, with a PostgreSQL server on
127.0.0.1:5432 that trusts local TCP logins to database ``test``)::

    .venv/bin/python tests/golden/gen/pgsql_real.py [--out tests/golden/pcaps] [--name pgsql_real]
        [--host 127.0.0.1] [--port 5432] [--dbname test] [--user root]

Starts ``tcpdump --immediate-mode -i lo -U -w FILE 'tcp port PORT'``, drives
psycopg 3 against the server (simple queries, multi-statement queries, an
empty query, errors, a NOTICE, parameterised queries over the extended
protocol, prepared statements, a pipelined ``executemany``, COPY in and out,
an SSLRequest answered, a login rejected) and asyncpg (named prepared statements
made with Parse/Describe/Flush, executed again with Bind/Execute/Sync only;
executemany; an error in a prepared statement), stops tcpdump with SIGINT (it must
report 0 drops), and writes ``NAME.pcap`` and ``NAME.truth.json``.

The truth file is written from the client side: for every statement the
client ran, in order per connection, what it sent (statement text) and what
came back (status, SQLSTATE, severity and message of an error, number of
result columns and rows, the rows themselves). Statements a server never
executes (the rest of a multi-statement query after an error) are recorded
with ``status: null``; a login the server rejects is a record with
``query: null``. Tables are ``pbgen_*`` in the target database and are
dropped at the end.

The capture is not byte-reproducible (ports, times, backend keys differ per
run): the committed pcap and truth file belong together.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import ClientCursor
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump

MAX_PCAP_BYTES = 300 * 1024


class Recorder:
    """Collects one truth record per statement executed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.records: list[dict] = []

    def add(self, case: str, conn, query, status, *, rows=None, columns=(), err=None, notes=()) -> None:
        rec = {
            "case": case,
            "client_ip": self.host,
            "client_port": _client_port(conn),
            "server_ip": self.host,
            "server_port": self.port,
            "query": query,
            "status": status,
            "num_rows": len(rows) if rows is not None else 0,
            "num_fields": len(columns),
            "columns": list(columns),
            "rows": [[None if v is None else str(v) for v in r] for r in (rows or [])],
            "error_code": getattr(err, "sqlstate", None) if err is not None else None,
            "error_severity": err.diag.severity if err is not None else None,
            "error_message": err.diag.message_primary if err is not None else None,
            "notes": list(notes),
        }
        self.records.append(rec)

    def run(self, case: str, cur, query: str, params=None, *, prepare=None, notes=()) -> None:
        """Execute one statement and record what came back."""
        try:
            cur.execute(query, params, prepare=prepare)
        except psycopg.Error as e:
            self.add(case, cur.connection, _shown(query, params), "Error", err=e, notes=notes)
            return
        self.add_result(case, cur, _shown(query, params), notes)

    def add_result(self, case: str, cur, query: str, notes=()) -> None:
        desc = cur.description
        rows = cur.fetchall() if desc is not None else None
        self.add(case, cur.connection, query, "OK", rows=rows, columns=[d.name for d in desc or ()], notes=notes)


def _shown(query: str, params) -> str:
    """The statement text the server receives: psycopg turns %s into $n."""
    if params is None:
        return query.strip()
    n = iter(range(1, 1000))
    return re.sub(r"%s", lambda _m: "$%d" % next(n), query).strip()


_port_cache: dict[int, int] = {}


def _client_port(conn) -> int:
    return _port_cache[id(conn)]


def connect(conninfo: str, **kw):
    """A psycopg connection whose local port is remembered (read from its socket)."""
    conn = psycopg.connect(conninfo, **kw)
    s = socket.socket(fileno=conn.pgconn.socket)
    try:
        _port_cache[id(conn)] = s.getsockname()[1]
    finally:
        s.detach()
    return conn


# --------------------------------------------------------------------------- scenarios

def drive(rec: Recorder, dsn: str) -> None:
    # 1. simple protocol: no parameters, prepared statements off
    with connect(dsn + " sslmode=disable", autocommit=True, prepare_threshold=None) as c:
        cur = c.cursor()
        rec.run("simple_ddl", cur, "drop table if exists pbgen_items", notes=["NOTICE: table does not exist"])
        rec.run("simple_ddl", cur, "create table pbgen_items(id int primary key, name text, price numeric)")
        rec.run("simple_dml", cur, "insert into pbgen_items values (1, 'apple', 0.5), (2, 'pear, green', 0.75), "
                                   "(3, 'say \"hi\"', 1.25)")
        rec.run("simple_select", cur, "select id, name, price from pbgen_items order by id")
        rec.run("simple_dml", cur, "update pbgen_items set price = price * 2 where id > 1")
        rec.run("simple_error", cur, "insert into pbgen_items values (1, 'duplicate', 0)")
        rec.run("simple_error", cur, "select * from pbgen_missing")
        rec.run("notice", cur, "do $$ begin raise notice 'pbgen notice %', 42; end $$",
                notes=["NOTICE: pbgen notice 42"])
        rec.run("many_rows", cur, "select g, 'row ' || g from generate_series(1, 50) g")
        rec.run("long_row", cur, "select repeat('x', 1500) as a, repeat('y', 10) as b")
        rec.run("null_values", cur, "select null::text as n, '' as e, 7 as i")
        # several statements in one Query: one event each
        q = "select 1 as one; select 2 as two, 3 as three; update pbgen_items set name = name where id = 0"
        cur.execute(q)
        parts = [p.strip() for p in q.split(";")]
        i = 0
        while True:
            rec.add_result("multi_statement", cur, parts[i])
            i += 1
            if not cur.nextset():
                break
        # an error in the middle: the statements after it never run
        q = "select 10 as ten; select 1/0; select 30"
        parts = [p.strip() for p in q.split(";")]
        try:
            cur.execute(q)
            raise RuntimeError("multi-statement error case did not fail")
        except psycopg.errors.DivisionByZero as e:
            rec.add("multi_statement_error", c, parts[0], "OK", rows=[(10,)], columns=["ten"])
            rec.add("multi_statement_error", c, parts[1], "Error", err=e)
            rec.add("multi_statement_error", c, parts[2], None, notes=["not executed"])
        # the empty query: EmptyQueryResponse
        cur.execute("")
        rec.add("empty_query", c, "", "OK")
        # COPY FROM STDIN and COPY TO STDOUT
        with cur.copy("copy pbgen_items (id, name, price) from stdin") as cp:
            for r in ((10, "copied one", 1), (11, "copied two", 2), (12, "copied\tthree", 3)):
                cp.write_row(r)
        rec.add("copy_in", c, "copy pbgen_items (id, name, price) from stdin", "OK")
        got = []
        with cur.copy("copy (select id, name from pbgen_items where id >= 10 order by id) to stdout") as cp:
            for row in cp.rows():
                got.append(row)
        if len(got) != 3:
            raise RuntimeError("COPY TO returned %d rows" % len(got))
        rec.add("copy_out", c, "copy (select id, name from pbgen_items where id >= 10 order by id) to stdout", "OK")
        # ClientCursor: parameters merged client-side, sent as a simple Query
        ccur = ClientCursor(c)
        ccur.execute("select name from pbgen_items where id = %s", (2,))
        rec.add_result("client_cursor", ccur, "select name from pbgen_items where id = 2")

    # 2. extended protocol: parameters, unnamed statements and portals
    with connect(dsn + " sslmode=disable", autocommit=True, prepare_threshold=None) as c:
        cur = c.cursor()
        rec.run("extended", cur, "insert into pbgen_items values (%s, %s, %s)", (20, "param", 9.5))
        rec.run("extended", cur, "select id, name from pbgen_items where id = %s", (20,))
        rec.run("extended", cur, "select id from pbgen_items where id > %s order by id", (100,))
        rec.run("extended_error", cur, "select * from pbgen_nothere where id = %s", (1,))
        rec.run("extended_error", cur, "insert into pbgen_items values (%s, %s, %s)", (20, "again", 1))

    # 3. prepared statements: named, parsed once, executed again by name;
    #    executemany pipelines several Bind/Execute before one Sync
    with connect(dsn + " sslmode=disable", autocommit=True) as c:
        cur = c.cursor()
        for i in (1, 2, 3):
            rec.run("prepared", cur, "select name from pbgen_items where id = %s", (i,), prepare=True)
        rec.run("prepared_error", cur, "select nosuchcolumn from pbgen_items where id = %s", (1,), prepare=True)
        cur.executemany("insert into pbgen_items values (%s, %s, %s)", [(30, "many a", 1), (31, "many b", 2),
                                                                       (32, "many c", 3)])
        for _ in range(3):
            rec.add("executemany", c, "insert into pbgen_items values ($1, $2, $3)", "OK")

    # 4. transaction block (psycopg sends BEGIN/COMMIT as simple queries), sslmode=prefer:
    #    the client asks for SSL first and the server answers
    with connect(dsn + " sslmode=prefer", prepare_threshold=None) as c:
        cur = c.cursor()
        rec.add("transaction", c, "BEGIN", "OK")
        rec.run("transaction", cur, "select count(*) from pbgen_items")
        rec.run("transaction", cur, "delete from pbgen_items where id >= 30")
        c.commit()
        rec.add("transaction", c, "COMMIT", "OK")
        rec.add("cleanup", c, "BEGIN", "OK")
        rec.run("cleanup", cur, "drop table pbgen_items")
        c.commit()
        rec.add("cleanup", c, "COMMIT", "OK")

    # 5. a login the server rejects (FATAL during startup, no statement)
    try:
        psycopg.connect(dsn.replace("user=", "user=pbgen_nosuchrole_") + " sslmode=disable", connect_timeout=5)
        raise RuntimeError("login with an unknown role succeeded")
    except psycopg.OperationalError as e:
        msg = str(e)
        port = -1
    rec.records.append({
        "case": "login_rejected", "client_ip": rec.host, "client_port": port, "server_ip": rec.host,
        "server_port": rec.port, "query": None, "status": "Error", "num_rows": 0, "num_fields": 0,
        "columns": [], "rows": [], "error_code": "28000", "error_severity": "FATAL",
        "error_message": re.search(r'role "[^"]+" does not exist', msg).group(0), "notes": ["startup"]})


def drive_asyncpg(rec: Recorder, host: str, port: int, dbname: str, user: str) -> None:
    """6. asyncpg: named prepared statements made with Parse/Describe/Flush (no Sync: the
    answer has no ReadyForQuery) and executed again and again with Bind/Execute/Sync only,
    a pipelined executemany, and an error in the execution of a prepared statement."""
    import asyncio
    import asyncpg

    async def run() -> None:
        c = await asyncpg.connect(host=host, port=port, database=dbname, user=user, ssl=False)
        cport = c._transport.get_extra_info("sockname")[1]

        def add(case, query, status, rows=None, columns=(), err=None):
            rec.records.append({
                "case": case, "client_ip": rec.host, "client_port": cport, "server_ip": rec.host,
                "server_port": rec.port, "query": query, "status": status,
                "num_rows": len(rows) if rows is not None else 0, "num_fields": len(columns),
                "columns": list(columns), "rows": [[None if v is None else str(v) for v in r] for r in rows or []],
                "error_code": getattr(err, "sqlstate", None) if err is not None else None,
                "error_severity": getattr(err, "severity", None) if err is not None else None,
                "error_message": getattr(err, "message", None) if err is not None else None,
                "notes": [], "binary_results": True})
        q = "SELECT $1::int + 1 AS x"
        for i in range(3):                      # prepared once, executed three times
            rows = await c.fetch(q, i)
            add("asyncpg_prepared", q, "OK", [tuple(r) for r in rows], ["x"])
        st = await c.prepare("SELECT $1::int * 3 AS z, $2::text AS t")
        for i in range(2):
            rows = await st.fetch(i, "v%d" % i)
            add("asyncpg_statement", "SELECT $1::int * 3 AS z, $2::text AS t", "OK",
                [tuple(r) for r in rows], ["z", "t"])
        bad = await c.prepare("SELECT 10 / $1::int AS q")
        rows = await bad.fetch(5)
        add("asyncpg_statement_error", "SELECT 10 / $1::int AS q", "OK", [tuple(r) for r in rows], ["q"])
        try:
            await bad.fetch(0)
        except asyncpg.PostgresError as e:
            add("asyncpg_statement_error", "SELECT 10 / $1::int AS q", "Error", err=e)
        await c.executemany("SELECT $1::int", [(1,), (2,), (3,)])
        for v in (1, 2, 3):     # the server sends each row; executemany discards them
            add("asyncpg_executemany", "SELECT $1::int", "OK", [(v,)], ["int4"])
        await c.close()

    asyncio.run(run())


# --------------------------------------------------------------------------- capture







def client_messages(pcap: Path, server_port: int) -> dict[int, list[str]]:
    """Frontend message types per client port, read from the capture with a
    minimal independent reader (Ethernet/IPv4/TCP, messages aligned to
    segments, as libpq writes them): a cross-check of the truth file."""
    data = pcap.read_bytes()
    if struct.unpack_from("<I", data)[0] != 0xA1B2C3D4:
        raise SystemExit("pgsql_real.py: expected a little-endian µs pcap")
    off = 24
    out: dict[int, list[str]] = {}
    seen: set = set()
    while off + 16 <= len(data):
        _s, _us, incl, _orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16: off + 16 + incl]
        off += 16 + incl
        if len(frame) < 54 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 15) * 4
        tcp = 14 + ihl
        sport, dport, seq = struct.unpack_from("!HHI", frame, tcp)
        doff = (frame[tcp + 12] >> 4) * 4
        total = struct.unpack_from("!H", frame, 16)[0]
        payload = frame[tcp + doff: 14 + total]
        if dport != server_port or not payload or (sport, seq) in seen:
            continue
        seen.add((sport, seq))
        types = out.setdefault(sport, [])
        i = 0
        while i + 5 <= len(payload):
            if payload[i] == 0:
                types.append("startup")
                i += struct.unpack_from("!I", payload, i)[0]
                continue
            types.append(chr(payload[i]))
            i += 1 + struct.unpack_from("!I", payload, i + 1)[0]
    return out


def check_capture(pcap: Path, rec: Recorder) -> None:
    msgs = client_messages(pcap, rec.port)
    by_port: dict[int, list[dict]] = {}
    for r in rec.records:
        by_port.setdefault(r["client_port"], []).append(r)
    for port, recs in by_port.items():
        if port == -1:
            continue
        types = msgs.get(port)
        if not types:
            raise SystemExit(f"pgsql_real.py: no client messages from port {port} in the capture")
        # every statement is one Q or one Execute on the wire (several per Q for multi-statement queries)
        if types.count("Q") + types.count("E") < len({(r["case"], r["query"]) for r in recs}) // 2:
            raise SystemExit(f"pgsql_real.py: capture of port {port} holds too few queries: {types}")
    if pcap.stat().st_size > MAX_PCAP_BYTES:
        raise SystemExit(f"pgsql_real.py: capture too big ({pcap.stat().st_size} bytes)")


def rejected_login_port(pcap: Path, rec: Recorder) -> int:
    """The rejected login's client port: the one connection that sent a
    startup message and nothing else (the client port is not visible
    to psycopg when the connection fails)."""
    msgs = client_messages(pcap, rec.port)
    known = {r["client_port"] for r in rec.records}
    cands = [p for p, t in msgs.items() if p not in known and t and set(t) <= {"startup"}]
    if len(cands) != 1:
        raise SystemExit(f"pgsql_real.py: cannot find the rejected login in the capture: {cands}")
    return cands[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "pcaps"))
    ap.add_argument("--name", default="pgsql_real")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--dbname", default="test")
    ap.add_argument("--user", default="root")
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dsn = f"host={args.host} port={args.port} dbname={args.dbname} user={args.user}"
    rec = Recorder(args.host, args.port)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o777)            # tcpdump may drop root privileges before writing
        tmp_pcap = Path(tmp) / "capture.pcap"
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % args.port)
        try:
            drive(rec, dsn)
            drive_asyncpg(rec, args.host, args.port, args.dbname, args.user)
        finally:
            report = stop_tcpdump(dump)
        for r in rec.records:
            if r["client_port"] == -1:
                r["client_port"] = rejected_login_port(tmp_pcap, rec)
        check_capture(tmp_pcap, rec)
        pcap = out / (args.name + ".pcap")
        shutil.copyfile(tmp_pcap, pcap)
    truth = {
        "pcap": pcap.name,
        "generator": "tests/golden/gen/pgsql_real.py",
        "server": _server_version(dsn),
        "client": "psycopg %s (libpq %s), asyncpg %s" % (psycopg.__version__, psycopg.pq.version(),
                                                         __import__("asyncpg").__version__),
        "linktype": 1,
        "tcpdump": report.strip().splitlines(),
        "transactions": rec.records,
    }
    (out / (args.name + ".truth.json")).write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {pcap} ({pcap.stat().st_size} bytes) and {len(rec.records)} truth records")
    return 0


def _server_version(dsn: str) -> str:
    with psycopg.connect(dsn + " sslmode=disable") as c:
        return c.execute("select version()").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
