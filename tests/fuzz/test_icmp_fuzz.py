"""Hypothesis properties of the ICMP analyser: arbitrary bytes raise only the
ICMP ParseError; any sequence of ICMP messages (any types, ids, directions,
times, with garbage mixed in) never raises anything else, every parsed
message ends up in exactly one event once the stream is flushed, nothing stays
open, and the open-request table never exceeds its bound; a worker engine fed
arbitrary frames with ICMP protocol numbers never lets an exception out."""
from __future__ import annotations

import os
import struct

from hypothesis import given, settings, strategies as st

from worker.engine import Engine
from worker.plugin import IpPortTuple, Packet
from worker.protos.icmp import IcmpPlugin
from worker.protos.icmp.parser import IcmpParser, ParseError
from worker.protos.registry import Registry

N = int(os.environ.get("ICMP_FUZZ_N", "300"))   # examples per property; raise for long runs
T0 = 1_700_000_000_000_000_000
ADDRS = ["10.0.0.1", "10.0.0.2", "::1", "fe80::2"]
TYPES = [0, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 1, 2, 128, 129, 133, 134, 135, 136, 137, 143, 255]


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 58, 6, 17, 0, 255]), st.integers(0, 2**63))
def test_arbitrary_bytes_raise_only_parse_error(data, transport, ts):
    p = IcmpParser()
    try:
        m = p.parse(memoryview(data), ts, transport)
    except ParseError:
        return
    assert m.size == len(data) - 8 and m.version in (4, 6) and m.ts == ts


message = st.tuples(
    st.sampled_from(ADDRS), st.sampled_from(ADDRS), st.sampled_from([1, 58]),
    st.sampled_from(TYPES), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
    st.binary(max_size=24), st.integers(0, 30_000_000_000),
    st.booleans(),                       # True: truncate below the header
)


@settings(max_examples=N, deadline=None)
@given(st.lists(message, max_size=60), st.sampled_from([None, "1s", "50ms"]), st.integers(1, 8))
def test_no_message_is_lost_and_nothing_else_raises(msgs, timeout, max_open):
    events: list[dict] = []
    cfg = {"transaction_timeout": timeout} if timeout else {}
    plugin = IcmpPlugin(cfg, events.append, max_open=max_open)
    parsed = 0
    now = T0
    for src, dst, transport, typ, code, ident, seq, body, dt, cut in msgs:
        now += dt
        data = struct.pack("!BBHHH", typ, code, 0, ident, seq) + body
        if cut:
            data = data[:7]
        try:
            plugin.parse_icmp(Packet(now, IpPortTuple(transport, src, 0, dst, 0), memoryview(data)))
            parsed += 1
        except ParseError:
            assert cut
        plugin.expire(now)
        assert len(plugin.correlator.open) <= max_open
    plugin.flush_all(now)
    assert not plugin.correlator.open
    sides = sum(("request" in e["icmp"]) + ("response" in e["icmp"]) for e in events)
    assert sides == parsed
    for e in events:
        assert e["status"] in ("OK", "Error") and e["type"] == "icmp"
        if "duration" in e["event"]:
            assert e["event"]["duration"] >= 0


frame = st.binary(max_size=120).map(
    lambda b: b"\x00" * 12 + b"\x08\x00" + bytes([0x45, 0, 0, 0]) + b"\x00" * 5 + b"\x01" + b"\x00" * 10 + b)


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**10), frame | st.binary(max_size=80)), max_size=40))
def test_engine_never_raises_on_arbitrary_frames(records):
    reg = Registry()
    reg.register("icmp", IcmpPlugin)
    eng = Engine([{"type": "icmp", "transaction_timeout": "1s"}], reg)
    eng.handle([(T0 + dt, 1, raw) for dt, raw in records])
    eng.finish()
    assert eng.counters.get("icmp.plugin_errors", 0) == 0
    for ev in eng.take_events():
        assert ev["type"] == "icmp"
