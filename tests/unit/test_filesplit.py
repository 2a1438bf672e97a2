"""coordinator/capture/filesplit.py: C captures reading one file forward, together, exactly
what one capture forwards, each shard from exactly one capture, in file order."""
from __future__ import annotations

import collections
import random
import struct

import pytest
from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, fragment

from coordinator.capture.filesplit import ShareFilter, file_captures
from coordinator.capture.process import Sharder
from shared.decode import LINKTYPE_ETHERNET
from tests.helpers import PCAPS


def _records():
    """Real HTTP and DNS traffic, then IPv6, fragmented UDP datagrams and junk."""
    from coordinator.capture.pcapfile import open_capture
    recs = []
    for name in ("http_real.pcap", "dns_real.pcap"):
        r = open_capture(str(PCAPS / name))
        recs += list(r)
        r.close()
    ts = recs[-1][0]
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    extra = []
    for k in range(40):
        big = eth / IP(src="10.1.0.%d" % k, dst="10.2.0.1", id=k + 1) / UDP(sport=4000 + k, dport=53) / Raw(b"x" * 900)
        extra += [bytes(f) for f in fragment(big, fragsize=400)]
        extra.append(bytes(eth / IPv6(src="fd00::%x" % (k + 1), dst="fd00::1") /
                           TCP(sport=30000 + k, dport=80, flags="PA") / Raw(b"GET / HTTP/1.1\r\n\r\n")))
        extra.append(b"\x02" * 20)          # undecodable
        tcp = bytes(eth / IP(src="10.3.0.%d" % k, dst="10.2.0.9") / TCP(sport=5000 + k, dport=80, flags="PA") /
                    Raw(b"GET /x HTTP/1.1\r\n\r\n"))
        extra.append(tcp[:40 + k % 14])     # truncated inside the TCP header: refused by decode, counted once
        extra.append(bytes(eth / IP(src="10.4.0.%d" % k, dst="10.2.0.9", options=b"\x01\x01\x01\x00") /
                           TCP(sport=6000 + k, dport=80, flags="PA") / Raw(b"GET /o HTTP/1.1\r\n\r\n")))
        extra.append(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=5) /
                           IP(src="10.5.0.%d" % k, dst="10.2.0.9") / UDP(sport=7000 + k, dport=53) / Raw(b"q" * 30)))
    rnd = random.Random(5)
    for k in range(600):                    # addresses and ports over their whole range, TCP and UDP
        src, dst = rnd.getrandbits(32).to_bytes(4, "big"), rnd.getrandbits(32).to_bytes(4, "big")
        if k % 7 == 0:
            dst = src                       # equal addresses: the ports decide the order
        proto = 6 if k % 2 else 17
        l4 = (struct.pack("!HHIIBBHHH", rnd.getrandbits(16), rnd.getrandbits(16), 1, 0, 0x50, 0x18, 1024, 0, 0)
              if proto == 6 else struct.pack("!HHHH", rnd.getrandbits(16), rnd.getrandbits(16), 8 + 10, 0))
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4) + 10, k, 0, 64, proto, 0, src, dst)
        extra.append(b"\x02" * 12 + b"\x08\x00" + ip + l4 + b"0123456789")
    recs += [(ts + i * 1000, LINKTYPE_ETHERNET, raw) for i, raw in enumerate(extra)]
    return recs


def _shard_streams(records, shards, split=None):
    out = collections.defaultdict(list)
    counters = collections.Counter()
    send = lambda i, recs: out[i].extend(recs)      # noqa: E731
    if split is not None:
        split.counters = counters
        send = split.send(send)
    sh = Sharder(shards, send, batch_packets=7, counters=counters)
    sh.feed(iter(records) if split is None else split.records(iter(records)))
    sh.flush()
    return out, counters


@pytest.mark.parametrize("captures,shards", [(2, 2), (2, 3), (3, 5), (4, 4)])
def test_split_forwards_what_one_capture_forwards(captures, shards):
    records = _records()
    whole, whole_counters = _shard_streams(records, shards)
    assert len(whole) == shards
    merged = {}
    totals = collections.Counter()
    for i in range(captures):
        split = ShareFilter(i, captures, shards)
        part, counters = _shard_streams(records, shards, split)
        assert split.last_ts == records[-1][0]
        for shard, recs in part.items():
            assert split.owns(shard) and shard % captures == i and shard not in merged
            merged[shard] = recs
        totals.update(counters)
    assert merged == dict(whole)              # every shard: the same packets, in the same order
    for key in ("capture.packets", "capture.skipped_empty_tcp", "capture.undecodable"):
        assert totals[key] == whole_counters[key] > 0, key
    assert totals["capture.foreign_datagrams"] > 0             # reassembled in both, sent by the owner


