"""The canonical JSON line of an event (``encode_event``), shared by the
workers (shared/wire.py) and the publisher's outputs.

Compact JSON (``,`` and ``:`` separators), ``ensure_ascii=False``, keys in
insertion order, UTF-8, no trailing newline; ``bytes`` values are decoded as
UTF-8 with U+FFFD replacement, sets become lists; NaN, infinities, cycles and
other unencodable values raise :class:`EncodeError`. When ``orjson`` is
installed it writes the text and the stdlib encoder is the reference (see
coordinator/publisher/outputs.py).
"""
from __future__ import annotations

import json

try:
    import orjson
except ImportError:          # optional: the stdlib encoder does the same, slower
    orjson = None


class EncodeError(ValueError):
    """An event that cannot be written as JSON."""


# --- encoders ------------------------------------------------------------------

def _default(obj):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError("value of type %s is not JSON serializable" % type(obj).__name__)


_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default)
_PRETTY = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2, separators=(",", ": "),
                           default=_default)


def _encode_with(encoder: json.JSONEncoder, event) -> bytes:
    try:
        return encoder.encode(event).encode("utf-8", "replace")
    except (TypeError, ValueError, RecursionError) as e:
        raise EncodeError("cannot encode event as JSON: %s" % e) from None


def _maybe_different(line: bytes) -> bool:
    """Whether orjson's text may differ from the stdlib's: "null" (NaN and
    infinities become null), or a small float, which the stdlib writes with a
    two-digit exponent (1e-05, 2.5e-07) and orjson without (0.00001, 2.5e-7).
    A string that merely contains such text is re-encoded too (harmless): the
    differences all come from floats, and without one the two texts are equal.
    Compiled, the same three searches in C (jsonenc.pxd ``_maybe_different_c``:
    memchr for the rare byte of each pattern, ~2k instructions for an HTTP event,
    against ~7k for the three ``bytes`` searches and ~9k for the walk of the event
    for floats this replaced)."""
    if _COMPILED:
        return _maybe_different_c(line)
    if b"null" in line or b"0.0000" in line:
        return True
    i = line.find(b"e-")
    while i > 0:
        if 0x30 <= line[i - 1] <= 0x39:
            return True
        i = line.find(b"e-", i + 2)
    return False


def _probe():
    pass


# True when this module runs compiled (setup.py)
_COMPILED = type(_probe).__name__ != "function"


if orjson is not None:
    _ORJSON_DUMPS = orjson.dumps
    _ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
else:
    _ORJSON_DUMPS = None
    _ORJSON_OPTS = 0


def encode_event(event: dict) -> bytes:
    """The canonical compact JSON line of ``event`` (no newline); EncodeError."""
    if _ORJSON_DUMPS is not None:
        try:
            line = _ORJSON_DUMPS(event, default=_default, option=_ORJSON_OPTS)
        except (TypeError, ValueError):       # orjson.JSONEncodeError is a TypeError
            pass
        else:
            if not _maybe_different(line):
                return line
    return _encode_with(_COMPACT, event)
