"""Publisher with ``queue.disk``: accept into the spool, acknowledge, output from the spool.

Accept (the publisher's main thread, :meth:`SpooledPublisher.accept`): a
worker batch ``(worker, seq)`` is taken only if ``seq`` follows the last one
taken from that worker (``shared.delivery``: duplicates are acked again,
batches after a gap are dropped unacked and come back with the resend).
Its events arrive as JSON text (``shared.wire.encode_events``); each is
enriched by splicing the publisher's keys into that text
(``Enricher.enrich_line``, no decoding), given its index (from the text:
``IndexFormat.from_line``) and its deterministic ``_id``
(``elasticsearch.event_id`` over ``worker:seq:i`` and the worker's text, which
has no publisher-owned keys, so a restarted publisher computes the same id)
and the batch is appended to the spool as one record; only then is it
acknowledged. When the spool is full the
main thread waits for room and stops reading: the workers' windows fill and
they block (file mode waits; nothing is dropped).

Output (a thread, :meth:`SpooledPublisher.drain_once`): reads records in
order, bulks ``bulk_max_size`` events, sends them again with capped backoff
until none is left but permanent failures (counted), then acknowledges the
records in the spool (which deletes finished segments) together with the
accept state (last seq per worker, workers done), so a restarted publisher
resumes from the spool and still recognises batches it already took.

Spool record (msgpack): ``["events", worker, seq, [[index, id, line], ...], run]``
or ``["eos", worker, seq, [], run]``; ``run`` is the coordinator's run id
(``PACKETBEAT_RUN_ID``). The spool state's meta names the run its accept state
belongs to: a publisher restarted within a run resumes it, the next run starts
its own (and first outputs what an earlier run left in the spool: a file run
with the output down ends once everything is spooled, see process.py).
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time

import msgpack

from coordinator.publisher.elasticsearch import event_id
from coordinator.publisher.outputs import EncodeError, encode_event
from coordinator.publisher.spool import Spool, SpoolDiskFull, SpoolFull

log = logging.getLogger("packetbeat.publisher")


# Counted by the output thread as events leave; kept in the spool state with each acknowledgement.
# Events a killed publisher sent after its last acknowledgement are sent (and counted) again by the
# restarted one, so base + the new process's counts is each event once.
RUN_COUNTERS = ("publisher.published", "publisher.failed")


class SpooledPublisher:
    def __init__(self, spool: Spool, output, enrich, workers: int, counters: collections.Counter,
                 bulk_max_size: int = 1600, backoff_init: float = 1.0, backoff_max: float = 60.0,
                 sleep=time.sleep, run_id: str = "", on_connect=None):
        self.spool = spool
        self.on_connect = on_connect         # the Elasticsearch template/ILM (process.py); None: nothing
        self._connected = on_connect is None
        self._lock = threading.Lock()        # the output thread's spool writes vs an abandoning halt()
        self._abandoned = False
        self.output = output
        self.enrich = enrich
        self.workers = workers
        self.counters = counters
        self.bulk_max_size = max(1, bulk_max_size)
        self.backoff = (backoff_init, backoff_max)
        self._sleep = sleep
        self._index = getattr(output, "index", None)
        self._known = getattr(enrich, "known", None)
        meta = spool.meta
        self.run_id = run_id
        # the spool's accept state belongs to this run unless it names another run (a
        # publisher restarted within a run resumes it; the next run only outputs what waits)
        same_run = not run_id or meta.get("run", run_id) == run_id
        self.last_seq: dict[str, int] = {}
        self.done: set[str] = set()
        # the output's counters of this run up to the last acknowledgement in the spool (a restarted
        # publisher reports them as its base: the coordinator's totals are per run, see RUN_COUNTERS)
        self.run_base: dict[str, int] = {}
        if same_run:
            self.last_seq = {k: int(v) for k, v in (meta.get("last_seq") or {}).items()}
            self.done = set(meta.get("done") or [])
            self.run_base = {k: int(v) for k, v in (meta.get("counters") or {}).items() if k in RUN_COUNTERS}
        self._recover(same_run)
        if run_id and meta.get("run") != run_id:
            # this run's id in the state now, so a restart within it resumes it
            meta = dict(meta, run=run_id, last_seq=dict(self.last_seq), done=sorted(self.done))
            try:
                spool.ack(spool.acked, meta)
            except SpoolDiskFull as e:           # written with the first acknowledgement instead
                log.error("%s", e)
        self._stop = threading.Event()
        self._disk_full_logged = -1e9
        self._full_logged = -1e9
        self.give_up = None                 # set by the publisher: True once a stop has waited long enough
        self.not_accepted = 0               # events of batches refused that way
        self.last_error = ""                # why the output did not take the last events
        self._refused: set = set()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _recover(self, same_run: bool = True) -> None:
        """Accept state from the records not yet acknowledged (newer than the meta)."""
        while same_run:
            recs = self.spool.read(256)
            if not recs:
                break
            for _, payload in recs:
                rec = msgpack.unpackb(payload, raw=False)
                kind, worker, seq = rec[0], rec[1], rec[2]
                if self.run_id and len(rec) > 4 and rec[4] != self.run_id:
                    continue                 # an earlier run's batch, still to output
                self.last_seq[worker] = max(seq, self.last_seq.get(worker, -1))
                if kind == "eos":
                    self.done.add(worker)
        self.spool.rewind()
        if self.spool.pending:
            log.info("resuming: %d spooled batches to output", self.spool.pending)

    @property
    def finished(self) -> bool:
        """Every worker has sent eos (the spool may still hold events to output)."""
        return len(self.done) >= self.workers

    # -- accept (main thread) -----------------------------------------------------
    def accept(self, header: dict, body: list) -> int:
        """Take one worker batch; returns the seq to acknowledge (cumulative)."""
        worker, seq, kind = header["from"], header["seq"], header["kind"]
        last = self.last_seq.get(worker, -1)
        if seq <= last:
            self.counters["publisher.duplicates"] += 1
            return last
        if seq > last + 1:
            self.counters["publisher.gaps"] += 1
            return last
        items = []
        if kind == "events":
            enrich_line = getattr(self.enrich, "enrich_line", None)
            flags = (self.enrich.clean_positions(header, len(body))
                     if enrich_line is not None and header.get("enc") == "json" else None)
            index, known = self._index, self._known
            from_line = getattr(index, "from_line", None)
            # a worker that ran processors sent its events enriched: their text holds this
            # run's agent.ephemeral_id, blanked for the id (the same id when a capture is run again)
            eph = getattr(self.enrich, "ephemeral_id", "") if header.get("enriched") else ""
            for i, raw in enumerate(body):
                try:
                    if type(raw) is not bytes:       # an event dict (older senders, tests)
                        raw = encode_event(raw)
                    if enrich_line is not None:
                        line = enrich_line(raw, flags[i] if flags is not None else None)
                    else:
                        line = encode_event(self.enrich(json.loads(raw)))
                    if from_line is not None:
                        where = from_line(line, known)
                    else:
                        where = index(json.loads(line)) if index is not None else None
                except (EncodeError, ValueError, KeyError) as e:
                    self.counters["publisher.failed"] += 1
                    log.error("event from %s:%d dropped: %s", worker, seq, e.args[0] if e.args else e)
                    continue
                items.append([where, event_id("%s:%d:%d" % (worker, seq, i), raw, eph), line])
            self.counters["publisher.events"] += len(body)
        record = msgpack.packb([kind, worker, seq, items, self.run_id], use_bin_type=True)
        while True:
            try:
                self.spool.append(record)
                break
            except SpoolDiskFull as e:
                # backpressure: nothing more is accepted (the workers wait in file mode,
                # live capture drops and counts) until there is room again
                self.counters["publisher.disk_full_waits"] += 1
                now = time.monotonic()
                if now - self._disk_full_logged >= 30.0:
                    self._disk_full_logged = now
                    log.error("%s; waiting", e)
                self._check_thread()
                self._stop.wait(1.0)
            except SpoolFull:
                self.counters["publisher.spool_full_waits"] += 1
                now = time.monotonic()
                if now - self._full_logged >= 30.0:
                    self._full_logged = now
                    log.warning("the disk queue %s is full (queue.disk.max_size %d bytes): waiting for the "
                                "output to take events", self.spool.path, self.spool.max_size)
                self._check_thread()
                if self.give_up is not None and self.give_up():
                    # a stop while the output is down: this batch is not taken (nor acknowledged;
                    # its resends are refused too, counted once)
                    if (worker, seq) not in self._refused:
                        self._refused.add((worker, seq))
                        self.not_accepted += len(body)
                    return last
                self.spool.wait_for_room(len(record), 0.5)
        self.last_seq[worker] = seq
        if kind == "eos":
            self.done.add(worker)
        return seq

    # -- output (thread) -------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            idle = getattr(self.output, "close_idle", None)
            while not self._stop.is_set():
                if not self.drain_once(timeout=0.2) and callable(idle):
                    idle()                   # idle_connection_timeout
        except BaseException as e:       # reported to the main thread by _check_thread
            self.error = e
            log.exception("spool output failed")

    def _check_thread(self) -> None:
        if self.error is not None:
            raise RuntimeError("spool output thread failed: %s" % self.error)

    def drain_once(self, timeout: float = 0.0) -> int:
        """Output the next bulk of spooled events; the records acknowledged."""
        recs = self.spool.read(1, timeout)
        if not recs:
            return 0
        items: list = []
        last_no = -1
        while recs:
            for no, payload in recs:
                its = msgpack.unpackb(payload, raw=False)[3]
                items += its
                last_no = no
            if len(items) >= self.bulk_max_size:
                break
            recs = self.spool.read(1)
        sent = not items or self._publish([tuple(it) for it in items])
        with self._lock:
            if self._abandoned:          # halt() gave up waiting for us: the spool is no longer ours
                return 0
            if not sent:
                self.spool.rewind()      # stopped before it was done: read again next time
                return 0
            return self._ack(last_no)

    def _ack(self, last_no: int) -> int:
        meta = {"last_seq": dict(self.last_seq), "done": sorted(self.done),
                "counters": {k: self.run_base.get(k, 0) + self.counters.get(k, 0) for k in RUN_COUNTERS}}
        if self.run_id:
            meta["run"] = self.run_id
        try:
            self.spool.ack(last_no + 1, meta)
        except SpoolDiskFull as e:
            # sent, but the state cannot be written: sent again later (the ids make
            # Elasticsearch refuse the copies) once there is room
            self.counters["publisher.disk_full_waits"] += 1
            now = time.monotonic()
            if now - self._disk_full_logged >= 30.0:
                self._disk_full_logged = now
                log.error("%s; waiting", e)
            self.spool.rewind()
            self._stop.wait(1.0)
            return 0
        return 1

    def _publish(self, items: list) -> bool:
        """Send until only permanent failures are left; False if stopped first."""
        delay, cap = self.backoff
        pending = items
        while pending:
            if not self._connected:
                try:
                    self.on_connect()
                    self._connected = True
                except Exception as e:     # noqa: BLE001 - as the output being unreachable
                    self.last_error = str(e)
                    self.counters["publisher.retry_rounds"] += 1
                    log.warning("output: %d events to send again in %.1fs (%s)", len(pending), delay, e)
                    if self._stop.is_set() or self._stop.wait(delay):
                        return False
                    delay = min(delay * 2, cap)
                    continue
            if hasattr(self.output, "publish_encoded"):
                results = self.output.publish_encoded(pending)
            else:
                evs = [json.loads(line) for _, _, line in pending]
                results = self.output.publish_batch(evs, [line for _, _, line in pending])
            retry = []
            for it, r in zip(pending, results):
                if r.ok:
                    self.counters["publisher.published"] += 1
                elif r.retry:
                    retry.append(it)
                else:
                    self.counters["publisher.failed"] += 1
            if retry:
                self.last_error = next(r.error for r in results if r.retry)
                if self.on_connect is not None and any(r.unreachable for r in results):
                    self._connected = False      # set up again on the next connection, as libbeat
                self.counters["publisher.retry_rounds"] += 1
                log.warning("output: %d events to send again in %.1fs (%s)", len(retry), delay,
                            next(r.error for r in results if r.retry))
                if self._stop.is_set():
                    return False
                if self._sleep is time.sleep:
                    if self._stop.wait(delay):       # stop() does not wait out a backoff
                        return False
                else:
                    self._sleep(delay)
                delay = min(delay * 2, cap)
            pending = retry
        return True

    def waiting_events(self) -> tuple[int, int]:
        """(batches, events) in the spool not yet acknowledged by the output;
        call with the output thread stopped (it rewinds the read position)."""
        self.spool.rewind()
        batches = events = 0
        while True:
            recs = self.spool.read(256)
            if not recs:
                break
            for _, payload in recs:
                items = msgpack.unpackb(payload, raw=False)[3]
                batches += 1
                events += len(items)
        self.spool.rewind()
        return batches, events

    def wait_drained(self, poll: float = 0.1) -> None:
        """Block until every spooled record is acknowledged by the output."""
        while self.spool.pending:
            self._check_thread()
            time.sleep(poll)

    def halt(self, timeout: float | None = None) -> bool:
        """Stop the output thread (the spool stays open); after ``timeout`` s (a
        request that hangs) leave it: it no longer touches the spool. False then."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            with self._lock:
                if self._thread.is_alive():
                    self._abandoned = True
                    log.warning("the output did not answer within %.0f s of the stop; its request is "
                                "left (its events stay in the disk queue)", timeout or 0)
                    self._thread = None
                    return False
            self._thread = None
        return True

    def stop(self) -> None:
        self.halt()
        self.spool.close()
