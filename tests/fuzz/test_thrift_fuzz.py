"""Hypothesis properties of the Thrift analyser: arbitrary bytes (and
mutated valid messages of every protocol/transport) raise only the Thrift
ParseError; split points never change the messages; gaps anywhere never
make the parser or the plugin raise, and the parser stays usable."""
from __future__ import annotations

import os
import struct

from hypothesis import given, settings, strategies as st

from worker.plugin import Packet, TcpTuple
from worker.protos.thrift import ThriftPlugin
from worker.protos.thrift.parser import ParseError, ThriftParser

N = int(os.environ.get("THRIFT_FUZZ_N", "80"))   # examples per property; raise for long runs
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 9090, 1)


def _binary_call(strict: bool) -> bytes:
    body = (b"\x0b\x00\x01\x00\x00\x00\x03abc" b"\x0f\x00\x02\x08\x00\x00\x00\x02\x00\x00\x00\x01\xff\xff\xff\xff"
            b"\x0d\x00\x03\x0b\x0c\x00\x00\x00\x01\x00\x00\x00\x01k\x04\x00\x01?\xf0\x00\x00\x00\x00\x00\x00\x00"
            b"\x0e\x00\x04\x02\x00\x00\x00\x02\x01\x00\x00")
    if strict:
        return b"\x80\x01\x00\x01\x00\x00\x00\x03put\x00\x00\x00\x07" + body
    return b"\x00\x00\x00\x03put\x01\x00\x00\x00\x07" + body


# compact: call put seqid 7; 1: string "abc", 2: list<i32> [1, -1], 3: bool true, 4: struct (1: double), stop
COMPACT_CALL = (b"\x82\x21\x07\x03put" b"\x18\x03abc" b"\x19\x25\x02\x01" b"\x11" b"\x1c\x17"
                + struct.pack("<d", 1.0) + b"\x00\x00")
SEEDS = [_binary_call(True), _binary_call(False), COMPACT_CALL]
SEEDS += [struct.pack(">I", len(s)) + s for s in SEEDS]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)) * draw(st.integers(1, 2)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


inputs = st.binary(max_size=400) | mutated()
modes = st.sampled_from(["", "socket", "framed"]), st.sampled_from(["", "binary", "compact"])
knobs = st.fixed_dictionaries({"collection_max_size": st.integers(0, 3), "string_max_size": st.integers(0, 8),
                               "drop_after_n_struct_fields": st.integers(1, 20),
                               "capture_reply": st.booleans(), "obfuscate_strings": st.booleans()})


def run(parser: ThriftParser, chunks):
    msgs, err = [], None
    try:
        for i, c in enumerate(chunks):
            msgs += parser.feed(c, i)
    except ParseError as e:
        msgs += e.messages
        err = e
    return [(m.mtype, m.method, m.seqid, m.fields, m.nfields, m.size) for m in msgs], err


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    out, pos = [], 0
    for c in cuts + [len(data)]:
        out.append(data[pos:c])
        pos = c
    return [c for c in out if c]


@settings(max_examples=N, deadline=None)
@given(inputs, *modes, knobs)
def test_any_bytes_raise_only_parse_error(data, transport, protocol, kw):
    run(ThriftParser(transport, protocol, max_message_size=300, **kw), [data])


@settings(max_examples=N, deadline=None)
@given(inputs, st.lists(st.integers(0, 1000), max_size=8), *modes)
def test_split_points_do_not_change_messages(data, cuts, transport, protocol):
    whole, err = run(ThriftParser(transport, protocol, max_message_size=300), [data])
    parts, err2 = run(ThriftParser(transport, protocol, max_message_size=300), split(data, cuts))
    if err is None and err2 is None:
        assert parts == whole
    else:
        # an error may be found earlier or later; what completed before it is the same
        n = min(len(parts), len(whole))
        assert parts[:n] == whole[:n]


@settings(max_examples=N, deadline=None)
@given(inputs, st.integers(0, 400), st.integers(1, 300), inputs)
def test_gap_then_more_bytes(data, at, n, after):
    p = ThriftParser(max_message_size=300)
    try:
        p.feed(data[:at], 1)
    except ParseError:
        p.reset()
    p.on_gap(n)
    p.drain()
    try:
        p.feed(after, 2)
    except ParseError:
        pass
    p.reset()
    assert [m.method for m in p.feed(SEEDS[0], 3)] == ["put"]


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs, st.integers(0, 3)), max_size=8))
def test_plugin_never_raises(steps):
    events: list[dict] = []
    plugin = ThriftPlugin({"ports": [9090]}, events.append)
    state = None
    for i, (d, data, gap) in enumerate(steps):
        if gap == 3 and state is not None:
            state, _ = plugin.gap_in_stream(TUPLE, d, 17, state)
            continue
        state = plugin.parse(Packet(i * 1_000_000, TUPLE.ip_port(), memoryview(data)), TUPLE, d, state)
    plugin.flush(TUPLE, state, 0)
    assert all(ev["type"] == "thrift" for ev in events)
