"""An OP_MSG reply or command read in place (``parser._reply_scan`` /
``_cmd_scan``, compiled: their C twins in parser.pxd) says what decoding it
says: on common messages, on every other one (it then gives up and the body
is decoded), and on damaged bodies (random bytes changed: either it gives up,
or bson accepts the body too and every field is the same)."""
from __future__ import annotations

import datetime
import random
import struct

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, ObjectId, Regex, Timestamp

from worker.protos.mongodb import parser as P
from worker.protos.mongodb.parser import MongodbParser, ParseError


def _expected(body: bytes):
    """What the decoding path (``_top`` + ``reply_error`` + the cursor) gives:
    (error, event fields), or ParseError."""
    try:
        top = P._top(body)
        err = P.reply_error(top, False)
        ev = {}
        cur = top.get("cursor")
        if cur is not None and hasattr(cur, "get"):
            cid = P._num(cur.get("id"))
            if cid is not None:
                ev["cursorId"] = cid
            batch = cur.get("firstBatch")
            if batch is None:
                batch = cur.get("nextBatch")
            if isinstance(batch, list):
                ev["numberReturned"] = len(batch)
        return err, ev
    except Exception:  # noqa: BLE001 - any failure of the decoding path is a ParseError there
        return ParseError


def _parsed(body: bytes):
    """What the parser (compiled when built) makes of a reply with this body."""
    data = struct.pack("<I", 0) + b"\0" + body
    wire = struct.pack("<iiii", 16 + len(data), 9, 8, 2013) + data
    try:
        (m,) = MongodbParser().feed(wire, 1)
    except ParseError:
        return ParseError
    return m.error, m.event


def _elem(t: int, name: bytes, value: bytes) -> bytes:
    return bytes((t,)) + name + b"\0" + value


def _doc(*elems: bytes) -> bytes:
    inner = b"".join(elems)
    return struct.pack("<i", len(inner) + 5) + inner + b"\0"


