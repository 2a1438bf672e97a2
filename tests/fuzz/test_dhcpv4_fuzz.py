"""Hypothesis properties of the DHCPv4 analyser: arbitrary bytes raise only
the DHCPv4 ParseError; a valid header followed by arbitrary option bytes
either is refused with ParseError or gives an event whose values are
msgpack-native; the plugin never raises anything else and publishes at most
one event per datagram."""
from __future__ import annotations

import os

import msgpack
from hypothesis import given, settings, strategies as st

from tests.unit.protos.dhcpv4_fixtures import COOKIE, PB_ACK, message, opt
from worker.plugin import IpPortTuple, Packet
from worker.protos.dhcpv4 import DhcpPlugin
from worker.protos.dhcpv4.event import to_event
from worker.protos.dhcpv4.parser import ParseError, decode_message

N = int(os.environ.get("DHCPV4_FUZZ_N", "300"))   # examples per property; raise for long runs
TUPLE = IpPortTuple(17, "10.0.0.1", 67, "10.0.0.2", 68)
HEADER = PB_ACK[:236] + COOKIE

CODES = [1, 2, 3, 4, 6, 12, 15, 28, 42, 50, 51, 53, 54, 55, 56, 57, 58, 59, 60, 67, 82, 124, 250]
option = st.builds(lambda c, d: opt(c, d), st.sampled_from(CODES), st.binary(max_size=12))
# mostly well-formed options (so that most messages decode), sometimes raw bytes
wellformed = st.lists(st.one_of(option, option, option, st.just(b"\x00")), max_size=24).map(b"".join)
noisy = st.lists(st.one_of(option, option, st.just(b"\x00"), st.binary(max_size=3)), max_size=24).map(b"".join)
options = wellformed | noisy
tails = st.sampled_from([b"\xff", b"\xff", b"\xff", b"\xff\x00\x00", b"", b"\xff\x01", b"\x00"])


def _event_or_refusal(data: bytes):
    try:
        msg = decode_message(data, 1)
    except ParseError:
        return None
    ev = to_event(msg, TUPLE)
    assert msgpack.unpackb(msgpack.packb(ev)) == ev
    return ev


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=700))
def test_any_bytes_raise_only_parse_error(data):
    _event_or_refusal(data)
    _event_or_refusal(HEADER + data)


@settings(max_examples=N, deadline=None)
@given(options, tails, st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF))
def test_structured_options(raw, tail, op, hlen, flags):
    ev = _event_or_refusal(message(op=op, hlen=hlen, flags=flags, options=raw, end=False) + tail)
    if ev is not None:
        d = ev["dhcpv4"]
        assert d["transaction_id"] == "0x00003d1e" and len(d["client_mac"]) == (min(hlen, 16) * 3 - 1 if hlen else 0)
        for v in d.get("option", {}).get("parameter_request_list", []):
            assert isinstance(v, str) and v


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.binary(max_size=400) | st.sampled_from([PB_ACK, PB_ACK[:300]]), max_size=8))
def test_plugin_never_raises_anything_else(datagrams):
    events = []
    p = DhcpPlugin({}, events.append)
    for i, data in enumerate(datagrams):
        try:
            p.parse_udp(Packet(i, TUPLE, memoryview(data)))
        except ParseError:
            pass
    p.expire(10**18)
    p.flush_all(10**18)
    assert len(events) + p.parse_failures == p.total_packets == len(datagrams)
