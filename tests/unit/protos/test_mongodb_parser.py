"""MongoDB parser, correlation and events on hand-built wire messages."""
from __future__ import annotations

import datetime
import random
import struct
import zlib

import bson
import cramjam
import pytest
import zstandard
from bson import Int64, ObjectId
from bson.son import SON

from worker.plugin import TcpTuple
from worker.protos.mongodb.config import MongodbConfig
from worker.protos.mongodb.event import to_event
from worker.protos.mongodb.gojson import dumps, go_float
from worker.protos.mongodb.parser import MongodbParser, ParseError
from worker.protos.mongodb.plugin import MongodbPlugin

TUPLE = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 27017, 1)


def msg(rid, rto, op, body):
    return struct.pack("<iiii", 16 + len(body), rid, rto, op) + body


def op_msg(rid, rto, doc, flags=0, seqs=(), checksum=False):
    body = struct.pack("<I", flags | (1 if checksum else 0)) + b"\0" + bson.encode(doc)
    for ident, docs in seqs:
        payload = ident.encode() + b"\0" + b"".join(bson.encode(d) for d in docs)
        body += b"\1" + struct.pack("<i", 4 + len(payload)) + payload
    if checksum:
        body += b"\xde\xad\xbe\xef"
    return msg(rid, rto, 2013, body)


def op_query(rid, ns, doc, skip=0, ret=-1, flags=0):
    return msg(rid, 0, 2004, struct.pack("<i", flags) + ns.encode() + b"\0" + struct.pack("<ii", skip, ret)
               + bson.encode(doc))


def op_reply(rto, docs, cursor=0, flags=0):
    return msg(900 + rto, rto, 1, struct.pack("<iqii", flags, cursor, 0, len(docs))
               + b"".join(bson.encode(d) for d in docs))


def compressed(m: bytes, cid: int) -> bytes:
    length, rid, rto, op = struct.unpack_from("<iiii", m)
    inner = m[16:]
    data = {0: lambda b: b, 1: lambda b: bytes(cramjam.snappy.compress_raw(b)), 2: zlib.compress,
            3: lambda b: zstandard.ZstdCompressor().compress(b)}[cid](inner)
    return msg(rid, rto, 2012, struct.pack("<iiB", op, len(inner), cid) + data)


FIND = SON([("find", "items"), ("filter", {"a": 1}), ("skip", 2), ("limit", 5), ("$db", "shop"),
            ("lsid", {"id": bson.Binary(b"0" * 16, 4)})])
FIND_REPLY = SON([("cursor", SON([("firstBatch", [{"_id": 1}, {"_id": 2}]), ("id", Int64(77)),
                                  ("ns", "shop.items")])), ("ok", 1.0)])
STREAM = b"".join([
    op_msg(1, 0, FIND),
    op_msg(2, 0, SON([("insert", "items"), ("ordered", True), ("$db", "shop")]),
           seqs=[("documents", [{"_id": 1, "x": "y"}, {"_id": 2}])], checksum=True),
    op_query(3, "admin.$cmd", SON([("isMaster", 1.0)])),
    msg(4, 0, 2002, struct.pack("<i", 0) + b"shop.items\0" + bson.encode({"_id": 5})),
    msg(5, 0, 2001, struct.pack("<i", 0) + b"shop.items\0" + struct.pack("<i", 0)
        + bson.encode({"_id": 5}) + bson.encode({"$set": {"a": 2}})),
    msg(6, 0, 2006, struct.pack("<i", 0) + b"shop.items\0" + struct.pack("<i", 0) + bson.encode({"a": 2})),
    msg(7, 0, 2005, struct.pack("<i", 0) + b"shop.items\0" + struct.pack("<iq", 10, 77)),
    msg(8, 0, 2007, struct.pack("<ii", 0, 1) + struct.pack("<q", 77)),
    msg(9, 0, 1000, b"hello\0"),
    compressed(op_msg(10, 0, SON([("ping", 1), ("$db", "admin")])), 1),
    compressed(op_msg(11, 0, SON([("ping", 1), ("$db", "admin")])), 2),
    compressed(op_msg(12, 0, SON([("ping", 1), ("$db", "admin")])), 3),
    compressed(op_msg(13, 0, SON([("ping", 1), ("$db", "admin")])), 0),
])


