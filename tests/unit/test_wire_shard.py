"""Wire format round trips and the sharding rule."""
from __future__ import annotations

import subprocess
import sys

import msgpack
import pytest
from hypothesis import given, strategies as st

from shared.shard import flow_hash, shard_of
from shared.wire import WireError, decode_batch, encode_batch


def test_round_trip_packets_and_events():
    recs = [[1_000_000_123, 1, b"\x00\x01raw"], [2, 101, b""]]
    h, body = decode_batch(encode_batch("pkts", "capture-0", 7, recs))
    assert h == {"v": 1, "kind": "pkts", "from": "capture-0", "seq": 7, "n": 2}
    assert body == recs
    ev = [{"type": "http", "event": {"duration": 12345}, "tags": ["a"]}]
    assert decode_batch(encode_batch("events", "worker-1", 0, ev))[1] == ev


@pytest.mark.parametrize("frames", [
    [b"x"],
    [msgpack.packb({"v": 2, "kind": "pkts", "n": 0}), msgpack.packb([])],
    [msgpack.packb({"v": 1, "kind": "nope", "n": 0}), msgpack.packb([])],
    [msgpack.packb({"v": 1, "kind": "pkts", "n": 3}), msgpack.packb([1])],
    [b"\xc1", b"\xc1"],
])
def test_bad_frames(frames):
    with pytest.raises(WireError):
        decode_batch(frames)


addr4 = st.binary(min_size=4, max_size=4)
port = st.integers(0, 65535)


@given(addr4, port, addr4, port, st.sampled_from([1, 6, 17]), st.integers(1, 64))
def test_both_directions_same_shard(a, ap, b, bp, t, n):
    assert shard_of(t, a, ap, b, bp, n) == shard_of(t, b, bp, a, ap, n)
    assert 0 <= shard_of(t, a, ap, b, bp, n) < n


def test_hash_is_stable_across_processes():
    """Never Python's salted hash(): another interpreter computes the same value."""
    args = (6, bytes([10, 0, 0, 1]), 40000, bytes([10, 0, 0, 2]), 80)
    here = flow_hash(*args)
    code = ("from shared.shard import flow_hash; print(flow_hash(6, bytes([10,0,0,1]), 40000, bytes([10,0,0,2]), 80))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert int(out.stdout) == here
    # and a fixed value, so a change of the rule is noticed (it would re-shard every deployment)
    import zlib
    assert here == zlib.crc32(bytes([10, 0, 0, 1]) + (40000).to_bytes(2, "big") + bytes([10, 0, 0, 2]) + (80).to_bytes(2, "big"), 6) \
        or here == zlib.crc32(bytes([10, 0, 0, 2]) + (80).to_bytes(2, "big") + bytes([10, 0, 0, 1]) + (40000).to_bytes(2, "big"), 6)
