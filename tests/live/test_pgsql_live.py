"""PostgreSQL against the live server: run the generator (psycopg 3 against
the server on 127.0.0.1:5432, captured with tcpdump on lo) into a temporary
folder, then the analyser over that fresh capture, and check its events
against the fresh truth file (the same checks as
tests/golden/test_pgsql_truth.py).

Skips, saying why, when it cannot run here: not root, no tcpdump, psycopg
missing, or no PostgreSQL server accepting ``dbname=test user=root`` on
127.0.0.1:5432.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.golden.test_pgsql_truth import CONFIGS, check_events
from tests.helpers import ROOT, run_packetbeat

GEN = ROOT / "tests" / "golden" / "gen" / "pgsql_real.py"
DSN = "host=127.0.0.1 port=5432 dbname=test user=root sslmode=disable connect_timeout=3"


def _why_not() -> str:
    if os.geteuid() != 0:
        return "needs root (tcpdump on lo)"
    if not (shutil.which("tcpdump") or os.path.exists("/usr/sbin/tcpdump")):
        return "tcpdump is not installed (apt-get install -y tcpdump)"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]>=3.1')"
    try:
        with psycopg.connect(DSN) as c:
            c.execute("select 1")
    except psycopg.Error as e:
        return "no PostgreSQL server for %r: %s" % (DSN, str(e).strip())
    return ""


def test_generator_capture_matches_analyser(tmp_path):
    why = _why_not()
    if why:
        pytest.skip("live PostgreSQL test: " + why)
    out = tmp_path / "gen"
    p = subprocess.run([sys.executable, str(GEN), "--out", str(out)], capture_output=True, text=True,
                       timeout=180, cwd=str(ROOT))
    assert p.returncode == 0, p.stdout + p.stderr
    truth = json.loads((out / "pgsql_real.truth.json").read_text())
    assert any("0 packets dropped" in line for line in truth["tcpdump"])
    for name, cfg in sorted(CONFIGS.items()):
        work = tmp_path / name
        work.mkdir()
        proc, events = run_packetbeat(work, out / "pgsql_real.pcap",
                                      protocols=[dict({"type": "pgsql", "ports": [5432]}, **cfg)], workers=2)
        assert proc.returncode == 0, proc.stderr[-3000:]
        check_events(events, truth, cfg)
