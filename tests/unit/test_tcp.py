"""TcpTracker: sequence tracking, reordering, gaps, close and the plugin boundary.

Segments are built by hand as decoded tuples plus raw bytes (the layout
``shared.decode.decode`` returns), and, where ``shared.decode`` exists, as
scapy-made Ethernet frames run through the real decoder.
"""
from __future__ import annotations

import collections
import logging
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from worker.plugin import DIR_ORIGINAL, DIR_REVERSE, IpPortTuple, ParseError, TcpTuple
from worker.tcp import TcpTracker

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
CLI = socket.inet_aton("10.0.0.1")
SRV = socket.inet_aton("10.0.0.2")
CPORT, SPORT = 40000, 80
NS = 1_000_000_000
HDR = b"\xee" * 54   # stands in for Ethernet + IPv4 + TCP headers


class Recorder:
    """Records every callback; the state is a list of the bytes seen so far."""

    name = "rec"

    def __init__(self, timeout: float = 0.0, gap_drop: bool = False):
        self.calls: list[tuple] = []
        self.timeout = timeout
        self.gap_drop = gap_drop
        self.raise_on: bytes | None = None
        self.exc: type[Exception] = ParseError

    def ports(self):
        return [SPORT]

    def connection_timeout(self):
        return self.timeout

    def parse(self, pkt, tcptuple, direction, state):
        data = bytes(pkt.payload)
        self.calls.append(("parse", direction, data, pkt.ts, pkt.tuple, tcptuple, state))
        if self.raise_on is not None and self.raise_on in data:
            raise self.exc("boom on %r" % data)
        return (state or []) + [data]

    def received_fin(self, tcptuple, direction, state):
        self.calls.append(("fin", direction, tcptuple, state))
        return state

    def gap_in_stream(self, tcptuple, direction, nbytes, state):
        self.calls.append(("gap", direction, nbytes, tcptuple, state))
        return state, self.gap_drop

    def flush(self, tcptuple, state, ts):
        self.calls.append(("flush", tcptuple, state, ts))

    # helpers for assertions
    def kinds(self):
        return [c[0] for c in self.calls]

    def data(self, direction=None):
        return [c[2] for c in self.calls if c[0] == "parse" and (direction is None or c[1] == direction)]


def seg(d: int, seq: int, payload: bytes = b"", flags: int = ACK):
    """(dec, raw) for a segment in direction d (0 = client -> server)."""
    raw = HDR + payload
    if d == DIR_ORIGINAL:
        dec = (6, CLI, SRV, CPORT, SPORT, flags, seq & 0xFFFFFFFF, 0, len(HDR), len(raw), 14)
    else:
        dec = (6, SRV, CLI, SPORT, CPORT, flags, seq & 0xFFFFFFFF, 0, len(HDR), len(raw), 14)
    return dec, raw


def make(plugin=None, **kw):
    plugin = plugin or Recorder()
    counters = collections.Counter()
    return TcpTracker({SPORT: plugin}, counters, **kw), plugin, counters


def feed(tr, ts, d, seq, payload=b"", flags=ACK):
    dec, raw = seg(d, seq, payload, flags)
    tr.process(ts, dec, raw)


def handshake(tr, cisn=1000, sisn=5000, ts=1):
    feed(tr, ts, 0, cisn, flags=SYN)
    feed(tr, ts + 1, 1, sisn, flags=SYN | ACK)
    feed(tr, ts + 2, 0, cisn + 1)
    return cisn + 1, sisn + 1


# ---------------------------------------------------------------- delivery

