"""Redis analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/redis/config.go`` and ``messagequeue.go``).

``queue_max_bytes`` / ``queue_max_messages`` bound the requests waiting for
an answer on one connection (a value <= 0 means no limit, as in Packetbeat).
When a new request does not fit, the oldest waiting ones are given up and
published as unmatched requests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (6379,)
MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream: one message may not exceed it


@dataclass(frozen=True)
class RedisConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    queue_max_bytes: int = 1024 * 1024
    queue_max_messages: int = 20000

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