def _samples(rnd: random.Random) -> list[bytes]:
    ct = {"clusterTime": Timestamp(1700000000, 3),
          "signature": {"hash": Binary(b"h" * 20, 0), "keyId": Int64(7)}}
    docs = [
        {"ok": 1.0}, {"ok": 1}, {"ok": Int64(1)}, {"ok": True}, {"ok": 0.0}, {"ok": 0}, {"ok": "1"},
        {"ok": None}, {"n": 1}, {"ok": float("nan")}, {"ok": Decimal128("1")},
        {"n": 2, "nModified": 1, "ok": 1.0},
        {"cursor": {"id": Int64(0), "ns": "a.b", "firstBatch": [{"a": 1}, {"b": "x"}]}, "ok": 1.0},
        {"cursor": {"nextBatch": [1, 2, 3], "id": Int64(12345678901), "ns": "a.b"}, "ok": 1.0},
        {"cursor": {"firstBatch": None, "nextBatch": [1], "id": 3}, "ok": 1.0},
        {"cursor": {"firstBatch": "x", "id": 3}, "ok": 1.0},
        {"cursor": {"id": 2.0, "firstBatch": []}, "ok": 1.0},
        {"cursor": {"id": True, "firstBatch": []}, "ok": 1.0},
        {"cursor": {"id": None, "firstBatch": []}, "ok": 1.0},
        {"cursor": {"$ref": "c", "$id": 1}, "ok": 1.0},
        {"cursor": [1, 2], "ok": 1.0}, {"cursor": "c", "ok": 1.0},
        {"ok": 1.0, "$clusterTime": ct, "operationTime": Timestamp(1700000000, 3)},
        {"ok": 0.0, "errmsg": "no such command", "code": 59, "codeName": "CommandNotFound"},
        {"n": 1, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}], "ok": 1.0},
        {"n": 1, "writeConcernError": {"code": 64}, "ok": 1.0}, {"$err": "x", "ok": 1.0},
        {"ok": 1.0, "when": datetime.datetime(2024, 1, 2, 3, 4, 5), "oid": ObjectId(b"0123456789ab"),
         "u": Binary(b"u" * 16, 4), "old": Binary(b"o" * 4, 2), "d": Decimal128("1.5"),
         "re": Regex("a", "i"), "code": Code("x"), "nested": {"a": [[{"b": None}]]}},
        {"helloOk": True, "ismaster": True, "maxBsonObjectSize": 16777216, "localTime":
         datetime.datetime(2024, 1, 2), "connectionId": 5, "readOnly": False, "ok": 1.0},
    ]
    out = [bson.encode(d) for d in docs]
    # duplicate names (the last one counts), an unknown type, a string without its NUL
    out += [
        _doc(_elem(1, b"ok", struct.pack("<d", 0.0)), _elem(1, b"ok", struct.pack("<d", 1.0))),
        _doc(_elem(1, b"ok", struct.pack("<d", 1.0)), _elem(16, b"ok", struct.pack("<i", 0))),
        _doc(_elem(3, b"cursor", bson.encode({"id": 4})), _elem(10, b"cursor", b""),
             _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(3, b"cursor", bson.encode({"id": 4, "id ": 1})), _elem(3, b"cursor", bson.encode(
            {"id": 5, "firstBatch": [1]})), _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(3, b"cursor", _doc(_elem(18, b"id", struct.pack("<q", 4)), _elem(10, b"id", b""))),
             _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(0x20, b"x", b""), _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(2, b"s", struct.pack("<i", 2) + b"ab"), _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(8, b"b", b"\x02"), _elem(16, b"ok", struct.pack("<i", 1))),
        _doc(_elem(16, b"ok", struct.pack("<i", 1)), _elem(3, b"deep", bson.encode(
            {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {}}}}}}}}}}}))),
    ]
    deep = b"\x05\x00\x00\x00\x00"
    for _ in range(40):
        deep = _doc(_elem(3, b"a", deep))
    out.append(_doc(_elem(16, b"ok", struct.pack("<i", 1)), _elem(3, b"d", deep)))
    # random documents of the common types
    for _ in range(300):
        d: dict = {"ok": rnd.choice([1.0, 1, Int64(1), True, 0.0])}
        for k in range(rnd.randrange(6)):
            d[rnd.choice(["cursor", "n", "x%d" % k, "$clusterTime"])] = rnd.choice([
                {"id": Int64(rnd.randrange(1 << 40)), "ns": "a.b",
                 rnd.choice(["firstBatch", "nextBatch"]): [{"i": i} for i in range(rnd.randrange(4))]},
                "text", 1.5, None, [1, "a", {"b": 2}], Binary(b"b" * rnd.randrange(20), rnd.choice([0, 4, 5])),
                Timestamp(5, 6), Int64(3), False])
        out.append(bson.encode(d))
    return out


def _damaged(rnd: random.Random, body: bytes) -> bytes:
    b = bytearray(body)
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(4, len(b))             # the length prefix stays (the parser checks it first)
        b[i] = rnd.choice([0, 1, 2, 3, 4, 5, 8, 10, 16, 18, 0x7F, 0xFF, rnd.randrange(256)])
    return bytes(b)


def test_reply_scan_says_what_decoding_says():
    rnd = random.Random(5)
    bodies = _samples(rnd)
    bodies += [_damaged(rnd, rnd.choice(bodies)) for _ in range(20000)]
    scanned = 0
    for body in bodies:
        want = _expected(body)
        scan = P._reply_scan(body)             # the Python steps (compiled or not)
        if scan is not None:
            scanned += 1
            assert want is not ParseError and want[0] == "", body
            cid, nret = scan
            ev = {}
            if cid is not None:
                ev["cursorId"] = cid
            if nret >= 0:
                ev["numberReturned"] = nret
            assert ev == want[1], body
        assert _parsed(body) == want, body      # the parser's path (parser.pxd's C steps when compiled)
    assert scanned > 2000


@pytest.mark.parametrize("body", [
    bson.encode({"cursor": {"id": Int64(9), "firstBatch": [{"a": 1}]}, "ok": 1.0}),
    bson.encode({"ok": 1.0, "n": 3}),
])
def test_common_replies_are_not_decoded(body):
    assert P._reply_scan(body) is not None


