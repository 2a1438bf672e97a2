"""Hypothesis properties of the TLS analyser: arbitrary bytes raise only the
TLS ParseError; split points never change the messages; the plugin never
raises on any input in either direction (garbage, truncated or mutated
handshakes), and its buffers stay bounded."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from tests.unit.protos import tlsbuild as B
from worker.plugin import Packet, TcpTuple
from worker.protos.tls import TlsPlugin
from worker.protos.tls.parser import MAX_HANDSHAKE_SIZE, MAX_RECORD_LENGTH, ParseError, TlsParser

N = int(os.environ.get("TLS_FUZZ_N", "300"))   # examples per property; raise for long runs
TUPLE = TcpTuple("10.0.0.1", 5000, "10.0.0.2", 443, 1)

CH = B.client_hello([0x1301, 0xC02F, 0x0A0A], B.sni("x.example") + B.alpn(b"h2") + B.u16s(10, [29, 23])
                    + B.u16s(43, [0x0304, 0x0303], prefix=1) + B.u16s(13, [0x0403]) + B.ext(35, b"t" * 8))
SH = B.server_hello(0xC02F, B.ext(35, b"") + B.alpn(b"h2") + B.ext(11, b"\x01\x00"))
VALID = [B.record(22, CH), B.record(22, SH + B.certificate([b"\x30\x03\x02\x01\x01"]) + B.ske_ecdhe(23)),
         B.record(22, B.handshake(16, b"k" * 33)), B.CCS, B.record(21, b"\x02\x28"), B.record(23, b"data"),
         B.record(22, B.handshake(4, b"\x00\x00\x00\x10\x00\x02ab")), B.record(22, B.handshake(22, b"\x01" * 12))]

records = st.lists(st.sampled_from(VALID) | st.binary(max_size=8), max_size=12).map(b"".join)
inputs = st.binary(max_size=600) | records


@st.composite
def mutated(draw):
    data = bytearray(draw(records))
    for _ in range(draw(st.integers(0, 6))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


def chunks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def run(chunks):
    p = TlsParser()
    out, err = [], None
    try:
        for i, c in enumerate(chunks):
            out += p.feed(memoryview(c), i)
    except ParseError as e:
        out += e.messages
        err = e
    return p, [(m.kind, m.hs_type, m.body, m.level, m.code, m.size) for m in out], err


@settings(max_examples=N, deadline=None)
@given(inputs | mutated())
def test_any_bytes_raise_only_parse_error(data):
    p, _, _ = run([data])
    assert len(p.buf) <= MAX_RECORD_LENGTH + 5
    assert len(p.hs) <= MAX_HANDSHAKE_SIZE + 4 + MAX_RECORD_LENGTH


@settings(max_examples=N, deadline=None)
@given(records, st.lists(st.integers(0, 10_000), max_size=8))
def test_split_points_do_not_change_messages(data, cuts):
    _, whole, err1 = run([data])
    _, split, err2 = run(chunks_of(data, cuts))
    if err1 is None and err2 is None:
        assert [m[:5] for m in whole] == [m[:5] for m in split]


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), inputs | mutated()), max_size=6), st.booleans())
def test_plugin_never_raises(segments, gap):
    evs = []
    p = TlsPlugin({"include_raw_certificates": True, "fingerprints": ["md5", "sha1", "sha256"]}, evs.append)
    state = None
    for i, (d, data) in enumerate(segments):
        state = p.parse(Packet(i, None, memoryview(data)), TUPLE, d, state)
        if gap and i == 1:
            state, drop = p.gap_in_stream(TUPLE, d, 10, state)
            if drop:          # the TCP layer forgets the stream
                break
    p.received_fin(TUPLE, 0, state)
    p.flush(TUPLE, state, 99)
    assert len(evs) <= 1
    for ev in evs:
        assert ev["type"] == "tls" and isinstance(ev["tls"]["established"], bool)
