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

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
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


def _http() -> ProtocolSpec:
    from worker.protos.http import HttpPlugin
    return ProtocolSpec("http", HttpPlugin.config_class, HttpPlugin, ("tcp",))


# name -> loader of its spec (imported lazily so a broken plugin cannot break the others)
BUILTIN: dict[str, Callable[[], ProtocolSpec]] = {
    "http": _http,
}


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ProtocolSpec] = {}

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
        self._specs[name] = spec

    def get(self, name: str) -> ProtocolSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)


def load_registry(with_entry_points: bool = True) -> Registry:
    reg = Registry()
    for name, (cfg_cls, transports) in PENDING.items():
        reg.register(name, ProtocolSpec(name, cfg_cls, None, transports))
    for name, loader in BUILTIN.items():
        reg.register(name, loader())
    if with_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                reg.register(ep.name, ep.load())
            except Exception as exc:  # a third-party plugin must not take the others down
                log.error("protocol plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
    return reg
