"""MySQL analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/mysql/config.go``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError, Duration
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (3306, 3307)
# Bytes kept of one request packet (query text, execute parameters); longer
# ones are cut (the event notes it) but counted, so an event stays well under
# an output's size limit (Packetbeat instead drops streams over 10 MB).
MAX_REQUEST_BYTES = 1024 * 1024
# Bytes kept of one response packet (a row, a column definition); the rest of
# a longer row is counted and skipped (the response text shows max_row_length).
MAX_RESPONSE_PACKET_BYTES = 1024 * 1024
MAX_STATEMENTS = 1024     # prepared statements remembered per connection


@dataclass(frozen=True)
class MysqlConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    max_rows: int = 10               # rows shown in the ``response`` text
    max_row_length: int = 1024       # bytes shown of each row
    statement_timeout: Duration = 3600.0   # prepared statements forgotten after this idle time

    def validate(self, path: str) -> None:
        def key(name: str) -> str:
            return path + "." + name if path else name
        if self.max_rows < 0:
            raise ConfigError(key("max_rows"), "must be >= 0, got %d" % self.max_rows)
        if self.max_row_length < 0:
            raise ConfigError(key("max_row_length"), "must be >= 0, got %d" % self.max_row_length)
        if self.statement_timeout <= 0:
            raise ConfigError(key("statement_timeout"), "must be positive")
        check_ports(self.ports, path)
