"""Thrift parser: binary (strict / non-strict) and compact messages, unframed
and framed, fed whole, byte by byte and split at random points; detection,
limits, rendering as Packetbeat, gaps."""
from __future__ import annotations

import random
import struct

import pytest

from worker.protos.thrift.parser import (CALL, EXCEPTION, ONEWAY, REPLY, ParseError, ThriftParser,
                                         go_float, go_quote)

thriftpy2 = pytest.importorskip("thriftpy2")
from thriftpy2.protocol import TBinaryProtocol, TCompactProtocol  # noqa: E402
from thriftpy2.transport import TMemoryBuffer  # noqa: E402

from tests.helpers import ROOT  # noqa: E402

IDL = thriftpy2.load(str(ROOT / "tests" / "golden" / "gen" / "thrift_idl" / "store.thrift"))
Item = IDL.base.Item
Store = IDL.Store

# The tutorial client's ping, strict binary, written out by hand (17 bytes).
PING = bytes.fromhex("80010001" "00000004") + b"ping" + bytes.fromhex("00000000" "00")
PING_REPLY = bytes.fromhex("80010002" "00000004") + b"ping" + bytes.fromhex("00000000" "00")
# add(1: 1, 2: 1) as the old non-strict header: name length, name, type, seqid
ADD_OLD = (bytes.fromhex("00000003") + b"add" + bytes.fromhex("01" "0000002a")
           + bytes.fromhex("080001" "00000001" "080002" "00000001" "00"))


def encode(name: str, mtype: int, seqid: int, obj, *, compact=False, framed=False, strict=True) -> bytes:
    buf = TMemoryBuffer()
    proto = TCompactProtocol(buf) if compact else TBinaryProtocol(buf, strict_write=strict)
    proto.write_message_begin(name, mtype, seqid)
    proto.write_struct(obj)
    proto.write_message_end()
    data = buf.getvalue()
    return struct.pack(">I", len(data)) + data if framed else data


def item(**kw):
    base = dict(id=7, name="apple", price=2.5, tags=["a", "b"], attrs={"w": 1}, codes={3},
                active=True, flags=1)
    base.update(kw)
    return Item(**base)


MODES = [dict(compact=c, framed=f, strict=s) for c in (False, True) for f in (False, True)
         for s in (True, False) if not (c and not s)]


def feed_all(parser: ThriftParser, data: bytes, splits) -> list:
    out = []
    pos = 0
    for i, cut in enumerate(list(splits) + [len(data)]):
        if cut > pos:
            out += parser.feed(memoryview(data[pos:cut]), 1000 + i)
            pos = cut
    return out


def summary(msgs):
    return [(m.mtype, m.method, m.seqid, m.fields, m.nfields, m.size, m.transport, m.protocol) for m in msgs]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "%s-%s-%s" % (
    "compact" if m["compact"] else "binary", "framed" if m["framed"] else "socket",
    "strict" if m["strict"] else "old"))
def test_whole_bytewise_and_random_splits_agree(mode):
    stream = (encode("put", CALL, 1, Store.put_args(item=item()), **mode)
              + encode("search", CALL, 2, Store.search_args(query="q", limit=3, filters={"a": "b"}), **mode)
              + encode("touch", ONEWAY, 3, Store.touch_args(id=9), **mode))
    whole = summary(ThriftParser().feed(stream, 1))
    assert [m[1] for m in whole] == ["put", "search", "touch"]
    assert whole[0][6] == ("framed" if mode["framed"] else "socket")
    assert whole[0][7] == ("compact" if mode["compact"] else "binary")
    assert summary(feed_all(ThriftParser(), stream, range(1, len(stream)))) == whole
    rnd = random.Random(len(stream))
    for _ in range(20):
        cuts = sorted(rnd.sample(range(1, len(stream)), rnd.randint(1, 8)))
        assert summary(feed_all(ThriftParser(), stream, cuts)) == whole


def test_rendering_as_packetbeat():
    it = item(price=-0.5, tags=[], attrs={"neg": -3}, codes=set(), flags=-2, blob=b"\x00\xff", color=2)
    msg = ThriftParser().feed(encode("put", CALL, 5, Store.put_args(item=it)), 1)[0]
    assert msg.is_request and msg.seqid == 5 and msg.nfields == 1
    # empty list/set render as nothing at all; i32 and byte unsigned (Packetbeat's
    # BytesNtohl / uint8); non-UTF-8 binary as hex; doubles in Go's shortest form
    assert msg.fields == [(1, '(1: 7, 2: "apple", 3: -0.5, 4: , 5: {"neg": 4294967293}, 6: , 7: true, '
                              '8: 254, 9: 00ff, 10: 2)')]


