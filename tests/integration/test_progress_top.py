"""Feedback on long runs (coordinator/progress.py, coordinator/top.py), with real processes.

- a file run without a terminal: a start line, periodic lines whose figures grow, one summary line
  whose packets and events equal the run's totals and the events written;
- the same run on a terminal (a pty): a redrawn progress bar, then the summary line;
- ``packetbeat top`` against a running instance's metrics endpoint: one row per process with the
  real pids and growing counters (``--once`` / not a terminal: one table), a worker killed and
  restarted shows up, on a pty the table is redrawn; once the run is gone it says so (exit 1).
"""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import psutil
import yaml

from tests.helpers import PCAPS, ROOT, read_events

PCAP = PCAPS / "http_real.pcap"
PROTOCOLS = [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


def _config(tmp, http=False):
    cfg = {"packetbeat.protocols": PROTOCOLS, "cluster.workers": 2,
           "output.file": {"path": str(tmp / "out"), "filename": "events"}}
    if http:
        cfg["http"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    path = tmp / "packetbeat.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _argv(cfg, *args):
    return [sys.executable, "-m", "coordinator", "-c", str(cfg), *args]


def _sigint_ignored() -> None:
    """In the child, before exec: SIGINT ignored, as a background job of a non-interactive shell
    (``pytest ... &`` in a CI script) has it. ``packetbeat top`` must still stop on the Ctrl-C sent
    below: Ctrl-C is its only way out (it once inherited the ignored SIGINT and ran on)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Pty:
    """``argv`` with stdin/stdout/stderr on a pseudo-terminal (``cols`` wide), started with SIGINT ignored."""

    def __init__(self, argv, env, cols=150):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(ROOT),
                                     close_fds=True, start_new_session=True, preexec_fn=_sigint_ignored)
        os.close(slave)
        self.out = b""

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def read(self, timeout: float, until=None) -> str:
        """Read until the process ends (or ``until(text)`` holds), at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until(self.text):
                return self.text
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:          # EIO: every writer closed the pty
                    break
                if not chunk:
                    break
                self.out += chunk
            elif self.proc.poll() is not None:
                break
        if until is None:
            self.proc.wait(timeout)
        return self.text

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self.master)


def _totals(text: str) -> dict:
    m = re.search(r"Total metrics: (\{.*\})", text)
    assert m, text[-2000:]
    return eval(m.group(1))          # noqa: S307 (the coordinator's own dict repr)


LOOPS = 12
SIZE = PCAP.stat().st_size


def test_progress_lines_without_a_terminal(tmp_path):
    cfg = _config(tmp_path)
    r = subprocess.run(_argv(cfg, "-I", str(PCAP), "-l", str(LOOPS), "-e"), capture_output=True, text=True,
                       timeout=180, cwd=str(ROOT), env=_env(PACKETBEAT_PROGRESS_INTERVAL="0.3"))
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("packetbeat: ")]
    assert lines[0] == ("packetbeat: reading %s (%.1f kB, %d loops) with 2 worker(s), events to file %s"
                        % (PCAP, SIZE / 1000, LOOPS, tmp_path / "out" / "events*")), lines[0]
    periodic = [re.match(r"packetbeat: (\d+)% of http_real\.pcap \((.+) of (.+)\), (\d+) packets \((\d+)/s\), "
                         r"(\d+) events, 0 dropped, \d+ s$", ln) for ln in lines[1:-1]]
    assert periodic and all(periodic), lines
    pct = [int(m.group(1)) for m in periodic]
    pkts = [int(m.group(4)) for m in periodic]
    events = [int(m.group(6)) for m in periodic]
    assert pct == sorted(pct) and pkts == sorted(pkts) and events == sorted(events), lines
    assert pct[-1] == 100, lines                # read to the end before the workers finished
    assert periodic[-1].group(3) == "%.1f MB" % (SIZE * LOOPS / 1e6)
    totals = _totals(r.stderr)
    read = totals["capture.packets"] + totals.get("capture.skipped_empty_tcp", 0)
    written = len(read_events(tmp_path / "out"))
    assert written == totals["publisher.published"] > 0
    m = re.match(r"packetbeat: done: (\d+) packets in [\d.]+ s \((\d+) analysed\), (\d+) events to file (\S+)$",
                 lines[-1])
    assert m, lines[-1]
    assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (read, totals["capture.packets"], written)
    assert m.group(4) == str(tmp_path / "out" / "events*")


