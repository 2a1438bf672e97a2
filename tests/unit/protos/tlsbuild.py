"""Hand-built TLS records for the TLS analyser's unit and fuzz tests
(independent of the analyser: plain struct packing from RFC 8446 / 5246)."""
from __future__ import annotations

import struct


def record(rtype: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    return struct.pack("!B2sH", rtype, version, len(body)) + body


def handshake(htype: int, body: bytes) -> bytes:
    return struct.pack("!B", htype) + len(body).to_bytes(3, "big") + body


def ext(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def sni(name: str) -> bytes:
    n = name.encode()
    entry = b"\x00" + struct.pack("!H", len(n)) + n
    return ext(0, struct.pack("!H", len(entry)) + entry)


def alpn(*protos: bytes) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protos)
    return ext(16, struct.pack("!H", len(body)) + body)


def u16s(code: int, values, prefix: int = 2) -> bytes:
    body = b"".join(struct.pack("!H", v) for v in values)
    return ext(code, len(body).to_bytes(prefix, "big") + body)


def client_hello(ciphers, exts: bytes = b"", version=(3, 3), session_id: bytes = b"",
                 random: bytes = bytes(range(32)), compression=b"\x00") -> bytes:
    body = (bytes(version) + random + bytes([len(session_id)]) + session_id
            + struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
            + bytes([len(compression)]) + compression)
    if exts is not None:
        body += struct.pack("!H", len(exts)) + exts
    return handshake(1, body)


def server_hello(cipher: int, exts: bytes = b"", version=(3, 3), session_id: bytes = b"",
                 random: bytes = bytes(range(100, 132))) -> bytes:
    body = bytes(version) + random + bytes([len(session_id)]) + session_id + struct.pack("!HB", cipher, 0)
    if exts is not None:
        body += struct.pack("!H", len(exts)) + exts
    return handshake(2, body)


def certificate(ders) -> bytes:
    lst = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake(11, len(lst).to_bytes(3, "big") + lst)


def ske_ecdhe(group: int) -> bytes:
    point = b"\x04" + bytes(64)
    return handshake(12, b"\x03" + struct.pack("!H", group) + bytes([len(point)]) + point + b"\x04\x03\x00\x02ab")


CCS = record(20, b"\x01")