def test_compact_renders_like_binary():
    args = Store.put_args(item=item(price=1e21, attrs={"neg": -3}, flags=-2))
    a = ThriftParser().feed(encode("put", CALL, 1, args), 1)[0]
    b = ThriftParser().feed(encode("put", CALL, 1, args, compact=True), 1)[0]
    assert a.fields == b.fields
    assert "3: 1000000000000000000000" in a.fields[0][1]


def test_hand_written_messages():
    p = ThriftParser()
    [m] = p.feed(PING, 1)
    assert (m.mtype, m.method, m.seqid, m.fields, m.size) == (CALL, "ping", 0, [], 17)
    [r] = ThriftParser().feed(PING_REPLY, 1)
    assert (r.mtype, r.is_request, r.size) == (REPLY, False, 17)
    [o] = ThriftParser().feed(ADD_OLD, 1)
    assert (o.method, o.seqid, o.fields, o.protocol) == ("add", 42, [(1, "1"), (2, "1")], "binary")
    # framed: the size is the frame's length (the 4-byte header not counted, as Packetbeat)
    [f] = ThriftParser().feed(struct.pack(">I", len(PING)) + PING, 1)
    assert f.transport == "framed" and f.size == 17


def test_timestamps_are_where_messages_begin():
    p = ThriftParser()
    a, b = PING, ADD_OLD
    assert p.feed(a + b[:5], 10)[0].ts == 10
    [m] = p.feed(b[5:], 20)
    assert m.ts == 10           # began in the first segment
    assert p.feed(a, 30)[0].ts == 30


def test_limits_string_collection_struct_fields():
    it = item(name="é" * 150, tags=["t%d" % i for i in range(20)])
    data = encode("put", CALL, 1, Store.put_args(item=it))
    text = ThriftParser(string_max_size=10, collection_max_size=3).feed(data, 1)[0].fields[0][1]
    # 10 bytes of a 2-byte character: still UTF-8; ... appended before quoting
    assert text.startswith('(1: 7, 2: "ééééé...", 3: 2.5, ...)')
    cut = ThriftParser(string_max_size=9).feed(data, 1)[0].fields[0][1]
    assert '2: ' + ("é" * 4).encode().hex() + "c32e2e2e" in cut      # cut inside a character: hex
    tags = ThriftParser(collection_max_size=2).feed(data, 1)[0].fields[0][1]
    assert '4: ["t0", "t1", ...]' not in tags      # struct limit 2 hides field 4
    full = ThriftParser(collection_max_size=15).feed(data, 1)[0].fields[0][1]
    assert '4: ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t13", "t14", ...]' in full
    with pytest.raises(ParseError):
        ThriftParser(drop_after_n_struct_fields=3).feed(data, 1)


def test_obfuscate_strings():
    data = encode("search", CALL, 1, Store.search_args(query="secret", limit=1, filters={"k": ""}))
    [m] = ThriftParser(obfuscate_strings=True).feed(data, 1)
    assert m.fields == [(1, '"*"'), (2, "1"), (3, '{"*": ""}')]


def test_capture_reply_off_keeps_framing_and_exception_flag():
    ok = encode("get", REPLY, 1, Store.get_result(success=item()))
    exc = encode("get", REPLY, 2, Store.get_result(nf=IDL.base.NotFound(key="k", code=1)))
    msgs = ThriftParser(capture_reply=False).feed(ok + exc + PING, 1)
    assert [(m.method, m.fields) for m in msgs] == [("get", [(0, None)]), ("get", [(1, None)]), ("ping", [])]


def test_exception_message():
    from thriftpy2.thrift import TApplicationException
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin("crash", EXCEPTION, 4)
    TApplicationException(6, "boom").write(proto)
    [m] = ThriftParser().feed(buf.getvalue(), 1)
    assert (m.mtype, m.fields) == (EXCEPTION, [(1, '"boom"'), (2, "6")])


@pytest.mark.parametrize("transport,protocol,data", [
    ("framed", "", PING),
    ("socket", "compact", PING),
    ("", "compact", ADD_OLD),
])
def test_forced_modes_refuse_other_traffic(transport, protocol, data):
    with pytest.raises(ParseError):
        ThriftParser(transport, protocol).feed(data, 1)


@pytest.mark.parametrize("junk", [b"GET / HTTP/1.1\r\n\r\n", b"\x00\x00\x00\x00\x00\x00", b"\xff" * 40,
                                  b"\x80\x01\x00\x09\x00\x00\x00\x01a\x00\x00\x00\x00\x00"])