def summary(msgs):
    return [(m.is_request, m.request_id, m.response_to, m.opcode, m.method, m.resource, m.size,
             sorted(m.event.items()), m.error, m.more_to_come, m.expects_response, m.compressor) for m in msgs]


def test_requests_whole_bytewise_and_split():
    whole = MongodbParser().feed(STREAM, 1)
    assert [m.method for m in whole] == ["find", "insert", "isMaster", "insert", "update", "delete",
                                         "getMore", "killCursors", "msg", "ping", "ping", "ping", "ping"]
    ref = summary(whole)
    p = MongodbParser()
    got = []
    for i in range(len(STREAM)):
        got += p.feed(STREAM[i:i + 1], 1)
    assert summary(got) == ref
    rnd = random.Random(7)
    for _ in range(20):
        cuts = sorted(rnd.sample(range(1, len(STREAM)), 15))
        p = MongodbParser()
        got = []
        for a, b in zip([0] + cuts, cuts + [len(STREAM)]):
            got += p.feed(STREAM[a:b], 1)
        assert summary(got) == ref


def test_fields_of_each_request():
    ms = MongodbParser().feed(STREAM, 1)
    find, ins, ism, oins, upd, dele, gm, kc, old = ms[:9]
    assert (find.resource, find.event) == ("shop.items", {"numberToSkip": 2, "numberToReturn": 5})
    assert find.expects_response and "lsid" in find.params and "find" not in find.params
    assert ins.resource == "shop.items" and len(ins.params["documents"]) == 2
    assert ism.resource == "admin.$cmd" and ism.event == {
        "fullCollectionName": "admin.$cmd", "numberToSkip": 0, "numberToReturn": 4294967295}
    assert not oins.expects_response and oins.resource == "" and oins.event == {"fullCollectionName": "shop.items"}
    assert upd.event["selector"] == '{"_id":5}' and upd.event["update"] == '{"$set":{"a":2}}'
    assert dele.event["selector"] == '{"a":2}'
    assert gm.expects_response and gm.event == {"fullCollectionName": "shop.items", "numberToReturn": 10,
                                                "cursorId": 77}
    assert not kc.expects_response and old.event == {"message": "hello"}
    assert [m.compressor for m in ms[9:]] == [1, 2, 3, 0]


def test_legacy_command_naming_as_packetbeat():
    p = MongodbParser()
    # an int32 1 is not a command value for Packetbeat (mgo reads it as int): otherCommand
    (m,) = p.feed(op_query(1, "admin.$cmd", {"ping": 1}), 1)
    assert (m.method, m.resource) == ("otherCommand", "admin.$cmd")
    (m,) = p.feed(op_query(2, "db.$cmd", SON([("count", "coll"), ("query", {})])), 1)
    assert (m.method, m.resource, m.params) == ("count", "db.coll", {"query": {}})
    (m,) = p.feed(op_query(3, "db.coll", {"a": 1}, skip=3, ret=4), 1)
    assert (m.method, m.resource) == ("find", "db.coll")


