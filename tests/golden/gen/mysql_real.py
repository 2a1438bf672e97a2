#!/usr/bin/env python3
"""Real MySQL traffic on loopback: real clients, the real MariaDB server, tcpdump.

Usage (from the repository root, as root, with MariaDB/MySQL on 127.0.0.1:3306,
user root without password, database ``test``)::

    .venv/bin/python tests/golden/gen/mysql_real.py [--out tests/golden/pcaps] [--name mysql_real]
                                                   [--host 127.0.0.1] [--port 3306] [--big]

Starts ``tcpdump -i lo -nn -U -s 0 -w FILE 'tcp port PORT'``, drives

- PyMySQL (text protocol): DDL, INSERT with AUTO_INCREMENT ids, a multi-row
  SELECT, UPDATE, a 150-row result, errors (unknown table, syntax), COM_INIT_DB
  (good and unknown schema), COM_PING, a multi-statement query (two result
  sets, SERVER_MORE_RESULTS_EXISTS), LOAD DATA LOCAL INFILE;
- mysql-connector-python (pure Python) with ``cursor(prepared=True)``:
  COM_STMT_PREPARE / EXECUTE (integer, string, NULL, double, date, decimal
  parameters; the same statement executed twice) / CLOSE, a PREPARE that fails,
  an EXECUTE that fails (duplicate key);
- mysql-connector-python with ``compress=True`` (CLIENT_COMPRESS);
- with ``--big`` (not for the committed capture): a COM_QUERY and a row of
  exactly 0xffffff payload bytes, each sent as a full packet and the empty
  packet that ends it (the 16 MiB rule; a larger one needs max_allowed_packet
  above MariaDB's 16 MiB default);

stops tcpdump with SIGINT (it must report 0 drops) and writes ``NAME.pcap`` and
``NAME.truth.json``: one record per command the analyser publishes (COM_QUERY,
COM_INIT_DB, COM_STMT_PREPARE, COM_STMT_EXECUTE), in the order each connection
sent them, taken from the client side: the command and text the library sent
(including the library's own ``SET NAMES ...`` queries, recorded by wrapping its
send function), and what came back (row count, column count, affected rows,
insert id, error code and message). The table ``pbgen_items`` in ``test`` is
dropped at the end.
"""
from __future__ import annotations

import argparse
import datetime
import decimal
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump

MAX_PCAP_BYTES = 300 * 1024
TABLE = "pbgen_items"
COM_INIT_DB, COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE = 2, 3, 22, 23


