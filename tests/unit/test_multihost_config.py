"""cluster.role / shards / listen / curve validation, endpoint choice, key files (packetbeat keygen)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import zmq
import zmq.auth

from shared import endpoints, transport
from coordinator.config import validate_tree
from shared.config import ConfigError
from tests.helpers import ROOT

CURVE_CAPTURE = {"secret_key_file": "/k/c.key_secret", "public_key_file": "/k/c.key",
                 "server_public_key_file": "/k/w.key"}
CURVE_WORKERS = {"secret_key_file": "/k/w.key_secret", "public_key_file": "/k/w.key"}


def cluster(**kw):
    return validate_tree({"cluster": kw, "output": {"console": {}}}).cluster


def error(**kw) -> str:
    with pytest.raises(ConfigError) as ei:
        validate_tree({"cluster": kw, "output": {"console": {}}})
    return str(ei.value)


def test_default_role_is_all_with_ipc_endpoints():
    c = cluster(workers=2)
    assert c["role"] == "all" and not transport.curve_on(c)
    assert endpoints.shard_connect(c, "/run", 1) == "ipc:///run/shard-1"
    assert endpoints.shard_binds(c, "/run", 1) == ["ipc:///run/shard-1"]
    assert endpoints.capture_name(c, 0) == "capture-0"


def test_capture_role():
    shards = ["tcp://10.0.0.2:7000", "tcp://10.0.0.2:7001", "tcp://10.0.0.3:7000"]
    c = cluster(role="capture", shards=shards, name="hostA", curve=CURVE_CAPTURE)
    assert c["workers"] == 3                         # one shard per entry
    assert [endpoints.shard_connect(c, "/run", i) for i in range(3)] == shards
    assert endpoints.capture_name(c, 1) == "hostA/capture-1"
    assert transport.curve_on(c)


def test_workers_role():
    c = cluster(role="workers", listen="tcp://0.0.0.0:7000", workers=3, first_shard=3, captures=2,
                curve=CURVE_WORKERS)
    assert endpoints.shard_binds(c, "/run", 2) == ["ipc:///run/shard-2", "tcp://0.0.0.0:7002"]
    assert c["captures"] == 2 and c["first_shard"] == 3 and transport.curve_on(c)


@pytest.mark.parametrize("kw,path", [
    ({"role": "both"}, "cluster.role"),
    ({"role": "capture"}, "cluster.shards"),
    ({"role": "capture", "shards": ["10.0.0.2:7000"]}, "cluster.shards[0]"),
    ({"role": "capture", "shards": ["tcp://10.0.0.2"]}, "cluster.shards[0]"),
    ({"role": "capture", "shards": ["tcp://h:1", "tcp://h:1"], "curve": CURVE_CAPTURE}, "cluster.shards"),
    ({"role": "workers"}, "cluster.listen"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:7000", "curve": CURVE_WORKERS}, "cluster.workers"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:99999", "workers": 1}, "cluster.listen"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:65535", "workers": 2, "curve": CURVE_WORKERS}, "cluster.listen"),
    ({"shards": ["tcp://h:1"]}, "cluster.shards"),
    ({"listen": "tcp://0.0.0.0:7000"}, "cluster.listen"),
    ({"replay": True}, "cluster.replay"),
    ({"role": "capture", "shards": ["tcp://10.0.0.2:7000"]}, "cluster.curve.secret_key_file"),
    ({"role": "capture", "shards": ["tcp://10.0.0.2:7000"],
      "curve": {"secret_key_file": "a", "public_key_file": "b"}}, "cluster.curve.server_public_key_file"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:7000", "workers": 1}, "cluster.curve.secret_key_file"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:7000", "curve": {"enabled": "yes"}}, "cluster.curve.enabled"),
    ({"role": "workers", "listen": "tcp://0.0.0.0:7000", "curve": {"secret_key_file": "x", "colour": 1}},
     "cluster.curve.colour"),
    ({"role": "capture", "shards": ["tcp://h:1"], "curve": dict(CURVE_CAPTURE, client_keys_dir="/k")},
     "cluster.curve.client_keys_dir"),
])
def test_errors_name_the_key(kw, path):
    assert error(**kw).startswith(path + ":")


def test_curve_is_required_across_hosts_unless_turned_off_explicitly():
    assert "packetbeat keygen" in error(role="workers", listen="tcp://0.0.0.0:7000", workers=1)
    c = cluster(role="workers", listen="tcp://0.0.0.0:7000", workers=1, curve={"enabled": False})
    assert not transport.curve_on(c)
    c = cluster(role="capture", shards=["tcp://10.0.0.2:7000"], curve={"enabled": False})
    assert not transport.curve_on(c)
    # loopback only: no keys needed, and none used unless asked
    c = cluster(role="workers", listen="tcp://127.0.0.1:7000", workers=1)
    assert not transport.curve_on(c)
    c = cluster(role="capture", shards=["tcp://localhost:7000", "tcp://[::1]:7001"])
    assert not transport.curve_on(c)
    assert transport.curve_on(cluster(role="capture", shards=["tcp://127.0.0.1:7000"],
                                      curve=dict(CURVE_CAPTURE, enabled=True)))
    assert "cluster.curve.secret_key_file" in error(role="capture", shards=["tcp://127.0.0.1:7000"],
                                                    curve={"enabled": True})


def test_keygen_writes_a_keypair_with_a_private_secret(tmp_path):
    r = subprocess.run([sys.executable, "-m", "coordinator", "keygen", str(tmp_path / "k"), "hostA"],
                       capture_output=True, text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    pub, sec = tmp_path / "k" / "hostA.key", tmp_path / "k" / "hostA.key_secret"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    public = transport.read_key(str(pub))
    secret = transport.read_key(str(sec), secret=True)
    assert transport.read_key(str(sec)) == public
    assert zmq.curve_public(secret) == public            # a real pair
    with pytest.raises(ConfigError, match="no secret-key"):
        transport.read_key(str(pub), secret=True)
    # zmq.auth reads the same files (the ZAP allow-list uses them)
    assert zmq.auth.load_certificate(str(sec)) == (public, secret)
    # never overwrites
    r = subprocess.run([sys.executable, "-m", "coordinator", "keygen", str(tmp_path / "k"), "hostA"],
                       capture_output=True, text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and "exists" in r.stderr
    assert transport.read_key(str(pub)) == public


def test_key_files(tmp_path):
    bare = tmp_path / "bare.key"
    public, secret = zmq.curve_keypair()
    bare.write_text(public.decode() + "\n")
    assert transport.read_key(str(bare)) == public
    bad = tmp_path / "bad.key"
    bad.write_text("public-key = \"short\"\n")
    with pytest.raises(ConfigError, match="40-character"):
        transport.read_key(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        transport.read_key(str(tmp_path / "missing.key"))


def test_missing_key_file_is_one_clear_error_before_the_run(tmp_path):
    cfg = tmp_path / "w.yml"
    cfg.write_text("cluster:\n  role: workers\n  workers: 1\n  listen: tcp://0.0.0.0:7000\n  curve:\n"
                   "    secret_key_file: %s/none.key_secret\n    public_key_file: %s/none.key\n"
                   "output.file:\n  path: %s/out\n" % (tmp_path, tmp_path, tmp_path))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(cfg), "test", "config"],
                       capture_output=True, text=True, cwd=str(ROOT), env=env)
    assert r.returncode == 0, r.stderr                  # test config checks the settings, not the files
    r = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(cfg)], capture_output=True, text=True,
                       cwd=str(ROOT), env=env, timeout=60)
    assert r.returncode == 1
    assert "Exiting: cluster.curve.secret_key_file: cannot read key file" in r.stderr


def test_worker_streams_end_all_at_once():
    from worker.process import ALL_STREAMS, ALL_STREAMS_ONLY, CaptureStreams
    st = CaptureStreams(ALL_STREAMS_ONLY)            # a live worker host: captures come and go
    assert st.end("hostA/capture-0") and st.open
    assert not st.end("hostA/capture-0")
    assert st.end(ALL_STREAMS) and st.open == 0 and not st.forced
    st = CaptureStreams(2)                           # replay: one end-of-stream per capture, or all at once
    st.end("hostA/capture-0")
    st.end(ALL_STREAMS)
    assert st.open == 0


def test_worker_host_applies_the_capture_hosts_process_records():
    s = validate_tree({"cluster": {"role": "workers", "listen": "tcp://127.0.0.1:7000", "workers": 1},
                       "output": {"console": {}}})
    assert s.procs["enabled"]
    assert not validate_tree({"output": {"console": {}}}).procs["enabled"]


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_connection_watch_reports_and_counts(tmp_path, caplog):
    import collections
    import logging
    from types import SimpleNamespace
    caplog.set_level(logging.INFO, logger="packetbeat.transport")
    srv_pub, srv_sec = transport.keygen(str(tmp_path), "srv")
    cli_pub, cli_sec = transport.keygen(str(tmp_path), "cli")
    other_pub, _ = transport.keygen(str(tmp_path), "other")
    port_up, port_none = _free_port(), _free_port()
    ctx = zmq.Context()
    server = ctx.socket(zmq.PULL)
    server.curve_secretkey = transport.read_key(srv_sec, secret=True)
    server.curve_publickey = transport.read_key(srv_pub)
    server.curve_server = True
    server.bind("tcp://127.0.0.1:%d" % port_up)
    counters = collections.Counter()
    socks = []
    try:
        for i, (port, server_key) in enumerate(((port_up, srv_pub), (port_up, other_pub), (port_none, srv_pub))):
            settings = SimpleNamespace(cluster={
                "role": "capture", "shards": ["tcp://127.0.0.1:%d" % port] * 3,
                "curve": {"enabled": True, "secret_key_file": cli_sec, "public_key_file": cli_pub,
                          "server_public_key_file": server_key}})
            s = ctx.socket(zmq.PUSH)
            s.linger = 0
            transport.connect_shard(s, settings, "/nowhere", i, "cap", counters)
            socks.append(s)
        watch = transport._watches[id(ctx)]
        _wait(lambda: watch.state == {0: "up", 1: "refused", 2: "unreachable"})
        assert [watch.is_up(i) for i in range(3)] == [True, False, False]
        assert not any(watch.closed_after_up(i) for i in range(3))
        assert counters == {"capture.remote_refused": 1, "capture.remote_unreachable": 1}
        socks[0].send(b"x")
        assert server.recv() == b"x"                     # the good shard delivers
        text = caplog.text
        assert "shard 0 at tcp://127.0.0.1:%d is up (CurveZMQ handshake done)" % port_up in text
        assert "shard 1 at tcp://127.0.0.1:%d: the CurveZMQ handshake failed" % port_up in text
        assert "shard 2 at tcp://127.0.0.1:%d: cannot connect" % port_none in text
    finally:
        for s in socks + [server]:
            s.close(linger=0)
        ctx.term()                                      # the watch lets go of its monitors
        transport._watches.pop(id(ctx), None)
