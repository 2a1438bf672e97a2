"""examples/packetbeat-linekv, an analyser outside the project, pip-installed into a fresh
virtual environment: packetbeat-py finds it through the ``packetbeat.protocols`` entry point
(no edit of this project), lists it as registered, and its events come out of the pipeline."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest
import yaml

from bench.flood import ACK, FIN, PSH, SYN, Writer, frame
from tests.helpers import ROOT, read_events

EXAMPLE = ROOT / "examples" / "packetbeat-linekv"
CLIENT, SERVER = bytes((10, 7, 0, 1)), bytes((10, 7, 0, 2))
PORT = 7379
# one connection: pipelined requests (two in one segment), one answer split over two segments
EXCHANGES = [
    (b"SET colour blue\r\n", [b"+OK\r\n"]),
    (b"GET colour\r\nGET shape\r\n", [b"+OK blue\r\n-ERR no", b" such key\r\n"]),
    (b"DEL colour\r\n", [b"+OK 1\r\n"]),
    (b"GET colour\r\n", []),                    # never answered: published at the close
]


def write_capture(path) -> None:
    w = Writer(path)
    t, cs, ss, cp = 0, 1000, 9000, 40001
    w.add(t, frame(CLIENT, cp, SERVER, PORT, cs, 0, SYN))
    w.add(t + 10, frame(SERVER, PORT, CLIENT, cp, ss, cs + 1, SYN | ACK))
    cs, ss = cs + 1, ss + 1
    t += 100
    for req, answers in EXCHANGES:
        w.add(t, frame(CLIENT, cp, SERVER, PORT, cs, ss, PSH | ACK, req))
        cs += len(req)
        t += 1500
        for a in answers:
            w.add(t, frame(SERVER, PORT, CLIENT, cp, ss, cs, PSH | ACK, a))
            ss += len(a)
            t += 200
        t += 1000
    w.add(t, frame(CLIENT, cp, SERVER, PORT, cs, ss, FIN | ACK))
    w.add(t + 10, frame(SERVER, PORT, CLIENT, cp, ss, cs + 1, FIN | ACK))
    w.close()


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    """A new virtual environment that sees this project (and its dependencies) through a
    .pth file, with the example pip-installed into it from its source directory."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    p = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (root / "venv" / site.split(str(venv) + os.sep, 1)[1] / "packetbeat_host.pth").write_text(
        "%s\n%s\n" % (ROOT, sysconfig.get_paths()["purelib"]))
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps",
                        str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return py


def test_installed_example_analyser_runs_in_the_pipeline(venv_python, tmp_path):
    pcap = tmp_path / "linekv.pcap"
    write_capture(pcap)
    out = tmp_path / "out"
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "linekv", "ports": [PORT], "send_request": True}],
        "output.file": {"path": str(out), "filename": "events"},
        "cluster.workers": 2,
    }))
    p = subprocess.run([str(venv_python), "-m", "coordinator", "-c", str(cfg), "-I", str(pcap), "-e"],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "linekv (entry point linekv.plugin:LineKvPlugin)" in p.stderr
    assert "analysing: linekv tcp %d" % PORT in p.stderr
    events = sorted(read_events(out), key=lambda e: e["event"]["start"])
    got = [(e["method"], e.get("resource"), e["status"], e["linekv"], e.get("error", {}).get("message"))
           for e in events]
    assert got == [
        ("SET", "colour", "OK", {}, None),
        ("GET", "colour", "OK", {"value": "blue"}, None),
        ("GET", "shape", "Error", {"error": "ERR no such key"}, None),
        ("DEL", "colour", "OK", {"value": "1"}, None),
        ("GET", "colour", "Error", {}, "Unmatched request"),
    ]
    assert all(e["type"] == "linekv" and e["server"]["port"] == PORT for e in events)
    assert events[0]["request"] == "SET colour blue" and events[0]["event"]["duration"] == 1_500_000


def test_an_unknown_option_of_the_example_is_a_configuration_error(venv_python, tmp_path):
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({"packetbeat.protocols": [{"type": "linekv", "max_lines": 9}],
                                   "output.console.enabled": True}))
    p = subprocess.run([str(venv_python), "-m", "coordinator", "test", "config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode == 1 and "packetbeat.protocols[0].max_lines" in p.stderr