# ---------------------------------------------------------------- commands

def _pure_parser(scan: bool):
    """parser.py loaded from its source under another name (pure Python even
    when the package is compiled); ``scan=False``: every command decoded at
    once, as before _cmd_scan."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_mongodb_parser_pure_%d" % scan, P.__file__.rsplit("/", 1)[0]
                                                  + "/parser.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert not mod._COMPILED
    if not scan:
        mod._cmd_scan = lambda body: None
    return mod


def _command(mod, body: bytes):
    data = struct.pack("<I", 0) + b"\0" + body + b"\1" + struct.pack("<i", 4 + 10 + 5) + b"documents\0" + bson.encode({})
    wire = struct.pack("<iiii", 16 + len(data), 9, 0, 2013) + data
    try:
        (m,) = mod.MongodbParser().feed(wire, 1)
        return (m.method, m.resource, m.event, m.wait_ns, m.exhaust, m.expects_response, m.params)
    except Exception as e:  # noqa: BLE001 - the ParseError of that module
        return type(e).__name__


def _commands(rnd: random.Random) -> list[bytes]:
    lsid = {"id": Binary(b"s" * 16, 4)}
    docs = [
        {"find": "items", "filter": {"a": {"$gt": 1}}, "batchSize": 10, "lsid": lsid, "$db": "shop"},
        {"find": "items", "skip": 2.0, "limit": Int64(5), "maxTimeMS": 100, "$db": "shop"},
        {"find": "items", "skip": True, "limit": "5", "$db": 5},
        {"getMore": Int64(77), "collection": "items", "batchSize": 10, "lsid": lsid, "$db": "shop"},
        {"getMore": 7.0, "collection": 3, "$db": "shop", "maxAwaitTimeMS": Int64(1000)},
        {"insert": "items", "ordered": True, "lsid": lsid, "$db": "shop"},
        {"update": "items", "updates": [{"q": {}, "u": {"$set": {"a": 1}}}], "$db": "shop"},
        {"hello": 1, "helloOk": True, "client": {"driver": {"name": "x"}}, "$db": "admin"},
        {"ping": 1.0}, {"$db": "a"}, {"endSessions": [lsid], "$db": "admin"},
        {"find": "c", "filter": {"when": datetime.datetime(2024, 1, 2), "oid": ObjectId(b"0123456789ab")}},
        {"find": "c", "filter": {"re": Regex("a")}}, {"find": "c", "d": Decimal128("1")},
        {"aggregate": "c", "pipeline": [{"$match": {}}], "cursor": {}, "maxTimeMS": 0, "$db": "d"},
        {"find": "c", "maxTimeMS": Int64(10 ** 12), "$db": "d"},
    ]
    out = [bson.encode(d) for d in docs]
    out += [
        _doc(),
        _doc(_elem(2, b"find", struct.pack("<i", 2) + b"a\0"), _elem(2, b"$db", struct.pack("<i", 2) + b"x\0"),
             _elem(2, b"find", struct.pack("<i", 2) + b"b\0"), _elem(2, b"$db", struct.pack("<i", 2) + b"y\0")),
        _doc(_elem(2, b"fi\xffnd", struct.pack("<i", 3) + b"\xfe\xff\0"), _elem(16, b"$db", struct.pack("<i", 1))),
        _doc(_elem(2, b"$db", struct.pack("<i", 2) + b"d\0"), _elem(16, b"skip", struct.pack("<i", 4))),
    ]
    return out


def test_command_scan_says_what_decoding_says():
    rnd = random.Random(9)
    eager, lazy = _pure_parser(False), _pure_parser(True)
    bodies = _commands(rnd)
    bodies += [_damaged(rnd, rnd.choice(bodies[:-4])) for _ in range(5000)]
    scanned = 0
    for body in bodies:
        want = _command(eager, body)
        scanned += lazy._cmd_scan(body) is not None
        assert _command(lazy, body) == want, body
        assert _command(P, body) == want, body      # compiled: parser.pxd's _cmd_scan_c
    assert scanned > 1000