def test_in_order_both_directions_with_tuples():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"GET / HTTP/1.1\r\n\r\n", ACK | PSH)
    feed(tr, 11, 1, ss, b"HTTP/1.1 200 OK\r\n")
    feed(tr, 12, 1, ss + 17, b"\r\n")
    assert p.data(0) == [b"GET / HTTP/1.1\r\n\r\n"]
    assert p.data(1) == [b"HTTP/1.1 200 OK\r\n", b"\r\n"]
    first, second = p.calls[0], p.calls[1]
    assert first[3] == 10 and second[3] == 11
    assert first[4] == IpPortTuple(6, "10.0.0.1", CPORT, "10.0.0.2", SPORT)
    assert second[4] == IpPortTuple(6, "10.0.0.2", SPORT, "10.0.0.1", CPORT)
    assert first[5] == TcpTuple("10.0.0.1", CPORT, "10.0.0.2", SPORT, 1)
    assert second[5] is first[5]
    # state returned by parse is passed back in for the same connection
    assert p.calls[2][6] == [b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n"]
    assert len(tr) == 1
    assert c["tcp.connections"] == 1
    assert c["tcp.packets"] == 0             # folded in once per batch, by expire()
    tr.expire(12)
    assert c["tcp.packets"] == 6
    assert c["tcp.payload_bytes"] == 18 + 17 + 2


def test_empty_acks_do_not_reach_plugin():
    tr, p, c = make()
    cs, ss = handshake(tr)
    for i in range(5):
        feed(tr, 20 + i, i % 2, cs if i % 2 == 0 else ss)
    assert p.calls == []
    tr.flush_all(30)
    assert c["tcp.packets"] == 8 and c["tcp.payload_bytes"] == 0


def test_server_sends_first_and_client_port_side_is_client():
    tr, p, _ = make()
    feed(tr, 5, 1, 777, b"+OK ready\r\n")       # server greeting, no handshake seen
    feed(tr, 6, 0, 99, b"USER x\r\n")
    assert [(c[1], c[2]) for c in p.calls] == [(1, b"+OK ready\r\n"), (0, b"USER x\r\n")]
    assert p.calls[0][5].src_ip == "10.0.0.1" and p.calls[0][5].dst_port == SPORT


def test_unknown_ports_are_ignored():
    tr, p, c = make()
    dec = (6, CLI, SRV, 1234, 5678, ACK, 1, 0, len(HDR), len(HDR) + 3, 14)
    tr.process(1, dec, HDR + b"abc")
    assert p.calls == [] and len(tr) == 0
    assert c["tcp.no_protocol"] == 1


def test_mid_stream_start():
    tr, p, c = make()
    feed(tr, 1, 0, 123456789, b"abc")
    feed(tr, 2, 0, 123456792, b"def")
    feed(tr, 3, 1, 42, b"xyz")
    assert p.data() == [b"abc", b"def", b"xyz"]
    assert c["tcp.gaps"] == 0 and c["tcp.connections"] == 1


# ---------------------------------------------------------------- sequence logic

def test_retransmission_dropped():
    tr, p, c = make()
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"hello")
    feed(tr, 11, 0, cs, b"hello")
    feed(tr, 12, 0, cs + 2, b"llo")          # wholly inside what was delivered
    feed(tr, 13, 0, cs + 5, b"world")
    assert p.data() == [b"hello", b"world"]
    assert c["tcp.retransmits"] == 2


def test_partial_overlap_trimmed():
    tr, p, c = make()
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"hello")
    feed(tr, 11, 0, cs + 3, b"lo world")
    assert p.data() == [b"hello", b" world"]
    assert c["tcp.overlaps_trimmed"] == 1


def test_out_of_order_delivered_in_order_with_own_timestamps():
    tr, p, c = make()
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs + 6, b"CCC")
    feed(tr, 11, 0, cs + 3, b"BBB")
    assert p.calls == []
    feed(tr, 12, 0, cs, b"AAA")
    assert p.data() == [b"AAA", b"BBB", b"CCC"]
    assert [c_[3] for c_ in p.calls] == [12, 11, 10]
    assert c["tcp.ooo_segments"] == 2 and c["tcp.gaps"] == 0


def test_out_of_order_overlapping_held_segments():
    tr, p, c = make()
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs + 4, b"efgh")
    feed(tr, 11, 0, cs + 2, b"cdef")        # overlaps the held one
    feed(tr, 12, 0, cs + 4, b"efgh")        # held twice
    feed(tr, 13, 0, cs, b"ab")
    assert b"".join(p.data()) == b"abcdefgh"
    assert p.data() == [b"ab", b"cdef", b"gh"]
    assert c["tcp.overlaps_trimmed"] == 1 and c["tcp.retransmits"] == 1


def test_ooo_overflow_declares_gap_with_exact_bytes():
    tr, p, c = make(ooo_max_segments=2)
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"0123")
    # bytes cs+4 .. cs+9 (6 bytes) are lost
    feed(tr, 11, 0, cs + 10, b"aa")
    feed(tr, 12, 0, cs + 12, b"bb")
    assert "gap" not in p.kinds()
    feed(tr, 13, 0, cs + 20, b"dd")          # third held segment: overflow
    gaps = [x for x in p.calls if x[0] == "gap"]
    assert [(g[1], g[2]) for g in gaps] == [(0, 6)]
    assert p.data() == [b"0123", b"aa", b"bb"]
    assert c["tcp.gaps"] == 1 and c["tcp.gap_bytes"] == 6
    # the second hole (cs+14 .. cs+19) is still open; fill it
    feed(tr, 14, 0, cs + 14, b"cccccc")
    assert p.data() == [b"0123", b"aa", b"bb", b"cccccc", b"dd"]


def test_ooo_max_zero_is_packetbeat_behaviour():
    tr, p, c = make(ooo_max_segments=0)
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"ab")
    feed(tr, 11, 0, cs + 5, b"fg")
    assert [(x[0], x[2]) for x in p.calls] == [("parse", b"ab"), ("gap", 3), ("parse", b"fg")]
    feed(tr, 12, 0, cs + 2, b"cde")          # late: before nxt now
    assert c["tcp.retransmits"] == 1


