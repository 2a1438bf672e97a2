"""Live variant of the Redis truth test: run the generator against the real
Redis server on this machine into a temporary folder (tcpdump on lo), then
the analyser over that fresh capture, and check its events against the fresh
truth file. Skips, saying why, when the server, tcpdump or root is missing."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden.test_redis_truth import check_events
from tests.helpers import ROOT, run_packetbeat

HOST, PORT = "127.0.0.1", 6379


def _server_up() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_redis_live(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: cannot capture live Redis traffic")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    if not _server_up():
        pytest.skip("no Redis server answering PING on %s:%d" % (HOST, PORT))
    pytest.importorskip("redis", reason="redis-py is not installed")
    gen = subprocess.run([sys.executable, str(ROOT / "tests" / "golden" / "gen" / "redis_real.py"),
                          "--out", str(tmp_path), "--host", HOST, "--port", str(PORT)],
                         capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-3000:]
    truth = json.loads((tmp_path / "redis_real.truth.json").read_text())
    (tmp_path / "run").mkdir()
    proc, events = run_packetbeat(tmp_path / "run", tmp_path / "redis_real.pcap",
                                  protocols=[{"type": "redis", "ports": [PORT]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth)
