"""The shared plugin glue (worker/protos/glue.py) on a small line protocol."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError
from worker.plugin import Packet, ParseError, TcpTuple, IpPortTuple
from worker.protos.glue import (LOSS_NOTES, NOTE_EVICTED, KeyedCorrelator, SegmentParser, TcpAnalyser,
                                check_ports, config_of, feed_segment, outcome)
from worker.protos.redis.config import RedisConfig


class Msg:
    def __init__(self, ts, key, text=b""):
        self.ts = ts
        self.key = key
        self.text = text
        self.notes: list[str] = []


class LineError(ParseError):
    pass


class LineParser:
    """``<key> <text>\\n`` lines; a line starting with ``!`` is refused."""

    def __init__(self):
        self.buf = bytearray()
        self.start_ts = 0

    def feed(self, data, ts):
        if not self.buf:
            self.start_ts = ts
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                return out
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if line.startswith(b"!"):
                err = LineError("bad line")
                err.messages = out
                raise err
            key, _, text = line.partition(b" ")
            out.append(Msg(ts, key, text))

    def reset(self):
        self.buf.clear()

    def on_gap(self, nbytes):
        self.buf.clear()
        return False


class Conn:
    def __init__(self):
        self.parsers = (LineParser(), LineParser())
        self.correlator = KeyedCorrelator(1_000, 4)


class LinePlugin(TcpAnalyser):
    config_class = RedisConfig
    name = "line"
    parse_error = LineError

    def new_connection(self, tcptuple):
        return Conn()

    def handle(self, conn, tcptuple, direction, msgs):
        for m in msgs:
            if direction == 0:
                pairs = conn.correlator.add_request(m.key, m)
            else:
                pairs = [conn.correlator.add_response(m.key, m)]
            for req, resp in pairs:
                self.emit(outcome(req, resp))

    def close(self, conn, tcptuple, ts):
        for req, resp in conn.correlator.flush():
            self.emit(outcome(req, resp))


TT = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 6379, 1)
UP = IpPortTuple(6, "10.0.0.1", 40000, "10.0.0.2", 6379)


def pkt(ts, data):
    return Packet(ts, UP, memoryview(data))


def test_config_of_builds_from_a_dict_and_names_the_key_path():
    assert config_of(RedisConfig, {"ports": [7000]}, "redis").ports == [7000]
    cfg = RedisConfig()
    assert config_of(RedisConfig, cfg, "redis") is cfg
    with pytest.raises(ConfigError, match="redis.ports"):
        config_of(RedisConfig, {"ports": [70000]}, "redis")
    with pytest.raises(ConfigError, match="x.ports"):
        check_ports([0], "x")


def test_requests_pair_by_key_and_leftovers_flush_with_a_note():
    out = []
    p = LinePlugin({"ports": [6379]}, out.append)
    st = p.parse(pkt(1, b"a q1\nb q2\n"), TT, 0, None)
    st = p.parse(pkt(2, b"b r2\n"), TT, 1, st)
    assert out == [("OK", [])]
    p.flush(TT, st, 3)
    assert out[1] == ("Error", ["Unmatched request"])
    st = p.parse(pkt(4, b"zz r\n"), TT, 1, None)
    assert out[2] == ("Error", ["Unmatched response"])


def test_parse_error_keeps_what_came_before_and_counts():
    out = []
    p = LinePlugin(None, out.append)
    st = p.parse(pkt(1, b"a q\n!junk\nb lost\n"), TT, 0, None)
    assert p.parse_errors == 1
    st = p.parse(pkt(2, b"a r\n"), TT, 1, st)
    assert out == [("OK", [])]


def test_gap_that_cannot_be_crossed_publishes_with_a_loss_note_and_drops():
    out = []
    p = LinePlugin(None, out.append)
    st = p.parse(pkt(1, b"a q\n"), TT, 0, None)
    st, drop = p.gap_in_stream(TT, 1, 100, st)
    assert drop and st is None and p.gap_drops == 1
    assert out == [("Error", [LOSS_NOTES[1], "Unmatched request"])]


def test_keyed_correlator_is_bounded_and_expires_by_packet_time():
    c = KeyedCorrelator(timeout_ns=10, max_pending=2)
    assert c.add_request(1, Msg(0, 1)) == []
    assert c.add_request(2, Msg(5, 2)) == []
    out = c.add_request(3, Msg(6, 3))
    assert [r.key for r, _ in out] == [1] and out[0][0].notes == [NOTE_EVICTED] and c.evicted == 1
    again = c.add_request(3, Msg(7, 3))          # same key again: the older one goes out
    assert [r.ts for r, _ in again] == [6]
    assert [r.key for r, _ in c.expire(15)] == [2]
    assert len(c) == 1 and c.expired == 1
    assert c.take(3).ts == 7 and c.take(3) is None


def test_an_evicted_connection_publishes_its_waiting_requests_with_a_note():
    from worker.protos.glue import NOTE_CONN_EVICTED
    from worker.tcp import TcpTracker
    import collections
    out = []
    p = LinePlugin({"ports": [6379]}, out.append)
    counters = collections.Counter()
    tr = TcpTracker({6379: p}, counters, max_connections=1)
    hdr = b"\xee" * 54

    def send(cport, payload, ts):
        raw = hdr + payload
        tr.process(ts, (6, b"\x0a\0\0\x01", b"\x0a\0\0\x02", cport, 6379, 0x18, 1, 0, 54, len(raw), 14), raw)
    send(40000, b"a q\n", 1)
    send(40001, b"b q\n", 2)
    assert counters["tcp.evicted"] == 1
    assert out == [("Error", [NOTE_CONN_EVICTED, "Unmatched request"])]


class _Lines(SegmentParser):
    """A SegmentParser of newline-ended lines; a line starting with '!' is refused."""
    __slots__ = ("buf", "resets")

    def __init__(self):
        self.buf = b""
        self.resets = 0

    def feed(self, data, ts):
        self.buf += data
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.startswith(b"!"):
                e = ParseError("refused")
                e.messages = out
                raise e
            out.append((ts, line))
        return out

    def reset(self):
        self.buf = b""
        self.resets += 1


class _Counting:
    parse_error = ParseError
    parse_errors = 0


def test_feed_segment_feeds_a_segment_parser_and_resyncs_on_its_error():
    parser, an = _Lines(), _Counting()
    tup = IpPortTuple(6, "10.0.0.1", 1, "10.0.0.2", 2)
    assert feed_segment(an, parser, Packet(5, tup, b"a\nb")) == [(5, b"a")]
    assert feed_segment(an, parser, Packet(6, tup, b"\n")) == [(6, b"b")]
    assert an.parse_errors == 0 and parser.resets == 0
    # the messages completed before the refused bytes are kept, the rest of the buffer goes
    assert feed_segment(an, parser, Packet(7, tup, b"c\n!x\nd\n")) == [(7, b"c")]
    assert an.parse_errors == 1 and parser.resets == 1 and parser.buf == b""
    assert feed_segment(an, parser, Packet(8, tup, b"e\n")) == [(8, b"e")]
    # another exception than the analyser's parse_error is not swallowed
    with pytest.raises(ZeroDivisionError):
        class _Bad(_Lines):
            __slots__ = ()

            def feed(self, data, ts):
                raise ZeroDivisionError
        feed_segment(an, _Bad(), Packet(9, tup, b"x"))
    assert an.parse_errors == 1


def test_segment_parser_without_its_interface_says_which_class():
    class Incomplete(SegmentParser):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete does not define feed"):
        Incomplete().feed(b"x", 0)
    with pytest.raises(NotImplementedError, match="Incomplete does not define reset"):
        Incomplete().reset()