def test_progress_bar_on_a_terminal(tmp_path):
    cfg = _config(tmp_path)
    t = Pty(_argv(cfg, "-I", str(PCAP), "-l", str(LOOPS)), _env(TERM="xterm-256color"))
    try:
        raw = t.read(180)
    finally:
        t.close()
    assert t.proc.returncode == 0, raw[-3000:]
    text = ANSI.sub("", raw)
    frames = [f for f in re.split(r"[\r\n]+", text) if "http_real.pcap" in f]
    assert len(frames) >= 3, text[-3000:]                     # redrawn, not printed once
    assert all(re.search(r"\d+ pkts/s \d+ events \d+ dropped", f) for f in frames), frames
    assert "━" in text and "100%" in frames[-1]
    assert re.search(r"\d+\.\d/%.1f MB" % (SIZE * LOOPS / 1e6), frames[-1]), frames[-1]
    assert "% of http_real.pcap" not in text                  # no periodic lines on a terminal
    m = re.search(r"packetbeat: done: (\d+) packets in [\d.]+ s \((\d+) analysed\), (\d+) events to file", text)
    assert m, text[-2000:]
    assert int(m.group(3)) == len(read_events(tmp_path / "out")) > 0
    assert "Traceback" not in text


def _children(pid) -> dict:
    out = {}
    for c in psutil.Process(pid).children():
        try:
            cmd = c.cmdline()
        except psutil.Error:
            continue
        if "coordinator.child" in cmd:
            role = cmd[cmd.index("coordinator.child") + 1]
            out["publisher" if role == "publisher" else "%s-%s" % (role, cmd[cmd.index("--index") + 1])] = c.pid
    return out


def _rows(text: str) -> dict:
    rows = {}
    for ln in text.splitlines():
        m = re.match(r"\s*((?:capture|worker)-\d+|publisher)\s+(\d+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+"
                     r"(\S+)\s+(\d+)\s*$", ln)
        if m:
            rows[m.group(1)] = m.groups()[1:]
    return rows


def _top(url, *args, timeout=30):
    return subprocess.run([sys.executable, "-m", "coordinator", "top", "--url", url, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT), env=_env())


def test_top_shows_each_process_of_a_running_instance(tmp_path):
    cfg = _config(tmp_path, http=True)
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen(_argv(cfg, "-I", str(PCAP), "-l", "0", "-e"), stdout=log, stderr=subprocess.STDOUT,
                           cwd=str(ROOT), env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not re.search(r"listening on: (http://127\.0\.0\.1:\d+)", (tmp_path / "run.log").read_text()):
            assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        url = re.search(r"listening on: (http://127\.0\.0\.1:\d+)", (tmp_path / "run.log").read_text()).group(1)
        while len(read_events(tmp_path / "out")) < 50:
            assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.2)

        r = _top(url, "--once", "--interval", "2")  # stdout is a pipe: one table (rates over 2 s)
        assert r.returncode == 0, r.stderr
        rows = _rows(r.stdout)
        pids = _children(run.pid)
        assert set(rows) == set(pids) == {"capture-0", "worker-0", "worker-1", "publisher"}, (r.stdout, pids)
        for name, (pid, state, restarts, packets, pps, events, eps, dropped) in rows.items():
            assert int(pid) == pids[name] and state == "running" and restarts == "0", (name, r.stdout)
        assert int(rows["capture-0"][3]) > 0 and rows["capture-0"][5] == "-"
        assert int(rows["worker-0"][3]) + int(rows["worker-1"][3]) > 0
        assert int(rows["publisher"][5]) > 0 and rows["publisher"][3] == "-"
        assert int(rows["capture-0"][4]) > 0            # packets/s between the two readings
        assert re.search(r"total: \d+ packets read, \d+ events published, 0 failed, 0 restarts", r.stdout)

        # on a terminal: redrawn until Ctrl-C
        t = Pty([sys.executable, "-m", "coordinator", "top", "--url", url, "--interval", "0.5"],
                _env(TERM="xterm-256color"))
        try:
            t.read(30, until=lambda text: ANSI.sub("", text).count("packetbeat top:") >= 4)
            os.killpg(t.proc.pid, signal.SIGINT)
            text = ANSI.sub("", t.read(30))
        finally:
            t.close()
        assert t.proc.returncode == 0, text
        frames = [_rows(f) for f in text.split("packetbeat top:")[1:]]
        assert len(frames) >= 4 and all(set(f) == set(pids) for f in frames[:-1]), text[-3000:]
        # the capture's packet count grows from frame to frame
        counts = [int(f["capture-0"][3]) for f in frames if "capture-0" in f]
        assert counts == sorted(counts) and counts[-1] > counts[0], counts
        assert "Traceback" not in text

        # a worker killed: restarted (file mode), and top says so
        os.kill(pids["worker-1"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            rows = _rows(_top(url, "--once", "--interval", "0.2").stdout)
            if rows.get("worker-1", ("", "", "0"))[2] == "1" and rows["worker-1"][1] == "running":
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.3)
        assert int(rows["worker-1"][0]) != pids["worker-1"]
        assert int(rows["worker-1"][0]) == _children(run.pid)["worker-1"]

        run.send_signal(signal.SIGINT)
        assert run.wait(90) == 1                   # the killed worker: exit 1
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert "packetbeat: done: stopped on request" in text, text[-3000:]
    r = _top(url, "--once")
    assert r.returncode == 1 and "no metrics endpoint at %s" % url in r.stderr
