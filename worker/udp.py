"""UDP dispatch for one worker: datagram -> the plugin owning its port.

The destination port is tried first, then the source port (so a response
from a configured server port reaches the same plugin). There is no stream
state: each datagram becomes one ``Packet`` with an ``IpPortTuple`` in the
direction it travels. Address bytes are turned into text through a bounded
cache, so a busy DNS server's peers cost one ``inet_ntop`` each, not one per
packet.

The exception boundary matches ``worker/tcp.py``: ``ParseError`` from a
plugin counts ``udp.parse_errors``; any other exception is logged once per
protocol with its traceback and counts ``udp.plugin_errors``; nothing escapes.
``udp.packets`` is kept as an int and added to the shared ``Counter`` by
``expire()`` / ``flush_all()`` (once per batch), as ``worker/tcp.py`` does for
``tcp.packets``; the other counters are updated immediately.
"""
from __future__ import annotations

import collections
import logging
from typing import Any

from shared.addr import ip_text
from worker.plugin import UDP, IpPortTuple, Packet, ParseError

_ADDR_CACHE_MAX = 65536
_tuple_new = tuple.__new__


class UdpDispatcher:
    """Hands UDP datagrams to the plugin configured for their port."""

    def __init__(self, plugins_by_port: dict[int, Any], counters: collections.Counter,
                 log: logging.Logger | None = None):
        self._ports = {int(p): plugin for p, plugin in plugins_by_port.items()}
        self._plugins = list({id(p): p for p in self._ports.values()}.values())
        self._names = {id(p): str(getattr(p, "name", None) or type(p).__name__) for p in self._plugins}
        self._counters = counters
        self._log = log if log is not None else logging.getLogger("packetbeat.udp")
        self._logged: set[str] = set()
        self._addr: dict[bytes, str] = {}
        self._n_packets = 0      # folded into counters["udp.packets"] by expire()/flush_all()

    def _text(self, addr: bytes) -> str:
        cache = self._addr
        text = cache.get(addr)
        if text is None:
            if len(cache) >= _ADDR_CACHE_MAX:
                cache.clear()
            text = cache[addr] = ip_text(addr)
        return text

    def process(self, ts: int, dec: tuple, raw: bytes) -> None:
        """Handle one decoded UDP datagram (see ``shared.decode``)."""
        self._n_packets += 1
        sport = dec[3]
        dport = dec[4]
        plugin = self._ports.get(dport)
        if plugin is None:
            plugin = self._ports.get(sport)
            if plugin is None:
                self._counters["udp.no_protocol"] += 1
                return
        addr = self._addr
        src = addr.get(dec[1]) or self._text(dec[1])
        dst = addr.get(dec[2]) or self._text(dec[2])
        # built without Python-level constructors: the NamedTuple's __new__ is a Python
        # function, Packet's __init__ parses arguments (as worker/tcp.py does)
        pkt = Packet.__new__(Packet)
        pkt.ts = ts
        pkt.tuple = _tuple_new(IpPortTuple, (UDP, src, sport, dst, dport))
        pkt.payload = memoryview(raw[dec[8]:dec[9]])
        try:
            plugin.parse_udp(pkt)
        except Exception as exc:  # noqa: BLE001 - the plugin boundary
            self._failed(plugin, exc)

    def expire(self, now: int) -> None:
        """Let every plugin publish transactions that timed out by ``now`` (ns);
        also brings ``udp.packets`` up to date."""
        self._fold_counters()
        for plugin in self._plugins:
            try:
                plugin.expire(now)
            except Exception as exc:  # noqa: BLE001 - the plugin boundary
                self._failed(plugin, exc)

    def flush_all(self, now: int) -> None:
        """End of stream: every plugin publishes what is still open."""
        self._fold_counters()
        for plugin in self._plugins:
            try:
                plugin.flush_all(now)
            except Exception as exc:  # noqa: BLE001 - the plugin boundary
                self._failed(plugin, exc)

    def _fold_counters(self) -> None:
        if self._n_packets:
            self._counters["udp.packets"] += self._n_packets
            self._n_packets = 0

    def _failed(self, plugin: Any, exc: Exception) -> None:
        if isinstance(exc, ParseError):
            self._counters["udp.parse_errors"] += 1
            return
        self._counters["udp.plugin_errors"] += 1
        name = self._names.get(id(plugin), type(plugin).__name__)
        if name not in self._logged:
            self._logged.add(name)
            self._log.error("protocol %s raised %s; datagram dropped (logged once per protocol)",
                            name, type(exc).__name__, exc_info=exc)
