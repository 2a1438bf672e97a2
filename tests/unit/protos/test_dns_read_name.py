"""read_name's one-piece fast path must give what the label-by-label path gives
(text, offset after, cache entry, or the same error) on valid and broken names."""
from __future__ import annotations

import random

import pytest

from worker.protos.dns.parser import ParseError, _read_name, read_name


def _outcome(fn, buf, off, end, cache):
    try:
        return fn(buf, off, end, cache), dict(cache)
    except ParseError as e:
        return ("error", str(e)), dict(cache)


def _label(rng):
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-" * 3 + b'.\\ ";()@\x00\x7f\xff'
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _message(rng):
    buf = bytearray(b"\x00" * 12)
    starts = []
    for _ in range(rng.randint(1, 5)):
        starts.append(len(buf))
        for _ in range(rng.randint(0, 4)):
            lab = _label(rng)
            if lab:
                buf.append(len(lab))
                buf += lab
        r = rng.random()
        if r < 0.5 and starts[:-1]:
            t = rng.choice(starts[:-1] + [rng.randrange(len(buf))])
            buf += bytes((0xC0 | (t >> 8), t & 0xFF))
        elif r < 0.55:
            buf.append(rng.choice((0x40, 0x80, 0x3F)))
        else:
            buf.append(0)
    if rng.random() < 0.2:
        del buf[rng.randrange(12, len(buf)):]
    return bytes(buf), starts


def test_fast_path_equals_label_path():
    rng = random.Random(7)
    fast_hits = 0
    for _ in range(4000):
        buf, starts = _message(rng)
        c_fast, c_slow = {}, {}
        for off in starts:
            if off >= len(buf):
                continue
            end = len(buf) if rng.random() < 0.8 else rng.randint(off, len(buf))
            a = _outcome(read_name, buf, off, end, c_fast)
            b = _outcome(_read_name, buf, off, end, c_slow)
            assert a == b, (buf, off, end)
            fast_hits += a[0][0] != "error"
    assert fast_hits > 3000


@pytest.mark.parametrize("wire,text", [
    (b"\x03www\x06google\x03com\x00", "www.google.com."),
    (b"\x00", "."),
    (b"\x03a.b\x03com\x00", "a\\.b.com."),
    (b"\x02a\x00\x03com\x00", "a\\000.com."),
])
def test_names(wire, text):
    assert read_name(wire, 0, len(wire), {}) == (text, len(wire))


def test_pointer_to_decoded_name():
    buf = b"\x03www\x06google\x03com\x00\x04mail\xc0\x04"
    cache = {}
    assert read_name(buf, 0, len(buf), cache) == ("www.google.com.", 16)
    assert read_name(buf, 4, len(buf), cache) == ("google.com.", 16)
    assert read_name(buf, 16, len(buf), cache) == ("mail.google.com.", len(buf))
