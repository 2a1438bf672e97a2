"""The capture process (file mode): read, decode to the 5-tuple, shard, batch, PUSH.

One PUSH socket per worker (one PUSH to many PULLs would round-robin and break
flow ownership). File mode never drops: sends block while a worker is behind.
IPv4/IPv6 fragments are reassembled here, before hashing, so that every
fragment of a datagram reaches the worker that owns its flow. TCP packets
with no payload and no SYN/FIN/RST carry nothing for the analysers and are
skipped (counted), unless flows are on (flows count every packet). At the
end of the file every worker gets an ``eos``.

SIGTERM only sets a flag, read every 1024 packets: an exception raised from
the handler could land inside a multipart send (its first frame queued, the
next message's frames then appended to it: the worker drops the merged frame
as malformed, and with it the ``eos``), or between a batch sent and cleared
(sent twice).

After its end-of-streams the capture keeps its sockets open until every
worker has closed its end (``PeerWatch``), instead of closing them with
``LINGER=-1`` and exiting. Linger only waits until the bytes are in the
socket buffer, and libzmq (4.3.5 here) on the receiving side drops what is
still in that buffer when the sender hangs up while the receiver's queue is
at its HWM (a worker behind): the hang-up wakes the throttled connection,
which is then marked broken, and closed once its queue drains, unread
(``stream_engine_base_t::in_event_internal``; libzmq issues #1922, #4660).
That lost the last batch(es) and the ``eos`` of a slow worker, which then
waited for ever.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import signal
import time
from struct import unpack_from
from zlib import crc32

import zmq

from coordinator.capture.filesplit import FAST_CLASS, SKIP, fast_class
from coordinator.capture.pcapfile import CaptureFileError, open_capture
from shared import endpoints, transport
from shared.addr import ip_text
from shared.decode import FRAGMENT, decode
from shared.gctune import tune_gc
from shared.ipfrag import Reassembler
from shared.metrics import StatsReporter, report_period
from shared.replay import ReplayWindow, cut_connections
from shared.wire import WireError, decode_batch, encode_batch

log = logging.getLogger("packetbeat.capture")

_SYN_FIN_RST = 0x07


def _monitor_event(mon) -> int:
    """The event number of the next message of a socket monitor: pyzmq's
    ``zmq.utils.monitor.recv_monitor_message(mon)["event"]`` without importing
    that module, which imports zmq.asyncio and asyncio (~18 ms of start-up)."""
    msg = mon.recv_multipart()
    if len(msg) != 2 or len(msg[0]) != 6:
        raise RuntimeError("Invalid event message format: %r" % (msg,))
    return unpack_from("=h", msg[0])[0]


class PeerWatch:
    """Whether the peers of some connecting sockets (the workers behind the
    capture's PUSH sockets) have closed their end, from the sockets' monitor
    events. Created before anything is sent, so that no event is missed.

    A socket has one monitor: the ``remote`` ones (tcp:// shards of a capture
    host) are monitored by shared/transport.py's ConnectionWatch, and
    ``remote_closed(i)`` says whether shard ``i`` was up and its peer has
    closed its end since."""

    def __init__(self, socks, remote=(), remote_closed=None):
        self.socks = socks
        self.remote = frozenset(remote)
        self.remote_closed = remote_closed
        self.mons = {i: s.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
                     for i, s in enumerate(socks) if i not in self.remote}
        self.state = [None] * len(socks)      # None: not connected yet; True: connected; False: closed by the peer

    def _read(self, i: int) -> None:
        if i in self.remote:
            if self.remote_closed(i):
                self.state[i] = False
            return
        mon = self.mons[i]
        while mon.poll(0):
            self.state[i] = _monitor_event(mon) == zmq.EVENT_CONNECTED

    def wait_closed(self, timeout_s: float | None = None, alive=None, local_only: bool = False) -> list[int]:
        """Wait until every peer has connected and then closed its end, at most
        ``timeout_s`` seconds (None: no limit) and while ``alive()`` holds;
        returns the indices of the peers still open. ``local_only``: not the
        remote ones."""
        poller = zmq.Poller()
        for m in self.mons.values():
            poller.register(m, zmq.POLLIN)
        wanted = [i for i in range(len(self.socks)) if not (local_only and i in self.remote)]
        step = 0.2 if self.remote and not local_only else 1.0      # remote states are polled
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            for i in wanted:
                self._read(i)
            open_ = [i for i in wanted if self.state[i] is not False]
            if not open_ or (alive is not None and not alive()):
                return open_
            left = step if deadline is None else min(step, deadline - time.monotonic())
            if left <= 0:
                return open_
            if self.mons:
                poller.poll(int(left * 1000))
            else:
                time.sleep(left)

    def close(self) -> None:
        for i, m in self.mons.items():
            self.socks[i].disable_monitor()
            m.close(linger=0)


class Sharder:
    """Decode + shard + batch, free of I/O (``send(i, records)`` does the I/O)."""

    def __init__(self, n: int, send, batch_packets: int = 128, counters=None, keep_empty_tcp: bool = False,
                 procs=None, send_procs=None, stop=None):
        self.n = n
        self.stop = stop                        # {"now": bool}: feed() returns early once it is set
        self.keep_empty_tcp = keep_empty_tcp    # flows count every packet (packetbeat.flows)
        # process attribution (shared/procs.py ProcTagger): at the first packet of a flow, records
        # [transport, ip, port, process] go to the owning worker before the batch holding the packet
        self.procs = procs
        self.send_procs = send_procs
        self.send = send
        self.batch_packets = batch_packets
        self.batches: list[list] = [[] for _ in range(n)]
        self.counters = counters if counters is not None else collections.Counter()
        if procs is not None:
            procs.counters = self.counters        # procs.lookups/misses/retried/lost in the capture's stats
        self.reasm = Reassembler()

    def feed(self, records, ts_shift: int = 0) -> int:
        """Shard every ``(ts, linktype, raw)``; returns the last timestamp seen
        (early, every record taken so far batched, once ``stop["now"]`` is set)."""
        n = self.n
        stop = self.stop
        batches = self.batches
        limit = self.batch_packets
        send = self.send
        counters = self.counters
        skipped = undecodable = 0
        skip_empty = not self.keep_empty_tcp
        procs = self.procs
        ts = 0
        last_age = time.monotonic()
        count = counted = 0
        # compiled build, no process attribution (it needs the decoded tuple): the common
        # Ethernet/IPv4/TCP|UDP frame is classified from fixed offsets, without decode()
        fast = FAST_CLASS and procs is None
        for ts, linktype, raw in records:
            if ts_shift:
                ts += ts_shift
            shard = fast_class(raw, n, skip_empty) if fast and linktype == 1 and type(raw) is bytes else -1
            if shard == SKIP:
                skipped += 1
                continue
            if shard < 0:
                dec = decode(linktype, raw)
                if dec is None:
                    undecodable += 1
                    continue
                t = dec[0]
                if t == FRAGMENT:
                    raw = self.reasm.add(linktype, raw, dec[10], ts)
                    if raw is None:
                        continue
                    ts = self.reasm.completed_ts
                    dec = decode(linktype, raw)
                    if dec is None or dec[0] == FRAGMENT:
                        undecodable += 1
                        continue
                    t = dec[0]
                if t == 6 and dec[8] == dec[9] and not dec[5] & _SYN_FIN_RST and skip_empty:
                    skipped += 1
                    continue
                if n == 1:
                    shard = 0
                else:
                    a = dec[1] + dec[3].to_bytes(2, "big")
                    b = dec[2] + dec[4].to_bytes(2, "big")
                    shard = (crc32(a + b, t) if a < b else crc32(b + a, t)) % n
                if procs is not None and procs.opens_flow(dec):
                    found = procs.records(dec, ip_text, shard)
                    if found:
                        self.send_procs(shard, found)
            batch = batches[shard]
            batch.append((ts, linktype, raw))
            if len(batch) >= limit:
                send(shard, batch)
                batches[shard] = []
            count += 1
            if not count & 1023:
                # counted as they go (periodic metrics; a big file is one feed)
                counters["capture.packets"] += count - counted
                counters["capture.skipped_empty_tcp"] += skipped
                counters["capture.undecodable"] += undecodable
                counted, skipped, undecodable = count, 0, 0
                self.reasm.expire(ts)
                now = time.monotonic()
                if now - last_age > 0.02:
                    self.flush()
                    last_age = now
                if stop is not None and stop["now"]:
                    break
        counters["capture.packets"] += count - counted
        counters["capture.skipped_empty_tcp"] += skipped
        counters["capture.undecodable"] += undecodable
        return ts

    def flush(self) -> None:
        if self.procs is not None and self.procs.pending:
            for i, found in self.procs.retry():
                self.send_procs(i, found)
        for i, batch in enumerate(self.batches):
            if batch:
                self.send(i, batch)
                self.batches[i] = []


LOOP_GAP_NS = 31_000_000_000


def run_capture(settings, index: int, run_dir: str, path: str, loops: int = 1) -> int:
    stop = {"now": False}

    def on_term(signum, frame):
        stop["now"] = True             # no exception from here: see the module's docstring

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cluster = settings.cluster
    n = cluster["workers"]
    name = endpoints.capture_name(cluster, index)
    tune_gc()                          # a tuple per packet: shared/gctune.py
    counters: collections.Counter = collections.Counter()
    ctx = zmq.Context()
    socks = []
    for i in range(n):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, cluster["hwm"])
        socks.append(s)
    remote = transport.remote_shards(cluster, run_dir)
    eos_at = [None]        # when the end-of-streams went out: a remote shard closed before then died (restarted)
    watch = PeerWatch(socks, remote, lambda i: transport.remote_closed(ctx, i, eos_at[0]))   # before connecting
    for i, s in enumerate(socks):
        transport.connect_shard(s, settings, run_dir, i, name, counters)   # remote shards: curve, watched
    coord = ctx.socket(zmq.PUSH)
    coord.connect(endpoints.coordinator(run_dir))
    # counters go to the coordinator every logging.metrics.period (a thread; see shared/metrics.py)
    reporter = StatsReporter(ctx, endpoints.coordinator(run_dir), name, counters, report_period(settings))
    seqs = [0] * n
    sent = [0] * n                # packets per shard: told in the end-of-stream (a worker host counts its loss)
    parent = os.getppid()
    # file mode on one host: every batch is kept until the publisher holds its events (shared/replay.py)
    acks = None
    if endpoints.replayed(cluster, False):
        acks = Acks(ctx, run_dir, name, n, cluster["hwm"], socks, counters, lambda: os.getppid() == parent)

    def send(i: int, records: list) -> None:
        if acks is not None:
            acks.send(i, seqs[i], "pkts", records)
        else:
            socks[i].send_multipart(encode_batch("pkts", name, seqs[i], records))
            sent[i] += len(records)
        seqs[i] += 1
        counters["capture.batches"] += 1

    split = None
    if cluster["captures"] > 1:            # several captures read the file: each forwards its shards' flows
        from coordinator.capture.filesplit import ShareFilter
        split = ShareFilter(index, cluster["captures"], n, counters)
    sharder = Sharder(n, send if split is None else split.send(send), cluster["batch_packets"], counters,
                      keep_empty_tcp=settings.flows is not None, stop=stop)
    rc = 0
    error = ""
    shift = 0
    loop = 0
    while (loops == 0 or loop < loops) and not stop["now"]:
        loop += 1
        first_ts = None
        try:
            reader = open_capture(path)
        except (CaptureFileError, OSError) as exc:
            error = str(exc)
            rc = 2
            break
        try:
            it = iter(reader)
            head = next(it, None)
            if head is None:
                break
            first_ts = head[0]
            last = sharder.feed(_chain(head, it) if split is None else split.records(_chain(head, it)), shift)
            if split is not None and split.last_ts is not None:
                last = split.last_ts + shift        # the file's last record, whichever capture owns it
        except CaptureFileError as exc:
            error = str(exc)
            rc = 2
            break
        finally:
            reader.close()
        # the next loop starts 31 s after this one ended: time only moves forward, and past the
        # TCP layer's memory of closed connections (30 s, worker/tcp.py), so a replayed
        # connection is a new connection, not a retransmission of the one it repeats
        if first_ts is not None:
            shift = last + LOOP_GAP_NS - first_ts
    if stop["now"]:
        log.info("%s: stopping on request", name)
    sharder.flush()
    counters.update({"capture.reasm." + k: v for k, v in sharder.reasm.counters.items()})
    eos_at[0] = time.monotonic()
    for i, s in enumerate(socks):
        if acks is not None:
            acks.send(i, seqs[i], "eos", [])
        else:
            s.send_multipart(encode_batch("eos", name, seqs[i], [], packets=sent[i]))
    if error:
        log.error("%s", error)
    if acks is not None:
        # eos_sent: the coordinator's drain safety net counts from here (see coordinator/supervisor.py)
        reporter.send({"eos_sent": 1})
        # every shard's last events are with the publisher (a worker restarted meanwhile gets its replay)
        if not acks.wait_all():
            log.error("%s: the coordinator is gone; stopping before every worker finished", name)
        said = acks.report()
        if said:
            log.error("%s", said)
            error = "; ".join(x for x in (error, said) if x)
    # eos_sent: the coordinator's drain safety net counts from here (see coordinator/supervisor.py)
    reporter.stop(dict({"error": error} if error else {}, eos_sent=1))
    # the workers read everything, end-of-stream included, then close: only then close (module docstring);
    # remote shards too (a worker host replaying: its workers close after their end-of-stream; while one
    # is not up, shared/transport.py's watch says why every few seconds)
    told = []
    eos_again = {i: eos_at[0] for i in remote}

    def alive() -> bool:
        if acks is not None:
            acks.read(0)                  # a worker restarted now: see Acks._replay
        for i in remote:
            # a worker host restarted this shard's worker after the end-of-stream went out (perhaps lost
            # with the dead one): it gets the end-of-stream again (one more is counted as a duplicate)
            up = transport.remote_up_at(ctx, i)
            if up is not None and up > eos_again[i]:
                eos_again[i] = up
                log.warning("%s: shard %d came back after its end-of-stream was sent: sending it again", name, i)
                socks[i].send_multipart(encode_batch("eos", name, seqs[i], [], packets=sent[i]))
        if stop["now"] and not told and any(not transport.remote_up(ctx, i) and not transport.remote_closed(ctx, i)
                                            for i in remote):
            told.append(True)
            log.warning("%s: stop requested while a remote shard is not up: still waiting to deliver the end of "
                        "stream (a second stop request ends the run at once)", name)
        return os.getppid() == parent
    left = watch.wait_closed(alive=alive)
    if left:
        log.error("%s: the coordinator is gone; stopping before %s finished reading",
                  name, ", ".join("worker-%d" % i for i in left))
    watch.close()
    if acks is not None:
        acks.close()
    for s in socks + [coord]:
        s.close(linger=0)
    ctx.term()
    return rc


class Acks:
    """The capture's side of acknowledged delivery (shared/replay.py): sends
    batches through a :class:`ReplayWindow`, reads the publisher's acks and
    the hellos of restarted workers (then sends them again what was not
    acknowledged) from its PULL ``endpoints.capture_acks``."""

    def __init__(self, ctx, run_dir: str, name: str, n: int, window: int, socks, counters, alive):
        self.name = name
        self.socks = socks
        self.counters = counters
        self.alive = alive
        self.win = ReplayWindow(n, window)
        self.eos_seq = [None] * n                  # shard -> the seq of its end-of-stream, once sent
        self.replayed = collections.Counter()      # shard -> packets sent again
        self.restarts = collections.Counter()      # shard -> restarted workers that said hello
        self.cut = collections.Counter()           # shard -> connections resumed mid-stream (cut_connections)
        self.cut_trans = collections.Counter()     # shard -> transactions cut (the same)
        self.sock = ctx.socket(zmq.PULL)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.bind(endpoints.capture_acks(run_dir, name))

    def _frames(self, i: int, seq: int, kind: str, records: list) -> list[bytes]:
        return encode_batch(kind, self.name, seq, records, a=self.win.acked[i])

    def send(self, i: int, seq: int, kind: str, records: list) -> None:
        self.read(0)
        while self.win.full(i):
            if not self.read(1000) and not self.alive():
                log.error("%s: the coordinator is gone; stopping", self.name)
                os._exit(1)                    # nobody to deliver to: no socket lingering
        self.win.add(i, seq, kind, records)
        if kind == "eos":
            self.eos_seq[i] = seq
        self.socks[i].send_multipart(self._frames(i, seq, kind, records))

    def read(self, timeout_ms: int) -> bool:
        """Read the acks waiting (up to ``timeout_ms`` for the first); True if any came."""
        got = False
        while self.sock.poll(timeout_ms):
            timeout_ms = 0
            got = True
            try:
                header, _ = decode_batch(self.sock.recv_multipart())
                i = int(header["shard"])
                if not 0 <= i < len(self.socks):
                    raise WireError("no shard %r" % i)
            except (WireError, KeyError, TypeError, ValueError) as exc:
                self.counters["capture.bad_acks"] += 1
                log.error("%s: dropped a bad ack: %s", self.name, exc)
                continue
            if header.get("hello"):
                self._replay(i, header["from"])
            elif header.get("bye"):
                self._finished(i, header["seq"], header["from"])
            else:
                self.win.ack(i, header["seq"], header["from"])
        return got

    def _replay(self, i: int, stream: str) -> None:
        """Shard ``i``'s worker was restarted: it gets again what was not acknowledged."""
        batches = self.win.replay(i, stream)
        if self.eos_seq[i] is not None and self.win.acked[i] >= self.eos_seq[i]:
            # it died after its last events were published: it only needs to be told the stream ended
            log.warning("%s: worker-%d restarted (%s) after it finished: ending its stream", self.name, i, stream)
            self.socks[i].send_multipart(encode_batch("eos", self.name, self.eos_seq[i], []))
            return
        packets = sum(len(r) for _, kind, r in batches if kind == "pkts")
        cut, cut_trans = cut_connections(batches)
        log.warning("%s: worker-%d restarted (%s): sending it again %d packets (%d batches) not acknowledged; "
                    "%d connections open in the dead worker resume mid-stream, %d transactions cut", self.name, i,
                    stream, packets, len(batches), cut, cut_trans)
        self.restarts[i] += 1
        self.replayed[i] += packets
        self.cut[i] += cut
        self.cut_trans[i] += cut_trans
        self.counters["capture.cut_connections"] += cut
        self.counters["capture.cut_transactions"] += cut_trans
        self.counters["capture.replayed_packets"] += packets
        self.counters["capture.replayed_batches"] += len(batches)
        for seq, kind, records in batches:
            self.socks[i].send_multipart(self._frames(i, seq, kind, records))

    def _finished(self, i: int, seq: int, stream: str) -> None:
        """Shard ``i``'s worker has published everything and exits: what it never took
        (its end-of-stream came from the coordinator instead) is not waited for."""
        self.win.ack(i, seq, stream)
        left = self.win.replay(i, stream)
        if left:
            packets = sum(len(r) for _, kind, r in left if kind == "pkts")
            log.error("%s: worker-%d finished without %d packets (%d batches) sent to it", self.name, i,
                      packets, len(left))
            self.counters["capture.not_taken_packets"] += packets
            self.win.ack(i, left[-1][0])

    def wait_all(self) -> bool:
        """Wait until every batch, end-of-stream included, is acknowledged; False if the coordinator went."""
        while not self.win.done():
            if not self.read(1000) and not self.alive():
                return False
        self.read(0)
        return True

    def report(self) -> str:
        """One error line for the run's summary when a worker had to be replayed ("" if none)."""
        if not self.restarts:
            return ""
        self.counters["capture.late_acks"] += self.win.late_acks
        parts = ["worker-%d restarted %d time(s), %d packets sent again, %d transactions cut on %d connections" % (
                 i, self.restarts[i], self.replayed[i], self.cut_trans[i], self.cut[i]) for i in sorted(self.restarts)]
        return ("%s: %s (open in the dead worker, the connections resume mid-stream; a cut transaction's request "
                "is lost, its response published alone with a note)%s" % (self.name, "; ".join(parts),
                                                ("; %d batches of the dead worker were published after the "
                                                 "replay began: their transactions may appear twice"
                                                 % self.win.late_acks) if self.win.late_acks else ""))

    def close(self) -> None:
        self.sock.close(linger=0)


def _chain(head, it):
    """``head`` then the rest of ``it`` (C-level: no Python frame per record)."""
    return itertools.chain((head,), it)
