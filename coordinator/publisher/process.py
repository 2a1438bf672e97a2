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

from coordinator.publisher.enrich import Enricher
from coordinator.publisher.memqueue import MemQueue, effective_queue
from coordinator.publisher.outputs import encode_event, make_output
from coordinator.publisher.sender import MemSender
from shared import endpoints
from shared.delivery import CaptureAcks, ack_frames
from shared.gctune import tune_gc
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
    stop = _StopRequest(os.path.join(run_dir, STOP_FILE))
    signal.signal(signal.SIGTERM, stop.on_signal)     # a stop sent to it directly: see _StopRequest
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
    tune_gc()                          # lists per batch, dicts per event with some outputs: shared/gctune.py
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
    kind, qcfg, note = effective_queue(settings)
    if output is not None:
        _log_preset(settings)
        if note:
            log.warning("%s", note)
    on_connect = _setup_on_connect(settings, output) if output is not None else None
    if kind == "disk" and output is not None:
        try:
            return _run_spooled(settings, qcfg, output, enrich, counters, pull, coord, ctx, reporter, cacks,
                                stop, on_connect)
        finally:
            _close(output, wait=False)

    queue = sender = None
    if output is not None:
        backoff = out_cfg.get("backoff") or {}
        queue = MemQueue.from_config(qcfg, getattr(output, "bulk_max_size", 1600) or 1600)
        sender = MemSender(queue, output, counters, float(backoff.get("init", 1.0)),
                           float(backoff.get("max", 60.0)), on_connect=on_connect)
        sender.start()

    def give_up() -> bool:
        """While the queue is full: after a stop, give the output STOP_GRACE_S, then give up."""
        stop.check(sender)
        if sender.error is not None:
            raise RuntimeError("output thread failed: %s" % sender.error)
        return sender.abandoned

    rc = 0
    last_seq: dict[str, int] = {}
    try:
        while eos_needed:
            if sender is not None:
                give_up()
            if not poller.poll(250):
                continue
            got = _receive(pull, counters)
            if got is None:
                continue
            frames, header, body = got
            sender_id, seq = header["from"], header["seq"]
            last = last_seq.get(sender_id, -1)
            if seq != last + 1:           # a resent duplicate, or after a gap: wait for the resend
                counters["publisher.duplicates" if seq <= last else "publisher.gaps"] += 1
                pull.send_multipart(ack_frames(frames[0], last))
                if seq <= last:
                    cacks.ack(header)     # its packets were acknowledged already, perhaps not received
                continue
            last_seq[sender_id] = seq
            if header["kind"] == "events":
                counters["publisher.events"] += len(body)
                # the common batch: every event spliced in one pass (enrich.py splice_all)
                lines = enrich.splice_all(header, body) if lines_only and header.get("enc") == "json" else None
                if lines is not None:
                    evs = [None] * len(lines)
                else:
                    flags = enrich.clean_positions(header, len(body)) if header.get("enc") == "json" else None
                    evs = []
                    lines = []
                    for i, rec in enumerate(body):
                        try:
                            if type(rec) is bytes:            # the worker's JSON text (shared.wire.encode_events)
                                line = enrich.enrich_line(rec, flags[i] if flags is not None else None)
                            elif isinstance(rec, dict):
                                line = encode_event(enrich(rec))
                            else:
                                raise ValueError("not an event (%s)" % type(rec).__name__)
                            ev = None if lines_only else _loads(line)
                        except ValueError as e:
                            counters["publisher.failed"] += 1
                            log.error("event from %s:%d dropped: %s", sender_id, seq, e)
                            continue
                        evs.append(ev)
                        lines.append(line)
                if sender is None:
                    counters["publisher.discarded"] += len(lines)
                elif lines and not queue.put(evs, lines, give_up):
                    sender.lost(len(lines))              # the stop gave up on the output
            elif header["kind"] == "eos":
                eos_needed -= 1
            # the capture's ack first: written before the worker can learn its end-of-stream is
            # held, say its bye and close, and the capture then exit (a later one would be
            # undeliverable, and would hold this process's exit for the sockets' linger)
            cacks.ack(header)
            pull.send_multipart(ack_frames(frames[0], header["seq"]))
        if sender is not None:
            queue.close()
            # file mode: wait for the output however long it is down (the sender says so);
            # after a stop request, STOP_GRACE_S at most
            while not sender.join(0.25):
                give_up()
                if sender.abandoned and stop.requested_at is not None and \
                        time.monotonic() - stop.requested_at > STOP_GRACE_S + 2.0:
                    break                     # a request hangs: leave the thread (daemon)
    finally:
        if sender is not None:
            waiting = queue.drain() + (sender.inflight if sender.alive() else 0)
            if waiting:
                sender.lost(waiting)
            if sender.not_delivered:
                msg = ("%d events were not delivered: %s" % (
                    sender.not_delivered, sender.last_error or "the output did not take them before the stop"))
                log.error("%s", msg)
                reporter.send({"error": msg})
                rc = 1
            if sender.error is not None:
                rc = 1
        if output is not None:
            _close(output, wait=sender is None or not sender.alive())
        rc = _finish(rc, counters, enrich, reporter, pull, coord, ctx, cacks)
    return rc


