"""Live variant of the memcache truth test: the generator starts a private
memcached, drives the real clients while tcpdump captures on lo into a
temporary folder; then the whole pipeline (the CLI, file output) runs over
that fresh capture and its events are checked against the fresh truth file.
Skips, saying why, when memcached, tcpdump, pymemcache, python-binary-memcached,
pylibmc or root is missing."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.golden.test_memcache_truth import check_events
from tests.helpers import ROOT, run_packetbeat

PORT = 11311


def _port_free() -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", PORT))
        except OSError:
            return False
    return True


def test_memcache_live(tmp_path):
    if shutil.which("memcached") is None:
        pytest.skip("memcached is not installed: no real server to capture")
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: cannot capture live memcache traffic")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    pytest.importorskip("pymemcache", reason="pymemcache is not installed")
    pytest.importorskip("bmemcached", reason="python-binary-memcached is not installed")
    pytest.importorskip("pylibmc", reason="pylibmc is not installed (wheels up to CPython 3.11)")
    if not _port_free():
        pytest.skip("port %d is taken: the generator starts its own memcached there" % PORT)
    gen = subprocess.run([sys.executable, str(ROOT / "tests" / "golden" / "gen" / "memcache_real.py"),
                          "--out", str(tmp_path), "--port", str(PORT)],
                         capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-3000:]
    truth = json.loads((tmp_path / "memcache_real.truth.json").read_text())
    assert len(truth["transactions"]) > 60
    (tmp_path / "run").mkdir()
    proc, events = run_packetbeat(tmp_path / "run", tmp_path / "memcache_real.pcap",
                                  protocols=[{"type": "memcache", "ports": [PORT]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth)
