"""TLS analyser options, with Packetbeat 8's names and defaults
(``packetbeat/protos/tls/config.go``).

- ``send_certificates`` (true): certificate maps and chains under ``tls.detailed``
  (and so ``tls.client.x509`` / ``tls.server.x509``).
- ``include_raw_certificates`` (false): the PEM chains in
  ``tls.client.certificate_chain`` / ``tls.server.certificate_chain``.
- ``include_detailed_fields`` (true): ``tls.detailed.*`` and the ``x509`` objects.
- ``fingerprints`` (["sha1"]): certificate hashes written to ``tls.*.hash.*``:
  ``md5``, ``sha1`` (``sha-1``), ``sha256`` (``sha-256``).
- ``transaction_timeout``: a handshake idle longer than this is published as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon
from worker.protos.glue import check_ports

DEFAULT_PORTS = (443, 993, 995, 5223, 8443, 8883, 9243)
FINGERPRINT_NAMES = ("md5", "sha1", "sha-1", "sha256", "sha-256")


@dataclass(frozen=True)
class TlsConfig(ProtocolCommon):
    RAW_TEXT = False        # no raw request/response text: send_request / send_response are refused
    ports: list[int] = field(default_factory=lambda: list(DEFAULT_PORTS))
    send_certificates: bool = True
    include_raw_certificates: bool = False
    include_detailed_fields: bool = True
    fingerprints: list[str] = field(default_factory=lambda: ["sha1"])

    def validate(self, path: str) -> None:
        check_ports(self.ports, path)
        key = path + ".fingerprints" if path else "fingerprints"
        for name in self.fingerprints:
            if not isinstance(name, str) or name.lower() not in FINGERPRINT_NAMES:
                raise ConfigError(key, "fingerprint algorithm %r not found. Use one of [md5 sha1 sha256]"
                                  % (name,))