def _close(output, wait: bool) -> None:
    """Close the output; ``wait=False``: not waiting for a request in flight (the
    Elasticsearch output; the others always close in full)."""
    import inspect
    if not wait and "wait" in inspect.signature(output.close).parameters:
        output.close(wait=False)
    else:
        output.close()


# After a stop request (SIGTERM from the coordinator), an output that is down (or whose
# request hangs) gets this long; then what is left is counted as not delivered.
STOP_GRACE_S = 3.0


STOP_FILE = "stopping"      # written in the run directory by the coordinator (supervisor.py)


class _StopRequest:
    """The run is stopping: the coordinator wrote STOP_FILE (or the publisher got
    SIGTERM itself). The publisher still takes every worker's events until their
    end of stream, but does not wait for an output that is down (memory queue: what
    it cannot send is counted as not delivered; disk queue: it stays in the spool)."""

    def __init__(self, path: str = ""):
        self.path = path
        self.requested_at: float | None = None
        self._looked = 0.0

    def on_signal(self, signum, frame) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()

    def poll(self) -> bool:
        """True once a stop was requested (the file is looked for at most every 0.2 s)."""
        if self.requested_at is None and self.path:
            now = time.monotonic()
            if now - self._looked >= 0.2:
                self._looked = now
                if os.path.exists(self.path):
                    self.requested_at = now
        return self.requested_at is not None

    def check(self, sender) -> None:
        if not self.poll() or sender is None:
            return
        if not sender._stopping.is_set():
            log.info("stop requested: sending what is queued (%d events), giving up on an output that "
                     "does not take it within %.0f s", len(sender.queue) + sender.inflight, STOP_GRACE_S)
            sender.stop()
        now = time.monotonic()
        if sender.abandoned or now - self.requested_at <= STOP_GRACE_S:
            return
        # an output that works is waited for however long the drain takes; one that is
        # down, or whose request has hung for the grace, is given up on
        stuck = sender.sending_since is not None and now - sender.sending_since > STOP_GRACE_S
        if sender.down_since is not None or stuck:
            sender.abandon()


def _log_preset(settings) -> None:
    """libbeat's lines: the preset applied, and the user's settings it replaced."""
    es = settings.output.get("elasticsearch")
    if not es or es.get("preset", "custom") == "custom":
        return
    from coordinator.publisher.elasticsearch import PRESETS, preset_overrides
    log.info("applying performance preset %s: %s", es["preset"], PRESETS[es["preset"]])
    user = (((settings.raw or {}).get("output") or {}).get("elasticsearch") or {})
    replaced = preset_overrides(es["preset"], user)
    if replaced:
        log.warning("performance preset %s overrides the setting(s): %s (output.elasticsearch.preset: "
                    "custom keeps them)", es["preset"], ", ".join("output.elasticsearch." + k for k in replaced))


