"""Index-template mappings of the fields the SIP analyser writes (types as
Packetbeat 8's ``packetbeat/protos/sip/_meta/fields.yml``; ECS types for the
ECS fields). coordinator/setup.py collects ``FIELDS``."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_FLOAT = {"type": "float"}
_IP = {"type": "ip"}
_TEXT_KW = {"type": "keyword", "ignore_above": 1024, "fields": {"text": {"type": "text"}}}

FIELDS: dict[str, dict] = {
    # ECS fields the SIP events add to the common ones
    "event.original": {"type": "keyword", "index": False, "doc_values": False},
    "event.sequence": _LONG,
    "event.reason": _KW,
    "network.iana_number": _KW,
    "network.application": _KW,
    "related.user": _KW,
    "user.name": _KW,
    # sip.*
    "sip.code": _KW,
    "sip.method": _KW,
    "sip.status": _KW,
    "sip.type": _KW,
    "sip.version": _KW,
    "sip.accept": _KW,
    "sip.allow": _KW,
    "sip.call_id": _KW,
    "sip.content_length": _LONG,
    "sip.content_type": _KW,
    "sip.max_forwards": _LONG,
    "sip.supported": _KW,
    "sip.user_agent.original": _TEXT_KW,
    "sip.cseq.code": _KW,
    "sip.cseq.method": _KW,
    "sip.via.original": _TEXT_KW,
    "sip.contact.transport": _KW,
    "sip.contact.line": _KW,
    "sip.contact.expires": _KW,
    "sip.contact.q": _KW,
    "sip.auth.scheme": _KW,
    "sip.auth.realm": _KW,
    "sip.sdp.version": _KW,
    "sip.sdp.owner.username": _KW,
    "sip.sdp.owner.session_id": _KW,
    "sip.sdp.owner.version": _KW,
    "sip.sdp.owner.ip": _IP,
    "sip.sdp.session.name": _KW,
    "sip.sdp.connection.info": _KW,
    "sip.sdp.connection.address": _KW,
    "sip.sdp.body.original": _TEXT_KW,
}

for _obj in ("sip", "sip.private", "sip.from", "sip.to", "sip.contact", "sip.auth"):
    FIELDS[_obj + ".uri.original"] = _TEXT_KW
    FIELDS[_obj + ".uri.scheme"] = _KW
    FIELDS[_obj + ".uri.host"] = _KW
    FIELDS[_obj + ".uri.port"] = _KW
    if _obj != "sip.auth":
        FIELDS[_obj + ".uri.username"] = _KW
for _obj in ("sip.from", "sip.to", "sip.contact"):
    FIELDS[_obj + ".display_info"] = _KW
for _obj in ("sip.from", "sip.to"):
    FIELDS[_obj + ".tag"] = _KW
