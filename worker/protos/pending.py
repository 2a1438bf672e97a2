"""Configuration tables of the Packetbeat protocols that have no analyser yet.

A Packetbeat configuration lists every analyser (the shipped reference file
and Packetbeat's own test configurations enable twelve). Those entries must
validate exactly as Packetbeat would (unknown options are still errors), but
until a protocol's plugin lands its traffic is not analysed: the coordinator
logs one warning naming the protocol. When a plugin lands, its config class
replaces the table here and the entry moves to ``registry.BUILTIN``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from worker.plugin import ProtocolCommon


@dataclass(frozen=True)
class ThriftConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [9090])
    transport_type: str = "socket"
    protocol_type: str = "binary"
    idl_files: list[str] = field(default_factory=list)
    string_max_size: int = 200
    collection_max_size: int = 15
    capture_reply: bool = True
    obfuscate_strings: bool = False
    drop_after_n_struct_fields: int = 500


# name -> (config class, transports the protocol runs over)
PENDING: dict[str, tuple[type, tuple[str, ...]]] = {
    "thrift": (ThriftConfig, ("tcp",)),
}

