"""MemcacheParser on hand-written byte strings. Every fixture is fed whole,
byte by byte, and split at seeded random points: the messages must be the same."""
from __future__ import annotations

import random
import struct

import pytest

from worker.plugin import ParseError as BaseParseError
from worker.protos.memcache.parser import MemcacheParser, ParseError, State, parse_datagram

TS = 1_700_000_000_000_000_000
HDR = struct.Struct("!BBHBBHIIQ")


def binmsg(magic, opcode, key=b"", extras=b"", value=b"", status=0, opaque=0, cas=0):
    return HDR.pack(magic, opcode, len(key), len(extras), 0, status,
                    len(extras) + len(key) + len(value), opaque, cas) + extras + key + value


def _splits(data: bytes):
    yield "whole", [data]
    yield "bytewise", [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(len(data))
    for n in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
        yield "random%d" % n, [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def feed_all(data: bytes, **kw):
    results = []
    for _name, chunks in _splits(data):
        p = MemcacheParser(**kw)
        msgs = []
        for c in chunks:
            msgs += p.feed(memoryview(c), TS)
        assert p.state == State.COMMAND and p.pending is None
        results.append(msgs)
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def test_text_store_request_and_sizes():
    raw = b"set k1 5 300 3\r\nabc\r\nset k2 0 0 2 noreply\r\nxy\r\n"
    a, b = feed_all(raw)
    assert a.is_request and not a.is_binary and a.cmd.name == "set" and a.cmd.typ == "Store"
    assert a.keys == [b"k1"] and a.flags == 5 and a.exptime == 300 and a.bytes == 3
    assert a.count_values == 1 and not a.noreply and a.size == 21 and a.ts == TS
    assert a.values is None                      # maxvalues 0: nothing kept
    assert b.noreply and b.size == len(raw) - 21


def test_text_cas_touch_counter_delete_flush():
    raw = (b"cas k 1 2 1 99\r\nz\r\ntouch k 10\r\nincr k 7\r\ndecr k 2 noreply\r\n"
           b"delete k\r\nflush_all\r\nflush_all 30\r\nverbosity 1\r\nversion\r\nquit\r\n"
           b"stats slabs\r\ngets a b\r\n")
    m = feed_all(raw)
    assert [x.cmd.name for x in m] == ["cas", "touch", "incr", "decr", "delete", "flush_all", "flush_all",
                                       "verbosity", "version", "quit", "stats", "gets"]
    assert m[0].cas_unique == 99 and m[0].is_cas
    assert m[1].exptime == 10 and m[2].value == 7 and m[3].value == 2 and m[3].noreply
    assert m[5].exptime == 0 and m[6].exptime == 30 and m[7].value == 1
    assert m[10].raw_args == b"slabs" and m[11].keys == [b"a", b"b"]


def test_text_sub_commands():
    m = feed_all(b"slabs reassign 1 -1\r\nslabs automove 2\r\nlru_crawler sleep 100\r\nlru_crawler crawl all\r\n")
    assert m[0].cmd.name == "slabs reassign" and (m[0].ivalue, m[0].ivalue2) == (1, -1)
    assert m[1].cmd.name == "slabs automove" and m[1].value == 2
    assert m[2].cmd.name == "lru_crawler sleep" and m[2].value == 100
    assert m[3].cmd.name == "lru_crawler tocrawl" and m[3].raw_args == b"all"


def test_text_responses():
    raw = (b"VALUE k1 3 5 77\r\nhello\r\nVALUE k2 0 2\r\nhi\r\nEND\r\nSTORED\r\nNOT_FOUND\r\n42\r\n"
           b"STAT pid 12\r\nSTAT version 1.6.18\r\nEND\r\nCLIENT_ERROR bad data chunk\r\nVERSION 1.6.18\r\n")
    m = feed_all(raw, value_keep=3, max_values=-1)
    assert [x.cmd.name for x in m] == ["VALUE", "VALUE", "END", "STORED", "NOT_FOUND", "<counter_op_res>",
                                       "STAT", "STAT", "END", "CLIENT_ERROR", "VERSION"]
    v = m[0]
    assert not v.is_request and v.keys == [b"k1"] and v.flags == 3 and v.bytes == 5 and v.cas_unique == 77
    assert v.values == [b"hel"] and v.count_values == 1 and v.size == len(b"VALUE k1 3 5 77\r\nhello\r\n")
    assert m[1].values == [b"hi"]
    assert m[5].value == 42
    assert m[6].stats == [(b"pid", b"12")] and m[7].stats == [(b"version", b"1.6.18")]
    assert m[9].error_msg == b"bad data chunk" and m[9].cmd.typ == "Fail"


def test_unknown_text_command():
    with pytest.raises(ParseError) as ei:
        MemcacheParser().feed(b"version\r\nfrobnicate x\r\n", TS)
    assert isinstance(ei.value, BaseParseError)
    assert [x.cmd.name for x in ei.value.messages] == ["version"]
    [m] = feed_all(b"frobnicate x y\r\n", parse_unknown=True)
    assert m.cmd.name == "UNKNOWN" and m.command_line == b"frobnicate x y"


@pytest.mark.parametrize("raw", [
    b"\r\n",                              # empty line
    b"   \r\n",                           # spaces only
    b"set k 0 0 1\r\nabc\r\n",            # data not followed by CRLF, then an empty line
    b"GET k\r\n",                         # upper case: a response word memcached never sends
])
def test_text_errors(raw):
    with pytest.raises(ParseError):
        MemcacheParser().feed(raw, TS)


def test_value_response_without_crlf_is_an_error():
    with pytest.raises(ParseError):
        MemcacheParser().feed(b"VALUE k 0 1\r\nab\r\n", TS)


# Known commands whose arguments memcached rejects (it answers ERROR or
# CLIENT_ERROR ... and reads no data block): the request is still a message,
# with its command and what could be parsed, so that it pairs with the error.
@pytest.mark.parametrize("raw,name,keys,nargs", [
    (b"set k 0 0\r\n", "set", [b"k"], 3),                 # missing bytes: ERROR
    (b"set k 0 0 x\r\n", "set", [b"k"], 3),               # not a number: CLIENT_ERROR
    (b"set k 0 0 -1\r\n", "set", [b"k"], 3),              # negative: CLIENT_ERROR
    (b"cas k 0 0 1\r\n", "cas", [b"k"], 4),               # no cas unique: ERROR
    (b"get\r\n", "get", None, 0),                         # no keys: ERROR
    (b"delete\r\n", "delete", None, 0),
    (b"touch k\r\n", "touch", [b"k"], 1),                 # no exptime: ERROR
    (b"incr k abc\r\n", "incr", [b"k"], 1),               # CLIENT_ERROR invalid numeric delta argument
    (b"flush_all abc\r\n", "flush_all", None, 0),         # CLIENT_ERROR invalid exptime argument
    (b"verbosity\r\n", "verbosity", None, 0),
    (b"slabs\r\n", "slabs", None, -1),                     # no sub-command: ERROR
    (b"slabs frobnicate 1\r\n", "slabs", None, -1),        # unknown sub-command: ERROR
    (b"lru_crawler bogus\r\n", "lru_crawler", None, -1),
])
def test_text_rejected_requests_are_messages(raw, name, keys, nargs):
    [m] = feed_all(raw + b"version\r\n")[:-1]
    assert m.is_request and m.cmd.name == name and m.keys == keys and m.nargs == nargs
    assert m.count_values == 0 and m.size == len(raw) and not m.notes
    # the next command is read normally: no data block was taken
    assert [x.cmd.name for x in feed_all(raw + b"version\r\n")][-1] == "version"


def test_text_unknown_sub_command_with_parse_unknown():
    [m] = feed_all(b"slabs frobnicate 1\r\n", parse_unknown=True)
    assert m.cmd.name == "UNKNOWN"


def test_text_noreply_is_the_last_token():
    a, b, c = feed_all(b"delete k 0 noreply\r\nset k 0 0 1 maybe\r\na\r\nincr k 1 2 3\r\n")
    assert a.cmd.name == "delete" and a.noreply and a.keys == [b"k"]
    # a word that is not noreply: memcached ignores it (set) or answers ERROR (incr)
    assert b.cmd.name == "set" and not b.noreply and b.count_values == 1 and b.bytes == 1
    assert c.cmd.name == "incr" and not c.noreply and c.value == 1


def test_text_bad_data_chunk_consumed_as_memcached_does():
    # memcached reads <bytes> + 2 whatever they are, answers CLIENT_ERROR bad
    # data chunk, then parses what follows as a new command
    a, b = feed_all(b"set k 0 0 3\r\nabcdeversion\r\n", value_keep=10, max_values=1)
    assert a.cmd.name == "set" and a.count_values == 1 and a.values == [b"abc"]
    assert a.size == len(b"set k 0 0 3\r\nabcde") and a.notes == ["data block not followed by CRLF (bad data chunk)"]
    assert b.cmd.name == "version"


def test_binary_messages():
    set_req = binmsg(0x80, 0x01, b"key", struct.pack("!II", 9, 60), b"value!", opaque=7)
    get_resp = binmsg(0x81, 0x0C, b"key", struct.pack("!I", 9), b"value!", opaque=8, cas=1234)
    incr_req = binmsg(0x80, 0x15, b"cnt", struct.pack("!QQI", 2, 10, 0xFFFFFFFF), opaque=9)
    incr_resp = binmsg(0x81, 0x05, value=struct.pack("!Q", 12), opaque=9)
    ver_resp = binmsg(0x81, 0x0B, value=b"1.6.18")
    stat_resp = binmsg(0x81, 0x10, b"pid", value=b"42", opaque=3)
    stat_end = binmsg(0x81, 0x10, opaque=3)
    err_resp = binmsg(0x81, 0x05, value=b"Non-numeric server-side value for incr or decr", status=6)
    raw = set_req + get_resp + incr_req + incr_resp + ver_resp + stat_resp + stat_end + err_resp
    m = feed_all(raw, value_keep=100, max_values=1)
    a = m[0]
    assert a.is_binary and a.is_request and a.opcode == 1 and a.opaque == 7 and a.keys == [b"key"]
    assert (a.flags, a.exptime, a.bytes, a.count_values, a.values) == (9, 60, 6, 1, [b"value!"])
    assert a.size == len(set_req) and not a.is_quiet
    b = m[1]
    assert not b.is_request and b.flags == 9 and b.is_cas and b.cas_unique == 1234 and b.values == [b"value!"]
    assert m[2].is_quiet and (m[2].value, m[2].value2, m[2].exptime) == (2, 10, 0xFFFFFFFF)
    assert m[3].value == 12 and m[3].count_values == 0
    assert m[4].version == b"1.6.18"
    assert m[5].stats == [(b"pid", b"42")] and m[6].keys is None and m[6].size == 24
    assert m[7].status == 6 and m[7].value == 0 and m[7].count_values == 1


def test_binary_short_extras_is_a_note_and_bad_lengths_raise():
    [m] = feed_all(binmsg(0x80, 0x01, b"k", b"\x00\x00\x00\x07\x00\x00", b"v"))
    assert m.notes == ["no more bytes for extra exptime"] and m.keys == [b"k"] and m.flags == 7
    bad = HDR.pack(0x80, 0x01, 10, 0, 0, 0, 4, 0, 0) + b"x" * 10
    with pytest.raises(ParseError):
        MemcacheParser().feed(bad, TS)


def test_large_value_is_streamed_not_buffered():
    value = b"x" * 200_000
    p = MemcacheParser(value_keep=10, max_values=1, max_buffer=1024)
    msgs = []
    raw = b"set big 0 0 %d\r\n" % len(value) + value + b"\r\n"
    for i in range(0, len(raw), 1000):
        msgs += p.feed(raw[i:i + 1000], TS)
        assert p.buffered < 1100
    [m] = msgs
    assert m.bytes == 200_000 and m.values == [b"x" * 10] and m.size == len(raw)


def test_long_line_is_an_error():
    p = MemcacheParser(max_buffer=100)
    p.feed(b"get " + b"k" * 50, TS)
    with pytest.raises(ParseError):
        p.feed(b"k" * 100, TS)


def test_message_ts_is_where_it_began():
    p = MemcacheParser()
    first = p.feed(b"get a\r\nge", 1)
    second = p.feed(b"t b\r\nget c\r\n", 2)
    assert [m.ts for m in first] == [1]
    assert [(m.keys, m.ts) for m in second] == [([b"b"], 1), ([b"c"], 2)]


def test_gap_inside_value_resumes_outside_does_not():
    p = MemcacheParser(value_keep=100, max_values=1)
    assert p.feed(b"set k 0 0 10\r\nabc", 1) == []
    assert p.on_gap(4)
    [m] = p.feed(b"xyz\r\nget k\r\n", 2)[:1]
    assert m.bytes_lost == 4 and m.count_values == 1 and m.values is None
    assert m.notes == ["Packet loss while capturing the request"] and m.size == 14 + 3 + 3 + 2
    q = MemcacheParser()
    q.feed(b"set k 0 0 3\r\na", 1)
    assert not q.on_gap(10)
    assert not MemcacheParser().on_gap(5)


def test_binary_gap_ending_the_value_completes_on_drain():
    p = MemcacheParser()
    assert p.feed(binmsg(0x80, 0x01, b"k", struct.pack("!II", 0, 0), b"0123456789")[:-4], 1) == []
    assert p.on_gap(4)
    [m] = p.drain()
    assert m.bytes == 10 and m.bytes_lost == 4 and m.count_values == 1


def test_parse_datagram():
    msgs = parse_datagram(b"VALUE a 0 1\r\nx\r\nEND\r\n", 5)
    assert [m.cmd.name for m in msgs] == ["VALUE", "END"] and msgs[0].ts == 5
    with pytest.raises(ParseError):
        parse_datagram(b"VALUE a 0 10\r\nx", 5)
    with pytest.raises(ParseError):
        parse_datagram(b"", 5)


def test_merge_stats_folds_a_run_of_stat_replies_within_one_feed():
    """The plugin's parsers fold STAT lines as the correlator would (fewer objects);
    the fold never reaches across feed calls, and the default keeps one message per line."""
    from worker.protos.memcache.parser import MemcacheParser
    data = b"STAT pid 12\r\nSTAT version 1.6.18\r\nSTAT uptime 5\r\nEND\r\nVERSION 1.6.18\r\n"
    plain = MemcacheParser().feed(data, 1)
    assert [m.cmd.name for m in plain] == ["STAT", "STAT", "STAT", "END", "VERSION"]
    merged = MemcacheParser(merge_stats=True).feed(data, 1)
    assert [m.cmd.name for m in merged] == ["STAT", "END", "VERSION"]
    assert merged[0].stats == [s for m in plain[:3] for s in m.stats]
    assert merged[0].size == sum(m.size for m in plain[:3])
    p = MemcacheParser(merge_stats=True)
    first = p.feed(b"STAT pid 12\r\n", 1)
    second = p.feed(b"STAT uptime 5\r\nEND\r\n", 2)
    assert [m.stats for m in first] == [[(b"pid", b"12")]]
    assert [m.cmd.name for m in second] == ["STAT", "END"]
    assert second[0].stats == [(b"uptime", b"5")]


def test_merge_stats_long_runs_match_the_plain_parser():
    """STAT runs longer than the parser's look-ahead window, lines off the fast
    path and binary stat runs broken by another opaque, an empty value or an
    error status: the folded messages hold the same stats and bytes, in order,
    as one message per line, whole and split at any point."""
    lines = [b"STAT stat_%d %d" % (i, i * 7) for i in range(600)]
    lines[50] = b"STAT  spaced 1"          # empty name field: the general path
    lines[120] = b"STAT novalue"
    lines[121] = b"STAT three a b"
    text = b"\r\n".join(lines) + b"\r\nEND\r\n"
    assert len(text) > 2 * 4096

    def bstat(key, value, opaque=7, status=0):
        return binmsg(0x81, 0x10, key=key, value=value, opaque=opaque, status=status)
    binary = (b"".join(bstat(b"k%d" % i, b"%d" % i) for i in range(200)) + bstat(b"other", b"1", opaque=8)
              + bstat(b"k200", b"2") + bstat(b"empty", b"") + bstat(b"k201", b"3")
              + bstat(b"err", b"no", status=0x81) + bstat(b"k202", b"4") + bstat(b"", b""))

    def stats(msgs):
        return [s for m in msgs for s in (m.stats or ())]
    for data in (text, binary):
        plain = MemcacheParser().feed(data, 1)
        for _name, chunks in _splits(data):
            p = MemcacheParser(merge_stats=True)
            merged = []
            for c in chunks:
                merged += p.feed(c, 1)
            assert stats(merged) == stats(plain)
            assert sum(m.size for m in merged) == sum(m.size for m in plain) == len(data)
    merged = MemcacheParser(merge_stats=True).feed(text, 1)
    assert [m.cmd.name for m in merged] == ["STAT", "END"]
    assert len(merged[0].stats) == 600 and merged[0].stats[50] == (b"spaced", b"1")
    assert merged[0].stats[120:122] == [(b"novalue", b""), (b"three", b"a")]
    merged = MemcacheParser(merge_stats=True).feed(binary, 1)
    assert [len(m.stats or ()) for m in merged] == [200, 1, 1, 0, 1, 0, 1, 0]
    assert [m.opaque for m in merged[:2]] == [7, 8]


def test_merge_stats_random_lines_match_the_plain_parser():
    """Random STAT-like lines (spaces anywhere, stray CR, empty fields, other
    words, a last line without its CRLF): the run folded at once (C level when
    compiled) holds the stats and bytes of one message per line."""
    import random
    rnd = random.Random(3)
    words = [b"STAT", b"STAT ", b"STATS", b"STA", b"stat", b"END", b"a", b"b b", b" ", b"\r", b"", b"x" * 30]
    for _ in range(300):
        lines = []
        for _ in range(rnd.randrange(1, 40)):
            head = rnd.choice([b"STAT ", b"STAT ", b"STAT ", rnd.choice(words)])
            lines.append(head + b" ".join(rnd.choice(words) for _ in range(rnd.randrange(4))))
        data = b"\r\n".join(lines) + rnd.choice([b"\r\n", b"\r\nEND\r\n", b"", b"\r"])
        try:
            plain = MemcacheParser(parse_unknown=True).feed(data, 1)
        except ParseError:
            continue
        p = MemcacheParser(parse_unknown=True, merge_stats=True)
        merged = p.feed(data, 1)
        assert [s for m in merged for s in (m.stats or ())] == [s for m in plain for s in (m.stats or ())]
        assert sum(m.size for m in merged) == sum(m.size for m in plain)


def test_number_arguments_read_as_int_of_their_digits():
    # _uint reads 1-19 ASCII digits at C level when compiled: the same value,
    # or the same error, as int() after isdigit() for every kind of token
    from worker.protos.memcache import parser as P
    rng = random.Random(14)
    toks = [b"0", b"00", b"007", b"9" * 19, b"1" + b"0" * 19, b"9" * 20, b"18446744073709551616",
            b"9" * 25, b"-1", b"+1", b"1_0", b" 1", b"1 ", b"1\x00", b"\xd9\xa0", b"0x10", b"1e3", b":", b"/"]
    for _ in range(3000):
        n = rng.randint(1, 24)
        toks.append(bytes(rng.choice(b"0123456789" * 3 + b"/:a-_+ \x00\xff") for _ in range(n)))
    for tok in toks:
        if tok.isdigit():
            assert P._uint(tok, "bytes") == int(tok) & 0xFFFFFFFFFFFFFFFF, tok
        else:
            with pytest.raises(ParseError):
                P._uint(tok, "bytes")
