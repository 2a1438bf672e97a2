"""Documents as Packetbeat writes them: JSON of what its BSON library
(mgo's ``bson.M``) decodes, marshalled by Go's ``encoding/json``.

That means: object keys sorted, no spaces; ObjectIds as their hex text;
dates as RFC 3339 UTC text with the fraction trimmed (``2014-03-03T00:00:00Z``);
floats in Go's shortest form (``1`` for 1.0, ``1e+21``, ``1e-7``); binary
subtype 0 as base64 text, other subtypes as ``{"Kind":n,"Data":"base64"}``;
regular expressions as ``{"Pattern":..,"Options":..}``; JavaScript as
``{"Code":..,"Scope":..}``; timestamps as the 64-bit number mgo reads
(seconds << 32 | increment); MinKey / MaxKey as the smallest / largest
int64; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c`` ...
Decimal128 (which mgo renders as ``{}``) is written as its text, and NaN or
infinite doubles (which Go refuses to marshal) as ``null``.

Input is what pymongo's ``bson`` decodes (dicts, ``RawBSONDocument``,
lists, and the ``bson`` types). Nesting deeper than :data:`MAX_DEPTH` is
written as ``"[...]"``.
"""
from __future__ import annotations

import base64
import datetime
from json.encoder import encode_basestring   # json.dumps(s, ensure_ascii=False), in C
from collections.abc import Mapping
from decimal import Decimal

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

MAX_DEPTH = 100
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                       "\u2028": "\\u2028", "\u2029": "\\u2029"})
_NEEDS_HTML = frozenset("<>&\u2028\u2029")


def go_string(s: str) -> str:
    out = encode_basestring(s)
    if not _NEEDS_HTML.isdisjoint(s):
        out = out.translate(_HTML)
    return out


def go_float(f: float) -> str:
    if f != f or f in (float("inf"), float("-inf")):
        return "null"
    a = abs(f)
    r = repr(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        # exponent form: Go writes e+21 and e-7 (Python: e+21, e-07)
        if "e" not in r:
            r = "%e" % f          # unreachable for doubles in this range; kept for safety
        mant, _, exp = r.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if len(digits) < 2 and sign == "+":
            digits = digits.rjust(2, "0")
        if mant.endswith(".0"):
            mant = mant[:-2]
        return "%se%s%s" % (mant, sign, digits)
    if "e" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _time(d: datetime.datetime) -> str:
    if d.tzinfo is not None:
        d = d.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (d.year, d.month, d.day, d.hour, d.minute, d.second)
    if d.microsecond:
        s += ("." + "%06d" % d.microsecond).rstrip("0")
    return '"' + s + 'Z"'


def _b64(b: bytes) -> str:
    return '"' + base64.b64encode(bytes(b)).decode("ascii") + '"'


def dumps(v, depth: int = 0) -> str:
    """``v`` as Go's ``json.Marshal`` writes mgo's decoding of it."""
    if depth > MAX_DEPTH:
        return '"[...]"'
    if isinstance(v, str):
        if isinstance(v, Code):
            scope = "null" if v.scope is None else dumps(v.scope, depth + 1)
            return '{"Code":%s,"Scope":%s}' % (go_string(str(v)), scope)
        return go_string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return go_float(v)
    if v is None:
        return "null"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: kv[0])
        return "{" + ",".join(go_string(str(k)) + ":" + dumps(x, depth + 1) for k, x in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dumps(x, depth + 1) for x in v) + "]"
    if isinstance(v, ObjectId):
        return '"' + str(v) + '"'
    if isinstance(v, datetime.datetime):
        return _time(v)
    if isinstance(v, Binary):
        if v.subtype == 0:
            return _b64(v)
        return '{"Kind":%d,"Data":%s}' % (v.subtype, _b64(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _b64(v)
    if isinstance(v, Regex):
        pattern = v.pattern if isinstance(v.pattern, str) else bytes(v.pattern).decode("utf-8", "replace")
        return '{"Pattern":%s,"Options":%s}' % (go_string(pattern), go_string(_regex_flags(v.flags)))
    if isinstance(v, Timestamp):
        n = (v.time << 32) | v.inc
        return str(n - (1 << 64) if n > _INT64_MAX else n)
    if isinstance(v, DBRef):
        d = {"$ref": v.collection, "$id": v.id}
        if v.database is not None:
            d["$db"] = v.database
        return dumps(d, depth)
    if isinstance(v, Decimal128):
        return go_string(str(v))
    if isinstance(v, MinKey):
        return str(_INT64_MIN)
    if isinstance(v, MaxKey):
        return str(_INT64_MAX)
    if isinstance(v, DatetimeMS):
        return str(int(v))
    return go_string(str(v))


_FLAG_LETTERS = ((2, "i"), (4, "l"), (8, "m"), (16, "s"), (32, "u"), (64, "x"))


def _regex_flags(flags) -> str:
    if isinstance(flags, str):
        return flags
    return "".join(c for bit, c in _FLAG_LETTERS if flags & bit)
