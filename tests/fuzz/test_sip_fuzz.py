"""Hypothesis properties of the SIP analyser: arbitrary bytes raise only the
SIP ParseError (stream and datagram parsers); split points never change the
messages; every message the parsers accept makes an event without raising;
after any input the stream parser is usable after reset(); the plugin never
raises anything but ParseError, whatever the gaps."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.sip import SipPlugin
from worker.protos.sip.config import SipConfig
from worker.protos.sip.event import to_event
from worker.protos.sip.parser import ParseError, SipStreamParser, parse_datagram

N = int(os.environ.get("SIP_FUZZ_N", "300"))     # examples per property; raise for long runs
TT = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 5060, 1)
UT = IpPortTuple(UDP, "10.0.0.1", 5060, "10.0.0.2", 5060)
CFG = SipConfig()

FRAGMENTS = [
    b"INVITE sip:bob@h SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"SIP/2.0 180 \r\n", b"ACK * SIP/2.0\r\n",
    b"Via: SIP/2.0/UDP h;branch=1\r\n", b"v: x\r\n", b"f: \"A\" <sip:a:pw@[::1]:5;x=1>;tag=1\r\n",
    b"t: <sip:b@h\r\n", b"i: 1@h\r\n", b"CSeq: 1 INVITE\r\n", b"CSeq: x\r\n", b"m: *\r\n",
    b"Contact: <sip:c@h;transport=TCP>;expires=x;q=nan\r\n", b"l: 5\r\n", b"Content-Length: 0\r\n",
    b"Content-Length: 99999999999\r\n", b"c: application/sdp\r\n", b"Allow: A, B,\r\n",
    b"Authorization: Digest username=\"u\", realm=r, uri=\"sip:h:x\", response=\"z\"\r\n",
    b"Authorization: x\r\n", b"P-Associated-URI: <sip:p@h>, <sip:q@h>\r\n", b" folded\r\n",
    b"v=0\r\n", b"o=\"u\" 1 2 IN IP4 1.2.3.4\r\n", b"o=- 1\r\n", b"o=\"\r\n", b"c=IN IP4 h\r\n",
    b"m=audio 1 RTP/AVP 0\r\n", b"s=-\r\n", b"\r\n", b"\r\n\r\n", b"\n", b"\r", b":", b"nocolon\r\n",
]
sip_like = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=6), max_size=30).map(b"".join)
inputs = st.binary(max_size=512) | sip_like


def run(chunks, limit=10**6):
    p = SipStreamParser(limit)
    msgs = []
    err = None
    try:
        for i, c in enumerate(chunks):
            msgs += p.feed(c, i)
    except ParseError as e:
        msgs += e.messages
        err = e
    return p, msgs, err


def key(m):
    return (m.is_request, m.method, m.uri, m.code, m.phrase, m.headers, m.body, m.raw, m.notes)


@settings(max_examples=N, deadline=None)
@given(inputs)
def test_stream_only_parse_error_and_events(data):
    p, msgs, _ = run([data], limit=300)
    for m in msgs:
        to_event(m, CFG, TT.ip_port(), 6)
    p.reset()
    assert p.feed(b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", 9)[0].method == b"BYE"


@settings(max_examples=N, deadline=None)
@given(inputs)
def test_datagram_only_parse_error_and_events(data):
    try:
        msgs = parse_datagram(data, 1)
    except ParseError:
        return
    for m in msgs:
        ev = to_event(m, CFG, UT, UDP)
        assert ev["type"] == "sip"


@settings(max_examples=N, deadline=None)
@given(inputs, st.lists(st.integers(min_value=0, max_value=512), max_size=8))
def test_split_points_do_not_matter(data, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    _, whole, err1 = run([data])
    _, split, err2 = run(parts)
    assert (err1 is None) == (err2 is None)
    assert [key(m) for m in whole] == [key(m) for m in split]


@settings(max_examples=N // 2, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs, st.integers(0, 40)), max_size=6))
def test_plugin_never_raises_other_than_parse_error(steps):
    out = []
    p = SipPlugin({"ports": [5060]}, out.append)
    state = None
    for i, (direction, data, gap) in enumerate(steps):
        tup = TT.ip_port() if direction == 0 else TT.ip_port().reverse()
        try:
            state = p.parse(Packet(i, tup, memoryview(data)), TT, direction, state)
        except ParseError:
            state = None
        if gap:
            state, _ = p.gap_in_stream(TT, direction, gap, state)
        try:
            p.parse_udp(Packet(i, IpPortTuple(UDP, *tup[1:]), memoryview(data)))
        except ParseError:
            pass
    p.flush(TT, state, 99)
    p.flush_all(100)
    assert all(ev["type"] == "sip" for ev in out)