def test_not_thrift(junk):
    with pytest.raises(ParseError):
        ThriftParser().feed(junk, 1)


def test_error_keeps_messages_completed_before():
    with pytest.raises(ParseError) as e:
        ThriftParser().feed(PING + b"\x80\x01\x00\x07xxxxxxxx", 1)
    assert [m.method for m in e.value.messages] == ["ping"]


def test_message_overrunning_its_frame():
    with pytest.raises(ParseError):
        ThriftParser().feed(struct.pack(">I", 10) + PING, 1)


def test_unframed_message_size_limit():
    data = encode("put", CALL, 1, Store.put_args(item=item(name="x" * 5000)))
    p = ThriftParser(max_message_size=1000)
    with pytest.raises(ParseError):
        p.feed(data[:2000], 1)


def test_large_frame_header_only_then_next_frame():
    big = encode("put", CALL, 1, Store.put_args(item=item(name="x" * 5000)), framed=True)
    p = ThriftParser(max_message_size=1000)
    out = p.feed(big[:300], 1) + p.feed(big[300:], 2) + p.feed(struct.pack(">I", len(PING)) + PING, 3)
    assert [(m.method, m.decoded) for m in out] == [("put", False), ("ping", True)]
    assert out[0].notes and out[0].notes[0].startswith("Message too large")
    assert out[0].size == len(big) - 4 and p.too_large == 1


def test_gap_inside_a_frame_resyncs_on_the_next_frame():
    framed = encode("put", CALL, 1, Store.put_args(item=item(name="y" * 300)), framed=True)
    nxt = struct.pack(">I", len(PING)) + PING
    p = ThriftParser()
    assert p.feed(framed[:100], 1) == []
    assert p.on_gap(100) is True
    [lost] = p.drain()
    assert (lost.method, lost.decoded, lost.size) == ("put", False, len(framed) - 4)
    assert lost.notes == ["Packet loss while capturing the request"]
    assert [m.method for m in p.feed(framed[200:] + nxt, 2)] == ["ping"]


def test_gap_unframed_cannot_resync():
    data = encode("put", CALL, 1, Store.put_args(item=item()))
    p = ThriftParser()
    p.feed(data[:30], 1)
    assert p.on_gap(10) is False
    [lost] = p.drain()
    assert lost.method == "put" and not lost.decoded
    assert p.buffered == 0 and p.drain() == []


def test_gap_before_any_header():
    p = ThriftParser()
    assert p.on_gap(5) is False and p.drain() == []


def test_deep_nesting_is_refused():
    # a struct nested 100 deep (binary: field type 12 id 1, repeated)
    body = b"\x0c\x00\x01" * 100 + b"\x00" * 101
    data = bytes.fromhex("80010001" "00000001") + b"x" + bytes.fromhex("00000000") + body
    with pytest.raises(ParseError):
        ThriftParser().feed(data, 1)


def test_huge_collection_counts_wait_for_bytes_not_memory():
    # list<i64> of 2**31-1 elements announced: needs bytes, holds nothing else
    data = bytes.fromhex("80010001" "00000001") + b"x" + bytes.fromhex("00000000" "0f0001" "0a" "7fffffff")
    p = ThriftParser(max_message_size=1 << 20)
    assert p.feed(data, 1) == []
    with pytest.raises(ParseError):
        p.feed(b"\x00" * (1 << 20), 2)


def test_go_quote_and_float():
    assert go_quote('a"b\\c\n\x00\x7f\u00ad\U0001F600é') == '"a\\"b\\\\c\\n\\x00\\x7f\\u00ad\U0001F600é"'
    assert [go_float(x) for x in (2.0, 2.5, -0.0, 1e21, 1e-7, float("inf"), float("-inf"))] == \
        ["2", "2.5", "-0", "1000000000000000000000", "0.0000001", "+Inf", "-Inf"]
    assert go_float(float("nan")) == "NaN"


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("framed", [False, True])
def test_large_message_over_many_segments(compact, framed):
    it = item(name="n" * 70_000, tags=["tag%04d" % i for i in range(3000)],
              attrs={"k%04d" % i: i for i in range(500)}, codes=set(range(400)))
    data = encode("put", CALL, 9, Store.put_args(item=it), compact=compact, framed=framed)
    whole = summary(ThriftParser().feed(data, 1))
    assert len(whole) == 1 and '4: ["tag0000", "tag0001"' in whole[0][3][0][1]
    for step in (1000, 4096, 65536):
        p = ThriftParser()
        out = []
        for i in range(0, len(data), step):
            out += p.feed(data[i:i + step], i)
        assert summary(out) == whole, step
