"""Hypothesis properties of the MongoDB analyser: arbitrary bytes (and
mutations of valid messages, compressed ones included) raise only the
MongoDB ParseError; split points never change the messages; a gap anywhere
is survived; the plugin (events included, with send_request/send_response)
never raises on any stream."""
from __future__ import annotations

import os
import struct
import zlib

import bson
from hypothesis import given, settings, strategies as st

from worker.plugin import Packet, TcpTuple
from worker.protos.mongodb import MongodbPlugin
from worker.protos.mongodb.parser import MongodbParser, ParseError

N = int(os.environ.get("MONGODB_FUZZ_N", "200"))   # examples per property; raise for long runs
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 27017, 1)


def _msg(rid, rto, op, body):
    return struct.pack("<iiii", 16 + len(body), rid, rto, op) + body


SEEDS = [
    _msg(1, 0, 2013, struct.pack("<I", 0) + b"\0" + bson.encode({"find": "c", "filter": {"a": [1, 2.5]},
                                                                  "$db": "d"})),
    _msg(2, 1, 2013, struct.pack("<I", 2) + b"\0" + bson.encode({"cursor": {"id": 5, "firstBatch": [{}]},
                                                                  "ok": 1.0})),
    _msg(3, 0, 2013, struct.pack("<I", 0) + b"\0" + bson.encode({"insert": "c", "$db": "d"}) + b"\1"
         + struct.pack("<i", 4 + 10 + 5) + b"documents\0" + bson.encode({})),
    _msg(4, 0, 2004, struct.pack("<i", 0) + b"a.$cmd\0" + struct.pack("<ii", 0, -1) + bson.encode({"isMaster": 1.0})),
    _msg(5, 4, 1, struct.pack("<iqii", 0, 0, 0, 1) + bson.encode({"$err": "x", "writeErrors": [{"code": 1}]})),
    _msg(6, 0, 2001, struct.pack("<i", 0) + b"a.b\0" + struct.pack("<i", 0) + bson.encode({}) + bson.encode({})),
    _msg(7, 0, 2012, struct.pack("<iiB", 2013, 25, 2) + zlib.compress(struct.pack("<I", 0) + b"\0"
                                                                       + bson.encode({"ping": 1, "$db": "a"}))),
]


@st.composite
def mutated(draw):
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


inputs = st.binary(max_size=400) | mutated()


def run(chunks, limit=600):
    p = MongodbParser(max_message_size=limit)
    out, err = [], None
    try:
        for i, c in enumerate(chunks):
            out += p.feed(c, i)
    except ParseError as e:
        out += e.messages
        err = e
    return [(m.is_request, m.request_id, m.response_to, m.method, m.resource, m.error, sorted(m.event.items()))
            for m in out], err


@settings(max_examples=N, deadline=None)
@given(inputs)
def test_any_bytes_raise_only_parse_error(data):
    run([data])


@settings(max_examples=N, deadline=None)
@given(inputs, st.lists(st.integers(1, 400), max_size=8))
def test_split_points_do_not_change_messages(data, cuts):
    whole, err1 = run([data])
    pos = sorted({c for c in cuts if c < len(data)})
    chunks = [data[a:b] for a, b in zip([0] + pos, pos + [len(data)])]
    split, err2 = run(chunks)
    if err1 is None and err2 is None:
        assert split == whole


@settings(max_examples=N, deadline=None)
@given(inputs, st.integers(0, 400), st.integers(1, 200))
def test_gaps_are_survived(data, at, n):
    p = MongodbParser(max_message_size=600)
    try:
        p.feed(data[:at], 0)
    except ParseError:
        p.reset()
    assert p.on_gap(n) is True
    for m in p.drain():
        assert m.notes and m.notes[0].startswith("Packet loss")
    try:
        p.feed(data[at + n:], 1)
    except ParseError:
        pass
    p.reset()                                    # after anything, a reset parser reads a valid message
    assert [m.method for m in p.feed(SEEDS[0], 2)] == ["find"]


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs), max_size=6))
def test_plugin_never_raises(stream):
    events = []
    pl = MongodbPlugin({"ports": [27017], "send_request": True, "send_response": True}, events.append,
                       max_message_size=600)
    state = None
    for i, (d, data) in enumerate(stream):
        state = pl.parse(Packet(i, None, memoryview(data)), TUPLE, d, state)
        if i == 2 and state is not None:
            state, _ = pl.gap_in_stream(TUPLE, d, 7, state)
    pl.flush(TUPLE, state, len(stream))
    for ev in events:
        assert ev["type"] == "mongodb"