def test_replies_and_errors():
    p = MongodbParser()
    ms = p.feed(op_msg(50, 1, FIND_REPLY) + op_msg(51, 2, {"ok": 0.0, "errmsg": "boom", "code": 1})
                + op_msg(52, 3, {"n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}],
                                 "ok": 1.0})
                + op_reply(4, [{"$err": "bad query", "code": 2}], flags=2)
                + op_reply(5, [{"ok": 1.0}], cursor=0, flags=1), 1)
    assert [m.is_request for m in ms] == [False] * 5
    assert ms[0].event == {"cursorId": 77, "numberReturned": 2} and ms[0].error == ""
    assert ms[1].error == "boom"
    assert ms[2].error == '[{"code":11000,"errmsg":"dup","index":0}]'
    assert ms[3].error == '"bad query"' and ms[3].event["numberReturned"] == 1
    assert ms[4].error == "CursorNotFound"
    # a find result that happens to hold ok: 0 is no error; a legacy command reply with errmsg is
    (a, b) = p.feed(op_reply(6, [{"_id": 1, "ok": 0}]) + op_reply(7, [{"ok": 0.0, "errmsg": "no", "code": 2}]), 2)
    assert (a.error, b.error) == ("", "no")


@pytest.mark.parametrize("bad", [
    struct.pack("<iiii", 8, 1, 0, 2013),           # length below the header
    struct.pack("<iiii", 40, 1, 0, 4242) + b"\0" * 24,   # unknown opcode
    msg(1, 0, 2013, struct.pack("<I", 0) + b"\0" + b"\x05\0\0\0\1"),   # bad document end
    msg(1, 0, 2013, struct.pack("<I", 0) + b"\x07"),   # unknown section kind
    msg(1, 0, 2012, struct.pack("<iiB", 2013, 10, 9) + b"xx"),   # unknown compressor
    msg(1, 0, 2012, struct.pack("<iiB", 2013, 100, 2) + zlib.compress(b"short")),   # size mismatch
    msg(1, 0, 2012, struct.pack("<iiB", 2013, 10, 3) + zstandard.ZstdCompressor().compress(b"x" * 5000)),
    msg(1, 0, 2012, struct.pack("<iiB", 2013, 10, 1) + bytes(cramjam.snappy.compress_raw(b"x" * 5000))),
])
def test_parse_errors_keep_earlier_messages(bad):
    good = op_msg(1, 0, {"ping": 1, "$db": "a"})
    with pytest.raises(ParseError) as ei:
        MongodbParser().feed(good + bad, 1)
    assert [m.method for m in ei.value.messages] == ["ping"]


def test_too_large_message_is_skipped_from_its_header():
    p = MongodbParser(max_message_size=1000)
    big = op_msg(7, 0, {"insert": "c", "$db": "d", "pad": "x" * 5000})
    after = op_msg(8, 0, {"ping": 1, "$db": "d"})
    out = p.feed(big[:300], 1) + p.feed(big[300:2000], 2) + p.feed(big[2000:] + after, 3)
    assert [(m.request_id, m.method) for m in out] == [(7, ""), (8, "ping")]
    assert "too large" in out[0].notes[0] and out[0].expects_response and p.too_large == 1
    # a w=0 write that is too large still expects no reply (its flag bits are in the header's segment)
    (m,) = MongodbParser(max_message_size=1000).feed(op_msg(9, 0, {"insert": "c", "pad": "x" * 2000}, flags=2), 1)
    assert not m.expects_response and m.is_request


def test_gap_inside_a_message_keeps_the_framing():
    p = MongodbParser()
    reply = op_msg(60, 9, FIND_REPLY)
    nxt = op_msg(61, 10, {"ok": 1.0})
    assert p.feed(reply[:20], 1) == []
    assert p.on_gap(10) is True
    (sk,) = p.drain()
    assert (sk.is_request, sk.response_to, sk.notes) == (False, 9, ["Packet loss while capturing the response"])
    out = p.feed(reply[30:] + nxt, 2)
    assert [m.response_to for m in out] == [10]


def test_gap_between_messages_resyncs_on_next_header():
    p = MongodbParser()
    assert p.on_gap(100) is True and p.drain() == []
    assert [m.method for m in p.feed(op_msg(1, 0, {"ping": 1, "$db": "a"}), 1)] == ["ping"]


def _plugin(**cfg):
    events = []
    return MongodbPlugin(dict(ports=[27017], **cfg), events.append), events