class Recorder:
    """The truth: one record per published command, per client port in send order."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.txns: list[dict] = []

    def sent(self, case: str, cport: int, command: int, text: str, internal: bool = False) -> dict:
        if command == COM_INIT_DB:
            method, query = "USE", "USE " + text
        else:
            query = text.strip(" \r\n\t")
            method = re.split(r"[ \r\n\t]", query, maxsplit=1)[0].upper()
        rec = {"case": case, "client_ip": self.host, "client_port": cport, "server_ip": self.host,
               "server_port": self.port, "command": command, "method": method, "query": query,
               "status": "OK", "num_rows": None, "num_fields": None, "affected_rows": None,
               "insert_id": None, "error_code": None, "error_message": None, "params": None,
               "internal": internal, "notes": []}
        self.txns.append(rec)
        return rec

    def last(self, cport: int, command: int | None = None) -> dict:
        for rec in reversed(self.txns):
            if rec["client_port"] == cport and (command is None or rec["command"] == command):
                return rec
        raise LookupError("no command recorded for port %d" % cport)


# --------------------------------------------------------------------------- PyMySQL

def _pymysql_spy(rec: Recorder, case: list[str]):
    import pymysql
    orig = pymysql.connections.Connection._execute_command

    def spy(self, command, sql):
        if command in (COM_QUERY, COM_INIT_DB):
            text = sql.decode("utf-8", "replace") if isinstance(sql, (bytes, bytearray)) else sql
            rec.sent(case[0], self._sock.getsockname()[1], command, text,
                     internal=not getattr(self, "_pbgen_user", False))
        return orig(self, command, sql)

    pymysql.connections.Connection._execute_command = spy
    return lambda: setattr(pymysql.connections.Connection, "_execute_command", orig)


def _run(rec: Recorder, conn, cur, sql: str, args=None, multi: bool = False) -> None:
    """Execute one statement through PyMySQL and write its outcome into the truth."""
    import pymysql
    cport = conn._sock.getsockname()[1]
    conn._pbgen_user = True
    try:
        cur.execute(sql, args)
    except pymysql.MySQLError as e:
        r = rec.last(cport, COM_QUERY)
        r.update(status="Error", error_code=e.args[0], error_message=e.args[1])
        return
    finally:
        conn._pbgen_user = False
    r = rec.last(cport, COM_QUERY)
    if cur.description is not None:
        rows = len(cur.fetchall())
        fields = len(cur.description)
        while multi and cur.nextset():
            if cur.description is not None:
                rows += len(cur.fetchall())
        r.update(num_rows=rows, num_fields=fields, affected_rows=0)
    else:
        r.update(num_rows=0, num_fields=0, affected_rows=cur.rowcount, insert_id=cur.lastrowid or 0)


def pymysql_session(rec: Recorder, case: list[str], host: str, port: int, tmpdir: Path) -> None:
    import pymysql
    from pymysql.constants import CLIENT
    case[0] = "pymysql_text"
    conn = pymysql.connect(host=host, port=port, user="root", password="", database="test",
                           autocommit=True, local_infile=True,
                           client_flag=CLIENT.MULTI_STATEMENTS)
    cur = conn.cursor()
    _run(rec, conn, cur, f"DROP TABLE IF EXISTS {TABLE}")
    _run(rec, conn, cur, f"CREATE TABLE {TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, "
                         "name VARCHAR(64) NOT NULL UNIQUE, price DOUBLE, note TEXT, added DATE)")
    for name, price in (("apple", 1.25), ("pear", 2.5), ("plum, red", 0.75)):
        _run(rec, conn, cur, f"INSERT INTO {TABLE} (name, price, note) VALUES (%s, %s, %s)",
             (name, price, 'says "hi"\nand bye' if name == "pear" else None))
    _run(rec, conn, cur, f"SELECT id, name, price, note FROM {TABLE} ORDER BY id")
    _run(rec, conn, cur, f"  \n UPDATE {TABLE} SET price = price * 2 WHERE price < 2 \n")
    _run(rec, conn, cur, "SELECT * FROM pbgen_missing")
    _run(rec, conn, cur, "SELEC oops")
    conn._pbgen_user = True
    conn.select_db("test")
    try:
        conn.select_db("pbgen_no_such_db")
    except pymysql.MySQLError as e:
        rec.last(conn._sock.getsockname()[1], COM_INIT_DB).update(
            status="Error", error_code=e.args[0], error_message=e.args[1])
    conn._pbgen_user = False
    conn.ping(reconnect=False)                     # COM_PING: answered, not published
    _run(rec, conn, cur, f"SELECT COUNT(*) AS n FROM {TABLE}; SELECT name, price FROM {TABLE} ORDER BY id",
         multi=True)
    rec.last(conn._sock.getsockname()[1], COM_QUERY)["notes"].append("two result sets")
    csv = tmpdir / "pbgen_items.csv"
    csv.write_text("".join(f"bulk{i},{i}.5\n" for i in range(40)))
    _run(rec, conn, cur, f"LOAD DATA LOCAL INFILE '{csv}' INTO TABLE {TABLE} "
                         "FIELDS TERMINATED BY ',' (name, price)")
    rec.last(conn._sock.getsockname()[1], COM_QUERY)["notes"].append("LOCAL INFILE")
    values = ",".join(f"('long{i:03d}', {i}, '{'x' * 300}')" for i in range(150))
    _run(rec, conn, cur, f"INSERT INTO {TABLE} (name, price, note) VALUES {values}")
    _run(rec, conn, cur, f"SELECT name, note FROM {TABLE} WHERE name LIKE 'long%' ORDER BY id")
    conn.close()


# --------------------------------------------------------------------------- mysql-connector-python

def _connector_spy(rec: Recorder, case: list[str]):
    from mysql.connector.connection import MySQLConnection
    saved = {n: getattr(MySQLConnection, n) for n in ("cmd_query", "cmd_stmt_prepare", "cmd_stmt_execute",
                                                       "cmd_init_db")}

    def port(self) -> int:
        return self._socket.sock.getsockname()[1]

    def cmd_query(self, query, *a, **k):
        text = query.decode() if isinstance(query, (bytes, bytearray)) else query
        rec.sent(case[0], port(self), COM_QUERY, text, internal=not getattr(self, "_pbgen_user", False))
        return saved["cmd_query"](self, query, *a, **k)

    def cmd_stmt_prepare(self, statement, *a, **k):
        text = statement.decode() if isinstance(statement, (bytes, bytearray)) else statement
        r = rec.sent(case[0], port(self), COM_STMT_PREPARE, text)
        try:
            res = saved["cmd_stmt_prepare"](self, statement, *a, **k)
        except Exception as e:
            r.update(status="Error", error_code=getattr(e, "errno", None), error_message=getattr(e, "msg", str(e)))
            raise
        r.update(num_rows=0, num_fields=len(res.get("columns") or []), affected_rows=0, insert_id=0)
        self._pbgen_stmts[res["statement_id"]] = text
        return res

    def cmd_stmt_execute(self, statement_id, data=(), parameters=(), flags=0, *a, **k):
        r = rec.sent(case[0], port(self), COM_STMT_EXECUTE, self._pbgen_stmts[statement_id])
        r["params"] = [_param_text(v) for v in data]
        try:
            res = saved["cmd_stmt_execute"](self, statement_id, data, parameters, flags, *a, **k)
        except Exception as e:
            r.update(status="Error", error_code=getattr(e, "errno", None), error_message=getattr(e, "msg", str(e)))
            raise
        if isinstance(res, dict) and "affected_rows" in res:          # an OK packet: no rows
            r.update(num_rows=0, num_fields=0, affected_rows=res["affected_rows"], insert_id=res["insert_id"])
        return res

    def cmd_init_db(self, database, *a, **k):
        rec.sent(case[0], port(self), COM_INIT_DB, database)
        return saved["cmd_init_db"](self, database, *a, **k)

    MySQLConnection.cmd_query = cmd_query
    MySQLConnection.cmd_stmt_prepare = cmd_stmt_prepare
    MySQLConnection.cmd_stmt_execute = cmd_stmt_execute
    MySQLConnection.cmd_init_db = cmd_init_db

    def undo():
        for n, f in saved.items():
            setattr(MySQLConnection, n, f)
    return undo


def _param_text(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, datetime.date):
        return v.isoformat()
    return str(v)


def _connect_connector(host: str, port: int, **kw):
    import mysql.connector
    conn = mysql.connector.connect(host=host, port=port, user="root", password="", database="test",
                                   use_pure=True, autocommit=True, **kw)
    return conn


def _cx_run(rec: Recorder, conn, cur, sql: str, args=None) -> None:
    import mysql.connector
    cport = conn._socket.sock.getsockname()[1]
    conn._pbgen_user = True
    command = COM_STMT_EXECUTE if getattr(cur, "_prepared", None) is not None or "Prepared" in type(cur).__name__ \
        else COM_QUERY
    try:
        cur.execute(sql, args)
    except mysql.connector.Error as e:
        r = rec.last(cport)
        if r["status"] != "Error":
            r.update(status="Error", error_code=e.errno, error_message=e.msg)
        return
    finally:
        conn._pbgen_user = False
    r = rec.last(cport, command)
    if r["num_fields"] == 0:
        return                                  # outcome recorded from the OK packet
    if cur.with_rows:
        rows = len(cur.fetchall())
        r.update(num_rows=rows, num_fields=len(cur.description), affected_rows=0)
    else:
        r.update(num_rows=0, num_fields=0, affected_rows=cur.rowcount, insert_id=cur.lastrowid or 0)


def connector_prepared(rec: Recorder, case: list[str], host: str, port: int) -> None:
    case[0] = "connector_prepared"
    conn = _connect_connector(host, port)
    conn._pbgen_stmts = {}
    cur = conn.cursor(prepared=True)
    sel = f"SELECT id, name, price FROM {TABLE} WHERE id > ? AND name <> ? ORDER BY id"
    _cx_run(rec, conn, cur, sel, (1, "pear"))
    _cx_run(rec, conn, cur, sel, (40, "zzz"))            # same statement: EXECUTE only
    ins = f"INSERT INTO {TABLE} (name, price, note, added) VALUES (?, ?, ?, ?)"
    _cx_run(rec, conn, cur, ins, ("cherry", 3.5, None, datetime.date(2024, 2, 29)))
    _cx_run(rec, conn, cur, ins, ("cherry", 1.0, "dup", datetime.date(2024, 3, 1)))   # duplicate key
    _cx_run(rec, conn, cur, f"SELECT name, price * ? AS p, ? AS d FROM {TABLE} WHERE name = ?",
            (2, decimal.Decimal("3.25"), "cherry"))
    _cx_run(rec, conn, cur, "SELECT * FROM pbgen_missing WHERE id = ?", (1,))  # PREPARE fails
    cur.close()                                                                   # COM_STMT_CLOSE
    conn.close()


def connector_compressed(rec: Recorder, case: list[str], host: str, port: int) -> None:
    case[0] = "connector_compressed"
    conn = _connect_connector(host, port, compress=True)
    conn._pbgen_stmts = {}
    cur = conn.cursor()
    _cx_run(rec, conn, cur, f"SELECT id, name FROM {TABLE} WHERE name LIKE 'bulk%' ORDER BY id")
    _cx_run(rec, conn, cur, f"UPDATE {TABLE} SET note = 'compressed' WHERE name LIKE 'bulk1%'")
    _cx_run(rec, conn, cur, "SELECT nope FROM dual")
    for r in rec.txns:
        if r["case"] == "connector_compressed":
            r["notes"] = ["compressed protocol"]
    conn.close()


def big_packets(rec: Recorder, case: list[str], host: str, port: int) -> None:
    """A COM_QUERY and a row of 0xffffff bytes (max_allowed_packet 16 MiB suffices)."""
    import pymysql
    case[0] = "big_packets"
    conn = pymysql.connect(host=host, port=port, user="root", password="", database="test", autocommit=True)
    cur = conn.cursor()
    head, tail = "SELECT LENGTH('", "') AS n"
    # payload = command byte + query = 0xffffff: the largest max_allowed_packet (16 MiB) lets
    # through, sent as a full 0xffffff packet and an empty one that ends it
    filler = 0xFFFFFF - 1 - len(head) - len(tail)
    _run(rec, conn, cur, head + "y" * filler + tail)
    r = rec.last(conn._sock.getsockname()[1], COM_QUERY)
    r["query_prefix"] = r["query"][:40]
    r["query"] = None                                   # too long to keep in the truth file
    r["query_bytes"] = 0xFFFFFF - 1
    r["notes"].append("request of 0xffffff bytes")
    _run(rec, conn, cur, "SELECT REPEAT('z', 16777211) AS big")
    rec.last(conn._sock.getsockname()[1], COM_QUERY)["notes"].append("row packet of 0xffffff bytes")
    conn.close()


def drop_table(rec: Recorder, case: list[str], host: str, port: int) -> None:
    import pymysql
    case[0] = "cleanup"
    conn = pymysql.connect(host=host, port=port, user="root", password="", database="test", autocommit=True)
    _run(rec, conn, conn.cursor(), f"DROP TABLE IF EXISTS {TABLE}")
    conn.close()


# --------------------------------------------------------------------------- capture







def check_capture(pcap: Path, rec: Recorder) -> int:
    """Every recorded connection must be in the capture from its SYN to both
    FINs (all clients closed before tcpdump stopped); returns the packet count."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap
    pkts = rdpcap(str(pcap))
    flags: dict[int, set] = {}
    for p in pkts:
        if TCP in p:
            t = p[TCP]
            to_server = t.dport == rec.port
            cport = t.sport if to_server else t.dport
            f = flags.setdefault(cport, set())
            if t.flags & 0x02 and to_server:
                f.add("syn")
            if t.flags & 0x01:
                f.add("fin_c" if to_server else "fin_s")
    for cport in sorted({t["client_port"] for t in rec.txns}):
        if flags.get(cport, set()) != {"syn", "fin_c", "fin_s"}:
            raise RuntimeError(f"client port {cport}: the capture does not hold the whole connection "
                               f"({sorted(flags.get(cport, ()))})")
    return len(pkts)


