"""The analysers' own drop counters reach the worker's counters (and so the totals)."""
from __future__ import annotations

from scapy.all import IP, TCP, Ether

from bench.common import read_records
from tests.helpers import PCAPS
from worker.engine import Engine
from worker.protos.registry import load_registry


def frame(seq, flags, payload=b"", sport=40000):
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / \
        TCP(sport=sport, dport=80, seq=seq, flags=flags) / payload
    return bytes(pkt)


def test_http_resync_after_garbage_is_counted():
    eng = Engine([{"type": "http", "ports": [80]}], load_registry(with_entry_points=False))
    recs = [
        [1_000, 1, frame(100, "S")],
        [2_000, 1, frame(101, "PA", b"\x00\x01\x02 not http at all\r\n\r\n")],
        [3_000, 1, frame(128, "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ]
    eng.handle(recs)
    eng.finish()
    assert eng.counters["http.parse_errors"] >= 1
    events = eng.take_events()
    assert [e.get("query") for e in events] == ["GET /"]   # the next request still comes out


def test_redis_pubsub_pushes_are_counted():
    eng = Engine([{"type": "redis", "ports": [6379]}], load_registry(with_entry_points=False))
    eng.handle([list(r) for r in read_records(PCAPS / "redis_real.pcap")])
    eng.finish()
    assert eng.counters["redis.pushes"] > 0
    assert "redis.max_message_size" not in eng.counters