def test_plugin_pairs_by_response_to_and_publishes_one_way_requests():
    from worker.plugin import Packet
    pl, events = _plugin(send_request=True, send_response=True, max_docs=1, max_doc_length=10)
    st = None
    st = pl.parse(Packet(1_000, None, memoryview(op_msg(1, 0, FIND) + op_msg(2, 0, {"ping": 1, "$db": "a"}))),
                  TUPLE, 0, st)
    # a w=0 insert: moreToCome, no reply expected
    st = pl.parse(Packet(2_000, None, memoryview(op_msg(3, 0, {"insert": "c", "$db": "a"}, flags=2))), TUPLE, 0, st)
    assert len(events) == 1 and events[0]["status"] == "OK" and "error" not in events[0]
    st = pl.parse(Packet(5_000, None, memoryview(op_msg(70, 2, {"ok": 1.0}) + op_msg(71, 1, FIND_REPLY))),
                  TUPLE, 1, st)
    ping, find = events[1], events[2]
    assert ping["method"] == "ping" and ping["event"]["duration"] == 4_000
    assert find["query"] == "shop.items.find().skip(2).limit(5)"
    assert find["request"] == 'shop.items.find({"filter":{"a":1},"limit":5,"skip":2}).skip(2).limit(5)'
    assert find["mongodb"] == {"numberToSkip": 2, "numberToReturn": 5, "cursorId": 77, "numberReturned": 2}
    assert find["response"] == dumps(FIND_REPLY)[:10] + " ..."      # one document, cut at 10 bytes
    pl.flush(TUPLE, st, 6_000)
    assert len(events) == 3


def test_plugin_exhaust_chain_and_unmatched():
    from worker.plugin import Packet
    pl, events = _plugin()
    gm = op_msg(1, 0, SON([("getMore", Int64(77)), ("collection", "items"), ("$db", "shop")]), flags=1 << 16)
    batch = SON([("cursor", SON([("nextBatch", [{}]), ("id", Int64(77)), ("ns", "shop.items")])), ("ok", 1.0)])
    last = SON([("cursor", SON([("nextBatch", [{}]), ("id", Int64(0)), ("ns", "shop.items")])), ("ok", 1.0)])
    st = pl.parse(Packet(1, None, memoryview(gm)), TUPLE, 0, None)
    st = pl.parse(Packet(2, None, memoryview(op_msg(10, 1, batch, flags=2) + op_msg(11, 10, batch, flags=2)
                                             + op_msg(12, 11, last))), TUPLE, 1, st)
    assert [e["mongodb"]["cursorId"] for e in events] == [77, 77, 0]
    assert [e["source"].get("bytes", 0) > 0 for e in events] == [True, False, False]
    assert all(e["status"] == "OK" and e["method"] == "getMore" for e in events)
    # a reply nobody asked for, and a request never answered
    st = pl.parse(Packet(3, None, memoryview(op_msg(13, 999, {"ok": 1.0}))), TUPLE, 1, st)
    st = pl.parse(Packet(4, None, memoryview(op_msg(5, 0, {"ping": 1, "$db": "a"}))), TUPLE, 0, st)
    pl.flush(TUPLE, st, 5)
    notes = sorted(e["error"]["message"] for e in events[3:])
    assert notes == ["Unmatched request", "Unmatched response"]
    assert pl.unmatched_requests == 1 and pl.unmatched_responses == 1


def test_reply_before_request_is_paired():
    from worker.plugin import Packet
    pl, events = _plugin()
    st = pl.parse(Packet(1, None, memoryview(op_reply(7, [{"ok": 1.0}]))), TUPLE, 1, None)
    st = pl.parse(Packet(2, None, memoryview(op_query(7, "a.$cmd", {"isMaster": 1.0}))), TUPLE, 0, st)
    assert len(events) == 1 and events[0]["method"] == "isMaster" and "error" not in events[0]


