"""Hypothesis properties of the AMQP analyser: arbitrary bytes (and streams of
real frames with corrupted, truncated or random arguments) raise only the
AMQP ParseError; split points never change the messages; the parser stays
bounded and usable after reset(); the plugin never raises and its events are
JSON-encodable."""
from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "protos"))
from amqp_frames import HEADER, content, frame, method, publish, queue_declare, ss, table  # noqa: E402

from worker.plugin import Packet, TcpTuple  # noqa: E402
from worker.protos.amqp import AmqpPlugin  # noqa: E402
from worker.protos.amqp.parser import METHODS, AmqpParser, ParseError  # noqa: E402

N = int(os.environ.get("AMQP_FUZZ_N", "300"))
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 5672, 1)
KEYS = sorted(METHODS)

args = st.binary(max_size=40) | st.sampled_from([
    b"", b"\x00\x00\x05hello\x00\x00\x00\x00\x00", b"\x00\x00\x01q\x01x\x01k\x00",
    struct.pack(">H", 404) + ss("NOT_FOUND") + b"\x00\x32\x00\x0a",
    b"\x00\x00" + ss("q") + b"\x02" + table([("a", b"A\x00\x00\x00\x04t\x01s\x00"), ("b", b"D\x09\x00\x00\x00\x01")]),
])
one_frame = st.one_of(
    st.builds(lambda k, ch, a: method(ch, k[0], k[1], a), st.sampled_from(KEYS), st.integers(0, 3), args),
    st.builds(lambda ch, body, props: content(ch, body, props),
              st.integers(0, 3), st.binary(max_size=30), st.binary(min_size=2, max_size=20)),
    st.builds(lambda t, ch, p: frame(t, ch, p), st.sampled_from([1, 2, 3, 8]), st.integers(0, 3),
              st.binary(max_size=20)),
    st.just(HEADER),
    st.builds(lambda ch: publish(ch, "", "k") + content(ch, b"body"), st.integers(0, 3)),
    st.builds(lambda b: queue_declare(1, "q", bits=b), st.integers(0, 255)),
)
streams = st.lists(one_frame, max_size=12).map(b"".join)
inputs = st.binary(max_size=400) | streams | st.builds(lambda s, n: s[:n], streams, st.integers(0, 400))


def run(chunks, direction=0, **kw):
    p = AmqpParser(direction, max_frame_size=256, **kw)
    msgs, err = [], None
    try:
        for i, c in enumerate(chunks):
            msgs += p.feed(memoryview(c), i)
    except ParseError as e:
        msgs += e.messages
        err = e
    return p, [(m.method, m.channel, m.fields, m.body, m.body_size, m.notes) for m in msgs], err


@settings(max_examples=N, deadline=None)
@given(inputs, st.integers(0, 1), st.booleans())
def test_any_bytes_only_parse_error(data, direction, hide):
    p, msgs, err = run([data], direction, hide_connection_information=hide)
    json.dumps([m[2] for m in msgs])          # fields are JSON values
    assert p.buffered <= 256 + 8 or err is not None
    p.reset()
    assert p.feed(queue_declare(1, "after"), 0)[0].fields["queue"] == "after"


@settings(max_examples=N, deadline=None)
@given(streams, st.lists(st.integers(1, 399), max_size=8))
def test_split_points_do_not_matter(data, cuts):
    _, whole, werr = run([data])
    pieces, prev = [], 0
    for c in sorted(set(x for x in cuts if x < len(data))) + [len(data)]:
        pieces.append(data[prev:c])
        prev = c
    _, split, serr = run(pieces)
    if werr is None and serr is None:
        assert split == whole


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs), max_size=8), st.booleans())
def test_plugin_never_raises(segments, send):
    events: list[dict] = []
    p = AmqpPlugin({"send_request": send, "send_response": send, "hide_connection_information": not send},
                   events.append)
    state = None
    for i, (d, data) in enumerate(segments):
        tup = TUPLE.ip_port() if d == 0 else TUPLE.ip_port().reverse()
        state = p.parse(Packet(i * 1000, tup, memoryview(data)), TUPLE, d, state)
        if i % 3 == 2:
            state, _ = p.gap_in_stream(TUPLE, d, 7, state)
    p.flush(TUPLE, state, 0)
    for e in events:
        json.dumps(e)
        assert e["type"] == "amqp" and e["method"]
