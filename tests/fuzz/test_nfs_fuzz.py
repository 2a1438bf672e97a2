"""Hypothesis properties of the NFS analyser: arbitrary bytes raise only the
NFS ParseError (TCP record parser and UDP decoder); split points never change
the messages; the parser holds bounded bytes and is usable after reset(); a
garbage or truncated stream never makes the plugin raise anything else."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from tests.unit.protos.nfs_wire import call, compound, denied, opaque, record, reply
from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.nfs import NfsPlugin
from worker.protos.nfs.parser import REPLY_HEAD_MAX, CALL_HEAD_MAX, ParseError, RecordParser, decode_message

N = int(os.environ.get("NFS_FUZZ_N", "300"))   # examples per property; raise for long runs
TUPLE = TcpTuple("10.0.0.1", 900, "10.0.0.2", 2049, 1)
CLI = IpPortTuple(UDP, "10.0.0.1", 800, "10.0.0.2", 2049)

MESSAGES = [
    call(1, 1, opaque(b"\x07" * 16)), call(2, 3, opaque(b"\x07" * 16) + opaque(b"f")),
    compound(3, ["SEQUENCE", "PUTFH", "READDIR"], tag=b"t", minor=1), compound(4, ["PUTROOTFH", "GETATTR"]),
    reply(1, 0), reply(2, 2), reply(3, None, accept=2), denied(4), call(5, 0, prog=100005),
]
FRAGMENTS = [record(m) for m in MESSAGES] + [record(m, 3) for m in MESSAGES[:4]] + [
    b"\x80\x00\x00\x00", b"\x00\x00\x00\x04", b"\x80\x00\x00\x10", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff",
]
rpc_like = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=12).map(b"".join)
inputs = st.binary(max_size=512) | rpc_like


def run(chunks, limit=100_000):
    p = RecordParser(limit)
    msgs = []
    err = None
    try:
        for i, c in enumerate(chunks):
            msgs += p.feed(c, i)
    except ParseError as e:
        msgs += e.messages
        err = e
    return p, [(m.xid, m.is_call, m.size, m.opcode, m.status_word, m.malformed) for m in msgs], err


@settings(max_examples=N, deadline=None)
@given(inputs)
def test_only_parse_error(data):
    p, _, _ = run([data])
    assert p.buffered <= CALL_HEAD_MAX + 4


@settings(max_examples=N, deadline=None)
@given(inputs, st.lists(st.integers(min_value=0, max_value=512), max_size=8))
def test_split_points_do_not_matter(data, cuts):
    _, whole, err = run([data])
    pts = sorted({c for c in cuts if 0 < c < len(data)})
    chunks = [data[a:b] for a, b in zip([0] + pts, pts + [len(data)])]
    _, split, err2 = run(chunks)
    if err is None and err2 is None:
        assert split == whole
    else:
        # an error is found at the same message either way; what came before it agrees
        assert (err is None) == (err2 is None)
        assert split == whole


@settings(max_examples=N, deadline=None)
@given(inputs)
def test_decode_message_raises_only_parse_error(data):
    try:
        m = decode_message(data, 0, len(data))
    except ParseError:
        return
    assert m.size == len(data)


@settings(max_examples=N, deadline=None)
@given(inputs, inputs, st.integers(min_value=0, max_value=3000))
def test_reset_and_gaps_leave_a_usable_parser(a, b, gap):
    p, _, _ = run([a])
    p.on_gap(gap)
    p.drain()
    p.reset()
    assert [m.xid for m in p.feed(record(call(9, 0)), 1)] == [9]
    assert p.buffered == 0 and REPLY_HEAD_MAX < CALL_HEAD_MAX


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs), max_size=6), st.integers(0, 1))
def test_plugin_never_raises_on_garbage(segments, gap_dir):
    events = []
    plugin = NfsPlugin({"ports": [2049]}, events.append)
    state = None
    for i, (d, data) in enumerate(segments):
        tup = TUPLE.ip_port() if d == 0 else TUPLE.ip_port().reverse()
        state = plugin.parse(Packet(i, tup, memoryview(data)), TUPLE, d, state)
        try:
            plugin.parse_udp(Packet(i, CLI if d == 0 else CLI.reverse(), memoryview(data)))
        except ParseError:
            pass
    if state is not None:
        state, _ = plugin.gap_in_stream(TUPLE, gap_dir, 7, state)
    plugin.expire(10**12)
    plugin.flush(TUPLE, state, 10**12)
    plugin.flush_all(10**12)
    for ev in events:
        assert ev["type"] == "nfs" and "xid" in ev["rpc"]
