"""Live variant of the SIP truth test: run the generator (SIPp UAC and UAS and
the script's own client on 127.0.0.1:5060, tcpdump on lo) into a temporary
folder, then the analyser over that fresh capture, and check its events
against the fresh truth file. Skips, saying why, when SIPp, tcpdump, root or
the port is missing."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.golden.test_sip_truth import check_events
from tests.helpers import ROOT, run_packetbeat

PORT = 5060


def _port_free() -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as SIPp; TIME_WAIT is no use
            try:
                s.bind(("127.0.0.1", PORT))
            except OSError:
                return False
    return True


def test_sip_live(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: cannot capture live SIP traffic")
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    if not _port_free():
        pytest.skip("127.0.0.1:%d is in use" % PORT)
    pytest.importorskip("scapy", reason="scapy is not installed (the generator checks the capture with it)")
    gen = subprocess.run([sys.executable, str(ROOT / "tests" / "golden" / "gen" / "sip_real.py"),
                          "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-3000:]
    truth = json.loads((tmp_path / "sip_real.truth.json").read_text())
    (tmp_path / "run").mkdir()
    proc, events = run_packetbeat(tmp_path / "run", tmp_path / "sip_real.pcap",
                                  protocols=[{"type": "sip", "ports": [PORT]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth, {})
