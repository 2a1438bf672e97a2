"""HTTP/1.x message bytes and truth records for the fixture generators."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


def request(method: str, target: str, host: str, headers: list[tuple[str, str]] = (),
            body: bytes = b"", version: str = "1.1", content_length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body and content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def response(status: int, reason: str, body: bytes = b"", headers: list[tuple[str, str]] = (),
             version: str = "1.1", length: str = "content-length", chunk_size: int = 0,
             trailers: list[tuple[str, str]] = ()) -> bytes:
    """``length``: ``content-length``, ``chunked`` (chunks of ``chunk_size``), ``close``
    (no framing header: the body ends when the server closes) or ``none`` (no body
    and no header, for 204/304)."""
    lines = [f"HTTP/{version} {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length == "content-length":
        lines.append(f"Content-Length: {len(body)}")
    elif length == "chunked":
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if length != "chunked":
        return head + body
    size = chunk_size or max(1, len(body))
    parts = [head]
    for i in range(0, len(body), size):
        chunk = body[i:i + size]
        parts.append(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    parts.append(b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n")
    return b"".join(parts)


@dataclass
class Txn:
    """One transaction as the client and server really had it (not as a capture shows it).

    Body sizes are entity bytes after de-chunking, before any content decoding;
    ``None`` where that message does not exist (no response, no request seen).
    Timestamps are the capture time (µs) of the first frame of each message.
    """

    case: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    method: str | None
    path: str | None
    query: str | None
    status: int | None
    request_body_bytes: int | None
    response_body_bytes: int | None
    request_ts_us: int | None = None
    response_ts_us: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
