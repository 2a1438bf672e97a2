"""Batch events for an output by count, bytes or age, whichever comes first.

The shape of ``elasticsearch.helpers.actions._ActionChunker``: ``feed`` adds
one event and returns a finished batch when a limit is reached. It differs
in two ways. A batch that reaches ``chunk_size`` is handed out at once (not
when the next event arrives), and there is an age limit: ``poll(now)``
returns the batch once its first event is ``flush_after_seconds`` old.
``now`` is any monotonic clock in seconds, passed in (tests inject it).

Sizes are exact and cheap: each event is encoded once, with ``encode``
(default :func:`outputs.encode_event`, the canonical compact JSON line), and
``len(line) + 1`` (the newline) counts towards ``max_chunk_bytes``. The
batch carries those lines (``Batch.lines``) so an output does not encode
again. An event that cannot be encoded counts as 0 bytes and keeps
``None`` as its line; the output reports its error. Events must not be
changed after ``feed``.

One event larger than ``max_chunk_bytes`` makes a batch of its own. When
``feed`` has just returned the previous batch, that one-event batch stays
buffered: the next ``feed``, ``poll`` or ``flush`` hands it out.
"""
from __future__ import annotations

from collections.abc import Callable

from coordinator.publisher.outputs import EncodeError, encode_event


class Batch(list):
    """A list of event dicts; ``lines[i]`` is the encoded ``self[i]`` (or None)."""

    __slots__ = ("lines", "nbytes")

    def __init__(self, events=(), lines=None, nbytes: int = 0):
        super().__init__(events)
        self.lines: list[bytes | None] = list(lines) if lines is not None else []
        self.nbytes = nbytes


class Chunker:
    def __init__(self, chunk_size: int = 2048, max_chunk_bytes: int = 100 * 1024 * 1024,
                 flush_after_seconds: float | None = 1.0,
                 encode: Callable[[dict], bytes] = encode_event):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if max_chunk_bytes < 1:
            raise ValueError("max_chunk_bytes must be at least 1")
        if flush_after_seconds is not None and flush_after_seconds < 0:
            raise ValueError("flush_after_seconds must not be negative")
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max_chunk_bytes
        self.flush_after_seconds = flush_after_seconds    # None: no age limit
        self._encode = encode
        self._events: list[dict] = []
        self._lines: list[bytes | None] = []
        self._nbytes = 0
        self._since = 0.0

    def __len__(self) -> int:
        """Events buffered now."""
        return len(self._events)

    def feed(self, event: dict | None, now: float, line: bytes | None = None) -> Batch | None:
        """Buffer ``event``; return a finished batch if a limit was reached.
        ``line``: the event's canonical text when the caller has it (then
        ``event`` may be None for outputs that only write the lines)."""
        if line is not None:
            size = len(line) + 1
        else:
            try:
                line = self._encode(event)
                size = len(line) + 1
            except EncodeError:
                line, size = None, 0
        out = None
        if self._events and (self._full() or self._nbytes + size > self.max_chunk_bytes
                             or self._aged(now)):
            out = self._take()
        if not self._events:
            self._since = now
        self._events.append(event)
        self._lines.append(line)
        self._nbytes += size
        if out is None and self._full():
            out = self._take()
        return out

    def poll(self, now: float) -> Batch | None:
        """The buffered batch if it is old enough (or full), else None."""
        if self._events and (self._full() or self._aged(now)):
            return self._take()
        return None

    def flush(self) -> Batch | None:
        """Whatever is buffered, or None when empty."""
        return self._take() if self._events else None

    def _full(self) -> bool:
        return len(self._events) >= self.chunk_size or self._nbytes >= self.max_chunk_bytes

    def _aged(self, now: float) -> bool:
        return self.flush_after_seconds is not None and now - self._since >= self.flush_after_seconds

    def _take(self) -> Batch:
        batch = Batch(self._events, self._lines, self._nbytes)
        self._events, self._lines, self._nbytes = [], [], 0
        return batch
