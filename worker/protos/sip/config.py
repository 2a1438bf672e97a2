"""SIP analyser options, with Packetbeat 8's names and defaults
(``packetbeat/protos/sip/config.go``).

- ``parse_authorization``: read the ``Authorization`` header into
  ``sip.auth.*`` and ``user.name`` (never the digest response or nonce).
- ``parse_body``: read an SDP body (``Content-Type: application/sdp``) into
  ``sip.sdp.*``.
- ``keep_original``: the whole message in ``event.original``.
- ``transport_protocol``: accepted as in Packetbeat (``udp`` or ``tcp``).
  Packetbeat writes it as ``network.transport`` of every SIP event whatever
  the packet's transport; here both transports are analysed at once and each
  event names the transport its message really travelled on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports


@dataclass(frozen=True)
class SipConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [5060])
    parse_authorization: bool = True
    parse_body: bool = True
    keep_original: bool = True
    transport_protocol: str = "udp"

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        if self.transport_protocol.lower() not in ("udp", "tcp"):
            raise ConfigError(path + ".transport_protocol" if path else "transport_protocol",
                              "unsupported transport_protocol %r (udp or tcp)" % self.transport_protocol)
        if self.transaction_timeout <= 0:
            raise ConfigError(path + ".transaction_timeout" if path else "transaction_timeout",
                              "must be positive, got %r" % self.transaction_timeout)
