"""Every key the configuration accepts has a reader.

The test walks the whole schema the loader accepts (the section dataclasses of
shared/config.py, each output's, setup's and queue's schema from
coordinator/config.py SCHEMAS, and every built-in protocol's config class) and,
for each key, looks for code that reads it in the modules registered below as
that section's consumers: an attribute ``x.key``, a subscript ``x["key"]``, a
``x.get("key")`` or ``getattr(x, "key")``, outside the schema class's own body
(its ``validate()`` reading a key does not count). A key nothing reads fails
the test: give it its effect, or stop accepting it.

A second test loads a configuration that sets every top-level key and every
``packetbeat.*`` / ``logging.*`` / ``path.*`` key to a distinctive value and
checks the loaded Settings (or refusal) for each.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import pathlib
import typing

import pytest

from coordinator.config import SCHEMAS, load_config
from shared import config as C
from shared.confutil import ConfigError
from tests.helpers import ROOT
from worker.protos.registry import load_registry


def _files(*globs: str) -> tuple[str, ...]:
    out = []
    for g in globs:
        out += [str(p.relative_to(ROOT)) for p in sorted(ROOT.glob(g))]
    assert out, globs
    return tuple(out)


PUBLISHER = _files("coordinator/publisher/*.py")
# section -> (schema class, the modules that consume it)
SECTIONS = {
    "packetbeat": (C.PacketbeatConfig, _files("shared/config.py", "coordinator/supervisor.py")),
    "packetbeat.interfaces": (C.InterfaceConfig, _files("coordinator/cli.py", "coordinator/supervisor.py",
                                                        "coordinator/capture/*.py", "worker/*.py")),
    "packetbeat.flows": (C.FlowsConfig, _files("worker/engine.py", "worker/flows.py", "coordinator/supervisor.py")),
    "packetbeat.procs": (C.ProcsConfig, _files("shared/procs.py", "worker/engine.py", "coordinator/capture/*.py")),
    "packetbeat.procs.monitored[]": (C.MonitoredProcess, _files("shared/procs.py")),
    "logging": (C.LoggingConfig, _files("shared/log.py", "shared/metrics.py", "coordinator/child.py",
                                        "coordinator/cli.py")),
    "logging.files": (C.LoggingFilesConfig, _files("shared/log.py", "coordinator/cli.py")),
    "logging.metrics": (C.MetricsConfig, _files("shared/metrics.py", "coordinator/monitor.py")),
    "http": (C.HttpConfig, _files("shared/metrics.py", "coordinator/monitor.py")),
    "cluster": (C.ClusterConfig, _files("coordinator/*.py", "coordinator/capture/*.py", "coordinator/publisher/*.py",
                                        "worker/*.py", "shared/transport.py", "shared/endpoints.py")),
    "cluster.curve": (C.CurveConfig, _files("shared/transport.py")),
    "path": (C.PathConfig, _files("shared/config.py", "coordinator/keystore.py", "coordinator/cli.py",
                                  "coordinator/publisher/*.py")),
    "keystore": (C.KeystoreConfig, _files("coordinator/keystore.py")),
}
for _name, _cls in SCHEMAS.outputs.items():
    SECTIONS["output." + _name] = (_cls, PUBLISHER + _files("coordinator/setup.py", "coordinator/cli.py"))


def _setup_classes():
    from coordinator.kibana import DashboardsConfig, KibanaConfig
    from coordinator.publisher.memqueue import MemQueueConfig
    from coordinator.publisher.spool import DiskQueueConfig
    from coordinator.setup import IlmConfig, TemplateConfig
    return {"setup.ilm": (IlmConfig, _files("coordinator/setup.py", "coordinator/publisher/*.py")),
            "setup.template": (TemplateConfig, _files("coordinator/setup.py", "coordinator/publisher/*.py")),
            "setup.kibana": (KibanaConfig, _files("coordinator/kibana.py")),
            "setup.dashboards": (DashboardsConfig, _files("coordinator/kibana.py")),
            "queue.disk": (DiskQueueConfig, PUBLISHER + _files("coordinator/supervisor.py")),
            "queue.mem": (MemQueueConfig, PUBLISHER)}


SECTIONS.update(_setup_classes())


def _protocol_sections():
    reg = load_registry()
    out = {}
    for name in reg.names():
        spec = reg.get(name)
        if not spec.implemented or reg.origins.get(name, "built-in") != "built-in":
            continue
        out["packetbeat.protocols[%s]" % name] = (spec.config_class, _files(
            "worker/protos/%s/*.py" % name, "worker/engine.py", "worker/tcp.py", "worker/udp.py",
            "worker/plugin.py", "worker/glue.py", "shared/config.py", "coordinator/cli.py",
            "coordinator/capture/live.py"))
    return out


SECTIONS.update(_protocol_sections())


def _collect(node) -> set:
    """The key names ``node`` reads: ``x.k``, ``x["k"]``, ``x.get("k")`` (pop,
    setdefault), ``getattr(x, "k")``, ``"k" in x``."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
            found.add(n.slice.value)
        elif isinstance(n, ast.Call):
            fn = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if fn in ("get", "pop", "setdefault") and n.args and isinstance(n.args[0], ast.Constant):
                found.add(n.args[0].value)
            elif fn in ("getattr", "hasattr") and len(n.args) > 1 and isinstance(n.args[1], ast.Constant):
                found.add(n.args[1].value)
        elif isinstance(n, ast.Compare) and isinstance(n.left, ast.Constant) and isinstance(n.left.value, str):
            found.add(n.left.value)
        elif isinstance(n, (ast.Tuple, ast.List)):       # names looked up in a loop: for k in ("a", "b")
            found.update(e.value for e in n.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return found


@functools.lru_cache(maxsize=None)
def _reads(path: str) -> tuple[tuple[str, frozenset], ...]:
    """(owner, names read) for each top-level statement of ``path``; a class is
    split by member: ``Cls.validate`` (also __post_init__), ``Cls.<fields>``
    (the field definitions) and ``Cls.<method>`` for its other members."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            out.append(("", frozenset(_collect(node))))
            continue
        for member in node.body:
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = "validate" if member.name in ("validate", "__post_init__") else member.name
            else:
                name = "<fields>"
            out.append(("%s.%s" % (node.name, name), frozenset(_collect(member))))
    return tuple(out)


def _read_outside(key: str, cls: type, files: tuple[str, ...]) -> bool:
    """Whether ``key`` is read in ``files`` other than by the schema class's own field
    definitions and validate() (a method or property of the class deriving a value
    from it counts: the consumer calls that)."""
    own = {"%s.validate" % c.__name__ for c in cls.__mro__} | {"%s.<fields>" % c.__name__ for c in cls.__mro__}
    for f in files:
        for owner, names in _reads(f):
            if key in names and owner not in own:
                return True
    return False


def _walk(prefix: str, cls: type, files: tuple[str, ...]):
    """(key path, owning class, consumer files) for every field, nested dataclasses too."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        yield "%s.%s" % (prefix, f.name), f.name, cls, files
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            sub = prefix + "." + f.name
            if sub not in SECTIONS:
                yield from _walk(sub, tp, files)


def _all_keys():
    for section, (cls, files) in SECTIONS.items():
        yield from _walk(section, cls, files)


def test_every_section_dataclass_is_registered():
    """A new nested schema class must be walked (or registered with its own consumers)."""
    keys = [k for k, *_ in _all_keys()]
    assert len(keys) > 300, len(keys)
    for path in ("logging.files.keepfiles", "logging.json", "path.logs", "packetbeat.protocols[http].pipeline",
                 "packetbeat.protocols[dns].keep_null", "output.file.path", "cluster.curve.enabled"):
        assert path in keys, path


# Keys accepted only with their default (Beats' value meaning "off"), refused otherwise: the
# value here is a non-default one, and the test checks that it is refused naming the key.
REFUSED_UNLESS_DEFAULT = {
    "packetbeat.overwrite_pipelines": ("packetbeat.overwrite_pipelines", True),
    "packetbeat.interfaces.poll_default_route": ("packetbeat.interfaces.poll_default_route", "1m"),
    "packetbeat.interfaces.top_speed": ("packetbeat.interfaces.top_speed", False),
    "logging.to_syslog": ("logging.to_syslog", True),
    "logging.to_eventlog": ("logging.to_eventlog", True),
    "logging.files.interval": ("logging.files.interval", "24h"),
    "logging.files.redirect_stderr": ("logging.files.redirect_stderr", True),
    "http.named_pipe": ("http.named_pipe", {"path": "x"}),
    "http.pprof": ("http.pprof.enabled", True),
    "packetbeat.protocols[tls].send_request": ("packetbeat.protocols", [{"type": "tls", "send_request": True}]),
    "packetbeat.protocols[icmp].send_response": ("packetbeat.protocols", [{"type": "icmp", "send_response": True}]),
}
# Accepted with no reader because what the option chooses is always done: documented in
# the protocol's module (the reason must be written there).
SUBSUMED = {
    "packetbeat.protocols[sip].transport_protocol": ("worker/protos/sip/config.py",
                                                     "both transports are analysed at once"),
}


def test_every_accepted_key_has_a_reader():
    unread = [path for path, key, cls, files in _all_keys()
              if path not in REFUSED_UNLESS_DEFAULT and path not in SUBSUMED and not _read_outside(key, cls, files)]
    assert not unread, "accepted but read by nothing: %s" % ", ".join(unread)


@pytest.mark.parametrize("path", sorted(REFUSED_UNLESS_DEFAULT))
def test_keys_without_a_reader_are_refused_unless_default(tmp_path, path):
    import yaml
    key, value = REFUSED_UNLESS_DEFAULT[path]
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({key: value, "output.console": {}}))
    with pytest.raises(ConfigError) as e:
        load_config(str(cfg))
    assert e.value.path.startswith(path.replace("[tls]", "[0]").replace("[icmp]", "[0]")), str(e.value)
    # and the default loads
    cfg.write_text(yaml.safe_dump({"output.console": {}}))
    load_config(str(cfg))