def _setup_on_connect(settings, output):
    """The Elasticsearch output's index template and ILM policy, loaded when it
    first connects (coordinator/setup.py ``ensure``); None for other outputs."""
    if "elasticsearch" not in settings.output or not hasattr(output, "client"):
        return None
    from coordinator.setup import ensure_function
    return ensure_function(output, (settings.raw or {}).get("setup"))


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


def _run_spooled(settings, qc, output, enrich, counters, sock, coord, ctx, reporter, cacks,
                 stop=None, on_connect=None) -> int:
    """The publisher loop with queue.disk (see reliable.py)."""
    from coordinator.publisher.reliable import SpooledPublisher
    from coordinator.publisher.spool import Spool, SpoolError

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
                           run_id=os.environ.get("PACKETBEAT_RUN_ID", ""), on_connect=on_connect)
    # A restarted publisher that finds some eos already spooled may never have
    # acked them: at the end it keeps answering resends a while (> resend_after).
    linger_for = 5.0 if pub.done else 0.0
    if pub.run_base:
        # restarted within the run: the coordinator replaces what the dead publisher reported with this
        reporter.send({"run_base": dict(pub.run_base)})
    pub.start()
    rc = 0

    def full_give_up() -> bool:
        """The spool is full: after a stop, wait STOP_GRACE_S for the output, then refuse."""
        return stop is not None and stop.poll() and time.monotonic() - stop.requested_at > STOP_GRACE_S

    pub.give_up = full_give_up

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
            if acked >= header["seq"]:        # in the spool (now or before); before the worker's (see run_publisher)
                cacks.ack(header)
            sock.send_multipart(ack_frames(frames[0], acked))

    try:
        try:
            while not pub.finished:
                serve(250)
                if pub.not_accepted and full_give_up():
                    break                 # full, output down, stopping: the workers' rest cannot be taken
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
            # after a stop request the output gets STOP_GRACE_S without progress, not STALL_SECONDS
            stall = STOP_GRACE_S if stop is not None and stop.poll() else STALL_SECONDS
            if pub.spool.pending < pending:
                pending, progress_at = pub.spool.pending, now
            elif pub.spool.pending and now - progress_at > stall and now >= until:
                break
    finally:
        pub.halt(timeout=2.0)
        if pub.spool.pending:
            if pub.spool.size <= COUNT_WAITING_UP_TO:
                batches, events = pub.waiting_events()
                counters["publisher.spooled_waiting"] = events
                what = "%d events (%d batches)" % (events, batches)
            else:                        # reading a large spool through would delay the stop
                what = "%d batches (%d MB)" % (pub.spool.pending, pub.spool.size >> 20)
            why = ("the stop came while the output took none" if stop is not None and stop.requested_at
                   else "the output took none for %.0f s" % STALL_SECONDS)
            log.warning("%s were not delivered and wait in the disk queue %s (%s%s); "
                        "they are sent at the next start with this queue.disk.path",
                        what, pub.spool.path, why, ": " + pub.last_error if pub.last_error else "")
        if pub.not_accepted:
            counters["publisher.not_delivered"] += pub.not_accepted
            msg = ("%d events (and what the workers still held) were not delivered: the disk queue %s was "
                   "full and the output down when the run was stopped%s" % (
                       pub.not_accepted, pub.spool.path, ": " + pub.last_error if pub.last_error else ""))
            log.error("%s", msg)
            reporter.send({"error": msg})
            rc = EXIT_FATAL               # not restarted: the workers' batches are gone with this stop
        pub.stop()
        rc = _finish(rc, counters, enrich, reporter, sock, coord, ctx, cacks)
    return rc


def _finish(rc: int, counters, enrich, reporter, sock, coord, ctx, cacks=None) -> int:
    """The end of both loops: the last counters out, the last acks out, sockets closed;
    1 when some events could not be published."""
    if counters.get("publisher.failed") and not rc:
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
