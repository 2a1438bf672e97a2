"""Hand-built AMQP 0-9-1 frames for the AMQP tests (spec section 4.2 layouts)."""
from __future__ import annotations

import struct

HEADER = b"AMQP\x00\x00\x09\x01"


def frame(ftype: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def ss(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def ls(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def table(items: list[tuple[str, bytes]]) -> bytes:
    """``items``: (name, type octet + value bytes)."""
    body = b"".join(ss(k) + v for k, v in items)
    return struct.pack(">I", len(body)) + body


def method(channel: int, cls: int, mid: int, args: bytes = b"") -> bytes:
    return frame(1, channel, struct.pack(">HH", cls, mid) + args)


def content(channel: int, body: bytes, props: bytes = b"\x00\x00", frame_max: int = 0,
            body_size: int | None = None) -> bytes:
    size = len(body) if body_size is None else body_size
    out = frame(2, channel, struct.pack(">HHQ", 60, 0, size) + props)
    step = frame_max or max(1, len(body))
    for i in range(0, len(body), step):
        out += frame(3, channel, body[i:i + step])
    return out


def queue_declare(ch: int, name: str, bits: int = 0, args: bytes = b"\x00\x00\x00\x00") -> bytes:
    return method(ch, 50, 10, b"\x00\x00" + ss(name) + bytes([bits]) + args)


def queue_declare_ok(ch: int, name: str, messages: int = 0, consumers: int = 0) -> bytes:
    return method(ch, 50, 11, ss(name) + struct.pack(">II", messages, consumers))


def publish(ch: int, exchange: str, key: str, bits: int = 0) -> bytes:
    return method(ch, 60, 40, b"\x00\x00" + ss(exchange) + ss(key) + bytes([bits]))


def deliver(ch: int, tag: str, dtag: int, exchange: str, key: str, redelivered: bool = False) -> bytes:
    return method(ch, 60, 60, ss(tag) + struct.pack(">Q", dtag) + bytes([redelivered]) + ss(exchange) + ss(key))


def get(ch: int, queue: str, no_ack: bool = False) -> bytes:
    return method(ch, 60, 70, b"\x00\x00" + ss(queue) + bytes([no_ack]))


def get_ok(ch: int, dtag: int, exchange: str, key: str, count: int) -> bytes:
    return method(ch, 60, 71, struct.pack(">Q", dtag) + b"\x00" + ss(exchange) + ss(key) + struct.pack(">I", count))


def close(ch: int, code: int, text: str, cls: int = 0, mid: int = 0) -> bytes:
    c = 10 if ch == 0 else 20
    m = 50 if ch == 0 else 40
    return method(ch, c, m, struct.pack(">H", code) + ss(text) + struct.pack(">HH", cls, mid))


def close_ok(ch: int) -> bytes:
    return method(ch, 10, 51) if ch == 0 else method(ch, 20, 41)


def ack(ch: int, dtag: int, multiple: bool = False) -> bytes:
    return method(ch, 60, 80, struct.pack(">Q", dtag) + bytes([multiple]))


def text_props(ctype: str = "text/plain", mode: int = 2) -> bytes:
    return b"\x90\x00" + ss(ctype) + bytes([mode])
