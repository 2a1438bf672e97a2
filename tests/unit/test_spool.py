"""queue.disk spool: order, acks, segment deletion, restart, torn writes, corruption, full."""
from __future__ import annotations

import os

import pytest

from coordinator.publisher.spool import DiskQueueConfig, Spool, SpoolError, SpoolFull, parse_size
from shared.confutil import ConfigError, build


def recs(n, start=0, size=100):
    return [(b"%06d" % i) * (size // 6) for i in range(start, start + n)]


def segs(path):
    return sorted(p for p in os.listdir(path) if p.endswith(".seg"))


def test_append_read_in_order_across_segments(tmp_path):
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    data = recs(50)
    assert [sp.append(r) for r in data] == list(range(50))
    assert len(segs(tmp_path)) > 3
    got = sp.read(7) + sp.read(100)
    assert [n for n, _ in got] == list(range(50)) and [p for _, p in got] == data
    assert sp.read(10) == []


def test_ack_deletes_whole_segments_and_persists(tmp_path):
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    for r in recs(50):
        sp.append(r)
    before = len(segs(tmp_path))
    sp.read(50)
    sp.ack(25, {"max_seq": {"w0": 3}})
    assert 0 < len(segs(tmp_path)) < before
    sp.close()
    sp2 = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    assert sp2.meta == {"max_seq": {"w0": 3}}
    got = sp2.read(100)
    assert [n for n, _ in got] == list(range(25, 50))      # resumes after the acked part
    assert [p for _, p in got] == recs(25, 25)
    assert sp2.append(b"x") == 50
    sp2.ack(51)
    assert len(segs(tmp_path)) == 1                          # active segment stays
    sp2.close()
    sp3 = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    assert sp3.read(10) == [] and sp3.append(b"y") == 51


def test_torn_tail_is_cut_and_writing_resumes(tmp_path):
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1 << 16)
    for r in recs(5):
        sp.append(r)
    sp.close()
    last = tmp_path / segs(tmp_path)[-1]
    whole = last.read_bytes()
    for cut in (3, 50):                                      # inside the header, inside the payload
        last.write_bytes(whole[:-cut])
        sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1 << 16)
        assert sp.stats["torn"] == 1
        got = sp.read(10)
        assert [p for _, p in got] == recs(4)
        assert sp.append(b"again") == 4
        assert sp.read(10) == [(4, b"again")]
        sp.close()
        last.write_bytes(whole)


def test_bad_checksum_in_old_segment_loses_only_its_rest(tmp_path):
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    data = recs(30)
    for r in data:
        sp.append(r)
    sp.close()
    first = tmp_path / segs(tmp_path)[0]
    raw = bytearray(first.read_bytes())
    raw[8 + 108 + 20] ^= 0xFF                                # payload of record 1
    first.write_bytes(bytes(raw))
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    assert sp.stats["corrupt"] == 1
    got = sp.read(100)
    nums = [n for n, _ in got]
    assert nums[0] == 0 and 1 not in nums
    assert all(p == data[n] for n, p in got)                 # every record read is intact
    assert nums[-1] == 29


def test_full_spool_refuses_until_acked(tmp_path):
    sp = Spool(str(tmp_path), max_size=4096, segment_size=1024)
    n = 0
    with pytest.raises(SpoolFull):
        while True:
            sp.append(b"z" * 200)
            n += 1
    assert 10 <= n <= 20
    assert not sp.wait_for_room(200, 0.01)
    sp.read(100)
    sp.ack(n)
    assert sp.wait_for_room(200, 0.01)
    sp.append(b"z" * 200)
    with pytest.raises(SpoolError):
        sp.append(b"z" * 5000)


def test_rewind_rereads_unacked(tmp_path):
    sp = Spool(str(tmp_path), max_size=1 << 20, segment_size=1000)
    for r in recs(20):
        sp.append(r)
    sp.read(15)
    sp.ack(10)
    sp.rewind()
    assert [n for n, _ in sp.read(100)] == list(range(10, 20))


def test_config():
    c = build(DiskQueueConfig, {"path": "/tmp/x", "max_size": "1MB"}, "queue.disk")
    assert c.max_size == 1 << 20 and c.segment_size == (1 << 20) // 10
    assert parse_size("1.5 GiB", "x") == 3 << 29
    with pytest.raises(ConfigError, match="queue.disk.max_size"):
        build(DiskQueueConfig, {"max_size": "lots"}, "queue.disk")
    with pytest.raises(ConfigError, match="queue.disk.fsync"):
        build(DiskQueueConfig, {"fsync": "sometimes"}, "queue.disk")
    with pytest.raises(ConfigError, match="queue.disk.segment_size"):
        build(DiskQueueConfig, {"max_size": "1MB", "segment_size": "2MB"}, "queue.disk")
