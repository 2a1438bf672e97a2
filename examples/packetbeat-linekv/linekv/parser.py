"""LINEKV parser: one CRLF-terminated line per message (sans-I/O, one per direction).

Requests are ``VERB [key [value]]``; answers are ``+OK [value]`` or ``-ERR message``.
Correlation: answers come in the order of the requests (a FIFO).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from worker.plugin import ParseError as _BaseParseError


class ParseError(_BaseParseError):
    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


@dataclass(slots=True)
class LineMessage:
    ts: int
    is_request: bool
    size: int
    line: bytes
    notes: list[str] = field(default_factory=list)


class LineParser:
    def __init__(self, is_request: bool, max_line: int):
        self.is_request = is_request
        self.max_line = max_line
        self._buf = bytearray()
        self._ts = 0

    def feed(self, data, ts: int) -> list[LineMessage]:
        if not self._buf:
            self._ts = ts
        self._buf += data
        out: list[LineMessage] = []
        start = 0
        buf = self._buf
        while True:
            end = buf.find(b"\r\n", start)
            if end < 0:
                break
            line = bytes(buf[start:end])
            if not self.is_request and not line.startswith((b"+", b"-")):
                del buf[:end + 2]
                raise ParseError("answer does not start with + or -", out)
            out.append(LineMessage(self._ts, self.is_request, end + 2 - start, line))
            start = end + 2
            self._ts = ts
        del buf[:start]
        if len(buf) > self.max_line:
            raise ParseError("line longer than %d bytes" % self.max_line, out)
        return out

    def reset(self) -> None:
        self._buf.clear()
