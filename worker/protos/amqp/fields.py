"""Index-template mappings of every field the AMQP analyser writes
(Packetbeat 8's ``protos/amqp/_meta/fields.yml`` types; the field tables
``headers``, ``arguments`` and the peer properties can hold any nesting of
any types, so they are ``flattened`` here where Packetbeat maps them as
objects of keywords)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_BOOL = {"type": "boolean"}
_FLAT = {"type": "flattened"}

FIELDS: dict[str, dict] = {"user.id": _KW}
for _name in ("reply-text", "exchange", "exchange-type", "consumer-tag", "routing-key", "queue",
              "content-type", "content-encoding", "delivery-mode", "correlation-id", "reply-to", "expiration",
              "message-id", "timestamp", "type", "user-id", "app-id", "mechanisms", "locales", "mechanism",
              "locale", "virtual-host", "destination", "source", "reason"):
    FIELDS["amqp." + _name] = _KW
for _name in ("reply-code", "class-id", "method-id", "delivery-tag", "message-count", "consumer-count",
              "priority", "version-major", "version-minor", "channel-max", "frame-max", "heartbeat",
              "prefetch-size", "prefetch-count"):
    FIELDS["amqp." + _name] = _LONG
for _name in ("passive", "durable", "exclusive", "auto-delete", "no-wait", "no-ack", "no-local", "if-unused",
              "if-empty", "redelivered", "multiple", "mandatory", "immediate", "active", "global", "requeue"):
    FIELDS["amqp." + _name] = _BOOL
for _name in ("headers", "arguments", "server-properties", "client-properties"):
    FIELDS["amqp." + _name] = _FLAT
