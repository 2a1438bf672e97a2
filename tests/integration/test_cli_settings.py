"""Packetbeat 8's command line and general settings, with the real CLI in a subprocess:
keystore, --strict.perms, --path.*, logging.*, the command list, -l -1,
export config hiding secrets, an unwritable output path, an unsupported link
type, and the per-protocol index / pipeline / keep_null options."""
from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys

import yaml

from tests.helpers import PCAPS, ROOT, read_events

COMMANDS = ("run", "setup", "test config", "test output", "export config", "export template",
            "export ilm-policy", "export index-pattern", "export dashboard", "keystore", "version", "devices",
            "keygen", "top")


def cli(*args, cwd, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True, text=True,
                          timeout=120, cwd=str(cwd), input=stdin,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def write_cfg(path, cfg: dict):
    path.write_text(yaml.safe_dump(cfg))
    os.chmod(path, 0o644)
    return path


BASE = {"packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}], "cluster.workers": 1}


def test_keystore_commands_file_format_and_resolution(tmp_path):
    """create / add --stdin / list / remove; the file is Beats' format, mode 0600 in path.data;
    ${KEY} resolves from it before the environment."""
    from coordinator.keystore import Keystore, decrypt
    cfg = write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{
        "output.file": {"path": str(tmp_path / "out"), "filename": "${FNAME}"}, "cluster.workers": "${W}"}))
    p = cli("keystore", "list", cwd=tmp_path)
    assert p.returncode == 1 and "keystore create" in p.stderr
    p = cli("keystore", "create", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    ks = tmp_path / "data" / "packetbeat.keystore"
    assert stat.S_IMODE(ks.stat().st_mode) == 0o600
    assert cli("keystore", "create", cwd=tmp_path).returncode == 1          # exists: --force needed
    assert cli("keystore", "create", "--force", cwd=tmp_path).returncode == 0
    assert cli("keystore", "add", "W", "--stdin", cwd=tmp_path, stdin="1\n").returncode == 0
    assert cli("keystore", "add", "FNAME", "--stdin", cwd=tmp_path, stdin="from-keystore\n").returncode == 0
    p = cli("keystore", "add", "W", "--stdin", cwd=tmp_path, stdin="2")
    assert p.returncode == 1 and "--force" in p.stderr
    assert cli("keystore", "add", "W", "--stdin", "--force", cwd=tmp_path, stdin="2").returncode == 0
    assert cli("keystore", "list", cwd=tmp_path).stdout.split() == ["FNAME", "W"]
    assert stat.S_IMODE(ks.stat().st_mode) == 0o600
    raw = ks.read_bytes()
    assert raw.startswith(b"v1") and b"from-keystore" not in raw
    assert json.loads(decrypt(raw))["W"] == {"value": "Mg=="}       # base64 of "2", as Beats stores []byte
    assert Keystore(str(ks)).load()["FNAME"] == b"from-keystore"
    # the keystore wins over the environment: W=many would not be an integer
    p = cli("test", "config", cwd=tmp_path, env={"W": "many", "FNAME": "from-env"})
    assert p.returncode == 0, p.stderr
    p = cli("-I", str(PCAPS / "http_sample.pcap"), "-e", cwd=tmp_path, env={"FNAME": "from-env"})
    assert p.returncode == 0, p.stderr
    assert [f.name.split("-")[0] for f in (tmp_path / "out").iterdir()] == ["from"] and \
        all(f.name.startswith("from-keystore-") for f in (tmp_path / "out").iterdir())
    os.chmod(ks, 0o644)                 # strict.perms: a keystore others can read is refused
    p = cli("test", "config", cwd=tmp_path)
    assert p.returncode == 1 and "chmod 600" in p.stderr
    assert cli("test", "config", "--strict.perms=false", cwd=tmp_path).returncode == 0
    os.chmod(ks, 0o600)
    assert cli("keystore", "remove", "W", cwd=tmp_path).returncode == 0
    assert cli("keystore", "list", cwd=tmp_path).stdout.split() == ["FNAME"]
    p = cli("keystore", "remove", "NOPE", cwd=tmp_path)
    assert p.returncode == 1 and "NOPE" in p.stderr
    p = cli("test", "config", cwd=tmp_path, env={"W": "many"})      # now from the environment
    assert p.returncode == 1 and "cluster.workers" in p.stderr
    # keystore.path moves it
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{"output.console": {}, "keystore.path": "sec/ks"}))
    assert cli("keystore", "create", cwd=tmp_path).returncode == 0
    assert (tmp_path / "sec" / "ks").exists()


