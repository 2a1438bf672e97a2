"""DNS analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/dns/config.go``; ports as the shipped packetbeat.yml)."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports


@dataclass(frozen=True)
class DnsConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [53])
    # List the records of the authority / additional sections (the counts are always there).
    include_authorities: bool = False
    include_additionals: bool = False

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        if self.transaction_timeout <= 0:
            raise ConfigError(path + ".transaction_timeout" if path else "transaction_timeout",
                              "must be positive, got %r" % self.transaction_timeout)
