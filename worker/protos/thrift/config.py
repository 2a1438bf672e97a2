"""Thrift-RPC analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/thrift/config.go``).

``transport_type`` and ``protocol_type`` differ from Packetbeat in one way:
their default is the empty string, meaning *detect per connection* (framed or
not, binary (strict or old non-strict headers) or compact, decided from the
first bytes of each direction). An explicit value forces it, as in Packetbeat:
``transport_type: socket|framed``, ``protocol_type: binary|compact``
(Packetbeat itself knows only ``binary``).

``idl_files`` are parsed at start-up (thriftpy2's IDL loader, includes
resolved); an unreadable or invalid file is a configuration error naming the
option.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (9090,)
MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream: one message may not exceed it
TRANSPORTS = ("", "socket", "framed")
PROTOCOLS = ("", "binary", "compact")


@dataclass(frozen=True)
class ThriftConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    transport_type: str = ""          # "" = detect; "socket" or "framed" forces it
    protocol_type: str = ""           # "" = detect; "binary" or "compact" forces it
    idl_files: list[str] = field(default_factory=list)
    string_max_size: int = 200
    collection_max_size: int = 15
    capture_reply: bool = True
    obfuscate_strings: bool = False
    drop_after_n_struct_fields: int = 500

    def validate(self, path: str) -> None:
        def key(name: str) -> str:
            return path + "." + name if path else name
        check_ports(self.ports, path)
        if self.transport_type not in TRANSPORTS:
            raise ConfigError(key("transport_type"),
                              "Transport type `%s` not known (socket, framed, or empty to detect)"
                              % self.transport_type)
        if self.protocol_type not in PROTOCOLS:
            raise ConfigError(key("protocol_type"),
                              "Protocol type `%s` not known (binary, compact, or empty to detect)"
                              % self.protocol_type)
        for name in ("string_max_size", "collection_max_size", "drop_after_n_struct_fields"):
            if getattr(self, name) < 0:
                raise ConfigError(key(name), "must be >= 0, got %d" % getattr(self, name))
        if self.idl_files:
            from worker.protos.thrift.idl import IdlError, load_idl
            try:
                load_idl(self.idl_files)
            except IdlError as e:
                raise ConfigError(key("idl_files"), str(e)) from None
