"""Index-template mappings of the fields the TLS analyser emits (ECS ``tls.*``
and ``x509.*`` types, Packetbeat 8's ``tls.detailed.*``)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_DATE = {"type": "date"}
_BOOL = {"type": "boolean"}


def _x509(prefix: str) -> dict:
    out = {prefix + k: dict(_KW) for k in (
        "signature_algorithm", "public_key_algorithm", "serial_number", "version_number", "alternative_names")}
    out[prefix + "public_key_size"] = dict(_LONG)
    out[prefix + "not_before"] = dict(_DATE)
    out[prefix + "not_after"] = dict(_DATE)
    for who in ("subject", "issuer"):
        for k in ("common_name", "country", "organization", "organizational_unit", "locality",
                  "state_or_province", "distinguished_name", "postal_code", "serial_number", "street_address"):
            out["%s%s.%s" % (prefix, who, k)] = dict(_KW)
    return out


FIELDS: dict[str, dict] = {
    "tls.version": dict(_KW), "tls.version_protocol": dict(_KW), "tls.cipher": dict(_KW),
    "tls.curve": dict(_KW), "tls.established": dict(_BOOL), "tls.resumed": dict(_BOOL),
    "tls.next_protocol": dict(_KW),
    "tls.detailed.version": dict(_KW), "tls.detailed.resumption_method": dict(_KW),
    "tls.detailed.client_certificate_requested": dict(_BOOL), "tls.detailed.ocsp_response": dict(_KW),
    "tls.detailed.alert_types": dict(_KW), "tls.detailed.hello_retry_request": dict(_BOOL),
    "tls.detailed.new_session_ticket.lifetime_hint": dict(_LONG),
    "tls.detailed.alerts.severity": dict(_KW), "tls.detailed.alerts.code": dict(_LONG),
    "tls.detailed.alerts.type": dict(_KW), "tls.detailed.alerts.source": dict(_KW),
}
for _side in ("client", "server"):
    p = "tls.%s." % _side
    FIELDS.update({p + "subject": dict(_KW), p + "issuer": dict(_KW), p + "not_before": dict(_DATE),
                   p + "not_after": dict(_DATE), p + "hash.md5": dict(_KW), p + "hash.sha1": dict(_KW),
                   p + "hash.sha256": dict(_KW), p + "certificate_chain": dict(_KW)})
    FIELDS.update(_x509(p + "x509."))
    FIELDS.update(_x509("tls.detailed.%s_certificate_chain." % _side))
    h = "tls.detailed.%s_hello." % _side
    FIELDS.update({h + "version": dict(_KW), h + "session_id": dict(_KW), h + "random": dict(_KW),
                   h + "supported_compression_methods": dict(_KW), h + "selected_compression_method": dict(_KW)})
FIELDS.update({
    "tls.client.ja3": dict(_KW), "tls.client.ja4": dict(_KW), "tls.client.server_name": dict(_KW),
    "tls.client.supported_ciphers": dict(_KW), "tls.server.ja3s": dict(_KW), "tls.server.ja4s": dict(_KW),
})
