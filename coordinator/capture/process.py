"""The capture process (file mode): read, decode to the 5-tuple, shard, batch, PUSH.

One PUSH socket per worker (one PUSH to many PULLs would round-robin and break
flow ownership). File mode never drops: sends block while a worker is behind.
IPv4/IPv6 fragments are reassembled here, before hashing, so that every
fragment of a datagram reaches the worker that owns its flow. TCP packets
with no payload and no SYN/FIN/RST carry nothing for the analysers and are
skipped (counted), unless flows are on (flows count every packet). At the
end of the file every worker gets an ``eos``.
"""
from __future__ import annotations

import collections
import logging
import signal
import time
from zlib import crc32

import zmq

from coordinator.capture.pcapfile import CaptureFileError, open_capture
from shared import endpoints, transport
from shared.addr import ip_text
from shared.decode import FRAGMENT, decode
from shared.ipfrag import Reassembler
from shared.metrics import StatsReporter, report_period
from shared.wire import encode_batch

log = logging.getLogger("packetbeat.capture")

_SYN_FIN_RST = 0x07


class Sharder:
    """Decode + shard + batch, free of I/O (``send(i, records)`` does the I/O)."""

    def __init__(self, n: int, send, batch_packets: int = 128, counters=None, keep_empty_tcp: bool = False,
                 procs=None, send_procs=None):
        self.n = n
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
        """Shard every ``(ts, linktype, raw)``; returns the last timestamp seen."""
        n = self.n
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
        for ts, linktype, raw in records:
            if ts_shift:
                ts += ts_shift
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


def run_capture(settings, index: int, run_dir: str, path: str, loops: int = 1) -> int:
    stop = {"now": False}

    def on_term(signum, frame):
        stop["now"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cluster = settings.cluster
    n = cluster["workers"]
    name = endpoints.capture_name(cluster, index)
    counters: collections.Counter = collections.Counter()
    ctx = zmq.Context()
    socks = []
    for i in range(n):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, cluster["hwm"])
        transport.connect_shard(s, settings, run_dir, i, name, counters)   # remote shards: curve, watched
        socks.append(s)
    coord = ctx.socket(zmq.PUSH)
    coord.connect(endpoints.coordinator(run_dir))
    # counters go to the coordinator every logging.metrics.period (a thread; see shared/metrics.py)
    reporter = StatsReporter(ctx, endpoints.coordinator(run_dir), name, counters, report_period(settings))
    seqs = [0] * n

    def send(i: int, records: list) -> None:
        socks[i].send_multipart(encode_batch("pkts", name, seqs[i], records))
        seqs[i] += 1
        counters["capture.batches"] += 1

    sharder = Sharder(n, send, cluster["batch_packets"], counters, keep_empty_tcp=settings.flows is not None)
    rc = 0
    error = ""
    shift = 0
    loop = 0
    try:
        while loops == 0 or loop < loops:
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
                last = sharder.feed(_chain(head, it), shift)
            except CaptureFileError as exc:
                error = str(exc)
                rc = 2
                break
            finally:
                reader.close()
            # the next loop starts 1 s after this one ended, so time only moves forward
            if first_ts is not None:
                shift = last + 1_000_000_000 - first_ts
    except KeyboardInterrupt:
        log.info("%s: stopping on request", name)
    sharder.flush()
    counters.update({"capture.reasm." + k: v for k, v in sharder.reasm.counters.items()})
    for i, s in enumerate(socks):
        s.send_multipart(encode_batch("eos", name, seqs[i], []))
    if error:
        log.error("%s", error)
    reporter.stop({"error": error} if error else None)
    transport.wait_remote_shards(ctx, name)     # role capture: says why while a remote shard is not up
    for s in socks + [coord]:
        s.close(linger=-1)
    ctx.term()
    return rc


def _chain(head, it):
    yield head
    yield from it
