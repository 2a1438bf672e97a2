"""shared/jsonenc.py: ``encode_event`` writes the stdlib encoder's text whichever way it
decides that orjson's text can be kept (the scans of the text: compiled, a C loop)."""
from __future__ import annotations

import collections
import importlib.util
import math
import random

import pytest

import shared.jsonenc as jsonenc
from tests.helpers import ROOT


def _events():
    rnd = random.Random(3)
    base = {"@timestamp": "2026-11-26T14:30:34.123Z", "type": "http", "status": "OK",
            "event": {"duration": 1234567, "kind": "event", "category": ["network", "web"]},
            "source": {"ip": "10.0.0.1", "port": 40000, "bytes": 120},
            "http": {"request": {"method": "GET", "headers": {"content-length": 0}},
                     "response": {"status_code": 200, "body": {"bytes": 49}}},
            "url": {"full": "http://a/e-1?x=null&y=0.00001"}, "flag": True, "none": None}
    out = [base]
    floats = [0.5, 1e-05, 2.5e-07, 1e16, 1.5e300, -0.0, 123456789.125, 1e-300, float("nan"), float("inf"),
              -float("inf"), 0.1 + 0.2]
    for f in floats:
        out.append(dict(base, value=f))
        out.append(dict(base, nested={"a": [1, "x", {"b": (2, f)}]}))
        out.append(dict(base, tags=["a", f]))
    out.append(dict(base, s={1, 2}))
    out.append(dict(base, s=frozenset([0.25])))
    out.append(dict(base, raw=b"GET / null 1e-05"))
    out.append(dict(base, big=2 ** 70))
    out.append(collections.OrderedDict(base, k=1e-7))
    out.append({"text": "\x00\x1f\x7f\u2028 \"quoted\" \\ é 😀", "n": -(2 ** 63), "m": 2 ** 64 - 1})
    for _ in range(300):
        ev = {}
        for k in range(rnd.randrange(1, 8)):
            ev["k%d" % k] = rnd.choice([rnd.random() * 10 ** rnd.randrange(-12, 20), rnd.randrange(-10 ** 6, 10 ** 6),
                                        "null", "e-5", None, [rnd.random() / 10 ** 6], {"x": rnd.randrange(5)}])
        out.append(ev)
    return out


def _reference(ev):
    try:
        return jsonenc._encode_with(jsonenc._COMPACT, ev)
    except jsonenc.EncodeError:
        return None


def test_encode_event_is_the_stdlib_text():
    kept = 0
    for ev in _events():
        want = _reference(ev)
        if want is None:
            with pytest.raises(jsonenc.EncodeError):
                jsonenc.encode_event(ev)
            continue
        assert jsonenc.encode_event(ev) == want, ev
        kept += 1
    assert kept > 300


def _pure_module():
    spec = importlib.util.spec_from_file_location("_jsonenc_pure", str(ROOT / "shared" / "jsonenc.py"))
    pure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pure)
    assert type(pure._maybe_different).__name__ == "function" and not pure._COMPILED
    return pure


def test_text_scan_compiled_and_pure_agree():
    """The compiled scan (jsonenc.pxd) answers as the pure one on the events' texts and on
    random texts made of the patterns' pieces (null, 0.0000, e- after a digit or not, at
    the start, at the end, overlapping)."""
    pure = _pure_module()
    rnd = random.Random(5)
    pieces = [b"null", b"nul", b"ull", b"0.0000", b"0.000", b".0000", b"0", b".", b"e-", b"e", b"-", b"5", b"x",
              b"u", b"{", b"}", b'"', b"1e-05", b"e-e-", b"9e", b"\xc3\xa9"]
    lines = [jsonenc.encode_event(ev) for ev in _events() if _reference(ev) is not None]
    lines += [b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 12))) for _ in range(20000)]
    lines += [b"", b"e", b"e-", b"e-5e-", b"5e-", b"e-x5e-", b"null", b"0.0000", b"u", b"-"]
    hits = 0
    for line in lines:
        want = pure._maybe_different(line)
        assert jsonenc._maybe_different(line) == want, line
        hits += want
    assert 1000 < hits < len(lines) - 1000


def test_walk_does_not_change_nan():
    assert math.isnan(float("nan"))
    with pytest.raises(jsonenc.EncodeError):
        jsonenc.encode_event({"v": float("nan")})
