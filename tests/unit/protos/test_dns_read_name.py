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


def _same_caches(buf, fast, slow):
    """The fast path's cache holds every entry of the label path's, and its
    extra entries (suffixes reached by a pointer into an earlier name) are
    what the label path computes from their offsets."""
    for off, entry in slow.items():
        assert fast.get(off) == entry, (buf, off)
    for off, entry in fast.items():
        if off not in slow:
            alone = {}
            assert _read_name(buf, off, entry[2], alone) == (entry[0], entry[3]), (buf, off)
            assert alone == {off: entry}, (buf, off)


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
            assert a[0] == b[0], (buf, off, end)
            _same_caches(buf, a[1], b[1])
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


def test_pointer_into_an_earlier_name():
    # "mail" points at "google.com." inside "www.google.com.": decoded on the
    # fast path, its suffix cached by offset, a later pointer there a hit
    buf = b"\x03www\x06google\x03com\x00\x04mail\xc0\x04\x03ftp\xc0\x04"
    cache = {}
    assert read_name(buf, 0, len(buf), cache) == ("www.google.com.", 16)
    assert read_name(buf, 16, len(buf), cache) == ("mail.google.com.", 23)
    assert cache[4] == ("google.com.", 11, 16, 16)
    assert read_name(buf, 23, len(buf), cache) == ("ftp.google.com.", len(buf))
    assert _read_name(buf, 16, len(buf), {}) == ("mail.google.com.", 23)


@pytest.mark.parametrize("buf,off", [
    (b"\x03abc\xc0\x00", 0),                       # a pointer to the name itself
    (b"\x01a\x01b\xc0\x02", 0),                   # into its own middle (a loop)
    (b"\x01a\xc0\x04\x01b\xc0\x02", 0),         # two names pointing at each other
    (b"\x01a\x03b\\c\x00\x01d\xc0\x02", 7),   # to a suffix that needs escapes
    (b"\x01a\x03bcd\x00\x01d\xc0\x02", 7),      # to a suffix cut by the end below
    (b"\x01a\x3fbcd\x00\x01d\xc0\x02", 7),      # to a label running past the end
    (b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3e" + b"d" * 62 + b"\x00"
     + b"\x3f" + b"e" * 63 + b"\xc0\x40", 256),       # suffix fits, whole name too long
    (b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3e" + b"d" * 62 + b"\x00"
     + b"\x01e\xc0\x40", 256),                      # both fit
])
def test_hostile_pointers_into_names(buf, off):
    for end in range(off, len(buf) + 1):
        c_fast, c_slow = {}, {}
        assert _outcome(read_name, buf, off, end, c_fast)[0] == _outcome(_read_name, buf, off, end, c_slow)[0]
        _same_caches(buf, c_fast, c_slow)
