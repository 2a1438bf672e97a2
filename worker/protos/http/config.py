"""HTTP analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/http/config.go``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (80, 8080, 8000, 5000, 8002)
MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream


@dataclass(frozen=True)
class HttpConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    # A list of header names to export, or true for all of them.
    send_headers: bool | list[str] = field(default_factory=list)
    send_all_headers: bool = False
    redact_headers: list[str] = field(default_factory=list)
    split_cookie: bool = False
    real_ip_header: str = ""
    include_body_for: list[str] = field(default_factory=list)
    include_request_body_for: list[str] = field(default_factory=list)
    include_response_body_for: list[str] = field(default_factory=list)
    decode_body: bool = True
    hide_keywords: list[str] = field(default_factory=list)
    redact_authorization: bool = False
    max_message_size: int = MAX_MESSAGE_SIZE

    def validate(self, path: str) -> None:
        if self.max_message_size <= 0:
            raise ConfigError(path + ".max_message_size" if path else "max_message_size",
                              "must be a positive number of bytes, got %d" % self.max_message_size)
        check_ports(self.ports, path)

    # Derived, normalised views (computed once; the dataclass stays frozen).

    @cached_property
    def all_headers(self) -> bool:
        return self.send_all_headers or self.send_headers is True

    @cached_property
    def header_names(self) -> frozenset[str]:
        """Lower-cased names of the headers to export (send_headers list)."""
        if isinstance(self.send_headers, list):
            return frozenset(h.lower() for h in self.send_headers)
        return frozenset()

    @cached_property
    def sends_headers(self) -> bool:
        return self.all_headers or bool(self.header_names)

    @cached_property
    def redacted_headers(self) -> frozenset[bytes]:
        return frozenset(h.lower().encode() for h in self.redact_headers)

    @cached_property
    def request_body_for(self) -> tuple[bytes, ...]:
        return tuple(s.encode() for s in (*self.include_body_for, *self.include_request_body_for))

    @cached_property
    def response_body_for(self) -> tuple[bytes, ...]:
        return tuple(s.encode() for s in (*self.include_body_for, *self.include_response_body_for))

    @cached_property
    def secret_keys(self) -> frozenset[bytes]:
        return frozenset(k.lower().encode() for k in self.hide_keywords)

    @cached_property
    def real_ip_name(self) -> bytes:
        return self.real_ip_header.strip().lower().encode()

    @cached_property
    def event_flags(self) -> tuple:
        """The options ``event.to_event`` reads for every transaction, in one
        tuple (one attribute look-up instead of one per option): decode_body,
        secret_keys, real_ip_name, send_request, send_response,
        max_message_size, redact_authorization, sends_headers."""
        return (self.decode_body, self.secret_keys, self.real_ip_name, self.send_request,
                self.send_response, self.max_message_size, self.redact_authorization,
                self.sends_headers)
