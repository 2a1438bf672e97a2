"""deploy/: every configuration the units and manifests use passes ``packetbeat test config``, and
every unit starts a command that exists (the installed ``packetbeat`` console script) with flags
it accepts."""
from __future__ import annotations

import configparser
import os
import pathlib
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
INSTALLED = "/opt/packetbeat-py/.venv/bin/packetbeat"


def _packetbeat(argv, cfg_text, tmp_path, env=None):
    """Run the unit's own argv with our interpreter, its -c FILE pointing at ``cfg_text``."""
    assert argv[0] == INSTALLED, argv
    cfg = tmp_path / "packetbeat.yml"
    cfg.write_text(cfg_text)
    args = list(argv[1:])
    args[args.index("-c") + 1] = str(cfg)
    return subprocess.run([sys.executable, "-m", "coordinator", *args, "test", "config"], capture_output=True,
                          text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def _systemd_exec(path):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.read(path)
    return shlex.split(cp["Service"]["ExecStart"])


def _supervisord_command(path):
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(path)
    (section,) = [s for s in cp.sections() if s.startswith("program:")]
    return shlex.split(cp[section]["command"])


def test_the_installed_command_is_the_console_script():
    # every unit runs INSTALLED: pyproject's console script of that name
    text = (ROOT / "pyproject.toml").read_text()
    assert 'packetbeat = "coordinator.cli:main"' in text
    exe = pathlib.Path(sys.executable).parent / "packetbeat"
    assert exe.exists(), "pip install -e . installs %s" % exe


CASES = [
    ("systemd/packetbeat-py.service", _systemd_exec, ROOT / "packetbeat.yml"),
    ("supervisord/packetbeat-py.conf", _supervisord_command, ROOT / "packetbeat.yml"),
    ("systemd/packetbeat-py-capture.service", _systemd_exec, DEPLOY / "config/capture-host.yml"),
    ("supervisord/packetbeat-py-capture.conf", _supervisord_command, DEPLOY / "config/capture-host.yml"),
    ("systemd/packetbeat-py-workers.service", _systemd_exec, DEPLOY / "config/worker-host.yml"),
    ("supervisord/packetbeat-py-workers.conf", _supervisord_command, DEPLOY / "config/worker-host.yml"),
]


@pytest.mark.parametrize("unit,read,config", CASES, ids=[c[0] for c in CASES])
def test_unit_command_accepts_its_configuration(unit, read, config, tmp_path):
    argv = read(DEPLOY / unit)
    r = _packetbeat(argv, config.read_text(), tmp_path)
    assert r.returncode == 0 and "Config OK" in r.stdout, (unit, r.stderr)


def test_unit_roles():
    capture = yaml.safe_load((DEPLOY / "config/capture-host.yml").read_text())
    workers = yaml.safe_load((DEPLOY / "config/worker-host.yml").read_text())
    assert capture["cluster"]["role"] == "capture" and workers["cluster"]["role"] == "workers"
    # the capture hosts' shard list names this worker host's ports
    port = int(workers["cluster"]["listen"].rsplit(":", 1)[1])
    assert "tcp://10.0.0.2:%d" % port in capture["cluster"]["shards"]
    unit = (DEPLOY / "systemd/packetbeat-py-workers.service").read_text()
    assert "CAP_NET_RAW" not in unit        # a worker host captures nothing


def _manifests():
    return list(yaml.safe_load_all((DEPLOY / "kubernetes/packetbeat-py.yaml").read_text()))


def test_kubernetes_manifests(tmp_path):
    docs = {d["kind"]: d for d in _manifests()}
    assert {"Namespace", "ConfigMap", "DaemonSet", "Deployment", "Service"} <= set(docs)
    data = docs["ConfigMap"]["data"]
    ds = docs["DaemonSet"]["spec"]["template"]["spec"]
    assert ds["hostNetwork"] is True and ds["hostPID"] is True
    (cap,) = ds["containers"]
    assert {"NET_RAW", "NET_ADMIN"} <= set(cap["securityContext"]["capabilities"]["add"])
    dep = docs["Deployment"]["spec"]["template"]["spec"]
    (wk,) = dep["containers"]
    svc_ports = sorted(p["port"] for p in docs["Service"]["spec"]["ports"])
    for container, key in ((cap, "capture.yml"), (wk, "workers.yml")):
        mount = [m for m in container["volumeMounts"] if m.get("subPath") == key]
        assert mount and container["command"][container["command"].index("-c") + 1] == mount[0]["mountPath"]
        r = _packetbeat(container["command"], data[key], tmp_path, env={"NODE_NAME": "node-1"})
        assert r.returncode == 0 and "Config OK" in r.stdout, (key, r.stderr)
    capture = yaml.safe_load(data["capture.yml"])
    workers = yaml.safe_load(data["workers.yml"])
    # one shard per worker, each port published by the Service and the pod
    assert len(capture["cluster"]["shards"]) == workers["cluster"]["workers"]
    assert [int(s.rsplit(":", 1)[1]) for s in capture["cluster"]["shards"]] == svc_ports
    assert sorted(p["containerPort"] for p in wk["ports"]) == svc_ports


def test_kubernetes_manifests_match_the_api_schema():
    """Every object against the Kubernetes OpenAPI schema (kubernetes-validate ships the schemas:
    no cluster needed), strict: an unknown or misspelt field is an error, as `kubectl apply
    --validate=strict` would make it."""
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is in the [test] extra")
    kinds = []
    for doc in _manifests():
        for version in ("1.27", "1.33"):
            kv.validate(doc, version, strict=True)        # raises ValidationError with the path
        kinds.append(doc["kind"])
    assert kinds == ["Namespace", "ConfigMap", "DaemonSet", "Deployment", "Service"]
    bad = dict(_manifests()[2])
    bad["spec"] = dict(bad["spec"], replica=3)               # a typo the schema must catch
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.33", strict=True)
