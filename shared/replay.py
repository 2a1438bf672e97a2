"""Acknowledged capture -> worker delivery in file mode (sans-I/O).

A worker killed in the middle of a file run is restarted by the coordinator;
the capture then sends it again every packet batch that was not yet *safe to
forget*, and the other shards never notice (docs/architecture.md, "A worker
that dies").

The rule: a packet batch is safe to forget once every event it produced is
accepted by the publisher. The worker ships its events in *segments* that end
at a packet-batch boundary, and stamps the last batch of a segment with
``pk = {capture: seq}``: the last packet batch taken from each capture, all of
whose events are in this batch or an earlier one. The publisher, once it has
accepted that batch (in its spool, with ``queue.disk``), acknowledges ``pk``
to the capture directly. Publishing a segment and acknowledging its packets
are one step, so a restarted worker neither publishes a segment twice nor
skips one.

- :class:`ReplayWindow` (capture): per shard, the batches sent and not yet
  acknowledged, bounded (a full window blocks the capture, file mode waits).
  Each batch carries ``a``, the capture's cumulative ack for that shard when
  it was sent (or resent).
- :class:`Inbox` (worker): which batches to take. After ``last`` only
  ``last + 1``; before anything was taken only a batch whose ``seq`` is
  ``a + 1``: everything before it is safe, so starting there loses nothing
  (a restarted worker first receives what was still queued towards the dead
  one: those are dropped until the resend brings ``acked + 1``).
"""
from __future__ import annotations

import collections

TAKE, DUPLICATE, GAP = 0, 1, 2
_SYN = 0x02


class ReplayWindow:
    def __init__(self, n: int, window: int):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.acked = [-1] * n
        self.sent: list[collections.OrderedDict] = [collections.OrderedDict() for _ in range(n)]
        self.owner: list[str | None] = [None] * n      # the stream of the worker now serving shard i
        self.replayed_from = [-1] * n                  # the ack the last replay started after
        self.late_acks = 0         # acks from a replaced worker's stream after its replacement said hello

    def add(self, i: int, seq: int, kind: str, records: list) -> None:
        self.sent[i][seq] = (kind, records)

    def full(self, i: int) -> bool:
        return len(self.sent[i]) >= self.window

    def ack(self, i: int, seq: int, stream: str | None = None) -> None:
        """A cumulative ack for shard ``i`` up to ``seq``."""
        if stream is not None and self.owner[i] is not None and stream != self.owner[i] \
                and seq > self.replayed_from[i]:
            # the dead worker's last batch reached the publisher after its replacement asked for
            # the replay: that replay holds packets whose events are now published (duplicates)
            self.late_acks += 1
        if seq <= self.acked[i]:
            return
        self.acked[i] = seq
        sent = self.sent[i]
        while sent and next(iter(sent)) <= seq:
            sent.popitem(last=False)

    def replay(self, i: int, stream: str) -> list[tuple[int, str, list]]:
        """The batches to send again to shard ``i``'s restarted worker
        (``stream``: its event stream name), oldest first."""
        self.owner[i] = stream
        self.replayed_from[i] = self.acked[i]
        return [(seq, kind, records) for seq, (kind, records) in self.sent[i].items()]

    def done(self) -> bool:
        return not any(self.sent)


def cut_connections(batches) -> tuple[int, int]:
    """What a dead worker's death cut, from the batches sent again to its
    replacement (``ReplayWindow.replay``'s list, oldest first): (connections,
    transactions).

    - connections: TCP connections whose first packet there is not a SYN.
      They were open in the dead worker and the restarted one meets them
      mid-stream. A lower bound: one open and idle through the resent batches
      is not seen.
    - transactions: those of them whose first payload there goes from the
      server (the end with the lower port, as a well-known port is below the
      ephemeral range): a response, or the rest of one, whose request the dead
      worker took with it. Its transaction is cut: the request is lost, the
      response published alone with a note (or counted as a parse error when
      it resumes in the middle of a body). A request cut in the middle (a
      long upload) is not told from a new one and is not counted.
    """
    from shared.decode import decode
    state: dict = {}       # connection -> None (new, or its first payload seen) | True (cut, no payload yet)
    conns = trans = 0
    for _seq, kind, records in batches:
        if kind != "pkts":
            continue
        for _ts, linktype, raw in records:
            dec = decode(linktype, raw)
            if dec is None or dec[0] != 6:
                continue
            sport, dport = dec[3], dec[4]
            a = bytes(dec[1]) + sport.to_bytes(2, "big")
            b = bytes(dec[2]) + dport.to_bytes(2, "big")
            key = (a, b) if a < b else (b, a)
            if key not in state:
                if dec[5] & _SYN:
                    state[key] = None
                    continue
                conns += 1
                state[key] = True
            if state[key] and dec[9] > dec[8]:          # the first payload of a cut connection
                state[key] = None
                if sport < dport:
                    trans += 1
    return conns, trans