def test_fragments_go_to_every_capture_and_count_once():
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    recs = []
    for k in range(20):
        big = eth / IP(src="10.1.0.%d" % k, dst="10.2.0.1", id=k + 1) / UDP(sport=4000 + k, dport=53) / Raw(b"y" * 900)
        recs += [(k * 1000 + j, LINKTYPE_ETHERNET, bytes(f)) for j, f in enumerate(fragment(big, fragsize=400))]
    whole, wc = _shard_streams(recs, 2)
    got = collections.Counter()
    for i in range(2):
        split = ShareFilter(i, 2, 2)
        assert list(split.records(iter(recs))) == recs          # every fragment to every capture
        part, counters = _shard_streams(recs, 2, ShareFilter(i, 2, 2))
        assert set(part) <= {i}
        assert part.get(i, []) == whole.get(i, [])
        got.update(counters)
    assert got["capture.packets"] == wc["capture.packets"] == 20


def test_file_captures_bounded_by_shards():
    assert file_captures({"captures": 4, "workers": 2}) == 2
    assert file_captures({"captures": 2, "workers": 8}) == 2
    assert file_captures({"captures": 1, "workers": 8}) == 1
    assert file_captures({"captures": 3, "role": "capture", "shards": ["tcp://a:1", "tcp://a:2"]}) == 2
    with pytest.raises(ValueError):
        ShareFilter(2, 2, 4)


def test_an_early_end_of_stream_is_acknowledged_with_the_workers_own():
    """A capture that feeds a worker nothing ends its stream first: the worker's event
    segments must not acknowledge that end-of-stream (the capture would exit, and a
    restarted worker would wait for it), only its own end-of-stream does."""
    from shared.replay import TAKE, Inbox
    box = Inbox()
    assert box.offer("capture-0", 0, -1) == TAKE          # capture-0: only its end-of-stream
    box.end("capture-0", 0)
    for seq in range(3):
        assert box.offer("capture-1", seq, -1 if seq == 0 else 0) == TAKE
    assert box.segment_pk() == {"capture-0": -1, "capture-1": 2}
    assert box.last == {"capture-0": 0, "capture-1": 2}   # what the worker's own end-of-stream carries
    box.offer("capture-1", 3, 0)
    box.end("capture-1", 3)
    assert box.segment_pk() == {"capture-0": -1, "capture-1": 2}


def _mutations(records, seed: int = 11, count: int = 3000):
    """Ethernet/IPv4 frames with their header bytes (IHL, total length, fragment field,
    protocol, TCP data offset and flags, UDP length) and their length changed at random."""
    rnd = random.Random(seed)
    base = [r for r in records if r[1] == LINKTYPE_ETHERNET and len(r[2]) >= 54 and r[2][12:15] == b"\x08\x00\x45"]
    out = []
    for k in range(count):
        ts, lt, raw = base[rnd.randrange(len(base))]
        b = bytearray(raw)
        for _ in range(rnd.randrange(1, 4)):
            pos = rnd.choice((14, 16, 17, 20, 21, 23, 23, 38, 39, 46, 46, 47, 47))
            b[pos] = rnd.choice((0, 1, 6, 17, 0x20, 0x40, 0x45, 0x50, 0x80, 0xF0, 0xFF, rnd.getrandbits(8)))
        if rnd.random() < 0.3:
            b = b[:rnd.randrange(40, len(b) + 1)]
        out.append((ts + k, lt, bytes(b)))
    return out


@pytest.mark.parametrize("shards,keep_empty", [(1, False), (2, False), (3, False), (2, True)])
def test_sharder_fast_class_equals_decode(shards, keep_empty, monkeypatch):
    """The compiled ``fast_class`` (frames classified from fixed offsets) gives every frame
    the shard and the skip decision of the decode path: the same batches, the same counters."""
    import coordinator.capture.process as capture_process
    from coordinator.capture.filesplit import SKIP, fast_class
    records = _records()
    records = records + _mutations(records)
    results = []
    for fast in (True, False):
        monkeypatch.setattr(capture_process, "FAST_CLASS", fast)
        out = collections.defaultdict(list)
        counters = collections.Counter()
        sh = Sharder(shards, lambda i, recs: out[i].extend(recs), batch_packets=7, counters=counters,
                     keep_empty_tcp=keep_empty)
        sh.feed(iter(records))
        sh.flush()
        results.append((dict(out), counters))
    assert results[0] == results[1]
    assert results[0][1]["capture.undecodable"] > 0
    assert keep_empty or results[0][1]["capture.skipped_empty_tcp"] > 0
    # the fast path itself took most frames (pure Python: the same function, not used by Sharder)
    taken = sum(fast_class(r[2], shards, not keep_empty) >= 0 or fast_class(r[2], shards, not keep_empty) == SKIP
                for r in records if type(r[2]) is bytes)
    assert taken > len(records) // 4
