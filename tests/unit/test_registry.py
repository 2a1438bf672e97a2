"""The protocol registry: built-ins, Packetbeat protocols still without an analyser."""
from __future__ import annotations

from shared.confutil import build
from worker.protos.pending import PENDING
from worker.protos.registry import BUILTIN, load_registry


def test_every_packetbeat_protocol_is_known():
    reg = load_registry(with_entry_points=False)
    for name in ("http", "dns", "icmp", "redis", "memcache", "mysql", "pgsql", "amqp", "cassandra",
                 "thrift", "mongodb", "nfs", "tls", "dhcpv4", "sip"):
        spec = reg.get(name)
        assert spec is not None, name
        # defaults build, and the common options are there
        cfg = build(spec.config_class, {"send_request": True}, "p")
        assert cfg.send_request is True and cfg.enabled is True


def test_http_is_implemented_and_shaped():
    spec = load_registry(with_entry_points=False).get("http")
    assert spec.implemented and spec.transports == ("tcp",)
    assert spec.config_class.__name__ == "HttpConfig"


def test_builtin_modules_follow_the_layout():
    for name, target in BUILTIN.items():
        module, _, cls = target.partition(":")
        assert module == "worker.protos.%s" % name
        assert cls.endswith("Plugin")


def test_implemented_protocols_are_no_longer_pending():
    reg = load_registry(with_entry_points=False)
    for name in BUILTIN:
        if reg.get(name).implemented:
            assert reg.get(name).config_class is not PENDING.get(name, (None,))[0]


def test_analysers_are_imported_when_asked_for():
    """A worker imports only the analysers its configuration names (start-up CPU of every
    worker process): load_registry imports none, get() one, names() all of them."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from worker.protos.registry import BUILTIN, load_registry\n"
            "def loaded(): return sorted(n for n, t in BUILTIN.items() if t.partition(':')[0] in sys.modules)\n"
            "reg = load_registry(with_entry_points=False)\n"
            "assert loaded() == [], loaded()\n"
            "assert reg.get('http').implemented and loaded() == ['http'], loaded()\n"
            "assert reg.get('nosuch') is None\n"
            "names = reg.names()\n"
            "assert loaded() == sorted(BUILTIN) and set(BUILTIN) <= set(names), loaded()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
