"""AMQP analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/amqp/config.go``).

- ``max_body_length``: bytes of a message body kept for the ``request`` /
  ``response`` text of basic.publish / basic.deliver / basic.get /
  basic.return (longer bodies are cut and the text ends with `` [...]``).
- ``parse_headers``: read the content header properties (content-type,
  delivery-mode, headers table, ...) into ``amqp.*``.
- ``parse_arguments``: read the ``arguments`` table of declare / bind /
  consume methods into ``amqp.arguments``.
- ``hide_connection_information``: leave out the connection and channel
  set-up methods (connection.start/tune/open, channel.open/flow, basic.qos)
  and the closes whose reply code is below 300.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (5672,)
MAX_FRAME_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream: a method/header frame may not exceed it


@dataclass(frozen=True)
class AmqpConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    hide_connection_information: bool = True
    max_body_length: int = 1000
    parse_headers: bool = True
    parse_arguments: bool = True

    def validate(self, path: str) -> None:
        if self.max_body_length < 0:
            raise ConfigError(path + ".max_body_length" if path else "max_body_length",
                              "must be >= 0, got %d" % self.max_body_length)
        check_ports(self.ports, path)
