"""ICMP against the live kernel: run the generator (ping, UDP to closed ports,
raw ICMP sockets, captured with tcpdump on lo) into a temporary folder, then
the analyser over that fresh capture, and check its events against the fresh
truth file (the same checks as tests/golden/test_icmp_truth.py).

Skips, saying why, when it cannot run here: not root, no tcpdump, no ping,
no IPv6 loopback address.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.golden.test_icmp_truth import check_events
from tests.helpers import ROOT, run_packetbeat

GEN = ROOT / "tests" / "golden" / "gen" / "icmp_real.py"


def _why_not() -> str:
    if os.geteuid() != 0:
        return "needs root (tcpdump on lo and raw ICMP sockets)"
    if not (shutil.which("tcpdump") or os.path.exists("/usr/sbin/tcpdump")):
        return "tcpdump is not installed (apt-get install -y tcpdump)"
    if not (shutil.which("ping") or os.path.exists("/usr/bin/ping") or os.path.exists("/bin/ping")):
        return "ping is not installed (apt-get install -y iputils-ping)"
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
    except OSError as e:
        return "no IPv6 loopback address ::1 (%s)" % e
    return ""


def test_generator_capture_matches_analyser(tmp_path):
    why = _why_not()
    if why:
        pytest.skip("live ICMP test: " + why)
    out = tmp_path / "gen"
    p = subprocess.run([sys.executable, str(GEN), "--out", str(out)], capture_output=True, text=True,
                       timeout=120, cwd=str(ROOT))
    assert p.returncode == 0, p.stdout + p.stderr
    truth = json.loads((out / "icmp_real.truth.json").read_text())
    assert any("0 packets dropped" in line for line in truth["tcpdump"])
    proc, events = run_packetbeat(tmp_path, out / "icmp_real.pcap", protocols=[{"type": "icmp"}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth)
