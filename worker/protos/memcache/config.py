"""Memcache analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/memcache/config.go``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError, Duration
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (11211,)
MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream: bound of any buffered message part


@dataclass(frozen=True)
class MemcacheConfig(ProtocolCommon):
    RAW_TEXT = False        # no raw request/response text: send_request / send_response are refused
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    # Accept unknown text commands (without a data part) instead of failing the stream.
    parseunknown: bool = False
    # Values kept per message (base64 in the event): 0 none, -1 all, N up to N.
    maxvalues: int = 0
    # Bytes kept of each value; <= 0 means no limit (bounded by MAX_MESSAGE_SIZE).
    maxbytespervalue: int = 100
    # How long a UDP transaction waits for its other half (packet time).
    udptransactiontimeout: Duration = 10.0

    def validate(self, path: str) -> None:
        def sub(k: str) -> str:
            return "%s.%s" % (path, k) if path else k
        check_ports(self.ports, path)
        if self.udptransactiontimeout < 0:
            raise ConfigError(sub("udptransactiontimeout"), "must not be negative")
        if self.maxvalues < -1:
            raise ConfigError(sub("maxvalues"), "must be -1 (all), 0 (none) or a positive count")

    @property
    def value_keep(self) -> int:
        """Bytes kept of each value (0 when values are not stored)."""
        if self.maxvalues == 0:
            return 0
        if self.maxbytespervalue <= 0:
            return MAX_MESSAGE_SIZE
        return min(self.maxbytespervalue, MAX_MESSAGE_SIZE)