def test_gap_drop_resets_state_and_conn_id():
    tr, p, c = make(Recorder(gap_drop=True), ooo_max_segments=0)
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"ab")
    feed(tr, 11, 0, cs + 10, b"zz")
    gap = [x for x in p.calls if x[0] == "gap"][0]
    assert gap[2] == 8 and gap[4] == [b"ab"]
    last = p.calls[-1]
    assert last[0] == "parse" and last[2] == b"zz"
    assert last[6] is None                    # state dropped
    assert last[5].conn_id != gap[3].conn_id


def test_fin_with_hole_declares_gap_then_fin():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 1, ss, b"HTTP/1.0 200 OK\r\n\r\n")
    feed(tr, 11, 1, ss + 19 + 100, b"tail", FIN | ACK)    # 100 bytes missing
    assert [x[0] for x in p.calls] == ["parse", "gap", "parse", "fin"]
    assert p.calls[1][2] == 100
    assert p.calls[2][2] == b"tail"
    assert c["tcp.gap_bytes"] == 100 and c["tcp.fin"] == 1


def test_seq_wraparound():
    tr, p, c = make()
    cisn = 2**32 - 3                          # SYN at 2**32-3, data from 2**32-2
    feed(tr, 1, 0, cisn, flags=SYN)
    feed(tr, 2, 0, 2**32 - 2, b"abcd")        # crosses 2**32
    feed(tr, 3, 0, 2, b"efgh")
    feed(tr, 4, 0, 2**32 - 1, b"bcdefghi")    # overlaps across the wrap: only "i" is new
    feed(tr, 5, 0, 2**32 - 1, b"bc")          # retransmit from before the wrap
    feed(tr, 6, 0, 10, b"kk")                 # after a hole
    feed(tr, 7, 0, 7, b"jjj")
    assert p.data() == [b"abcd", b"efgh", b"i", b"jjj", b"kk"]
    assert c["tcp.retransmits"] == 1 and c["tcp.overlaps_trimmed"] == 1
    assert c["tcp.ooo_segments"] == 1 and c["tcp.gaps"] == 0


def test_seq_wraparound_ooo_across_boundary():
    tr, p, c = make()
    feed(tr, 1, 0, 2**32 - 4, b"1234")
    feed(tr, 2, 0, 4, b"9")                   # after the wrap, after a hole
    feed(tr, 3, 0, 0, b"5678")
    assert p.data() == [b"1234", b"5678", b"9"]


def test_syn_consumes_one_and_syn_retransmit_ignored():
    tr, p, c = make()
    feed(tr, 1, 0, 1000, flags=SYN)
    feed(tr, 2, 0, 1000, flags=SYN)          # retransmitted SYN
    feed(tr, 3, 1, 5000, flags=SYN | ACK)
    feed(tr, 4, 0, 1001, b"x")
    feed(tr, 5, 1, 5001, b"y")
    assert p.data() == [b"x", b"y"]
    assert c["tcp.connections"] == 1 and c["tcp.gaps"] == 0


def test_late_duplicate_syn_and_syn_ack_after_data_ignored():
    tr, p, c = make()
    cs, ss = handshake(tr, cisn=1000, sisn=5000)
    feed(tr, 10, 0, cs, b"req")
    feed(tr, 11, 1, ss, b"resp")
    feed(tr, 12, 0, 1000, flags=SYN)            # the same SYN again, late
    feed(tr, 13, 1, 5000, flags=SYN | ACK)      # the same SYN-ACK again, late
    feed(tr, 14, 0, cs + 3, b"more")
    feed(tr, 15, 1, ss + 4, b"data")
    assert p.data() == [b"req", b"resp", b"more", b"data"]
    assert "flush" not in p.kinds() and c["tcp.connections"] == 1 and c["tcp.gaps"] == 0


def test_data_on_syn_starts_after_it():
    tr, p, _ = make()
    feed(tr, 1, 0, 1000, b"fast", SYN)
    feed(tr, 2, 0, 1005, b"open")
    assert p.data() == [b"fast", b"open"]


def test_new_syn_on_open_connection_starts_new_connection():
    tr, p, c = make()
    cs, _ = handshake(tr, cisn=1000)
    feed(tr, 10, 0, cs, b"old")
    feed(tr, 20, 0, 90000, flags=SYN)         # port pair reused with a new ISN
    feed(tr, 21, 0, 90001, b"new")
    flushes = [x for x in p.calls if x[0] == "flush"]
    assert len(flushes) == 1 and flushes[0][2] == [b"old"] and flushes[0][3] == 20
    new = p.calls[-1]
    assert new[2] == b"new" and new[6] is None and new[5].conn_id == 2
    assert c["tcp.connections"] == 2 and len(tr) == 1


