"""Runs ../shared/conformance/check.py (Packetbeat's own captures and recorded events)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import CONFORMANCE, ROOT

CHECK = CONFORMANCE / "check.py"


@pytest.mark.parametrize("ptype", ["http", "dns", "icmp", "redis", "memcache", "mysql", "pgsql", "nfs", "amqp",
                                   "cassandra", "mongodb", "thrift"])
def test_every_case_of_protocol_passes(ptype, tmp_path):
    if not CHECK.exists():
        pytest.skip("../shared/conformance is absent: the conformance cases cannot run here")
    cmd = "%s -m coordinator" % sys.executable
    report = tmp_path / "report.json"
    p = subprocess.run([sys.executable, str(CHECK), "--cmd", cmd, "--type", ptype, "-v", "--report", str(report)],
                       capture_output=True, text=True, timeout=1200, cwd=str(ROOT),
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0, "%s\n%s" % (p.stdout[-6000:], p.stderr[-2000:])
    assert last.startswith("conformance: ")


def test_flow_cases_pass(tmp_path):
    """The flow cases mix types (flow + icmp, flow + mysql), so ``--type flow`` would pick only
    one of them: select them by name instead."""
    if not CHECK.exists():
        pytest.skip("../shared/conformance is absent: the conformance cases cannot run here")
    cmd = "%s -m coordinator" % sys.executable
    p = subprocess.run([sys.executable, str(CHECK), "--cmd", cmd, "--case", "flows__*", "-v"],
                       capture_output=True, text=True, timeout=600, cwd=str(ROOT),
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, "%s\n%s" % (p.stdout[-6000:], p.stderr[-2000:])
    assert p.stdout.strip().splitlines()[-1] == "conformance: 3/3 cases pass, 5/5 events match"
