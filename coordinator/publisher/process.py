"""The publisher process: PULL event batches from every worker, enrich, batch, output.

It binds the single ROUTER that all workers' DEALERs send to and
acknowledges every batch (``shared.delivery``). Events are enriched with
agent metadata, tags and fields, grouped by the chunker (count, bytes or age)
and written by the configured output. When every worker has sent its
``eos`` it flushes the output and exits. With ``-N`` (publish disabled)
events are counted and discarded.

With ``queue.disk`` configured, batches are acknowledged only once they are
in the disk spool and the output is fed from the spool (``reliable.py``), so
a publisher killed at any moment loses nothing: the restarted one resumes
from the spool and the workers resend what was not acknowledged.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import time

import zmq

from coordinator.publisher.chunker import Chunker
from coordinator.publisher.enrich import Enricher
from coordinator.publisher.outputs import make_output
from shared import endpoints
from shared.delivery import CaptureAcks, ack_frames
from shared.metrics import StatsReporter, report_period
from shared.version import VERSION
from shared.wire import WireError, decode_batch

log = logging.getLogger("packetbeat.publisher")
# queue.disk: once every worker is done, the publisher stops when the output has
# taken nothing for this long (the events stay in the spool for the next start)
STALL_SECONDS = 5.0
COUNT_WAITING_UP_TO = 256 << 20   # spool bytes read through at the end to count the waiting events
EXIT_FATAL = 2          # the supervisor does not restart a child that exits with it


def run_publisher(settings, run_dir: str, publish: bool = True) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cluster = settings.cluster
    counters: collections.Counter = collections.Counter()
    hostname = socket.gethostname()
    enrich = Enricher(beat_name=settings.name or hostname, hostname=hostname, version=VERSION,
                      tags=settings.tags, fields=settings.fields,
                      fields_under_root=settings.fields_under_root,
                      data_path=(settings.path or {}).get("data", ""),
                      # with processors the workers enrich too: the same ids (shared/config.py _processors)
                      agent_id=(getattr(settings, "agent", None) or {}).get("id"),
                      ephemeral_id=(getattr(settings, "agent", None) or {}).get("ephemeral_id"))
    out_cfg = next(iter(settings.output.values()))
    output = make_output(settings.output) if publish else None
    if output is not None and "elasticsearch" in settings.output:   # alias mode writes to the alias
        from coordinator.publisher.elasticsearch import IndexFormat
        from coordinator.setup import write_index
        target = write_index(output.cfg.index, (settings.raw or {}).get("setup"))
        if target != output.cfg.index:
            log.info("writing to the rollover alias %s (setup.ilm.rollover_alias)", target)
            output.index = IndexFormat(target)
    chunker = Chunker(chunk_size=int(out_cfg.get("bulk_max_size") or 2048),
                      max_chunk_bytes=10 * 1024 * 1024, flush_after_seconds=1.0)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.ROUTER)
    pull.setsockopt(zmq.RCVHWM, cluster["hwm"])
    pull.setsockopt(zmq.SNDHWM, 0)
    pull.setsockopt(zmq.ROUTER_HANDOVER, 1)     # a reconnecting worker takes its name over
    pull.bind(endpoints.publisher(run_dir))
    coord = ctx.socket(zmq.PUSH)
    coord.connect(endpoints.coordinator(run_dir))
    cacks = CaptureAcks(ctx, run_dir)          # file mode: packet batches acknowledged to the capture
    # counters go to the coordinator every logging.metrics.period (a thread; see shared/metrics.py)
    reporter = StatsReporter(ctx, endpoints.coordinator(run_dir), "publisher", counters, report_period(settings))
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    eos_needed = cluster["workers"]
    # outputs that write the canonical lines as they are never look at the event dicts
    codec = getattr(output, "codec", None)
    lines_only = output is None or (codec is not None and codec.reuses_lines)
    disk = ((settings.raw or {}).get("queue") or {}).get("disk")
    if disk and output is not None:
        try:
            return _run_spooled(settings, disk, output, enrich, counters, pull, coord, ctx, reporter, cacks)
        finally:
            output.close()

    def write(batch) -> None:
        if not batch:
            return
        if output is None:
            counters["publisher.discarded"] += len(batch)
            return
        results = output.publish_batch(batch)
        failed = [r for r in results if not r.ok]
        counters["publisher.published"] += len(batch) - len(failed)
        if failed:
            counters["publisher.failed"] += len(failed)
            log.error("output failed for %d events: %s", len(failed), failed[0].error)

    rc = 0
    last_seq: dict[str, int] = {}
    try:
        while eos_needed:
            if not poller.poll(250):
                write(chunker.poll(time.monotonic()))
                continue
            got = _receive(pull, counters)
            if got is None:
                continue
            frames, header, body = got
            sender, seq = header["from"], header["seq"]
            last = last_seq.get(sender, -1)
            if seq != last + 1:           # a resent duplicate, or after a gap: wait for the resend
                counters["publisher.duplicates" if seq <= last else "publisher.gaps"] += 1
                pull.send_multipart(ack_frames(frames[0], last))
                if seq <= last:
                    cacks.ack(header)     # its packets were acknowledged already, perhaps not received
                continue
            last_seq[sender] = seq
            if header["kind"] == "events":
                now = time.monotonic()
                counters["publisher.events"] += len(body)
                flags = enrich.clean_positions(header, len(body)) if header.get("enc") == "json" else None
                for i, rec in enumerate(body):
                    if type(rec) is bytes:            # the worker's JSON text (shared.wire.encode_events)
                        try:
                            line = enrich.enrich_line(rec, flags[i] if flags is not None else None)
                            ev = None if lines_only else _loads(line)
                        except ValueError as e:
                            counters["publisher.failed"] += 1
                            log.error("event from %s:%d dropped: %s", sender, seq, e)
                            continue
                        batch = chunker.feed(ev, now, line)
                    elif isinstance(rec, dict):
                        batch = chunker.feed(enrich(rec), now)
                    else:
                        counters["publisher.failed"] += 1
                        log.error("event from %s:%d dropped: not an event (%s)", sender, seq, type(rec).__name__)
                        continue
                    if batch:
                        write(batch)
                write(chunker.poll(now))
            elif header["kind"] == "eos":
                eos_needed -= 1
            pull.send_multipart(ack_frames(frames[0], header["seq"]))
            cacks.ack(header)
        write(chunker.flush())
    finally:
        if output is not None:
            output.close()
        rc = _finish(rc, counters, enrich, reporter, pull, coord, ctx, cacks)
    return rc


try:
    from orjson import loads as _loads
except ImportError:          # optional: the stdlib decodes the same, slower
    from json import loads as _loads


def _receive(sock, counters):
    """One message from the ROUTER: (frames, header, body), or None for a bad
    frame (counted and logged, never raised)."""
    frames = sock.recv_multipart()
    try:
        header, body = decode_batch(frames[1:])
    except WireError as exc:
        counters["publisher.bad_frames"] += 1
        log.error("dropped a bad frame: %s", exc)
        return None
    return frames, header, body


def _run_spooled(settings, disk: dict, output, enrich, counters, sock, coord, ctx, reporter, cacks) -> int:
    """The publisher loop with queue.disk (see reliable.py)."""
    from coordinator.publisher.reliable import SpooledPublisher
    from coordinator.publisher.spool import DiskQueueConfig, Spool, SpoolError
    from shared.confutil import build

    qc = build(DiskQueueConfig, dict(disk), "queue.disk")
    path = qc.path or os.path.join((settings.path or {}).get("data") or ".", "diskqueue")
    try:
        spool = Spool(path, max_size=qc.max_size, segment_size=qc.segment_size, fsync=qc.fsync)
    except SpoolError as e:
        # a path that cannot be a spool: one line, and no restart (it would fail the same way)
        log.error("%s", e)
        return _finish(EXIT_FATAL, counters, enrich, reporter, sock, coord, ctx, cacks)
    out_cfg = next(iter(settings.output.values()))
    backoff = out_cfg.get("backoff") or {}
    pub = SpooledPublisher(spool, output, enrich, settings.cluster["workers"], counters,
                           bulk_max_size=getattr(output, "bulk_max_size", 1600),
                           backoff_init=float(backoff.get("init", 1.0)),
                           backoff_max=float(backoff.get("max", 60.0)),
                           run_id=os.environ.get("PACKETBEAT_RUN_ID", ""))
    # A restarted publisher that finds some eos already spooled may never have
    # acked them: at the end it keeps answering resends a while (> resend_after).
    linger_for = 5.0 if pub.done else 0.0
    if pub.run_base:
        # restarted within the run: the coordinator replaces what the dead publisher reported with this
        reporter.send({"run_base": dict(pub.run_base)})
    pub.start()
    rc = 0

    def serve(timeout_ms: int) -> None:
        if not sock.poll(timeout_ms):
            pub._check_thread()
            return
        got = _receive(sock, counters)
        if got is None:
            return
        frames, header, body = got
        if header["kind"] in ("events", "eos"):
            acked = pub.accept(header, body)
            sock.send_multipart(ack_frames(frames[0], acked))
            if acked >= header["seq"]:        # in the spool (now or before)
                cacks.ack(header)

    try:
        try:
            while not pub.finished:
                serve(250)
        except SpoolError as e:          # not a full spool (that waits): e.g. a record larger than it
            log.error("%s", e)
            rc = EXIT_FATAL
            return rc
        # Every worker is done and everything is safely in the spool: output what
        # the output takes, but do not wait on an output that is down (file mode,
        # or a stop): the rest goes out at the next start.
        until = time.monotonic() + linger_for
        pending, progress_at = pub.spool.pending, time.monotonic()
        while pub.spool.pending or time.monotonic() < until:
            serve(100)
            now = time.monotonic()
            if pub.spool.pending < pending:
                pending, progress_at = pub.spool.pending, now
            elif pub.spool.pending and now - progress_at > STALL_SECONDS and now >= until:
                break
    finally:
        pub.halt()
        if pub.spool.pending:
            if pub.spool.size <= COUNT_WAITING_UP_TO:
                batches, events = pub.waiting_events()
                counters["publisher.spooled_waiting"] = events
                what = "%d events (%d batches)" % (events, batches)
            else:                        # reading a large spool through would delay the stop
                what = "%d batches (%d MB)" % (pub.spool.pending, pub.spool.size >> 20)
            log.warning("%s wait in the disk queue %s: the output took none for %.0f s; "
                        "they are sent at the next start with this queue.disk.path",
                        what, pub.spool.path, STALL_SECONDS)
        pub.stop()
        rc = _finish(rc, counters, enrich, reporter, sock, coord, ctx, cacks)
    return rc


def _finish(rc: int, counters, enrich, reporter, sock, coord, ctx, cacks=None) -> int:
    """The end of both loops: the last counters out, the last acks out, sockets closed;
    1 when some events could not be published."""
    if counters.get("publisher.failed"):
        rc = 1
    if getattr(enrich, "decoded", 0):   # events that had to be decoded to enrich (not spliced)
        counters["publisher.enrich_decoded"] = enrich.decoded
    reporter.stop()                  # the counters not reported yet
    sock.close(linger=2000)          # the last acks still go out
    if cacks is not None:
        cacks.close()
    coord.close(linger=-1)
    ctx.term()
    return rc