# ---------------------------------------------------------------- close

def test_fin_each_side_then_flush_and_forget():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"req")
    feed(tr, 11, 1, ss, b"resp")
    feed(tr, 12, 0, cs + 3, flags=FIN | ACK)
    assert p.kinds() == ["parse", "parse", "fin"] and p.calls[2][1] == 0
    feed(tr, 13, 0, cs + 3, flags=FIN | ACK)   # retransmitted FIN: ignored
    assert p.kinds().count("fin") == 1
    feed(tr, 14, 1, ss + 4, b"!", FIN | ACK)   # data + FIN
    assert p.kinds() == ["parse", "parse", "fin", "parse", "fin", "flush"]
    flush = p.calls[-1]
    assert flush[2] == [b"req", b"resp", b"!"] and flush[3] == 14
    assert len(tr) == 0 and c["tcp.fin"] == 2
    # the last ACK and a late retransmission do not resurrect the connection
    feed(tr, 15, 0, cs + 4)
    feed(tr, 16, 1, ss, b"resp")
    assert len(tr) == 0 and len(p.calls) == 6
    # a SYN on the same 4-tuple is a new connection
    feed(tr, 30, 0, 7000, flags=SYN)
    feed(tr, 31, 0, 7001, b"again")
    assert len(tr) == 1 and p.calls[-1][2] == b"again" and p.calls[-1][5].conn_id == 2


def test_replayed_connection_after_close_is_a_duplicate():
    """A closed connection's own SYN (same ISN), its SYN-ACK and its data seen
    again (a capture that holds the connection twice, as Packetbeat's
    thrift_echo_binary.pcap) open nothing: Packetbeat drops them as retransmissions."""
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"req")
    feed(tr, 11, 1, ss, b"resp")
    feed(tr, 12, 0, cs + 3, flags=FIN | ACK)
    feed(tr, 13, 1, ss + 4, flags=FIN | ACK)
    n = len(p.calls)
    handshake(tr, ts=20)                       # the same ISNs again
    feed(tr, 23, 0, cs, b"req")
    feed(tr, 24, 1, ss, b"resp")
    assert len(tr) == 0 and len(p.calls) == n and c["tcp.retransmits"] >= 3
    # a new ISN is a new connection
    handshake(tr, cisn=77000, sisn=88000, ts=30)
    feed(tr, 33, 0, 77001, b"new")
    assert len(tr) == 1 and p.calls[-1][2] == b"new"


def test_segments_beyond_fin_are_discarded():
    tr, p, c = make()
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs + 10, b"junk")          # held, beyond where the FIN will be
    feed(tr, 11, 0, cs, b"data", FIN | ACK)
    feed(tr, 12, 0, cs + 20, b"late")          # after our FIN: stale
    tr.flush_all(20)
    assert p.kinds() == ["parse", "fin", "flush"] and p.data() == [b"data"]
    assert c["tcp.gaps"] == 0


def test_rst_flushes_and_forgets():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"req")
    feed(tr, 11, 1, ss, flags=RST)
    assert p.kinds() == ["parse", "flush"] and p.calls[-1][3] == 11
    assert len(tr) == 0 and c["tcp.rst"] == 1
    feed(tr, 12, 0, cs + 3, b"more")          # after RST, no SYN: ignored
    assert len(tr) == 0 and p.kinds() == ["parse", "flush"]


def test_close_declares_outstanding_holes():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"ab")
    feed(tr, 11, 0, cs + 4, b"ef")
    feed(tr, 12, 1, ss, flags=RST)
    assert [(x[0], x[2]) for x in p.calls[:3]] == [("parse", b"ab"), ("gap", 2), ("parse", b"ef")]
    assert p.kinds()[-1] == "flush"


def test_flush_skipped_for_none_state():
    tr, p, c = make()
    handshake(tr)
    tr.flush_all(99)
    assert p.calls == [] and len(tr) == 0


# ---------------------------------------------------------------- time

