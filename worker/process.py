"""The worker process: PULL packet batches for one shard, PUSH event batches.

It creates its own ZeroMQ context after it starts. It binds its shard
endpoint (captures connect to it) and connects to the publisher. When every
capture has sent its end-of-stream marker, it flushes all open state, sends
the remaining events and its own ``eos`` to the publisher, reports its
counters to the coordinator and exits.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import time

import msgpack
import zmq

from shared import endpoints, transport
from shared.delivery import AckedSender
from shared.gctune import GC_THRESHOLD, tune_gc  # noqa: F401 (the bench scripts take them from here)
from shared.metrics import StatsReporter, report_period
from shared.replay import DUPLICATE, TAKE, Inbox, next_generation, stream_name
from shared.wire import WireError, decode_batch, encode_batch, encode_events
from worker.engine import Engine
from worker.processors import beat_config

log = logging.getLogger("packetbeat.worker")

_TICK_MS = 200
_FORCED_QUIET_MS = 1000

def run_worker(settings, index: int, run_dir: str, registry, live: bool = False) -> int:
    """``live``: time-outs follow the clock (when no batch arrives for
    ``_TICK_MS`` the engine's tables are expired at the current time), and
    events leave at least every ``cluster.batch_age_ms``, full batch or not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the coordinator drives shutdown through eos
    cluster = settings.cluster
    name = "worker-%d" % index
    counters: collections.Counter = collections.Counter()
    engine = Engine(settings.protocols, registry, counters, flows=settings.flows, procs=settings.procs,
                    max_connections=cluster.get("max_connections", 32_768),
                    max_pending_syns=cluster.get("max_pending_syns", 65_536),
                    max_buffered_bytes=cluster.get("max_buffered_bytes", 128 * 1024 * 1024),
                    max_flows=cluster.get("max_flows", 262_144), beat=beat_config(settings),
                    internal_networks=_internal_networks(settings),
                    local_ips=_local_ips() if live else ())
    tune_gc()
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, cluster["hwm"])
    transport.bind_shard(pull, settings, run_dir, index)    # + cluster.listen on a worker host
    if live:
        log.info("%s: listening", name)
    # The acknowledged stream's name: a live worker that is restarted starts a new
    # stream (its seq restarts at 0, and its events must not reuse the old ids).
    stream = "%s.%x" % (name, time.time_ns()) if live else name
    # file mode on one host: acknowledged packet batches (shared/replay.py)
    inbox = Inbox() if endpoints.replayed(cluster, live) else None
    # live mode on one host: the same acknowledgements only count what a dead worker had in flight
    live_acks = live and cluster.get("role", "all") == "all"
    hello_to: set = set()           # live, restarted: the captures still to be told where it resumes
    if inbox is not None or live_acks:
        generation = next_generation(os.path.join(run_dir, name + ".gen"))
        if live_acks:
            inbox = Inbox()
            hello_to = {endpoints.capture_name(cluster, i) for i in range(cluster["captures"])} if generation else set()
        else:
            stream = stream_name(name, generation)
        if generation:
            log.warning("%s: restarted (%d)%s", name, generation,
                        "" if live else "; asking the capture for the packets not acknowledged")
            counters["worker.restarted"] += 1
    elif not live and cluster.get("role") == "workers":
        # a worker host replaying a file: a restarted worker's events are a new stream (the publisher would
        # take its batches for duplicates of the dead one's); what the dead one held is lost and counted
        generation = next_generation(os.path.join(run_dir, name + ".gen"))
        stream = stream_name(name, generation)
        if generation:
            log.warning("%s: restarted (%d); across hosts the capture does not send again what the dead worker "
                        "held", name, generation)
            counters["worker.restarted"] += 1
    push = AckedSender(ctx, endpoints.publisher(run_dir), stream, window=cluster["hwm"], hwm=cluster["hwm"])
    coord = ctx.socket(zmq.PUSH)
    coord.connect(endpoints.coordinator(run_dir))
    # counters go to the coordinator every logging.metrics.period (a thread; see shared/metrics.py)
    reporter = StatsReporter(ctx, endpoints.coordinator(run_dir), name, counters, report_period(settings))
    seq = 0
    # a live worker host runs until its coordinator ends every stream (ALL_STREAMS)
    streams = CaptureStreams(ALL_STREAMS_ONLY if live and cluster.get("role") == "workers" else cluster["captures"])
    event_batch = cluster["event_batch"]
    age = cluster["batch_age_ms"] / 1000.0
    last_ship = time.monotonic()
    parent = os.getppid()
    since_pk = 0             # packet batches taken since the last pk went out
    pk_every = max(1, cluster["hwm"] // 2)

    def ship(final: bool = False) -> None:
        nonlocal seq, since_pk
        events = engine.events
        if inbox is not None:
            # a segment: every event so far, its last batch stamped with the packets it covers
            if not (events and (final or len(events) >= event_batch) or since_pk >= pk_every):
                return
            pk = inbox.segment_pk()
            big = 8 * event_batch
            while True:
                chunk = events[:big]
                del events[:big]
                frames = encode_events(stream, seq, chunk, counters, log, settings, enriched=engine.enriched)
                if not events:
                    frames[0] = _with_pk(frames[0], pk, index)
                push.send(seq, frames)
                counters["worker.events"] += len(chunk)
                seq += 1
                if not events:
                    break
            since_pk = 0
            return
        while len(events) >= event_batch or (final and events):
            chunk = events[:event_batch]
            del events[:event_batch]
            push.send(seq, encode_events(stream, seq, chunk, counters, log, settings,   # JSON text: shared/wire.py
                                         enriched=engine.enriched))
            counters["worker.events"] += len(chunk)
            seq += 1

    if inbox is not None and generation and not live:
        # the capture reads its acknowledgements from the publisher; this says who serves the shard now
        for i in range(cluster["captures"]):      # each capture of the file resends what it has for this shard
            _tell_capture(run_dir, cluster, encode_batch("ack", stream, -1, [], shard=index, hello=generation),
                          endpoints.capture_name(cluster, i))
    try:
        # after an end-of-stream sent by the coordinator for a capture (not in the capture's own
        # pipe), packets that capture queued before it went may still be waiting: read them too,
        # until the socket has been quiet for a second
        while streams.open or (streams.forced and pull.poll(_FORCED_QUIET_MS)):
            if live and not pull.poll(_TICK_MS):
                if os.getppid() != parent:            # the coordinator died without a drain
                    log.error("%s: the coordinator is gone; stopping", name)
                    return 1
                _tick(engine, time.time_ns())
                ship(final=True)          # live: nothing waits for a full batch while the link is quiet
                last_ship = time.monotonic()
                continue
            frames = pull.recv_multipart()
            try:
                header, body = decode_batch(frames)
            except WireError as exc:
                counters["worker.bad_frames"] += 1
                log.error("%s: dropped a bad frame: %s", name, exc)
                continue
            kind = header["kind"]
            if inbox is not None and "a" in header:
                got = inbox.offer(header["from"], header["seq"], header["a"])
                if got != TAKE:
                    counters["worker.replay_duplicates" if got == DUPLICATE else "worker.replay_gaps"] += 1
                    continue
                since_pk += 1
            elif live_acks and kind == "pkts":
                sender = header.get("from")
                inbox.last[sender] = header["seq"]
                since_pk += 1
                if sender in hello_to:      # the first batch a restarted live worker takes from it
                    hello_to.discard(sender)
                    _tell_capture(run_dir, cluster, encode_batch("ack", stream, header["seq"], [], shard=index,
                                                                      hello=generation), sender)
            if kind == "pkts":
                engine.handle(body)
                if live and time.monotonic() - last_ship > age:
                    ship(final=True)
                    last_ship = time.monotonic()
                else:
                    ship()
            elif kind == "procs":                 # process attribution from the capture
                engine.handle_procs(body)
            elif kind == "eos":
                if inbox is not None and "a" in header:
                    inbox.end(header["from"], header["seq"])
                if not streams.end(header.get("from"), bool(header.get("forced"))):
                    counters["worker.duplicate_eos"] += 1
                    continue
                if isinstance(header.get("packets"), int):    # what that capture sent this shard (a capture host's)
                    counters["worker.capture_sent_packets"] += header["packets"]
                if not streams.open:
                    # the coordinator's safety net then leaves this worker alone, however long
                    # the rest of the drain (analysis, publisher acknowledgements) takes
                    reporter.send({"streams_ended": 1})
        engine.finish()
        ship(final=True)
        if inbox is not None and not live:   # the capture's end-of-stream is acknowledged with the worker's
            push.send(seq, encode_batch("eos", stream, seq, [], pk=dict(inbox.last), shard=index))
        else:
            push.send(seq, encode_batch("eos", stream, seq, []))
        push.flush()                      # every batch acknowledged by the publisher
        if inbox is not None and not live:
            # done: the capture stops waiting for this shard (its end-of-stream may have been ended
            # by the coordinator instead, and never acknowledged)
            for i in range(cluster["captures"]):
                capture = endpoints.capture_name(cluster, i)
                _tell_capture(run_dir, cluster, encode_batch("ack", stream, inbox.last.get(capture, -1), [],
                                                                  shard=index, bye=1), capture)
    finally:
        reporter.stop()                   # the counters not reported yet
        push.close()
        for s in (pull, coord):
            s.close(linger=-1)
        transport.stop_auth(ctx)
        ctx.term()
    log.debug("%s done: %s", name, dict(counters))
    return 0


TELL_LINGER_MS = 5000


def _tell_capture(run_dir: str, cluster, frames: list, capture: str = "") -> None:
    """One message to a capture's acknowledgement endpoint (file mode: the first capture
    unless named), delivered when this returns (or given up after TELL_LINGER_MS).

    The socket has a ZeroMQ context of its own, ended here: a socket's linger is
    waited for by ``zmq_ctx_term``, not by its close. On the worker's context the
    ``bye`` (sent just before the worker closes its shard socket) was still being
    connected when a capture that had every acknowledgement saw that close and
    exited; the worker's ``ctx.term()`` then waited the whole linger for a peer that
    was gone (one run in a few: the run's wall clock 5 s longer, CPU unchanged)."""
    own = zmq.Context(io_threads=1)
    try:
        sock = own.socket(zmq.PUSH)
        sock.connect(endpoints.capture_acks(run_dir, capture or endpoints.capture_name(cluster, 0)))
        sock.send_multipart(frames)
        sock.close(linger=TELL_LINGER_MS)
    finally:
        own.term()


def _internal_networks(settings) -> list:
    """packetbeat.interfaces.internal_networks (of the first interface; Packetbeat's default
    ``private``): the perimeter for network.direction (worker/ecs.py)."""
    ifaces = settings.interfaces or [{}]
    nets = ifaces[0].get("internal_networks")
    return list(nets) if nets is not None else ["private"]


def _local_ips() -> list[str]:
    """This host's addresses (live mode: Packetbeat's host-based network.direction)."""
    import socket

    import psutil
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.append(a.address.split("%", 1)[0])
    return out


def _with_pk(header: bytes, pk: dict, shard: int) -> bytes:
    """An encoded batch header with ``pk`` and ``shard`` added (shared/replay.py)."""
    h = msgpack.unpackb(header, raw=False)
    h["pk"] = pk
    h["shard"] = shard
    return msgpack.packb(h, use_bin_type=True)


ALL_STREAMS = "*"              # the end-of-stream that ends every capture's stream
ALL_STREAMS_ONLY = 1 << 30     # so many captures: only ALL_STREAMS ends them


class CaptureStreams:
    """The captures' streams a worker still waits for: one end-of-stream per
    capture name counts. The coordinator may end a stream that already ended
    (a capture that died while draining, or the live drain's safety net), and
    that must not end another capture's stream early."""

    def __init__(self, captures: int):
        self.open = captures
        self.forced = False       # an end-of-stream came from the coordinator, not the capture
        self._ended: set = set()

    def end(self, sender, forced: bool = False) -> bool:
        """False when ``sender``'s stream had already ended."""
        if sender == ALL_STREAMS:          # a worker host's coordinator stopping: no capture is local
            self.open = 0
            return True
        self.forced = self.forced or forced
        if sender in self._ended:
            return False
        self._ended.add(sender)
        self.open -= 1
        return True


def _tick(engine, now: int) -> None:
    """Live mode, idle: advance the engine's clock to ``now`` (wall clock, ns)
    and expire what timed out, as a batch of packets stamped ``now`` would."""
    if now <= engine.last_ts:
        return
    engine.last_ts = now
    engine.tcp.expire(now)
    engine.udp.expire(now)
    if engine.icmp is not None:
        engine._guard("expire", engine.icmp.expire, now)
    flows = getattr(engine, "flows", None)
    if flows is not None:
        flows.tick(now)
