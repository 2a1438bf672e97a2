"""MySQL analyser on fresh traffic from the real MariaDB server on this machine.

Runs ``tests/golden/gen/mysql_real.py --big`` into a temporary folder (real
clients, tcpdump on loopback; ``--big`` adds a query and a row of exactly
0xffffff bytes, the 16 MiB continuation in both directions), then the whole
pipeline over the fresh capture, and checks the events against the fresh truth
file exactly as the committed-capture test does. Skips, saying why, when the
server, tcpdump, root or a client library is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import socket
import sys

import pytest

from tests.golden.test_mysql_truth import check_events, run_capture

GEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "gen"
HOST, PORT = "127.0.0.1", 3306


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "tcpdump needs root to capture on lo"
    if not (shutil.which("tcpdump") or os.path.exists("/usr/sbin/tcpdump")):
        return "tcpdump is not installed"
    for mod in ("pymysql", "mysql.connector", "scapy"):
        try:
            if importlib.util.find_spec(mod) is None:
                return "client library %s is not installed" % mod
        except ModuleNotFoundError:
            return "client library %s is not installed" % mod
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as e:
        return "no MySQL/MariaDB server on %s:%d (%s)" % (HOST, PORT, e)
    try:
        import pymysql
        pymysql.connect(host=HOST, port=PORT, user="root", password="", database="test").close()
    except Exception as e:       # noqa: BLE001 - any refusal means: no usable server
        return "cannot log in as root (no password) to database test: %s" % e
    return None


def test_mysql_live_capture_matches_truth(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    sys.path.insert(0, str(GEN))
    try:
        import mysql_real
    finally:
        sys.path.remove(str(GEN))
    out = tmp_path / "capture"
    res = mysql_real.generate(out, "mysql_live", HOST, PORT, big=True)
    assert "0 packets dropped by kernel" in res["report"]
    truth = json.loads((out / "mysql_live.truth.json").read_text())
    events = run_capture(tmp_path, out / "mysql_live.pcap", PORT)
    check_events(events, truth)
    big = [e for e in events if e["query"].startswith("SELECT LENGTH('yyy")]
    assert len(big) == 1 and big[0]["source"]["bytes"] == 0xFFFFFF + 4 + 4
    assert "Query truncated" in str(big[0]["error"]["message"])
    row = [e for e in events if e["query"].startswith("SELECT REPEAT('z'")]
    assert row[0]["destination"]["bytes"] > 0xFFFFFF and row[0]["mysql"]["num_rows"] == 1