def test_idle_timeout_by_packet_time():
    tr, p, c = make(Recorder(timeout=2.0))
    feed(tr, 1 * NS, 0, 100, b"a")                               # conn A (port 40000)
    dec = (6, CLI, SRV, CPORT + 1, SPORT, ACK, 500, 0, len(HDR), len(HDR) + 1, 14)
    tr.process(2 * NS, dec, HDR + b"b")                           # conn B
    feed(tr, 2 * NS + 5, 0, 101)                                  # A active again (empty ACK)
    tr.expire(3 * NS)
    assert len(tr) == 2 and "flush" not in p.kinds()
    tr.expire(4 * NS)                                             # B idle 2s: expired
    flushes = [x for x in p.calls if x[0] == "flush"]
    assert [(f[1].src_port, f[2], f[3]) for f in flushes] == [(CPORT + 1, [b"b"], 4 * NS)]
    assert len(tr) == 1 and c["tcp.timeouts"] == 1
    tr.expire(4 * NS + 5)                                         # A idle 2s
    assert len(tr) == 0 and c["tcp.timeouts"] == 2
    # a later packet of A restarts it mid-stream (not a closed connection)
    feed(tr, 5 * NS, 0, 102, b"c")
    assert len(tr) == 1 and p.calls[-1][6] is None


def test_default_idle_timeout_and_per_plugin_timeouts():
    short, long_ = Recorder(timeout=0), Recorder(timeout=60)
    counters = collections.Counter()
    tr = TcpTracker({80: short, 6379: long_}, counters, default_idle_timeout=1.0)
    tr.process(0, (6, CLI, SRV, 5000, 6379, ACK, 1, 0, 54, 55, 14), HDR + b"r")
    tr.process(NS, (6, CLI, SRV, 5001, 80, ACK, 1, 0, 54, 55, 14), HDR + b"h")
    tr.expire(2 * NS)                                             # default 1s applies to port 80
    assert short.kinds() == ["parse", "flush"] and long_.kinds() == ["parse"]
    tr.expire(59 * NS)
    assert long_.kinds() == ["parse"]
    tr.expire(60 * NS)
    assert long_.kinds() == ["parse", "flush"] and len(tr) == 0


def test_flush_all():
    tr, p, c = make()
    for i in range(3):
        dec = (6, CLI, SRV, CPORT + i, SPORT, ACK, 10, 0, len(HDR), len(HDR) + 1, 14)
        tr.process(i, dec, HDR + bytes([65 + i]))
    tr.flush_all(77)
    flushes = [x for x in p.calls if x[0] == "flush"]
    assert sorted(f[2][0] for f in flushes) == [b"A", b"B", b"C"]
    assert {f[3] for f in flushes} == {77}
    assert len(tr) == 0


# ---------------------------------------------------------------- bounds and errors

def test_max_stream_bytes_drops_stream():
    tr, p, c = make(max_stream_bytes=10)
    cs, _ = handshake(tr)
    feed(tr, 10, 0, cs, b"ok")
    feed(tr, 11, 0, cs + 5, b"123456")
    assert c["tcp.stream_dropped"] == 0
    feed(tr, 12, 0, cs + 11, b"78901")        # 11 bytes held > 10
    assert c["tcp.stream_dropped"] == 1
    assert p.kinds() == ["parse", "flush"] and p.calls[-1][2] == [b"ok"]
    assert len(tr) == 0
    feed(tr, 13, 0, cs + 16, b"next")          # continues as a new mid-stream connection
    assert len(tr) == 1 and p.calls[-1][2] == b"next" and p.calls[-1][6] is None


def test_parse_error_drops_state_and_restarts():
    tr, p, c = make()
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"one")
    p.raise_on = b"BAD"
    feed(tr, 11, 0, cs + 3, b"BAD")
    feed(tr, 12, 0, cs + 6, b"two")
    assert c["tcp.parse_errors"] == 1 and c["tcp.plugin_errors"] == 0
    assert p.calls[-1][2] == b"two" and p.calls[-1][6] is None
    assert len(tr) == 1


def test_runtime_error_logged_once_and_worker_survives(caplog):
    plugin = Recorder()
    plugin.exc = RuntimeError
    plugin.raise_on = b"BAD"
    tr, p, c = make(plugin)
    cs, _ = handshake(tr)
    with caplog.at_level(logging.ERROR, logger="packetbeat.tcp"):
        feed(tr, 10, 0, cs, b"BAD")
        feed(tr, 11, 0, cs + 3, b"ok")
        feed(tr, 12, 0, cs + 5, b"BAD again")
    assert c["tcp.plugin_errors"] == 2 and c["tcp.parse_errors"] == 0
    records = [r for r in caplog.records if r.name == "packetbeat.tcp"]
    assert len(records) == 1
    assert "rec" in records[0].getMessage() and records[0].exc_info[0] is RuntimeError
    assert p.calls[1][2] == b"ok" and p.calls[1][6] is None
    feed(tr, 13, 0, cs + 14, b"fine")
    assert p.calls[-1][6] is None and p.calls[-1][2] == b"fine"


