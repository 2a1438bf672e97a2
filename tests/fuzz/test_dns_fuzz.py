"""Hypothesis properties of the DNS decoder and plugin: arbitrary bytes raise
only the parser's ParseError (never anything else), a TCP stream split
anywhere gives the same messages, and the plugin fed arbitrary datagrams and
segments in any order neither raises anything but ParseError nor loses a
query (every query comes out exactly once after flush)."""
from __future__ import annotations

import struct

from hypothesis import given, settings, strategies as st

from worker.plugin import IpPortTuple, Packet, TcpTuple
from worker.protos.dns import DnsPlugin
from worker.protos.dns.event import message_text, to_event
from worker.protos.dns.parser import DnsStreamParser, ParseError, decode_message
from worker.protos.dns.publicsuffix import PublicSuffixList
from worker.protos.dns.trans import Transaction

PSL = PublicSuffixList(["com", "co.uk", "uk"])
HDR = struct.pack("!6H", 1, 0x8180, 1, 2, 1, 1)
QUESTION = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
VALID = (HDR + QUESTION
         + b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x05\x02cd\xc0\x10"
         + b"\xc0\x2d\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01"
         + b"\xc0\x10\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x16\xc0\x10\xc0\x10" + bytes(20)
         + b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x06\x00\x03\x00\x02ab")

# valid-looking messages with random mutations reach far deeper than random bytes
mutated = st.builds(
    lambda data, edits: bytes(_mutate(bytearray(data), edits)),
    st.just(VALID),
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6))


def _mutate(b: bytearray, edits) -> bytearray:
    for i, v in edits:
        b[i] = v
    return b


class _Cfg:
    include_authorities = include_additionals = send_request = send_response = True


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.binary(max_size=300), mutated, st.binary(max_size=40).map(lambda b: VALID[:len(b)])))
def test_decode_raises_only_parse_error(data):
    try:
        msg = decode_message(data, 0, len(data))
    except ParseError:
        return
    # whatever decodes also renders
    message_text(msg)
    tr = Transaction(None, IpPortTuple(17, "10.0.0.1", 1, "10.0.0.2", 53), None, msg, [])
    to_event(tr, _Cfg(), PSL)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(mutated, st.just(VALID), st.binary(max_size=30)), max_size=4),
       st.lists(st.integers(1, 200), max_size=8))
def test_stream_split_anywhere_gives_the_same_messages(msgs, cuts):
    stream = b"".join(struct.pack("!H", len(m)) + m for m in msgs)

    def run(pieces):
        p = DnsStreamParser()
        out = []
        for piece in pieces:
            try:
                out.extend((m.id, m.size) for m in p.feed(piece, 0))
            except ParseError as exc:
                out.extend((m.id, m.size) for m in exc.messages)
                out.append("error")
        return out

    pieces, pos = [], 0
    for c in cuts:
        pieces.append(stream[pos:pos + c])
        pos += c
    pieces.append(stream[pos:])
    whole = run([stream])
    if "error" not in whole:        # after an error the parser resynchronises per segment
        assert run(pieces) == whole


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.one_of(mutated, st.just(VALID), st.binary(max_size=60))),
                max_size=12))
def test_plugin_never_raises_other_errors_and_publishes_each_query_once(ops):
    events = []
    p = DnsPlugin({"ports": [53], "include_authorities": True, "include_additionals": True,
                   "send_request": True, "send_response": True}, events.append, PSL)
    t = IpPortTuple(17, "10.0.0.1", 5353, "10.0.0.2", 53)
    tcp = TcpTuple("10.0.0.1", 5353, "10.0.0.2", 53, 1)
    state = None
    decodable = 0
    for i, (over_tcp, reverse, data) in enumerate(ops):
        try:
            decode_message(data, 0, len(data))
            decodable += 1
        except ParseError:
            pass
        ts = 1_000_000_000 * i
        if over_tcp:
            ipp = tcp.ip_port().reverse() if reverse else tcp.ip_port()
            state = p.parse(Packet(ts, ipp, memoryview(struct.pack("!H", len(data)) + data)), tcp,
                            int(reverse), state)
        else:
            try:
                p.parse_udp(Packet(ts, t.reverse() if reverse else t, memoryview(data)))
            except ParseError:
                pass
        p.expire(ts)
    p.flush(tcp, state, 10**12)
    p.flush_all(10**12)
    assert p.correlator.open == {}
    # every decodable message is in exactly one event: as its request (event.start) or response (event.end)
    assert sum(("start" in ev["event"]) + ("end" in ev["event"]) for ev in events) == decodable
    assert all(ev["type"] == "dns" and ev["dns"]["type"] in ("query", "answer") for ev in events)
