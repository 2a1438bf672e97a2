"""DHCPv4 plugin: UDP datagrams to events (Packetbeat's ``dhcpv4.go``).

Each datagram is decoded on its own and published at once as one event, as
Packetbeat 8 does: there is no transaction table, nothing to expire and
nothing open at the end of a capture. A datagram that is not a DHCPv4
message is counted (``dhcpv4.parse_failures``) and dropped with no event;
``dhcpv4.total_packets`` counts every datagram seen (Packetbeat's metrics of
the same names).
"""
from __future__ import annotations

from worker.plugin import Emit, Packet
from worker.protos.dhcpv4.config import DhcpConfig
from worker.protos.dhcpv4.event import to_event
from worker.protos.dhcpv4.parser import ParseError, decode_message
from worker.protos.glue import config_of


class DhcpPlugin:
    """Satisfies :class:`worker.plugin.UdpPlugin`."""
    config_class = DhcpConfig
    transports = ("udp",)
    name = "dhcpv4"

    def __init__(self, config: DhcpConfig | dict | None, emit: Emit):
        self.cfg = config_of(DhcpConfig, config, self.name)
        self.emit = emit
        self.total_packets = 0      # datagrams handed to the analyser
        self.parse_failures = 0     # datagrams that were not DHCPv4 (dropped, no event)

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def parse_udp(self, pkt: Packet) -> None:
        """One datagram, one event. Bytes that are not DHCPv4 raise
        :class:`ParseError` after counting (the UDP layer counts it too)."""
        self.total_packets += 1
        try:
            msg = decode_message(pkt.payload, pkt.ts)
        except ParseError:
            self.parse_failures += 1
            raise
        self.emit(to_event(msg, pkt.tuple))

    def expire(self, now: int) -> None:
        """Nothing waits: every message was published when it was seen."""

    def flush_all(self, now: int) -> None:
        """Nothing is open at the end of the stream."""