def test_errors_in_other_callbacks_are_contained():
    class Broken(Recorder):
        def gap_in_stream(self, *a):
            raise ParseError("gap")

        def received_fin(self, *a):
            raise KeyError("fin")

        def flush(self, *a):
            raise ValueError("flush")

    p = Broken()
    tr, _, c = make(p, ooo_max_segments=0)
    cs, ss = handshake(tr)
    feed(tr, 10, 0, cs, b"a")
    feed(tr, 11, 0, cs + 2, b"c")             # gap -> ParseError
    assert c["tcp.parse_errors"] == 1 and p.calls[-1][6] is None
    feed(tr, 12, 0, cs + 3, flags=FIN | ACK)  # KeyError
    feed(tr, 13, 1, ss, b"x")
    feed(tr, 14, 1, ss + 1, flags=FIN | ACK)  # KeyError then flush -> ValueError
    assert c["tcp.plugin_errors"] == 2 and len(tr) == 0
    assert c["tcp.gap_bytes"] == 1


def test_both_ports_configured():
    a, b = Recorder(), Recorder()
    counters = collections.Counter()
    tr = TcpTracker({80: a, 8080: b}, counters)
    # client port 8080 connects to server port 80
    tr.process(1, (6, CLI, SRV, 8080, 80, SYN, 10, 0, 54, 54, 14), HDR)
    tr.process(2, (6, SRV, CLI, 80, 8080, SYN | ACK, 90, 0, 54, 54, 14), HDR)
    tr.process(3, (6, CLI, SRV, 8080, 80, ACK, 11, 0, 54, 56, 14), HDR + b"rq")
    tr.process(4, (6, SRV, CLI, 80, 8080, ACK, 91, 0, 54, 56, 14), HDR + b"rs")
    assert [(x[1], x[2]) for x in a.calls] == [(0, b"rq"), (1, b"rs")]
    assert b.calls == [] and len(tr) == 1 and counters["tcp.connections"] == 1


# ---------------------------------------------------------------- real frames

def test_scapy_frames_through_decoder():
    decode_mod = pytest.importorskip("shared.decode", reason="shared.decode not written yet")
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    def frame(ip, sport, dport, flags, seq, payload=b""):
        return bytes(Ether() / ip / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=1) / payload)

    tr, p, c = make()
    c4, s4 = IP(src="192.168.1.10", dst="192.168.1.20"), IP(src="192.168.1.20", dst="192.168.1.10")
    c6, s6 = IPv6(src="2001:db8::1", dst="2001:db8::2"), IPv6(src="2001:db8::2", dst="2001:db8::1")
    frames = [
        frame(c4, 51000, 80, "S", 100),
        frame(s4, 80, 51000, "SA", 900),
        frame(c4, 51000, 80, "PA", 101, b"GET /a HTTP/1.1\r\n"),
        frame(c4, 51000, 80, "PA", 118 + 5, b"world"),          # out of order
        frame(c4, 51000, 80, "PA", 118, b"hello"),
        frame(s4, 80, 51000, "PA", 901, b"HTTP/1.1 200 OK\r\n"),
        frame(c6, 52000, 80, "PA", 2**32 - 2, b"v6v6"),          # mid-stream, wraps
        frame(s6, 80, 52000, "FA", 7),
        frame(c6, 52000, 80, "FA", 2),
    ]
    for i, raw in enumerate(frames):
        dec = decode_mod.decode(1, raw)
        assert dec is not None and dec[0] == 6
        tr.process(i, dec, raw)
    assert p.data(0) == [b"GET /a HTTP/1.1\r\n", b"hello", b"world", b"v6v6"]
    assert p.data(1) == [b"HTTP/1.1 200 OK\r\n"]
    v6 = [x for x in p.calls if x[0] == "parse" and x[2] == b"v6v6"][0]
    assert v6[5][:4] == ("2001:db8::1", 52000, "2001:db8::2", 80)
    assert p.kinds()[-3:] == ["fin", "fin", "flush"]
    assert len(tr) == 1 and c["tcp.connections"] == 2


# ---------------------------------------------------------------- conformance captures (read in place)

CONFORMANCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance"


class StreamRecorder(Recorder):
    """Reassembles each direction instead of keeping every call."""

    def __init__(self):
        super().__init__()
        self.streams = collections.defaultdict(bytearray)

    def parse(self, pkt, tcptuple, direction, state):
        self.streams[(tcptuple.conn_id, direction)] += pkt.payload
        return 1


def run_capture(name: str, port: int):
    if not CONFORMANCE.is_dir():
        pytest.skip("conformance folder %s is absent" % CONFORMANCE)
    pcapfile = pytest.importorskip("coordinator.capture.pcapfile", reason="pcap reader not written yet")
    decode_mod = pytest.importorskip("shared.decode", reason="shared.decode not written yet")
    p = StreamRecorder()
    counters = collections.Counter()
    tr = TcpTracker({port: p}, counters)
    ts = 0
    with pcapfile.open_capture(str(CONFORMANCE / "pcaps" / name)) as cap:
        for ts, linktype, raw in cap:
            dec = decode_mod.decode(linktype, raw)
            if dec is not None and dec[0] == 6:
                tr.process(ts, dec, raw)
    tr.flush_all(ts)
    return tr, p, counters


