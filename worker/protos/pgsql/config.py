"""PostgreSQL analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/pgsql/config.go``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (5432,)


@dataclass(frozen=True)
class PgsqlConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    # Rows of a result kept for the ``response`` text (send_response), and
    # bytes of column text kept per row.
    max_rows: int = 10
    max_row_length: int = 1024

    def validate(self, path: str) -> None:
        def key(name: str) -> str:
            return path + "." + name if path else name
        if self.max_rows < 0:
            raise ConfigError(key("max_rows"), "must be >= 0, got %d" % self.max_rows)
        if self.max_row_length < 0:
            raise ConfigError(key("max_row_length"), "must be >= 0, got %d" % self.max_row_length)
        check_ports(self.ports, path)
