"""shared/replay.py: the capture's replay window and the worker's inbox (no sockets)."""
from __future__ import annotations

import pytest

from shared.replay import DUPLICATE, GAP, TAKE, Inbox, ReplayWindow, next_generation, stream_name


def test_window_keeps_until_acked_and_replays_oldest_first():
    w = ReplayWindow(2, 3)
    for seq in range(3):
        w.add(0, seq, "pkts", [seq])
    assert w.full(0) and not w.full(1)
    w.ack(0, 0)
    assert not w.full(0)
    w.add(0, 3, "eos", [])
    assert [s for s, _, _ in w.replay(0, "worker-0.r1")] == [1, 2, 3]
    w.ack(0, 1)
    w.ack(0, 0)                    # an older cumulative ack changes nothing
    assert w.acked[0] == 1
    w.ack(0, 3)
    assert w.done()


def test_late_ack_of_the_dead_stream_is_counted():
    w = ReplayWindow(1, 8)
    for seq in range(4):
        w.add(0, seq, "pkts", [])
    w.ack(0, 0, "worker-0")
    w.replay(0, "worker-0.r1")     # replays 1..3
    w.ack(0, 0, "worker-0")        # nothing new: not late
    assert w.late_acks == 0
    w.ack(0, 2, "worker-0")        # the dead worker's batch covering 1..2 arrived after the replay began
    assert w.late_acks == 1
    w.ack(0, 3, "worker-0.r1")
    assert w.late_acks == 1 and w.done()


def test_window_of_zero_is_refused():
    with pytest.raises(ValueError):
        ReplayWindow(1, 0)


def test_inbox_first_start_and_order():
    box = Inbox()
    assert box.offer("capture-0", 0, -1) == TAKE
    assert box.offer("capture-0", 0, -1) == DUPLICATE
    assert box.offer("capture-0", 2, -1) == GAP
    assert box.offer("capture-0", 1, -1) == TAKE
    assert box.last == {"capture-0": 1}


def test_inbox_restarted_worker_starts_only_after_the_acked_batches():
    box = Inbox()
    # still queued towards the dead worker: sent when only 9 was acked, so 10..12 may be gone
    assert box.offer("capture-0", 13, 9) == GAP
    assert box.offer("capture-0", 14, 9) == GAP
    # the replay, stamped with the ack at resend time (12): 13 follows what the publisher holds
    assert box.offer("capture-0", 13, 12) == TAKE
    assert box.offer("capture-0", 14, 12) == TAKE
    assert box.offer("capture-0", 14, 9) == DUPLICATE


def test_stream_names_and_generations(tmp_path):
    path = str(tmp_path / "worker-1.gen")
    assert [next_generation(path) for _ in range(3)] == [0, 1, 2]
    assert stream_name("worker-1", 0) == "worker-1"
    assert stream_name("worker-1", 2) == "worker-1.r2"


def test_in_flight_of_a_dead_live_worker():
    from shared.replay import InFlight
    f = InFlight(2, keep=4)
    for seq in range(6):                 # only the last 4 are remembered
        f.add(0, seq, 10 + seq)
    f.ack(0, 2)                          # the publisher holds the events of 0..2
    # the restarted worker's first batch is 5: 3 and 4 went with the dead worker
    assert f.resumed(0, 5) == (2, 13 + 14)
    assert f.resumed(0, 6) == (1, 15)
    assert f.resumed(1, 0) == (0, 0)


def _tcp(src, sport, dst, dport, flags, payload=b""):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    return (0, 1, bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags) / payload))


def test_cut_connections_counts_what_resumes_mid_stream():
    from shared.replay import cut_connections
    c, s = "10.0.0.1", "10.0.0.2"
    batches = [
        (5, "pkts", [
            _tcp(s, 80, c, 40001, "PA", b"HTTP/1.1 200 OK\r\n"),     # cut: the response resumes, its request lost
            _tcp(c, 40002, s, 80, "PA", b"GET / HTTP/1.1\r\n\r\n"),  # cut connection, a new request: no transaction cut
            _tcp(c, 40003, s, 80, "S"),                              # a new connection
            _tcp(s, 80, c, 40003, "SA"),
        ]),
        (6, "procs", [["tcp", "10.0.0.1", 40001, {}]]),
        (7, "pkts", [
            _tcp(c, 40003, s, 80, "PA", b"GET / HTTP/1.1\r\n\r\n"),
            _tcp(s, 80, c, 40003, "PA", b"HTTP/1.1 200 OK\r\n"),     # answered on the new connection: not cut
            _tcp(s, 80, c, 40002, "PA", b"HTTP/1.1 200 OK\r\n"),     # the answer to 40002's new request
            _tcp(c, 40004, s, 80, "FA"),                             # cut connection, closing: its first payload
            _tcp(s, 80, c, 40004, "PA", b"tail of a body"),          # ... is the rest of a response: cut
            _tcp(s, 80, c, 40001, "PA", b"more"),                    # already counted
        ]),
    ]
    assert cut_connections(batches) == (3, 2)
    assert cut_connections([]) == (0, 0)
