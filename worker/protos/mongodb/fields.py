"""Index-template mappings of the ``mongodb.*`` fields this analyser emits, with
Packetbeat 8's types (``packetbeat/protos/mongodb/_meta/fields.yml``: fields
without a type there are keywords, ``cursorId`` and ``startingFrom`` included)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}

FIELDS = {
    "mongodb.error": _KW,
    "mongodb.fullCollectionName": _KW,
    "mongodb.numberToSkip": _LONG,
    "mongodb.numberToReturn": _LONG,
    "mongodb.numberReturned": _LONG,
    "mongodb.startingFrom": _KW,
    "mongodb.cursorId": _KW,
    "mongodb.returnFieldsSelector": _KW,
    "mongodb.selector": _KW,
    "mongodb.update": _KW,
    "mongodb.message": _KW,
}