def test_strict_perms(tmp_path):
    cfg = write_cfg(tmp_path / "pb.yml", dict(BASE, **{"output.console": {}}))
    assert cli("test", "config", "-c", str(cfg), cwd=tmp_path).returncode == 0
    os.chmod(cfg, 0o664)
    p = cli("test", "config", "-c", str(cfg), cwd=tmp_path)
    assert p.returncode == 1 and "can only be writable by the owner" in p.stderr and "chmod go-w" in p.stderr
    assert cli("test", "config", "-c", str(cfg), "--strict.perms=false", cwd=tmp_path).returncode == 0
    os.chmod(cfg, 0o644)
    if os.geteuid() == 0:              # a file of another user
        os.chown(cfg, 54321, 54321)
        p = cli("test", "config", "-c", str(cfg), cwd=tmp_path)
        assert p.returncode == 1 and "must be owned by the user identifier" in p.stderr
        assert cli("test", "config", "-c", str(cfg), "--strict.perms=false", cwd=tmp_path).returncode == 0


def test_help_and_unknown_command_list_every_command(tmp_path):
    h = cli("--help", cwd=tmp_path)
    u = cli("frobnicate", cwd=tmp_path)
    assert h.returncode == 0 and u.returncode == 1
    assert "unknown command 'frobnicate'" in u.stderr
    for text in (h.stdout, u.stderr):
        listed = [line.split("  ")[1].strip() for line in text.splitlines() if line.startswith("  ") and
                  line.split("  ")[1].strip() in COMMANDS]
        assert sorted(listed) == sorted(COMMANDS), text


def test_negative_loop_count_refused(tmp_path):
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{"output.console": {}}))
    p = cli("-I", str(PCAPS / "http_sample.pcap"), "-l", "-1", cwd=tmp_path)
    assert p.returncode == 1 and "-l -1" in p.stderr and "0 loops forever" in p.stderr


def test_export_config_hides_secrets(tmp_path):
    from coordinator.keystore import Keystore
    Keystore(str(tmp_path / "data" / "packetbeat.keystore")).save({"ES_PWD": b"s3cret-ks"})
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{
        "output.elasticsearch": {"hosts": ["http://127.0.0.1:9"], "username": "elastic", "password": "${ES_PWD}"},
        "output.redis": {"enabled": False, "password": "redis-pw"},
        "setup.kibana": {"host": "127.0.0.1:5601", "api_key": "id:literal-key"}}))
    p = cli("export", "config", "-E", "output.elasticsearch.username=bob", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = yaml.safe_load(p.stdout)
    es = out["output"]["elasticsearch"]
    assert es["password"] == "${ES_PWD}" and es["username"] == "bob"
    assert out["output"]["redis"]["password"] == "<hidden>"
    assert out["setup"]["kibana"]["api_key"] == "<hidden>"
    assert "s3cret-ks" not in p.stdout and "literal-key" not in p.stdout and "redis-pw" not in p.stdout


def test_unwritable_output_path_found_before_any_packet(tmp_path):
    (tmp_path / "afile").write_text("x")
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{"output.file": {"path": str(tmp_path / "afile" / "out")}}))
    p = cli("test", "config", cwd=tmp_path)
    assert p.returncode == 1 and "output.file.path" in p.stderr and "not a directory" in p.stderr
    p = cli("-I", str(PCAPS / "http_sample.pcap"), "-e", cwd=tmp_path)
    assert p.returncode == 1 and "output.file.path" in p.stderr
    assert "Total metrics" not in p.stderr and "analysing" not in p.stderr      # nothing started


