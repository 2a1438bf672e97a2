"""ICMP plugin: the engine's ICMP callbacks glued to the parser, correlator
and event builder (Packetbeat's ``icmp.go`` ProcessICMPv4/ProcessICMPv6 and
its expiring transaction cache).

The engine calls :meth:`IcmpPlugin.parse_icmp` for every ICMPv4 (transport 1)
and ICMPv6 (58) datagram of its shard (capture hashes ICMP by address pair,
so a request and its reply reach the same worker), :meth:`expire` once per
batch with the newest packet time and :meth:`flush_all` at end of stream.
"""
from __future__ import annotations

from worker.protos.glue import config_of
from worker.plugin import Emit, Packet
from worker.protos.icmp.config import MAX_OPEN_REQUESTS, IcmpConfig
from worker.protos.icmp.event import to_event
from worker.protos.icmp.parser import IcmpParser
from worker.protos.icmp.trans import Correlator

_NS = 1_000_000_000


class IcmpPlugin:
    """Satisfies :class:`worker.plugin.IcmpPlugin`."""
    config_class = IcmpConfig
    transports = ("icmp",)

    def __init__(self, config: IcmpConfig | dict | None, emit: Emit, max_open: int = MAX_OPEN_REQUESTS):
        config = config_of(IcmpConfig, config, "icmp")
        self.cfg = config
        self.emit = emit
        self.parser = IcmpParser()
        self.correlator = Correlator(int(round(float(config.transaction_timeout) * _NS)), max_open)
        self._enabled = bool(config.enabled)     # the config is frozen

    def ports(self) -> list[int]:
        return []           # ICMP has no ports

    def parse_icmp(self, pkt: Packet) -> None:
        """One ICMP datagram. Raises the parser's ParseError for a message
        shorter than its header (the engine counts it and carries on)."""
        if self._enabled:
            _parse(self.parser, self.correlator, self.emit, pkt)

    def parse_datagram(self, ts: int, transport: int, src_ip: str, dst_ip: str, payload) -> None:
        """``parse_icmp`` without a Packet (the engine's path): ``payload`` is the
        ICMP header and body (bytes or memoryview)."""
        if self._enabled:
            _datagram(self.parser, self.correlator, self.emit, ts, transport, src_ip, dst_ip, payload)

    def expire(self, now: int) -> None:
        if self.correlator.open:
            for trans in self.correlator.expire(now):
                self.emit(to_event(trans))

    def flush_all(self, now: int) -> None:
        for trans in self.correlator.flush():
            self.emit(to_event(trans))


def _parse(parser: IcmpParser, correlator: Correlator, emit: Emit, pkt: Packet) -> None:
    # unpacked rather than indexed: the tuple is a NamedTuple, whose item slot
    # (compiled code indexes through it) goes through a Python-level __getitem__
    transport, src_ip, _sport, dst_ip, _dport = pkt.tuple
    _datagram(parser, correlator, emit, pkt.ts, transport, src_ip, dst_ip, pkt.payload)


def _datagram(parser: IcmpParser, correlator: Correlator, emit: Emit, ts: int, transport: int,
              src_ip: str, dst_ip: str, payload) -> None:
    msg = parser.parse(payload, ts, transport)
    out = correlator.add(src_ip, dst_ip, msg)
    if out:
        for trans in out:
            emit(to_event(trans))