def test_subsumed_keys_say_why():
    keys = {k for k, *_ in _all_keys()}
    for path, (module, reason) in SUBSUMED.items():
        assert path in keys
        assert reason in (ROOT / module).read_text(encoding="utf-8")


def test_the_reader_check_can_fail(tmp_path):
    """The check itself: a key only its own class reads is reported."""
    @dataclasses.dataclass(frozen=True)
    class Probe:
        zzz_never_read_anywhere: int = 0
    assert not _read_outside("zzz_never_read_anywhere", Probe, ("shared/config.py",))
    assert _read_outside("rotateeverybytes", C.LoggingFilesConfig, ("shared/log.py",))
    # read only in the class's own validate(): not a reader
    assert not _read_outside("redirect_stderr", C.LoggingFilesConfig, ("shared/config.py",))


# --- every top-level / packetbeat / logging / path key, loaded -----------------------

DISTINCT = {
    "name": ("beat-x1", lambda s: s.name == "beat-x1"),
    "tags": (["t-x1"], lambda s: s.tags == ["t-x1"]),
    "fields": ({"f_x1": 1}, lambda s: s.fields == {"f_x1": 1}),
    "fields_under_root": (True, lambda s: s.fields_under_root is True),
    "processors": ([{"add_tags": {"tags": ["p-x1"]}}], lambda s: s.processors[0]["add_tags"]["tags"] == ["p-x1"]),
    "path": ({"home": "/tmp/h-x1"}, lambda s: s.path == {"home": "/tmp/h-x1", "config": "/tmp/h-x1",
                                                            "data": "/tmp/h-x1/data", "logs": "/tmp/h-x1/logs"}),
    "queue": ({"disk": {"max_size": "1MB"}}, lambda s: s.raw["queue"]["disk"]["max_size"] == "1MB"),
    "http": ({"enabled": True, "port": 5999}, lambda s: s.raw["http"]["port"] == 5999),
    "setup": ({"ilm": {"enabled": False}}, lambda s: s.raw["setup"]["ilm"]["enabled"] is False),
    "keystore": ({"path": "/tmp/ks-x1"}, lambda s: s.raw["keystore"]["path"] == "/tmp/ks-x1"),
    "monitoring": ({"enabled": False}, lambda s: True),
    "logging": ({"level": "error", "json": True, "ecs": False, "to_files": False, "to_stderr": True,
                 "selectors": ["s-x1"], "files": {"path": "/tmp/l-x1", "name": "n-x1", "keepfiles": 3,
                                                    "rotateeverybytes": 4096, "permissions": "0640",
                                                    "rotateonstartup": False},
                 "metrics": {"enabled": False, "period": "7s"}},
                lambda s: s.logging["level"] == "error" and s.logging["json"] and not s.logging["ecs"]
                and not s.logging["to_files"] and s.logging["to_stderr"] and s.logging["selectors"] == ["s-x1"]
                and s.logging["files"] == {"path": "/tmp/l-x1", "name": "n-x1", "keepfiles": 3,
                                           "rotateeverybytes": 4096, "permissions": 0o640, "rotateonstartup": False,
                                           "interval": 0.0, "redirect_stderr": False}
                and s.logging["metrics"] == {"enabled": False, "period": 7.0}),
    "cluster": ({"workers": 3}, lambda s: s.cluster["workers"] == 3),
    "output": ({"console": {"pretty": True}}, lambda s: s.output["console"]["pretty"] is True),
    "packetbeat": ({"interfaces": {"snaplen": 1515}, "flows": {"timeout": "31s"}, "procs": {"enabled": True},
                    "protocols": [{"type": "http", "ports": [8181], "pipeline": "pl-x1", "index": "ix-x1"}],
                    "ignore_outgoing": True, "shutdown_timeout": "2s", "overwrite_pipelines": False},
                   lambda s: s.interfaces[0]["snaplen"] == 1515 and s.flows["timeout"] == 31.0
                   and s.procs["enabled"] and s.protocols[0]["pipeline"] == "pl-x1"
                   and s.interfaces[0]["ignore_outgoing"] is True and s.shutdown_timeout == 2.0),
}