def test_conformance_gap_in_stream_pcap():
    tr, p, c = run_capture("gap_in_stream.pcap", 8000)
    assert c["tcp.connections"] == 1 and len(tr) == 0
    gaps = [x for x in p.calls if x[0] == "gap"]
    assert len(gaps) == 1 and gaps[0][1] == DIR_REVERSE
    resp = bytes(p.streams[(1, DIR_REVERSE)])
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK") and b"Content-Length: 76985" in head
    # what was delivered plus what was declared lost is exactly the response
    assert len(body) + gaps[0][2] == 76985
    assert bytes(p.streams[(1, DIR_ORIGINAL)]).startswith(b"GET /jszip.min.js HTTP/1.1\r\n")
    assert [x[0] for x in p.calls if x[0] != "gap"] == ["fin", "fin", "flush"]


def test_conformance_http_10_connection_close_pcap():
    tr, p, c = run_capture("http_10_connection_close.pcap", 8000)
    assert c["tcp.gaps"] == 0 and c["tcp.connections"] >= 1 and len(tr) == 0
    reqs = [bytes(v) for (cid, d), v in p.streams.items() if d == DIR_ORIGINAL]
    resps = [bytes(v) for (cid, d), v in p.streams.items() if d == DIR_REVERSE]
    assert reqs and all(r.startswith(b"GET ") for r in reqs)
    assert resps and all(r.startswith(b"HTTP/1.") for r in resps)
    for r in resps:
        head, _, body = r.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                assert len(body) == int(line.split(b":")[1])


# ---------------------------------------------------------------- properties

@st.composite
def segmented_stream(draw):
    data = draw(st.binary(min_size=1, max_size=400))
    isn = draw(st.sampled_from([0, 1000, 2**31 - 5, 2**32 - 150, 2**32 - 1]) | st.integers(0, 2**32 - 1))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=20)))) if len(data) > 1 else []
    bounds = list(zip([0] + cuts, cuts + [len(data)]))
    segs = [(a, data[a:b]) for a, b in bounds]
    # duplicates and overlapping re-sends
    for _ in range(draw(st.integers(0, 4))):
        a = draw(st.integers(0, len(data) - 1))
        b = draw(st.integers(a + 1, len(data)))
        segs.append((a, data[a:b]))
    order = draw(st.permutations(range(len(segs))))
    lost = draw(st.sets(st.integers(0, len(bounds) - 1), max_size=3))
    return data, isn, [segs[i] for i in order], {bounds[i][0] for i in lost}


@settings(max_examples=150, deadline=None)
@given(segmented_stream())
def test_reordered_duplicated_stream_is_delivered_exactly(case):
    data, isn, segs, _lost = case
    tr, p, c = make(ooo_max_segments=1000)
    feed(tr, 0, 0, isn, flags=SYN)
    for i, (rel, payload) in enumerate(segs):
        feed(tr, i + 1, 0, isn + 1 + rel, payload)
    assert b"".join(p.data()) == data
    assert c["tcp.gaps"] == 0


@settings(max_examples=150, deadline=None)
@given(segmented_stream(), st.integers(0, 8))
def test_losses_are_accounted_as_gaps_at_fin(case, ooo_max):
    data, isn, segs, lost = case
    # lose every copy of the chosen original segments, then close with a FIN
    tr, p, c = make(ooo_max_segments=ooo_max)
    feed(tr, 0, 0, isn, flags=SYN)
    kept = [(rel, pl) for rel, pl in segs if rel not in lost]
    for i, (rel, payload) in enumerate(kept):
        feed(tr, i + 1, 0, isn + 1 + rel, payload)
    feed(tr, 10_000, 0, isn + 1 + len(data), flags=FIN | ACK)
    delivered = b"".join(p.data())
    assert len(delivered) + c["tcp.gap_bytes"] == len(data)
    assert [k for k in p.kinds() if k != "parse" and k != "gap"] == ["fin"]
    # whatever was delivered is a subsequence of the stream, in order
    pos = 0
    for chunk in p.data():
        pos = data.find(chunk, pos)
        assert pos >= 0
        pos += len(chunk)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1),                       # direction
                          st.sampled_from([ACK, ACK | PSH, SYN, SYN | ACK, FIN | ACK, RST, RST | ACK,
                                           FIN | ACK | PSH]),
                          st.integers(-40, 40),                    # seq offset from a base
                          st.binary(max_size=12),
                          st.integers(0, 3)),                      # client port choice
                max_size=60),
       st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(1, 40))
