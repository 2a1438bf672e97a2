"""ICMP analyser options, with Packetbeat's names and defaults
(``packetbeat/protos/icmp/config.go``).

Packetbeat's ICMP options are ``enabled``, ``transaction_timeout`` (default
10s) and ``send_request`` / ``send_response``; its ICMP events never carry
raw request/response text, so the last two are accepted and have no effect.
ICMP has no ports: ``ports`` (inherited from :class:`ProtocolCommon`) is
accepted for configuration compatibility and ignored, as Packetbeat does.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.confutil import ConfigError
from worker.plugin import ProtocolCommon

MAX_OPEN_REQUESTS = 100_000   # open echo requests kept per worker before the oldest is given up


@dataclass(frozen=True)
class IcmpConfig(ProtocolCommon):
    RAW_TEXT = False        # no raw request/response text: send_request / send_response are refused
    def validate(self, path: str) -> None:
        if float(self.transaction_timeout) <= 0:
            raise ConfigError(path + ".transaction_timeout" if path else "transaction_timeout",
                              "must be a positive duration, got %r" % (self.transaction_timeout,))