def generate(out: Path, name: str, host: str, port: int, big: bool) -> dict:
    """Run every scenario under tcpdump; write NAME.pcap and NAME.truth.json into ``out``."""
    import mysql.connector
    import pymysql
    tcpdump = find_tcpdump()
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(host, port)
    case = ["?"]
    undo = [_pymysql_spy(rec, case), _connector_spy(rec, case)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            tmpdir.chmod(0o777)                     # tcpdump may drop root privileges before writing
            tmp_pcap = tmpdir / (name + ".pcap")
            dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % port)
            try:
                pymysql_session(rec, case, host, port, tmpdir)
                connector_prepared(rec, case, host, port)
                connector_compressed(rec, case, host, port)
                if big:
                    big_packets(rec, case, host, port)
            finally:
                try:
                    drop_table(rec, case, host, port)
                finally:
                    report = stop_tcpdump(dump)
            size = tmp_pcap.stat().st_size
            if not big and size > MAX_PCAP_BYTES:
                sys.exit(f"mysql_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
            n = check_capture(tmp_pcap, rec)
            shutil.copyfile(tmp_pcap, out / (name + ".pcap"))
    finally:
        for u in undo:
            u()
    version = None
    conn = pymysql.connect(host=host, port=port, user="root", password="", database="test")
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    conn.close()
    truth = {
        "pcap": name + ".pcap",
        "generator": "tests/golden/gen/mysql_real.py" + (" --big" if big else ""),
        "linktype": 1,
        "packets": n,
        "server": f"MariaDB {version} on {host}:{port}",
        "clients": f"PyMySQL {pymysql.__version__}, mysql-connector-python {mysql.connector.__version__} (use_pure)",
        "tcpdump": report.strip().splitlines()[-1] if report.strip() else "",
        "transactions": rec.txns,
    }
    (out / (name + ".truth.json")).write_text(json.dumps(truth, indent=1) + "\n")
    return {"pcap": out / (name + ".pcap"), "packets": n, "bytes": size, "transactions": len(rec.txns),
            "report": report.strip()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--name", default="mysql_real")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3306)
    ap.add_argument("--big", action="store_true", help="add the 16 MiB packets (large capture)")
    args = ap.parse_args(argv)
    res = generate(args.out, args.name, args.host, args.port, args.big)
    print(f"{res['pcap']}: {res['packets']} packets, {res['transactions']} transactions, {res['bytes']} bytes")
    print(res["report"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
