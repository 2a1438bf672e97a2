"""The sharding rule (DESIGN.md): identical in every process and on every host.

shard = crc32(transport byte + sorted((ip, port) endpoint bytes)) % N

Both directions of a flow give the same value; Python's salted ``hash()`` is
never used. ICMP hashes the address pair (ports are 0).
"""
from __future__ import annotations

from zlib import crc32


def flow_hash(transport: int, src_ip: bytes, sport: int, dst_ip: bytes, dport: int) -> int:
    a = src_ip + sport.to_bytes(2, "big")
    b = dst_ip + dport.to_bytes(2, "big")
    if b < a:
        a, b = b, a
    return crc32(a + b, transport)


def shard_of(transport: int, src_ip: bytes, sport: int, dst_ip: bytes, dport: int, n: int) -> int:
    if n <= 1:
        return 0
    return flow_hash(transport, src_ip, sport, dst_ip, dport) % n
