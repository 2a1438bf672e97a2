"""NFS against a real server on this machine: the generator starts NFS-Ganesha
and rpcbind in a network namespace of its own, drives its ONC-RPC client and
libnfs's clients while tcpdump captures into a temporary folder; the
analyser's events over that fresh capture must match the fresh truth file
(``tests/golden/test_nfs_truth.py`` holds the checks).

Skipped, with the reason, without root, ip, rpcbind, ganesha.nfsd, nfs-ls or tcpdump.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "tests" / "golden" / "gen" / "nfs_real.py"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("live NFS capture needs root (network namespace, tcpdump)")
    for exe in ("ip", "rpcbind", "ganesha.nfsd", "nfs-ls", "tcpdump"):
        if not (shutil.which(exe) or Path("/usr/sbin", exe).exists()):
            pytest.skip("live NFS capture needs %s (Debian: nfs-ganesha nfs-ganesha-vfs rpcbind "
                        "libnfs-utils tcpdump iproute2)" % exe)
    out = tmp_path_factory.mktemp("nfs_live")
    p = subprocess.run([sys.executable, str(GEN), "--out", str(out), "--netns", "nfs-pblive-%d" % os.getpid()],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        pytest.skip("live NFS capture unavailable: %s" % (p.stderr or p.stdout)[-1000:])
    return out, json.loads((out / "nfs_real.truth.json").read_text())


def test_fresh_capture_matches_fresh_truth(fresh, tmp_path):
    from tests.golden.test_nfs_truth import analyse, check_calls, check_coverage, check_libnfs
    out, truth = fresh
    events = analyse(tmp_path, out / "nfs_real.pcap", truth)
    check_coverage(truth)
    check_calls(truth, events)
    check_libnfs(truth, events)
    assert truth["tcpdump"] == ["0 packets dropped by kernel"]
