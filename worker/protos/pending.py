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
class AmqpConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [5672])
    hide_connection_information: bool = True
    max_body_length: int = 1000
    parse_headers: bool = True
    parse_arguments: bool = True


@dataclass(frozen=True)
class CassandraConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [9042])
    send_request_header: bool = False
    send_response_header: bool = False
    ignored_ops: list[str] = field(default_factory=list)
    compressor: str = ""


@dataclass(frozen=True)
class MongodbConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [27017])
    max_docs: int = 10
    max_doc_length: int = 5000


@dataclass(frozen=True)
class NfsConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [2049])


@dataclass(frozen=True)
class TlsConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [443, 993, 995, 5223, 8443, 8883, 9243])
    send_certificates: bool = True
    include_raw_certificates: bool = False
    include_detailed_fields: bool = True
    fingerprints: list[str] = field(default_factory=lambda: ["sha1"])


@dataclass(frozen=True)
class DhcpConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [67, 68])


@dataclass(frozen=True)
class SipConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [5060])
    parse_authorization: bool = True
    parse_body: bool = True
    keep_original: bool = True


# name -> (config class, transports the protocol runs over)
PENDING: dict[str, tuple[type, tuple[str, ...]]] = {
    "amqp": (AmqpConfig, ("tcp",)),
    "cassandra": (CassandraConfig, ("tcp",)),
    "mongodb": (MongodbConfig, ("tcp",)),
    "nfs": (NfsConfig, ("tcp", "udp")),
    "tls": (TlsConfig, ("tcp",)),
    "dhcpv4": (DhcpConfig, ("udp",)),
    "sip": (SipConfig, ("udp", "tcp")),
}

