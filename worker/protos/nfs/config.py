"""NFS analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/nfs/config.go``: the common protocol options only, and a
transaction timeout of one minute).

``send_request`` / ``send_response`` are accepted, as Packetbeat accepts
them, and have no effect: Packetbeat's NFS events carry no raw text.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError, Duration
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (2049,)


@dataclass(frozen=True)
class NfsConfig(ProtocolCommon):
    RAW_TEXT = False        # no raw request/response text: send_request / send_response are refused
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    transaction_timeout: Duration = 60.0   # seconds (Packetbeat: 1 minute)

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        if float(self.transaction_timeout) <= 0:
            raise ConfigError(path + ".transaction_timeout" if path else "transaction_timeout",
                              "must be positive")
