"""Acknowledged batch delivery, worker -> publisher (ZeroMQ DEALER -> ROUTER).

ZeroMQ PUSH/PULL has no delivery guarantee: batches queued towards a
publisher that dies are gone. So a worker sends through :class:`AckedSender`:

- every batch (``events`` or ``eos``) carries the sender's sequence number,
  consecutive from 0 (``shared.wire`` header ``seq``);
- the publisher answers ``ack`` frames whose ``seq`` is cumulative: every
  batch <= seq of that sender is safely accepted (in the disk spool, or in
  memory when there is none);
- the sender keeps up to ``window`` unacknowledged batches; when the window
  is full (or at ``flush``) and no ack comes for ``resend_after`` seconds it
  sends all of them again, oldest first (a restarted publisher lost them);
  while no ack comes the wait doubles, up to 4 x ``resend_after``;
- the publisher accepts only ``seq == last + 1`` from a sender, answers a
  duplicate (``seq <= last``) with an ack and drops a batch after a gap
  without acking it (the resend brings the gap and what follows, in order).

``window`` bounds memory and is the backpressure: a full window blocks
``send`` until the publisher acknowledges.
"""
from __future__ import annotations

import collections
import logging
import time

import zmq

from shared.wire import WireError, decode_batch, encode_batch

log = logging.getLogger("packetbeat.delivery")


class AckedSender:
    def __init__(self, ctx: zmq.Context, endpoint: str, name: str, window: int = 64,
                 resend_after: float = 2.0, hwm: int = 64):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.name = name
        self.window = window
        self.resend_after = resend_after
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, name.encode())
        self.sock.setsockopt(zmq.SNDHWM, max(hwm, window))
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self.sock.connect(endpoint)
        self.unacked: collections.OrderedDict[int, list[bytes]] = collections.OrderedDict()
        self.acked = -1
        self.resends = 0
        self._timeout = resend_after

    def send(self, seq: int, frames: list[bytes]) -> None:
        """Send one batch (frames from ``encode_batch`` with header seq ``seq``)."""
        while len(self.unacked) >= self.window:
            self._wait()
        self.unacked[seq] = frames
        self.sock.send_multipart(frames)
        self._read_acks(0)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every batch is acknowledged (False after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.unacked:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._wait()
        return True

    def _wait(self) -> None:
        waited = self._timeout
        if self._read_acks(int(waited * 1000)):
            self._timeout = self.resend_after
        else:
            # a slow publisher (full spool) gets the window again less and less often
            self._timeout = min(waited * 2, self.resend_after * 4)
            self.resends += len(self.unacked)
            log.info("%s: no ack for %.1fs, sending %d batches again", self.name, waited, len(self.unacked))
            for frames in list(self.unacked.values()):
                self.sock.send_multipart(frames)

    def _read_acks(self, timeout_ms: int) -> bool:
        """Read waiting acks (waiting up to timeout_ms for one); True if any moved the window."""
        moved = False
        while self.sock.poll(timeout_ms, zmq.POLLIN):
            timeout_ms = 0
            try:
                header, _ = decode_batch(self.sock.recv_multipart())
            except WireError as exc:
                log.error("%s: bad ack frame: %s", self.name, exc)
                continue
            if header["kind"] != "ack":
                continue
            n = header["seq"]
            if n > self.acked:
                self.acked = n
            while self.unacked and next(iter(self.unacked)) <= n:
                self.unacked.popitem(last=False)
                moved = True
        return moved

    def read_acks(self) -> bool:
        """Read the acks already waiting (never blocks); True if the window moved."""
        return self._read_acks(0)

    def close(self) -> None:
        self.sock.close(linger=0)


class CaptureAcks:
    """The publisher's acknowledgements of packet batches to the captures (file
    mode, shared/replay.py): a worker batch that carries ``pk`` (``{capture: seq}``)
    and ``shard`` is acknowledged to each capture once the publisher holds it
    (or recognises it as a duplicate of one it holds)."""

    def __init__(self, ctx: zmq.Context, run_dir: str):
        self.ctx = ctx
        self.run_dir = run_dir
        self.socks: dict[str, zmq.Socket] = {}

    def ack(self, header: dict) -> None:
        pk = header.get("pk")
        if not pk or not isinstance(pk, dict):
            return
        from shared.endpoints import capture_acks
        for capture, seq in pk.items():
            sock = self.socks.get(capture)
            if sock is None:
                sock = self.socks[capture] = self.ctx.socket(zmq.PUSH)
                sock.setsockopt(zmq.SNDHWM, 0)        # a few bytes per worker batch
                sock.connect(capture_acks(self.run_dir, str(capture)))
            sock.send_multipart(encode_batch("ack", header["from"], int(seq), [], shard=header.get("shard")))

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close(linger=2000)


def ack_frames(sender_id: bytes, seq: int) -> list[bytes]:
    """The publisher's cumulative ack to ``sender_id`` (ROUTER routing id first)."""
    return [sender_id] + encode_batch("ack", "publisher", seq, [])
