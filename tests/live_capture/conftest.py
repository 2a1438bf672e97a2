"""Fixtures for live-capture tests: namespaces, a packetbeat run inside one."""
from __future__ import annotations

import itertools
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import ROOT, read_events
from tests.live_capture.netns import Veth, netns_available

_nets = itertools.count(10 + os.getpid() % 40)


@pytest.fixture
def veth(request):
    why = netns_available()
    if why:
        pytest.skip(why)
    net = next(_nets)
    v = Veth("%d" % net, net)
    yield v
    v.close()


class LiveRun:
    """``packetbeat`` capturing on the server end of ``veth`` (inside its namespace)."""

    def __init__(self, veth: Veth, tmp_path: pathlib.Path, cfg: dict, args=(), captures: int = 1, wrap=()):
        self.out = tmp_path / "out"
        self.out.mkdir(exist_ok=True)
        os.chmod(self.out, 0o777)
        self.log = tmp_path / "packetbeat.log"
        base = {"packetbeat.protocols": [{"type": "http", "ports": [8080]}],
                "output.file": {"path": str(self.out), "filename": "events"},
                "cluster.workers": 2, "cluster.captures": captures, "logging.to_stderr": True}
        base.update(cfg)
        path = tmp_path / "packetbeat.yml"
        path.write_text(yaml.safe_dump(base))
        self.captures = captures
        self.logfh = open(self.log, "w")
        os.chmod(tmp_path, 0o755)                # the settings file is read before any privilege drop,
        os.chmod(path, 0o644)                    # but a dropped child may still open it again
        self.proc = subprocess.Popen([*wrap, *veth.srv(sys.executable, "-m", "coordinator", "-c", str(path), "-e", "-v",
                                                       *args)],
                                     cwd=str(ROOT), stdout=self.logfh, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def text(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count("capturing on") >= self.captures:
                return
            if self.proc.poll() is not None:
                raise AssertionError("packetbeat exited early (%s):\n%s" % (self.proc.returncode, self.text()))
            time.sleep(0.1)
        raise AssertionError("capture not ready:\n" + self.text())

    def stop(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.logfh.close()
        return rc

    def events(self) -> list[dict]:
        return read_events(self.out)


@pytest.fixture
def live(tmp_path):
    runs = []

    def start(veth, cfg=None, args=(), captures=1, wrap=()):
        run = LiveRun(veth, tmp_path, cfg or {}, args, captures, wrap)
        runs.append(run)
        return run
    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


@pytest.fixture
def http_server(veth):
    proc = subprocess.Popen(veth.srv(sys.executable, "-m", "http.server", "8080", "--bind", veth.srv_ip),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT / "tests"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = subprocess.run(veth.cli("curl", "-s", "-o", "/dev/null", "http://%s:8080/" % veth.srv_ip))
        if r.returncode == 0:
            break
        time.sleep(0.1)
    yield proc
    proc.kill()
    proc.wait()
