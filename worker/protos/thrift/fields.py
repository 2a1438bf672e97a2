"""Index-template mappings of the fields the Thrift analyser writes (Packetbeat
8's ``packetbeat/protos/thrift/_meta/fields.yml``; the root ``method``,
``path``, ``query``, ``status``, ``request``, ``response`` are common fields)."""
_KW = {"type": "keyword", "ignore_above": 1024}
_TEXT = {"type": "text"}

FIELDS = {
    "method": _KW,
    "path": _KW,
    "query": _KW,
    "thrift.params": _TEXT,
    "thrift.service": _KW,
    "thrift.return_value": _KW,
    "thrift.exceptions": _KW,
}
