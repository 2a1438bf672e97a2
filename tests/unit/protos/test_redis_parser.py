"""RedisParser fed hand-written RESP2/RESP3 bytes: every fixture whole, byte
by byte and split at random points gives the same messages; rendering of
every type; inline commands; bounds; timestamps of the packet where a
message began."""
from __future__ import annotations

import random

import pytest

from worker.protos.redis.parser import ParseError, RedisParser, split_inline

# (direction is request, wire bytes, [(message, is_error, size)])
FIXTURES = [
    (True, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", [(b"SET key value", False, 33)]),
    (True, b"*2\r\n$4\r\nLLEN\r\n$6\r\nmylist\r\n*1\r\n$4\r\nPING\r\n",
     [(b"LLEN mylist", False, 26), (b"PING", False, 14)]),
    (True, b"PING\r\nSET k \"a b\\x41\\n\" 'c\\'d'\r\nEXISTS k\n\r\n*0\r\n*-1\r\nGET k\r\n",
     [(b"PING", False, 6), (b"SET k a bA\n c'd", False, 26), (b"EXISTS k", False, 9), (b"GET k", False, 7)]),
    (False, b"+OK\r\n-ERR unknown command 'x'\r\n:1000\r\n$6\r\nhello1\r\n$-1\r\n$0\r\n\r\n",
     [(b"OK", False, 5), (b"ERR unknown command 'x'", True, 26), (b"1000", False, 7),
      (b"hello1", False, 12), (b"nil", False, 5), (b"", False, 6)]),
    (False, b"*3\r\n$3\r\nfoo\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n*0\r\n*-1\r\n",
     [(b"[foo, 1, [a, nil]]", False, 33), (b"[]", False, 4), (b"nil", False, 5)]),
    (False, b"*2\r\n+OK\r\n-WRONGTYPE bad\r\n",      # an error inside EXEC's array is no error reply
     [(b"[OK, WRONGTYPE bad]", False, 25)]),
    (False, b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n#t\r\n~2\r\n,1.5\r\n#f\r\n_\r\n,inf\r\n(3492890328409238509324850943850943825024385\r\n",
     [(b"{a: 1, b: true}", False, 23), (b"[1.5, false]", False, 14), (b"nil", False, 3),
      (b"inf", False, 6), (b"3492890328409238509324850943850943825024385", False, 46)]),
    (False, b"!21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n%0\r\n",
     [(b"SYNTAX invalid syntax", True, 28), (b"Some string", False, 22), (b"{}", False, 4)]),
    (False, b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n",
     [(b"[2039123, 9543892]", False, 63)]),
    (False, b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", [(b"[1, 2]", False, 29)]),
    (False, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", [(b"[message, ch, hi]", False, 33)]),
    (False, b"$?\r\n;4\r\nHell\r\n;2\r\no!\r\n;0\r\n*?\r\n:1\r\n%?\r\n+k\r\n+v\r\n.\r\n.\r\n",
     [(b"Hello!", False, 26), (b"[1, {k: v}]", False, 26)]),
]


def test_sizes_cover_every_byte():
    # message sizes add up to the fixture (skipped empty commands aside)
    for is_request, data, want in FIXTURES:
        skipped = len(b"\r\n*0\r\n*-1\r\n") if b"*-1" in data and is_request else 0
        assert sum(w[2] for w in want) == len(data) - skipped


def feed_all(is_request: bool, chunks: list[bytes]) -> list[tuple]:
    p = RedisParser(is_request)
    out = []
    for c in chunks:
        out.extend(p.feed(memoryview(c), 1))
    assert p.buffered == 0
    return [(m.message, m.is_error, m.size) for m in out]


@pytest.mark.parametrize("is_request,data,want", FIXTURES)
def test_whole_bytewise_and_random_splits(is_request, data, want):
    assert feed_all(is_request, [data]) == want
    assert feed_all(is_request, [data[i:i + 1] for i in range(len(data))]) == want
    rng = random.Random(len(data))
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
        parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        assert feed_all(is_request, parts) == want


def test_request_fields_and_inline_flag():
    p = RedisParser(True)
    a, b = p.feed(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\nget k\r\n", 5)
    assert a.is_request and a.args == [b"CONFIG", b"GET", b"maxmemory"] and not a.inline
    assert b.args == [b"get", b"k"] and b.inline
    assert p.skipped == 0
    p.feed(b"*0\r\n\r\n*?\r\n.\r\n", 6)
    assert p.skipped == 3


def test_pubsub_shapes():
    p = RedisParser(False)
    c, m, pm = p.feed(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                      b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"
                      b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n", 1)
    assert (c.kind, c.count, c.channel, c.push) == (b"subscribe", 1, b"ch", False)
    assert (m.kind, m.count, m.push) == (b"message", -1, False)
    assert (pm.kind, pm.push) == (b"pmessage", True)


def test_ts_is_the_packet_where_a_message_began():
    p = RedisParser(False)
    assert p.feed(b"+OK\r\n$5\r\nhel", 100)[0].ts == 100
    m1, m2 = p.feed(b"lo\r\n+P", 200) + p.feed(b"ONG\r\n", 300)
    assert (m1.ts, m1.message) == (100, b"hello") and (m2.ts, m2.message) == (200, b"PONG")
    (m3,) = p.feed(b"|1\r\n+a\r\n+b\r\n", 400) + p.feed(b":7\r\n", 500)
    assert (m3.ts, m3.message, m3.size) == (400, b"7", 16)


def test_big_bulk_waits_for_its_bytes():
    p = RedisParser(False)
    body = b"x" * 200_000
    data = b"$200000\r\n" + body + b"\r\n"
    msgs = []
    for i in range(0, len(data), 65_000):
        msgs += p.feed(data[i:i + 65_000], i)
    assert len(msgs) == 1 and msgs[0].message == body and msgs[0].size == len(data) and msgs[0].ts == 0


@pytest.mark.parametrize("data", [
    b"?what\r\n", b"$abc\r\n", b"$-2\r\n", b"*-5\r\n", b"$3\r\nabcXY", b"#x\r\n", b"_x\r\n",
    b"=2\r\nab\r\n", b"%1\r\n+a\r\n.\r\n", b";3\r\nabc\r\n", b"$?\r\n+a\r\n", b".\r\n",
    b"$" + b"9" * 30 + b"\r\n",
])
def test_garbage_raises_parse_error_only(data):
    with pytest.raises(ParseError):
        RedisParser(False).feed(data, 1)


def test_parse_error_keeps_messages_before_it():
    with pytest.raises(ParseError) as e:
        RedisParser(False).feed(b"+OK\r\n:1\r\n?bad\r\n", 1)
    assert [m.message for m in e.value.messages] == [b"OK", b"1"]


def test_bounds():
    with pytest.raises(ParseError, match="larger"):
        RedisParser(False, max_message_size=1000).feed(b"$5000\r\n" + b"x" * 1200, 1)
    with pytest.raises(ParseError, match="nesting"):
        RedisParser(False).feed(b"*1\r\n" * 100, 1)
    with pytest.raises(ParseError, match="inline"):
        RedisParser(True).feed(b"A" * (64 * 1024 + 10), 1)
    p = RedisParser(False)
    assert p.feed(b"*100000000\r\n:1\r\n", 1) == [] and p.buffered == 16   # counts, never preallocates


def test_gap_and_flush_forget_partial_message():
    p = RedisParser(False)
    p.feed(b"$10\r\nabc", 1)
    assert p.flush() == 8 and p.buffered == 0
    p.feed(b"*2\r\n:1\r\n", 1)
    assert p.on_gap(5) is False and p.buffered == 0
    assert [m.message for m in p.feed(b"+OK\r\n", 2)] == [b"OK"]


def test_split_inline():
    assert split_inline(b"set a b") == ([b"set", b"a", b"b"], True)
    assert split_inline(b'set "a\\tb" \'x y\'') == ([b"set", b"a\tb", b"x y"], True)
    assert split_inline(b'set "unbalanced') == ([b"set", b'"unbalanced'], False)
    assert split_inline(b'set "a"b') == ([b"set", b'"a"b'], False)
    assert split_inline(b"set 'a'b") == ([b"set", b"'a'b"], False)          # either quote must end its argument
    # escapes: in double quotes \xHH and C escapes (an unknown one is the character); in single quotes only \'
    assert split_inline(b'set "a\\"b" "\\x4" "\\q"') == ([b"set", b'a"b', b"x4", b"q"], True)
    assert split_inline(b"set 'it\\'s' 'a\\nb'") == ([b"set", b"it's", b"a\\nb"], True)
    assert split_inline(b"   ") == ([], True)