class Inbox:
    """The worker's side: the last batch taken per capture (its ``pk``)."""

    def __init__(self):
        self.last: dict[str, int] = {}
        self.ended: dict[str, int] = {}      # capture -> the seq of its end-of-stream, once taken

    def end(self, sender: str, seq: int) -> None:
        """``sender``'s end-of-stream (batch ``seq``) was taken."""
        self.ended[sender] = seq

    def segment_pk(self) -> dict:
        """The ``pk`` of an events segment: ``last``, except that a capture's end-of-stream
        is acknowledged only with the worker's own end-of-stream (``last``), once every
        event is out. With several captures (coordinator/capture/filesplit.py) one that
        feeds nothing to this worker ends its stream early: acknowledged then, it could
        exit before this worker, and a restart of the worker would wait for ever for
        that end-of-stream."""
        pk = dict(self.last)
        for sender, seq in self.ended.items():
            if pk.get(sender) == seq:
                pk[sender] = seq - 1
        return pk

    def offer(self, sender: str, seq: int, acked: int) -> int:
        last = self.last.get(sender)
        if last is None:
            if seq != acked + 1:
                return GAP
        elif seq <= last:
            return DUPLICATE
        elif seq != last + 1:
            return GAP
        self.last[sender] = seq
        return TAKE


def stream_name(worker: str, generation: int) -> str:
    """The event stream of a worker's ``generation``-th start (0: the first):
    a restarted worker's batches must not be taken for its predecessor's
    (the publisher drops them as duplicates by stream and sequence)."""
    return worker if generation == 0 else "%s.r%d" % (worker, generation)


def next_generation(path: str) -> int:
    """Count this start in the file ``path`` (in the run directory): 0 the first time."""
    try:
        with open(path, encoding="ascii") as fh:
            gen = int(fh.read().strip() or "-1") + 1
    except (OSError, ValueError):
        gen = 0
    with open(path, "w", encoding="ascii") as fh:
        fh.write(str(gen))
    return gen


class InFlight:
    """Live mode (one host): what a worker that dies had in flight, counted as dropped.

    The live capture keeps no packets (it drops rather than grows); it only
    remembers, per shard, the sizes of the last ``keep`` batches sent and not
    acknowledged (the publisher acknowledges ``pk`` as in file mode). A
    restarted worker names the first batch it took (``resumed``): the batches
    after the last acknowledged one and before that one were taken by the dead
    worker with their events never published, or lost with its queue."""

    def __init__(self, n: int, keep: int):
        self.acked = [-1] * n
        self.sent: list[collections.deque] = [collections.deque(maxlen=keep) for _ in range(n)]

    def add(self, i: int, seq: int, packets: int) -> None:
        self.sent[i].append((seq, packets))

    def ack(self, i: int, seq: int) -> None:
        if seq > self.acked[i]:
            self.acked[i] = seq
        sent = self.sent[i]
        while sent and sent[0][0] <= seq:
            sent.popleft()

    def resumed(self, i: int, first: int) -> tuple[int, int]:
        """(batches, packets) lost between the last acknowledged batch and ``first``."""
        sent = self.sent[i]
        batches = packets = 0
        while sent and sent[0][0] < first:
            batches += 1
            packets += sent.popleft()[1]
        return batches, packets
