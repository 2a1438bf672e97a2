"""Hand-made CQL frames and v5 segments for the Cassandra analyser's tests
(written from the protocol specs, independently of the parser)."""
from __future__ import annotations

import struct
import zlib

import cramjam


def s(x: str) -> bytes:
    b = x.encode()
    return struct.pack(">H", len(b)) + b


def ls(x: str) -> bytes:
    b = x.encode()
    return struct.pack(">i", len(b)) + b


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def u16(n: int) -> bytes:
    return struct.pack(">H", n)


def sl(items) -> bytes:
    return u16(len(items)) + b"".join(s(x) for x in items)


def frame(op: int, body: bytes = b"", stream: int = 0, version: int = 4, response: bool = False,
          flags: int = 0) -> bytes:
    v = version | (0x80 if response else 0)
    if version >= 3:
        return struct.pack(">BBhBI", v, flags, stream, op, len(body)) + body
    return struct.pack(">BBbBI", v, flags, stream, op, len(body)) + body


def query(q: str, stream: int = 0, version: int = 4, flags: int = 0) -> bytes:
    params = u16(1) + (i32(0) if version >= 5 else b"\x00")
    return frame(0x07, ls(q) + params, stream, version, flags=flags)


def startup(options: dict, stream: int = 0, version: int = 4) -> bytes:
    body = u16(len(options)) + b"".join(s(k) + s(v) for k, v in options.items())
    return frame(0x01, body, stream, version)


def rows_body(ks: str, table: str, cols: list[tuple[str, int]], rows: list[list[bytes]],
              paging: bytes | None = None, no_meta: bool = False) -> bytes:
    flags = (0x02 if paging is not None else 0) | (0x04 if no_meta else 0x01)
    b = i32(2) + i32(flags) + i32(len(cols))
    if paging is not None:
        b += i32(len(paging)) + paging
    if not no_meta:
        b += s(ks) + s(table) + b"".join(s(n) + u16(t) for n, t in cols)
    b += i32(len(rows))
    for r in rows:
        b += b"".join(i32(len(v)) + v for v in r)
    return b


def lz4_body(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + bytes(cramjam.lz4.compress_block(body, store_size=False))


def snappy_body(body: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(body))


def crc24(data: bytes) -> int:
    crc = 0x875060
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


def segment(payload: bytes, self_contained: bool = True, lz4: bool = False, compress: bool = True) -> bytes:
    if lz4:
        data, ulen = payload, 0
        if compress:
            c = bytes(cramjam.lz4.compress_block(payload, store_size=False))
            if len(c) < len(payload):
                data, ulen = c, len(payload)
        word = len(data) | (ulen << 17) | ((1 << 34) if self_contained else 0)
        hdr = word.to_bytes(5, "little")
    else:
        data = payload
        word = len(data) | ((1 << 17) if self_contained else 0)
        hdr = word.to_bytes(3, "little")
    crc32 = zlib.crc32(data, zlib.crc32(b"\xfa\x2d\x55\xca")) & 0xFFFFFFFF
    return hdr + crc24(hdr).to_bytes(3, "little") + data + crc32.to_bytes(4, "little")


def segments(envelope: bytes, lz4: bool = False, size: int = 128 * 1024 - 1) -> bytes:
    parts = [envelope[i:i + size] for i in range(0, len(envelope), size)]
    return b"".join(segment(p, len(parts) == 1, lz4) for p in parts)
