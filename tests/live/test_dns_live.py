"""DNS against the real server on this machine: the generator drives
dnspython against a private dnsmasq (and its own dnspython responder) while
tcpdump captures into a temporary folder; the analyser's events over that
fresh capture must match the fresh truth file, field by field
(``tests/golden/test_dns_truth.py`` holds the checks).

Skipped, with the reason, without root, dnsmasq, tcpdump or dnspython.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "tests" / "golden" / "gen" / "dns_real.py"
PORT = 10053


def _generator():
    spec = importlib.util.spec_from_file_location("dns_real_gen", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("live DNS capture needs root (tcpdump on lo)")
    for exe in ("dnsmasq", "tcpdump"):
        if not (shutil.which(exe) or Path("/usr/sbin", exe).exists()):
            pytest.skip("live DNS capture needs %s (apt-get install -y %s)" % (exe, exe))
    pytest.importorskip("dns.query", reason="live DNS capture needs dnspython")
    out = tmp_path_factory.mktemp("dns_live")
    try:
        truth = _generator().generate(out, PORT, name="dns_live")
    except SystemExit as exc:       # the generator explains what is missing
        pytest.skip("live DNS capture unavailable: %s" % exc)
    return out, truth


def test_fresh_capture_matches_fresh_truth(fresh):
    from tests.golden.test_dns_truth import analyse, check_against_truth
    out, truth = fresh
    events = analyse(out / truth["pcap"], PORT)
    check_against_truth(events, truth)
    assert "0 packets dropped by kernel" in truth["tcpdump"]
