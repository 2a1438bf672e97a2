"""Live variant of the AMQP truth test: run the generator against the RabbitMQ
broker on this machine into a temporary folder (tcpdump on lo), then the
analyser over that fresh capture, and check its events against the fresh
truth file. Skips, saying why, when the broker, tcpdump, root or a client
library is missing."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.golden.test_amqp_truth import MAX_BODY, check_events
from tests.helpers import ROOT, run_packetbeat

HOST, PORT = "127.0.0.1", 5672


def _broker_up() -> bool:
    """An AMQP 0-9-1 broker answers the protocol header with connection.start."""
    try:
        with socket.create_connection((HOST, PORT), timeout=2) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            head = s.recv(11)
            return len(head) >= 11 and head[0] == 1 and head[7:11] == b"\x00\x0a\x00\x0a"
    except OSError:
        return False


def test_amqp_live(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: cannot capture live AMQP traffic")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    if not _broker_up():
        pytest.skip("no AMQP 0-9-1 broker on %s:%d" % (HOST, PORT))
    pytest.importorskip("pika", reason="pika is not installed")
    pytest.importorskip("amqp", reason="py-amqp is not installed")
    pytest.importorskip("aio_pika", reason="aio-pika is not installed")
    gen = subprocess.run([sys.executable, str(ROOT / "tests" / "golden" / "gen" / "amqp_real.py"),
                          "--out", str(tmp_path), "--host", HOST, "--port", str(PORT)],
                         capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-3000:]
    truth = json.loads((tmp_path / "amqp_real.truth.json").read_text())
    (tmp_path / "run").mkdir()
    proc, events = run_packetbeat(tmp_path / "run", tmp_path / "amqp_real.pcap",
                                  protocols=[{"type": "amqp", "ports": [PORT], "send_request": True,
                                              "send_response": True, "max_body_length": MAX_BODY}],
                                  workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, truth["transactions"])