def test_every_top_level_key_is_loaded_with_its_value(tmp_path):
    assert set(DISTINCT) == C._TOP, "a top-level key without a check: %s" % (C._TOP ^ set(DISTINCT))
    import yaml
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({k: v for k, (v, _) in DISTINCT.items()}))
    s = load_config(str(cfg))
    bad = [k for k, (_, check) in DISTINCT.items() if not check(s)]
    assert not bad, bad


@pytest.mark.parametrize("key,value", [
    ("seccomp", {"enabled": False}), ("max_procs", 2), ("features", {}), ("xpack", {}), ("ilm", {}),
    ("instrumentation", {"enabled": True}), ("keep_null", True), ("monitoring", {"enabled": True}),
    ("queue", {"mem": {"events": 4096, "bogus": 1}}), ("queue", {"mem": {}, "disk": {}}), ("setup", {"nonsense": 1}),
    ("logging", {"to_syslog": True}), ("logging", {"files": {"interval": "1h"}}),
    ("logging", {"files": {"redirect_stderr": True}}), ("logging", {"files": {"keepfiles": 1}}),
    ("logging", {"files": {"permissions": "0999"}}), ("path", {"bogus": "/x"}),
])
def test_settings_without_an_effect_are_refused_naming_the_key(tmp_path, key, value):
    import yaml
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({key: value, "output": {"console": {}}}))
    with pytest.raises(ConfigError) as e:
        load_config(str(cfg))
    assert str(e.value).startswith(key), str(e.value)
