"""The one table of protocol analysers (Packetbeat's ``include/list.go``).

Built-in plugins are listed in :data:`BUILTIN`; third-party plugins are found
through the ``packetbeat.protocols`` entry-point group, so adding a protocol
needs no edit of this project. An entry point names either a
:class:`ProtocolSpec` or a plugin class with ``config_class`` and
``transports`` attributes (the class itself is the factory).

Importing this module registers nothing as a side effect: a registry is built
by :func:`load_registry` and passed to whoever needs it.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Callable

from worker.protos.pending import PENDING

ENTRY_POINT_GROUP = "packetbeat.protocols"
log = logging.getLogger("packetbeat.registry")


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    config_class: type                      # frozen dataclass built with shared.confutil.build
    factory: Callable[[Any, Callable[[dict], None]], Any] | None   # (config, emit) -> plugin; None: not analysed yet
    transports: tuple[str, ...] = ("tcp",)

    @property
    def implemented(self) -> bool:
        return self.factory is not None


# name -> "module:Class" of the built-in analysers. A plugin class carries its
# ``config_class`` and ``transports``. A module is imported when the registry is
# first asked for its protocol (``Registry.get``, ``names``), so a broken plugin is
# reported by name, and a process imports only the analysers it uses.
BUILTIN: dict[str, str] = {
    "http": "worker.protos.http:HttpPlugin",
    "dns": "worker.protos.dns:DnsPlugin",
    "icmp": "worker.protos.icmp:IcmpPlugin",
    "redis": "worker.protos.redis:RedisPlugin",
    "memcache": "worker.protos.memcache:MemcachePlugin",
    "mysql": "worker.protos.mysql:MysqlPlugin",
    "pgsql": "worker.protos.pgsql:PgsqlPlugin",
    "nfs": "worker.protos.nfs:NfsPlugin",
    "amqp": "worker.protos.amqp:AmqpPlugin",
    "tls": "worker.protos.tls:TlsPlugin",
    "cassandra": "worker.protos.cassandra:CassandraPlugin",
    "sip": "worker.protos.sip:SipPlugin",
    "dhcpv4": "worker.protos.dhcpv4:DhcpPlugin",
    "mongodb": "worker.protos.mongodb:MongodbPlugin",
    "thrift": "worker.protos.thrift:ThriftPlugin",
}


def _load_builtin(name: str, target: str) -> ProtocolSpec | None:
    """The spec of a built-in analyser, or None while its package is not in
    this build (the protocol then stays a validated-but-ignored entry)."""
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    cls = getattr(mod, attr)
    return ProtocolSpec(name, cls.config_class, cls, tuple(getattr(cls, "transports", ("tcp",))))


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ProtocolSpec] = {}
        self.origins: dict[str, str] = {}       # name -> "built-in" or "entry point module:attr"
        # built-ins not imported yet (name -> "module:Class"): a process imports only the analysers
        # it is asked for (a worker: the configured ones; ~0.1 CPU-s of start-up per process saved)
        self._lazy: dict[str, str] = {}

    def _resolve(self, name: str) -> None:
        target = self._lazy.pop(name, None)
        if target is not None:
            spec = _load_builtin(name, target)
            if spec is not None:
                self._specs[name] = spec
                self.origins.setdefault(name, "built-in")

    def register(self, name: str, factory, config_class: type | None = None,
                 transports: tuple[str, ...] | None = None) -> None:
        if isinstance(factory, ProtocolSpec):
            spec = factory
        else:
            config_class = config_class or getattr(factory, "config_class", None)
            if config_class is None:
                raise TypeError("protocol %r: factory has no config_class" % name)
            spec = ProtocolSpec(name, config_class, factory,
                                tuple(transports or getattr(factory, "transports", ("tcp",))))
        self._lazy.pop(name, None)
        self._specs[name] = spec
        self.origins.setdefault(name, "built-in")

    def get(self, name: str) -> ProtocolSpec | None:
        if name in self._lazy:
            self._resolve(name)
        return self._specs.get(name)

    def names(self) -> list[str]:
        for name in list(self._lazy):
            self._resolve(name)
        return sorted(self._specs)

    def implemented_names(self) -> list[str]:
        """The names of the protocols with an analyser, sorted, without importing the
        built-ins not asked for yet: one counts when its module is in this build (what
        :func:`_load_builtin` needs; a module that fails when imported is reported by
        the process that asks for its protocol). The coordinator's start-up log line."""
        out = [n for n, spec in self._specs.items() if spec.implemented]
        out += [n for n, target in self._lazy.items() if importlib.util.find_spec(target.partition(":")[0])]
        return sorted(out)


_ENTRY_POINTS: list | None = None      # this process's scan of the entry-point group


def plugin_entry_points() -> list:
    """The ``packetbeat.protocols`` entry points of the installed distributions, read
    once per process (importlib.metadata and the scan of every distribution cost
    ~15 ms; the coordinator reads the registry twice). The coordinator starts its
    children with ``--no-entry-points`` when it found none (coordinator/supervisor.py),
    so that a worker does not scan for nothing."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points
        _ENTRY_POINTS = list(entry_points(group=ENTRY_POINT_GROUP))
    return _ENTRY_POINTS


def load_registry(with_entry_points: bool = True) -> Registry:
    reg = Registry()
    for name, (cfg_cls, transports) in PENDING.items():
        reg.register(name, ProtocolSpec(name, cfg_cls, None, transports))
    # built-ins are imported on first use (Registry.get / names): a broken one is still reported by name
    reg._lazy.update(BUILTIN)
    if with_entry_points:
        for ep in plugin_entry_points():
            try:
                reg.register(ep.name, ep.load())
                reg.origins[ep.name] = "entry point %s" % ep.value
            except Exception as exc:  # a third-party plugin must not take the others down
                log.error("protocol plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
    return reg
