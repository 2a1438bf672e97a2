"""MongoDB analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/mongodb/config.go``).

- ``max_docs``: documents of a reply written into ``response`` (with
  ``send_response``); past it a ``[...]`` line ends the text. 0: no limit.
- ``max_doc_length``: characters of one document's JSON kept in ``response``;
  a longer one is cut and ends with `` ...``. 0: no limit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (27017,)
# Packetbeat's tcp.TCPMaxDataInStream: a message longer than this is skipped
# (its header is still reported), not buffered.
MAX_MESSAGE_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True)
class MongodbConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    max_docs: int = 10
    max_doc_length: int = 5000

    def validate(self, path: str) -> None:
        def key(name: str) -> str:
            return path + "." + name if path else name
        if self.max_docs < 0:
            raise ConfigError(key("max_docs"), "must be >= 0, got %d" % self.max_docs)
        if self.max_doc_length < 0:
            raise ConfigError(key("max_doc_length"), "must be >= 0, got %d" % self.max_doc_length)
        check_ports(self.ports, path)
