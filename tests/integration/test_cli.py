"""The command line: sub-commands, exit codes, errors before any process starts."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True, text=True,
                          timeout=60, cwd=str(cwd), env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_version():
    p = cli("version")
    assert p.returncode == 0 and p.stdout.startswith("packetbeat version ")


def test_test_config_on_shipped_file():
    p = cli("test", "config", "-c", str(ROOT / "packetbeat.yml"))
    assert p.returncode == 0, p.stderr
    assert "Config OK" in p.stdout


def test_bad_config_names_the_key_and_exits_1(tmp_path):
    cfg = tmp_path / "pb.yml"
    cfg.write_text("packetbeat.protocols:\n- type: http\n  ports: [80]\n  send_headerz: true\noutput.console: {}\n")
    p = cli("-c", str(cfg), "-I", "/nonexistent.pcap")
    assert p.returncode == 1
    assert "packetbeat.protocols[0].send_headerz" in p.stderr
    assert "Traceback" not in p.stderr


def test_override_error(tmp_path):
    p = cli("test", "config", "-c", str(ROOT / "packetbeat.yml"), "-E", "cluster.workers=many")
    assert p.returncode == 1 and "cluster.workers" in p.stderr


def test_missing_capture_file():
    p = cli("-c", str(ROOT / "packetbeat.yml"), "-I", "/nonexistent/x.pcap")
    assert p.returncode == 1 and "/nonexistent/x.pcap" in p.stderr


def test_export_config_applies_overrides():
    p = cli("export", "config", "-c", str(ROOT / "packetbeat.yml"), "-E", "cluster.workers=5")
    assert p.returncode == 0, p.stderr
    assert "workers: 5" in p.stdout


def test_debug_selectors_and_stderr(tmp_path):
    """-e sends the log to stderr; -d turns on debug output for the named selectors only."""
    from tests.helpers import PCAPS
    cfg = tmp_path / "pb.yml"
    cfg.write_text("packetbeat.protocols: [{type: http, ports: [80, 8080]}]\n"
                   "output.file: {path: %s, filename: ev}\nlogging.to_stderr: false\n" % (tmp_path / "out"))
    quiet = cli("-c", str(cfg), "-I", str(PCAPS / "http_sample.pcap"), "-e", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "Total metrics" in quiet.stderr and "DEBUG" not in quiet.stderr
    loud = cli("-c", str(cfg), "-I", str(PCAPS / "http_sample.pcap"), "-e", "-d", "worker", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    debug = [line for line in loud.stderr.splitlines() if " DEBUG " in line]
    assert debug and all("packetbeat.worker" in line for line in debug)
