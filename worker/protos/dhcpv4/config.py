"""DHCPv4 analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/dhcpv4/config.go``: the common protocol options only,
ports 67 and 68).

Packetbeat 8 publishes one event per DHCP message and keeps no transaction
table, so ``transaction_timeout``, ``send_request`` and ``send_response`` are
accepted (they belong to every protocol's configuration) and change nothing,
exactly as in Packetbeat.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (67, 68)


@dataclass(frozen=True)
class DhcpConfig(ProtocolCommon):
    RAW_TEXT = False        # no raw request/response text: send_request / send_response are refused
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