def test_arbitrary_packet_sequences_never_raise(pkts, base, ooo_max, max_bytes):
    p = Recorder()
    p.raise_on = b"\x00\x00"          # some payloads make the plugin raise ParseError
    counters = collections.Counter()
    tr = TcpTracker({SPORT: p}, counters, ooo_max_segments=ooo_max, max_stream_bytes=max_bytes)
    for i, (d, flags, delta, payload, cp) in enumerate(pkts):
        raw = HDR + payload
        seq = (base + delta) & 0xFFFFFFFF
        if d == 0:
            dec = (6, CLI, SRV, CPORT + cp, SPORT, flags, seq, 0, len(HDR), len(raw), 14)
        else:
            dec = (6, SRV, CLI, SPORT, CPORT + cp, flags, seq, 0, len(HDR), len(raw), 14)
        tr.process(i * NS, dec, raw)
        if i % 7 == 0:
            tr.expire(i * NS)
    tr.flush_all(10**12)
    assert len(tr) == 0
    assert counters["tcp.plugin_errors"] == 0
    assert counters["tcp.packets"] == len(pkts)
    # every connection that had state was flushed exactly once per conn_id
    flushed = [x[1].conn_id for x in p.calls if x[0] == "flush"]
    assert len(flushed) == len(set(flushed))


# ---------------------------------------------------------------- bounded state

def seg_from(cport: int, d: int, seq: int, payload: bytes = b"", flags: int = ACK):
    raw = HDR + payload
    if d == DIR_ORIGINAL:
        dec = (6, CLI, SRV, cport, SPORT, flags, seq & 0xFFFFFFFF, 0, len(HDR), len(raw), 14)
    else:
        dec = (6, SRV, CLI, SPORT, cport, flags, seq & 0xFFFFFFFF, 0, len(HDR), len(raw), 14)
    return dec, raw


def test_a_syn_flood_opens_no_connection_and_the_syn_table_is_bounded():
    tr, p, c = make(max_pending_syns=100)
    for i in range(1000):
        tr.process(i, *seg_from(1024 + i, 0, i * 7919, flags=SYN))
    assert len(tr) == 0 and tr.pending_syns() == 100
    assert c["tcp.syns_evicted"] == 900 and c["tcp.connections"] == 0
    assert p.calls == []
    tr.expire(1000 + 11 * NS)                   # remembered SYNs are forgotten at packet time
    assert tr.pending_syns() == 0


def test_first_payload_starts_from_the_remembered_isn_so_a_lost_first_segment_is_a_gap():
    tr, p, c = make()
    feed(tr, 1, 0, 1000, flags=SYN)
    feed(tr, 2, 1, 5000, flags=SYN | ACK)
    assert len(tr) == 0 and tr.pending_syns() == 1
    feed(tr, 3, 0, 1001 + 10, b"world")        # the first 10 bytes were lost
    feed(tr, 4, 1, 5001, b"reply")              # the server side starts from its ISN: in order
    assert tr.pending_syns() == 0 and len(tr) == 1
    assert p.data(1) == [b"reply"]
    feed(tr, 5, 0, 1001 + 15, flags=FIN | ACK)  # FIN with the hole outstanding: declared a gap
    assert c["tcp.gap_bytes"] == 10 and p.data(0) == [b"world"]


def test_connections_over_the_cap_evict_the_least_recently_active_one_with_a_flush():
    tr, p, c = make(max_connections=3)
    for i in range(3):
        tr.process(i, *seg_from(2000 + i, 0, 1, b"req%d" % i))
    tr.process(10, *seg_from(2000, 0, 5, b"more"))      # 2000 is now the most recent
    tr.process(11, *seg_from(3000, 0, 1, b"new"))       # a 4th: 2001 (oldest activity) goes
    assert len(tr) == 3 and c["tcp.evicted"] == 1
    flushed = [call for call in p.calls if call[0] == "flush"]
    assert len(flushed) == 1 and flushed[0][1].src_port == 2001 and flushed[0][2] == [b"req1"]
    tr.process(12, *seg_from(2001, 0, 5, b"back"))      # it comes back mid-stream: a new connection
    assert c["tcp.connections"] == 5 and len(tr) == 3


def test_bytes_held_after_holes_are_bounded_per_worker():
    tr, p, c = make(max_buffered_bytes=1000, ooo_max_segments=1000)
    for i in range(5):
        tr.process(1, *seg_from(5000 + i, 0, 1, b"x"))               # five streams start
    for i in range(5):
        tr.process(2, *seg_from(5000 + i, 0, 100, b"y" * 300))       # each holds 300 bytes after a hole
    assert c["tcp.buffer_full"] == 2 and c["tcp.gaps"] == 2
    tr.flush_all(3)
    assert c["tcp.gaps"] == 5
