"""Cassandra analyser options, with Packetbeat 8's names and defaults
(``packetbeat/protos/cassandra/config.go``).

Packetbeat's defaults differ from the other protocols: ``send_request``,
``send_response``, ``send_request_header`` and ``send_response_header`` are
all on (the ``cassandra.request`` / ``cassandra.response`` objects exist only
when they are). ``compressor`` names the compression assumed for connections
whose STARTUP was not seen (Packetbeat accepts only ``snappy``; ``lz4`` is
accepted here too); the COMPRESSION option of a STARTUP that is seen wins.
``ignored_ops`` lists opcodes (names as ``QUERY``, any case) whose
transactions are not published.

``packetbeat_quirks`` (this project's, default on) keeps three behaviours of
Packetbeat 8 so that events compare equal to its: requests and responses are
paired in arrival order (not by stream id), ``num_rows`` is the [int] where
Packetbeat reads it (inside the column specs of the rows metadata), and an
ERROR response leaves ``status`` at ``OK``. Off: pairing by stream id, the
real row count, and ``status: Error`` for ERROR responses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports
from worker.protos.cassandra.parser import OP_BY_NAME

DEFAULT_PORTS = (9042,)
MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream
COMPRESSORS = ("", "snappy", "lz4")


@dataclass(frozen=True)
class CassandraConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    send_request: bool = True
    send_response: bool = True
    send_request_header: bool = True
    send_response_header: bool = True
    ignored_ops: list[str] = field(default_factory=list)
    compressor: str = ""
    packetbeat_quirks: bool = True

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        key = (path + ".") if path else ""
        if self.compressor not in COMPRESSORS:
            raise ConfigError(key + "compressor", "invalid compressor %r (snappy or lz4)" % self.compressor)
        for op in self.ignored_ops:
            if not isinstance(op, str) or op.strip().upper() not in OP_BY_NAME:
                raise ConfigError(key + "ignored_ops", "unknown frame op: %r" % (op,))

    def ignored_opcodes(self) -> frozenset:
        return frozenset(OP_BY_NAME[op.strip().upper()] for op in self.ignored_ops)