def test_unwritable_output_path_as_another_user(tmp_path):
    """Run as nobody: a root-owned 0755 directory is not writable."""
    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as nobody")
    import pwd
    nobody = pwd.getpwnam("nobody")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    cfg = write_cfg(tmp_path / "pb.yml", dict(BASE, **{"output.file": {"path": str(locked / "out")},
                                                        "path.home": str(tmp_path / "home")}))
    os.chmod(tmp_path, 0o755)
    try:
        p = subprocess.run([sys.executable, "-m", "coordinator", "test", "config", "-c", str(cfg)],
                           capture_output=True, text=True, timeout=60, cwd="/", user=nobody.pw_uid,
                           env=dict(os.environ, PYTHONPATH=str(ROOT), HOME="/"))
    except PermissionError:
        pytest.skip("the interpreter is not executable by nobody here")
    if "Permission denied" in p.stderr and "coordinator" not in p.stderr:
        pytest.skip("the source tree is not readable by nobody here")
    assert p.returncode == 1 and "output.file.path" in p.stderr and "not writable" in p.stderr, p.stderr


def test_unsupported_link_type_is_named(tmp_path):
    pcap = tmp_path / "wifi.pcap"
    recs = b"".join(struct.pack("<IIII", 1700000000 + i, 0, 24, 24) + bytes(24) for i in range(3))
    pcap.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105) + recs)
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{"output.file": {"path": str(tmp_path / "out")}}))
    p = cli("-I", str(pcap), "-e", cwd=tmp_path)
    assert p.returncode == 1
    assert "link type 105 (IEEE802_11) is not supported (3 packets" in p.stderr, p.stderr
    assert "ETHERNET" in p.stderr        # what is supported