def test_transaction_timeout_by_packet_time():
    from worker.plugin import Packet
    pl, events = _plugin(transaction_timeout="1s")
    st = pl.parse(Packet(0, None, memoryview(op_msg(1, 0, {"ping": 1, "$db": "a"}))), TUPLE, 0, None)
    st = pl.parse(Packet(2_000_000_000, None, memoryview(op_msg(2, 0, {"ping": 1, "$db": "a"}))), TUPLE, 0, st)
    assert len(events) == 1 and "transaction timeout" in events[0]["error"]["message"]


def test_response_limits_as_packetbeat():
    cfg = MongodbConfig(send_response=True, max_docs=2, max_doc_length=12)
    p = MongodbParser()
    (req,) = p.feed(op_query(1, "db.c", {}), 1)
    (resp,) = p.feed(op_reply(1, [{"a": "x" * 20}, {"b": 1}, {"c": 2}]), 2)
    ev = to_event(req, resp, cfg, TUPLE)
    assert ev["response"] == '{"a":"xxxxxx ...\n{"b":1}\n[...]'


def test_go_json_rendering():
    assert go_float(1.0) == "1" and go_float(-73.856077) == "-73.856077"
    assert go_float(1e21) == "1e+21" and go_float(1.5e-7) == "1.5e-7" and go_float(1e16) == "10000000000000000"
    doc = SON([("z", ObjectId("558bebb45f075665d2ae8627")), ("a", datetime.datetime(2014, 3, 3)),
               ("m", "<&>"), ("b", b"\x01\x02"), ("u", bson.Binary(b"\0" * 16, 4))])
    assert dumps(doc) == ('{"a":"2014-03-03T00:00:00Z","b":"AQI=","m":"\\u003c\\u0026\\u003e",'
                          '"u":{"Kind":4,"Data":"AAAAAAAAAAAAAAAAAAAAAA=="},"z":"558bebb45f075665d2ae8627"}')


def test_config_validation():
    from shared.confutil import ConfigError
    with pytest.raises(ConfigError):
        MongodbConfig(max_docs=-1).validate("mongodb")
    with pytest.raises(ConfigError):
        MongodbConfig(ports=[0]).validate("mongodb")
    MongodbConfig().validate("mongodb")


def test_plugin_gap_in_a_reply_still_pairs_with_a_loss_note():
    from worker.plugin import Packet
    pl, events = _plugin()
    st = pl.parse(Packet(1, None, memoryview(op_msg(1, 0, FIND))), TUPLE, 0, None)
    reply = op_msg(60, 1, FIND_REPLY)
    st = pl.parse(Packet(2, None, memoryview(reply[:30])), TUPLE, 1, st)
    st, drop = pl.gap_in_stream(TUPLE, 1, 20, st)
    assert not drop and st is not None
    st = pl.parse(Packet(3, None, memoryview(reply[50:] + op_msg(61, 9, {"ok": 1.0}))), TUPLE, 1, st)
    (ev,) = events[:1]
    assert ev["method"] == "find" and ev["error"]["message"] == "Packet loss while capturing the response"
    assert ev["destination"]["bytes"] == len(reply)
    pl.flush(TUPLE, st, 4)
    assert [e["error"]["message"] for e in events[1:]] == ["Unmatched response"]


REPLIES = b"".join([
    op_msg(50, 1, FIND_REPLY), op_msg(51, 2, {"ok": 0.0, "errmsg": "boom", "code": 1}, checksum=True),
    op_reply(4, [{"_id": i, "t": datetime.datetime(2020, 1, 1)} for i in range(3)], cursor=9),
    compressed(op_msg(52, 3, FIND_REPLY), 1), compressed(op_msg(53, 5, FIND_REPLY), 3),
    compressed(op_reply(6, [{"ok": 1.0}]), 2),
])


