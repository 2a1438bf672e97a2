"""TcpTracker.process_eth4 (the compiled engine's path for the common frame,
read without a ``decode`` tuple) gives what ``process(ts, decode(1, raw), raw)``
gives, and leaves every other frame to the caller. Runs in the compiled and
the pure build alike."""
from __future__ import annotations

import collections
import pathlib

import pytest

from coordinator.capture.pcapfile import open_capture
from shared.decode import decode
from worker.tcp import TcpTracker

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "pcaps"


class Recorder:
    """Every callback with its arguments; the state is the list of payloads seen."""

    name = "rec"

    def __init__(self, ports):
        self._ports = ports
        self.calls: list = []

    def ports(self):
        return self._ports

    def connection_timeout(self):
        return 0.0

    def parse(self, pkt, tcptuple, direction, state):
        self.calls.append(("parse", pkt.ts, pkt.tuple, bytes(pkt.payload), tcptuple, direction))
        return (state or []) + [bytes(pkt.payload)]

    def received_fin(self, tcptuple, direction, state):
        self.calls.append(("fin", tcptuple, direction, state))
        return state

    def gap_in_stream(self, tcptuple, direction, nbytes, state):
        self.calls.append(("gap", tcptuple, direction, nbytes))
        return state, False

    def flush(self, tcptuple, state, ts):
        self.calls.append(("flush", tcptuple, state, ts))


def _run(records, ports, fast: bool):
    rec = Recorder(ports)
    counters = collections.Counter()
    tr = TcpTracker({p: rec for p in ports}, counters)
    taken = 0
    for ts, linktype, raw in records:
        if fast and linktype == 1 and tr.process_eth4(ts, raw):
            taken += 1
            continue
        dec = decode(linktype, raw)
        if dec is not None and dec[0] == 6:
            tr.process(ts, dec, raw)
    tr.flush_all(records[-1][0] if records else 0)
    return rec.calls, counters, taken


def _records(name):
    r = open_capture(str(GOLDEN / name))
    try:
        return list(r)
    finally:
        r.close()


@pytest.mark.parametrize("name,ports", [("http_real.pcap", [8080]), ("http_sample.pcap", [80]),
                                        ("http_synth.pcap", [80, 8080]), ("mysql_real.pcap", [3306]),
                                        ("redis_real.pcap", [6379])])
def test_same_callbacks_and_counters_as_decode(name, ports):
    records = _records(name)
    slow_calls, slow_counters, _ = _run(records, ports, fast=False)
    fast_calls, fast_counters, taken = _run(records, ports, fast=True)
    assert taken > 0 and slow_calls
    assert fast_calls == slow_calls
    assert fast_counters == slow_counters


def _frame(ihl=5, frag=0, proto=6, total=None, doff=5, payload=b"GET / HTTP/1.1\r\n\r\n", sport=40000,
           dport=80, ethertype=b"\x08\x00", flags=0x18, trailer=b"", reply=False):
    tcp = (sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (1000).to_bytes(4, "big") + bytes(4)
           + bytes([doff << 4, flags]) + bytes(6) + bytes(max(0, doff * 4 - 20)))
    ip_len = ihl * 4 + len(tcp) + len(payload)
    ip = (bytes([0x40 | ihl, 0]) + (ip_len if total is None else total).to_bytes(2, "big") + bytes(2)
          + frag.to_bytes(2, "big") + bytes([64, proto]) + bytes(2) + (bytes([10, 0, 0, 2, 10, 0, 0, 1]) if reply else bytes([10, 0, 0, 1, 10, 0, 0, 2]))
          + bytes(max(0, ihl * 4 - 20)))
    return bytes(12) + ethertype + ip + tcp + payload + trailer


@pytest.mark.parametrize("raw", [
    _frame(ihl=6),                                  # IP options: decode's general path
    _frame(frag=0x2000),                            # more fragments
    _frame(frag=0x0001),                            # a fragment offset
    _frame(proto=17),                               # not TCP
    _frame(doff=4),                                 # TCP header shorter than 20 bytes: refused by decode
    _frame(doff=15, payload=b"", total=40),         # TCP header past the IP end
    _frame(total=30),                               # IP total length too short for TCP
    _frame(ethertype=b"\x81\x00"),                  # a VLAN tag
    _frame()[:50],                                  # truncated
])
def test_other_frames_are_left_to_decode(raw):
    tr = TcpTracker({80: Recorder([80])}, collections.Counter())
    assert tr.process_eth4(1, raw) is False


def test_trailer_and_direction():
    """Ethernet padding after the IP datagram is not payload; a server -> client frame finds
    the connection its client opened."""
    rec = Recorder([80])
    tr = TcpTracker({80: rec}, collections.Counter())
    assert tr.process_eth4(1, _frame(trailer=b"\x00" * 6))
    assert tr.process_eth4(2, _frame(sport=80, dport=40000, reply=True, payload=b"HTTP/1.1 200 OK\r\n\r\n"))
    assert [c[3] for c in rec.calls] == [b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"]
    assert [c[5] for c in rec.calls] == [0, 1]
    assert rec.calls[0][4] == rec.calls[1][4] and rec.calls[0][4].src_ip == "10.0.0.1"
    assert len(tr) == 1