def test_paths_logging_json_files_and_rotation(tmp_path):
    """--path.home: -c relative to path.config (= home), logs in home/logs, agent id in
    home/data; logging.json with files.permissions; rotateonstartup keeps keepfiles."""
    home = tmp_path / "home"
    home.mkdir()
    write_cfg(home / "pb.yml", dict(BASE, **{
        "output.file": {"path": str(tmp_path / "out")},
        "logging": {"json": True, "level": "debug", "files": {"permissions": "0640", "keepfiles": 2}}}))
    for _ in range(3):
        p = cli("--path.home", str(home), "-c", "pb.yml", "-I", str(PCAPS / "http_sample.pcap"), cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    logs = sorted(f.name for f in (home / "logs").iterdir())
    assert logs == ["packetbeat", "packetbeat.1", "packetbeat.2"]     # rotated at each start, keepfiles: 2
    assert stat.S_IMODE((home / "logs" / "packetbeat").stat().st_mode) == 0o640
    lines = [json.loads(x) for x in (home / "logs" / "packetbeat").read_text().splitlines()]
    assert lines and all(x["log.level"] in ("debug", "info", "warning", "error") and "@timestamp" in x and "message" in x
                         and x["service.name"] == "packetbeat" for x in lines)
    assert any(x["log.logger"] == "coordinator" and x["message"].startswith("Total metrics") for x in lines)
    assert {x["packetbeat.process"] for x in lines} >= {"coordinator", "worker-0"}      # the children's lines too
    assert (home / "data" / "meta.json").exists()
    assert not (tmp_path / "logs").exists() and not (tmp_path / "data").exists()
    # --path.logs alone moves the logs; ecs: false gives the 7.x names; to_files: false logs nothing
    write_cfg(home / "pb.yml", dict(BASE, **{"output.file": {"path": str(tmp_path / "out")},
                                             "logging": {"json": True, "ecs": False}}))
    p = cli("--path.home", str(home), "--path.logs", str(tmp_path / "elsewhere"), "-c", "pb.yml",
            "-I", str(PCAPS / "http_sample.pcap"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    first = json.loads((tmp_path / "elsewhere" / "packetbeat").read_text().splitlines()[0])
    assert set(first) >= {"level", "timestamp", "logger", "caller", "message"} and "log.level" not in first
    write_cfg(home / "pb.yml", dict(BASE, **{"output.file": {"path": str(tmp_path / "out")},
                                             "logging": {"to_files": False, "files.path": str(tmp_path / "none")}}))
    p = cli("--path.home", str(home), "-c", "pb.yml", "-I", str(PCAPS / "http_sample.pcap"), cwd=tmp_path)
    assert p.returncode == 0 and not (tmp_path / "none").exists()
    assert " INFO " not in p.stderr and "Total metrics" not in p.stderr     # no log lines (the progress lines stay)


def test_protocol_index_pipeline_and_keep_null(tmp_path):
    """Per-protocol index (a format string) and pipeline land in @metadata; null fields are
    dropped unless keep_null (flows keep theirs here)."""
    write_cfg(tmp_path / "packetbeat.yml", {
        "cluster.workers": 1, "output.file": {"path": str(tmp_path / "out"), "filename": "ev"},
        "packetbeat.protocols": [{"type": "http", "ports": [80, 8080], "index": "web-%{[network.transport]}-%{+yyyy}",
                                  "pipeline": "GeoIP", "fields": {"gone": None, "kept": 1}}],
        "packetbeat.flows": {"keep_null": True, "fields": {"z": None}, "index": "flows-x"},
        "processors": [{"add_fields": {"target": "", "fields": {"n": None}}}]})
    p = cli("-I", str(PCAPS / "http_sample.pcap"), "-e", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    evs = read_events(tmp_path / "out")
    http = [e for e in evs if e.get("type") == "http"]
    flows = [e for e in evs if e.get("type") == "flow"]
    assert http and flows
    for e in http:
        assert e["@metadata"] == {"raw_index": "web-tcp-" + e["@timestamp"][:4], "pipeline": "GeoIP"}
        assert e["fields"] == {"kept": 1} and "n" not in e
    for e in flows:
        assert e["@metadata"] == {"raw_index": "flows-x"} and e["fields"] == {"z": None} and e["n"] is None


def test_shutdown_timeout_bounds_the_drain(tmp_path):
    """packetbeat.shutdown_timeout: with Elasticsearch unreachable the publisher would retry for
    a long time; a stop ends within seconds: the drain is bounded by the timeout (exit 130) unless
    the publisher gives up on the dead output first, naming the events not delivered (exit 1)."""
    import signal
    import time
    write_cfg(tmp_path / "packetbeat.yml", dict(BASE, **{
        "output.elasticsearch": {"hosts": ["http://127.0.0.1:9"], "max_retries": 1000,
                                 "backoff": {"init": "1s", "max": "2s"}},
        "packetbeat.shutdown_timeout": "2s"}))
    log = tmp_path / "run.log"
    with open(log, "w") as fh:
        p = subprocess.Popen([sys.executable, "-m", "coordinator", "-I", str(PCAPS / "http_sample.pcap"), "-e"],
                             cwd=str(tmp_path), stdout=fh, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            deadline = time.monotonic() + 60
            while "analysing" not in log.read_text():
                assert p.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            time.sleep(3)                   # events are read and waiting for the output
            p.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            rc = p.wait(120)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = log.read_text()
    # either the coordinator's bound ends the drain (exit 130), or the publisher, knowing its
    # output is down, gives up first and names what it could not deliver (exit 1): both well
    # before 1000 retries would end
    assert (rc == 130 and "shutdown_timeout (2s) reached while draining" in text) or \
        (rc == 1 and "events were not delivered" in text), text
    assert took < 30, took
