"""Live variant of the TLS truth test: run the generator (Python ssl and
openssl s_server/s_client on loopback, certificates made on the spot) into a
temporary folder with tcpdump on lo, then the analyser over that fresh
capture, and check its events against the fresh truth file (and JA3/JA3S
against tshark when installed). Skips, saying why, when tcpdump, openssl, root
or a free port is missing."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.golden.test_tls_truth import PORTS, check_count, check_handshakes, check_ja3_with_tshark
from tests.helpers import ROOT, run_packetbeat


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_tls_live(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: cannot capture live TLS traffic")
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (apt-get install openssl)")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    pytest.importorskip("cryptography", reason="cryptography is not installed")
    busy = [p for p in (8443, 14430) if not _free(p)]
    if busy:
        pytest.skip("port(s) %s in use on 127.0.0.1: the generator's servers cannot listen" % busy)
    gen = subprocess.run([sys.executable, str(ROOT / "tests" / "golden" / "gen" / "tls_real.py"),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-3000:]
    truth = json.loads((tmp_path / "tls_real.truth.json").read_text())
    (tmp_path / "run").mkdir()
    proc, events = run_packetbeat(tmp_path / "run", tmp_path / "tls_real.pcap",
                                  protocols=[{"type": "tls", "ports": PORTS}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_count(events, truth)
    check_handshakes(events, truth)
    check_ja3_with_tshark(events, tmp_path / "tls_real.pcap", truth)