def test_replies_whole_bytewise_and_split():
    ref = summary(MongodbParser().feed(REPLIES, 1))
    assert ref[0][7] == [("cursorId", 77), ("numberReturned", 2)]
    assert [m[8] for m in ref] == ["", "boom", "", "", "", ""]              # errors
    assert [m[11] for m in ref] == [-1, -1, -1, 1, 3, 2]                    # compressors
    assert ref[2][7] == [("cursorId", 9), ("numberReturned", 3), ("startingFrom", 0)]
    p = MongodbParser()
    got = []
    for i in range(len(REPLIES)):
        got += p.feed(REPLIES[i:i + 1], 1)
    assert summary(got) == ref
    rnd = random.Random(11)
    for _ in range(20):
        cuts = sorted(rnd.sample(range(1, len(REPLIES)), 9))
        p = MongodbParser()
        got = []
        for a, b in zip([0] + cuts, cuts + [len(REPLIES)]):
            got += p.feed(REPLIES[a:b], 1)
        assert summary(got) == ref


def test_legacy_exhaust_query_chains_replies():
    from worker.plugin import Packet
    pl, events = _plugin()
    q = op_query(1, "db.c", {}, ret=2, flags=1 << 6)
    st = pl.parse(Packet(1, None, memoryview(q)), TUPLE, 0, None)
    r1 = msg(10, 1, 1, struct.pack("<iqii", 0, 5, 0, 2) + bson.encode({}) + bson.encode({}))
    r2 = msg(11, 10, 1, struct.pack("<iqii", 0, 5, 2, 2) + bson.encode({}) + bson.encode({}))
    r3 = msg(12, 11, 1, struct.pack("<iqii", 0, 0, 4, 1) + bson.encode({}))
    st = pl.parse(Packet(2, None, memoryview(r1 + r2 + r3)), TUPLE, 1, st)
    assert [(e["method"], e["mongodb"]["startingFrom"], e["mongodb"]["cursorId"]) for e in events] == [
        ("find", 0, 5), ("find", 2, 5), ("find", 4, 0)]
    pl.flush(TUPLE, st, 3)
    assert len(events) == 3


def test_awaitable_hello_waits_longer_than_the_timeout():
    """Streaming heartbeats: hello with maxAwaitTimeMS 10000 under the default 10 s timeout,
    answered after 10.5 s, then an exhaust reply 10.5 s later."""
    from worker.plugin import Packet
    pl, events = _plugin()
    s = 1_000_000_000
    hello = op_msg(1, 0, SON([("hello", 1), ("topologyVersion", {"counter": Int64(0)}),
                              ("maxAwaitTimeMS", 10000), ("$db", "admin")]), flags=1 << 16)
    st = pl.parse(Packet(0, None, memoryview(hello)), TUPLE, 0, None)
    st = pl.parse(Packet(5 * s, None, memoryview(op_msg(2, 0, {"ping": 1, "$db": "a"}))), TUPLE, 0, st)
    st = pl.parse(Packet(5 * s + 1, None, memoryview(op_msg(20, 2, {"ok": 1.0}))), TUPLE, 1, st)
    st = pl.parse(Packet(10 * s + s // 2, None, memoryview(op_msg(21, 1, {"ok": 1.0}, flags=2))), TUPLE, 1, st)
    st = pl.parse(Packet(21 * s, None, memoryview(op_msg(22, 21, {"ok": 1.0}, flags=2))), TUPLE, 1, st)
    assert [(e["method"], e["status"]) for e in events] == [("ping", "OK"), ("hello", "OK"), ("hello", "OK")]
    assert "error" not in events[1] and "error" not in events[2]
    # with no further reply, the continuation expires after timeout + maxAwaitTimeMS
    st = pl.parse(Packet(42 * s, None, memoryview(op_msg(3, 0, {"ping": 1, "$db": "a"}))), TUPLE, 0, st)
    assert events[-1]["method"] == "hello" and "transaction timeout" in events[-1]["error"]["message"]
