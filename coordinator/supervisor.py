"""Start, watch and drain the child processes of one run (circus-like loop).

Order: the coordinator binds its stats PULL, starts the publisher, the
workers, then the capture(s). Each tick it reaps children
(``Popen.poll``) and reads stats. Signal handlers only queue a request; the
loop turns the first SIGINT/SIGTERM into an orderly drain (captures stop
reading and send end-of-stream, everything read is still analysed and
published) and a second one into an immediate stop.

File mode, one host: a worker that dies is restarted with the back-off
below, and the capture sends it again the packet batches whose events the
publisher did not hold yet (shared/replay.py); the run goes on and ends with
exit 1 and errors naming the shard (here) and the packets sent again (the
capture's). A publisher is restarted with ``queue.disk``; without it a dead
publisher ends the run with an error. A worker host (``cluster.role:
workers``) restarts a dead worker too, but its captures are elsewhere and keep
nothing for it: the run ends with exit 1, naming the shard and the packets its
captures said they sent it (in their end-of-streams) that it did not analyse
(``_remote_losses``). A capture that dies (a signal, a
traceback) sends no end-of-stream, and the workers would wait for it for
ever: the coordinator ends its stream for them at once (what the capture had
already queued is still read), counts ``coordinator.forced_eos`` and ends the
run with exit 1 and an error saying packets may be missing. As a last
resort, a worker that has not had all its end-of-streams
``FILE_EOS_GRACE_S`` after the capture sent them (or exited) is sent one
too, the same way.

Live mode (``live=True``) runs ``cluster.captures`` capture processes and
restarts a child that exits unasked, after a back-off (0.5 s doubling, at
most 10 s); a child restarted ``cluster.max_restarts`` times within
``cluster.restart_window`` seconds ends the run with an error. A capture that
exits with code 2 (bad device or filter, no permission) is not restarted.
When ``cluster.run_as_user`` is set, the run directory and the coordinator's
socket are handed to that user, since the children drop to it.
"""
from __future__ import annotations

import collections
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
import time

import zmq

from coordinator.monitor import Monitor, MonitorError
from coordinator.cluster import end_remote_streams, end_worker_streams, local_children
from shared import endpoints, transport
from shared.wire import WireError, decode_batch, encode_batch

# Live drain: a capture that stopped in order sent its end-of-streams and waits
# (up to 60 s) for the workers to read them and close. A worker still waiting
# for one this long after every capture is gone or has sent them would wait
# for ever (the hang once seen was a worker's libzmq dropping the capture's
# last bytes when it hung up: see coordinator/capture/process.py): the
# coordinator ends those streams for the captures, once, with an error line.
# Workers count one end-of-stream per capture name, so a repeated one is harmless.
EOS_GRACE_S = 75.0
# File mode: once the capture has sent its end-of-streams (it says so, then
# keeps its sockets open until the workers close theirs), what is left for a
# worker is at most its queue (cluster.hwm batches) and the socket buffer.
# A worker that still has not had every end-of-stream this long after is sent
# one by the coordinator (an error: packets may be missing).
FILE_EOS_GRACE_S = 60.0

log = logging.getLogger("packetbeat.coordinator")


class Child:
    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.rc: int | None = None
        self.restarts: list[float] = []         # monotonic times of restarts (live mode)
        self.due: float | None = None           # a restart is scheduled for this time
        self.eos_sent = False                   # the coordinator ended this capture's stream for it

    def start(self) -> None:
        self.rc = None
        self.due = None
        self.proc = subprocess.Popen(self.argv, start_new_session=False)

    def poll(self) -> int | None:
        if self.rc is None and self.proc is not None:
            self.rc = self.proc.poll()
        return self.rc

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.rc is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass


class Supervisor:
    def __init__(self, settings, file: str, loops: int = 1, publish: bool = True,
                 stderr: bool = False, selectors: list[str] | None = None,
                 live: bool = False, dump: str = ""):
        self.live = live
        self.dump = dump
        self.settings = settings
        self.file = file
        self.loops = loops
        self.publish = publish
        self.stderr = stderr
        self.selectors = selectors or []
        self.totals: collections.Counter = collections.Counter()
        self.monitor = Monitor(settings, self.totals)     # metrics log lines, stats endpoint
        self.errors: list[str] = []
        self._requests: list[str] = []
        self._streams_ended: set = set()        # workers that reported every end-of-stream received
        self._eos_sent: set = set()             # captures that reported their end-of-streams sent
        self._reported: dict = collections.defaultdict(collections.Counter)   # sender -> its counters so far
        self._children: list = []
        self._remote_restarted: set = set()     # a worker host's workers restarted (their losses, at the end)
        self._others_ended_at: float | None = None
        self.monitor.processes = self.process_table          # GET /processes (packetbeat top)
        # file mode on this host: a progress bar on a terminal, else periodic lines (coordinator/progress.py)
        self.progress = None
        if file and not live:
            from coordinator.progress import Progress
            self.progress = Progress(settings, file, loops, publish)

    # -- signals only queue -------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._requests.append("quit")

    def _child_argv(self, role: str, index: int, run_dir: str, settings_path: str) -> list[str]:
        argv = [sys.executable, "-m", "coordinator.child", role, "--index", str(index),
                "--settings", settings_path, "--run-dir", run_dir]
        if self.stderr:
            argv.append("--stderr")
        if self.selectors:
            argv += ["--selectors", ",".join(self.selectors)]
        if self.live:
            argv.append("--live")
            if role == "capture" and self.dump:
                argv += ["--dump", self.dump]
        elif role == "capture":
            argv += ["--file", self.file, "--loops", str(self.loops)]
        if role == "publisher" and not self.publish:
            argv.append("--no-publish")
        if role == "worker" or (role == "capture" and self.live):      # the roles that load the registry
            from worker.protos.registry import plugin_entry_points
            if not plugin_entry_points():       # read once by the coordinator (its configuration's check)
                argv.append("--no-entry-points")
        return argv

    def run(self) -> int:
        cluster = self.settings.cluster
        try:
            self.monitor.start()
        except MonitorError as exc:
            self.errors.append(str(exc))
            log.error("%s", exc)
            return 1
        own_dir = not cluster.get("run_dir")
        run_dir = tempfile.mkdtemp(prefix="pb-") if own_dir else cluster["run_dir"]
        self._run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        settings_path = os.path.join(run_dir, "settings.json")
        # one id per run, inherited by every child: a restarted publisher knows its
        # run's disk-queue state from an earlier run's (coordinator/publisher/reliable.py)
        os.environ["PACKETBEAT_RUN_ID"] = uuid.uuid4().hex
        with open(settings_path, "w", encoding="utf-8") as fh:
            fh.write(self.settings.to_json())
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        ctx = zmq.Context()
        stats = ctx.socket(zmq.PULL)
        stats.bind(endpoints.coordinator(run_dir))
        user = cluster.get("run_as_user") or ""
        if self.live and user:
            _hand_over(run_dir, user)
        publisher = Child("publisher", self._child_argv("publisher", 0, run_dir, settings_path))
        workers = [Child("worker-%d" % i, self._child_argv("worker", i, run_dir, settings_path))
                   for i in range(cluster["workers"])]
        captures = [Child(endpoints.capture_name(cluster, i), self._child_argv("capture", i, run_dir, settings_path))
                    for i in range(cluster["captures"])]
        children, captures = local_children(cluster, publisher, workers, captures)   # cluster.role
        self._children = children
        rc = 0
        try:
            for c in children:
                c.start()
            if self.progress is not None:
                self.progress.start()
            rc = self._live_loop(children, captures, stats) if self.live else self._loop(children, captures, stats)
        finally:
            for c in children:
                c.signal(signal.SIGKILL)
                if c.proc is not None:
                    c.proc.wait()
            self._drain_stats(stats, 0)
            self._remote_losses()
            self.monitor.finish()
            if self.progress is not None:
                self.progress.finish(self.totals, rc, self.errors)
            stats.close(linger=0)
            ctx.term()
            for s, h in old.items():
                signal.signal(s, h)
            if own_dir:
                shutil.rmtree(run_dir, ignore_errors=True)
        return rc

    def _loop(self, children, captures, stats) -> int:
        quitting = 0
        workers = [c for c in children[1:] if c not in captures]
        captures_gone_at: float | None = None
        incomplete = False
        limit = float(getattr(self.settings, "shutdown_timeout", 0.0) or 0.0)   # packetbeat.shutdown_timeout
        stop_at: float | None = None
        while True:
            self._drain_stats(stats, 100)
            self.monitor.tick()
            if stop_at is not None and time.monotonic() >= stop_at:
                log.warning("packetbeat.shutdown_timeout (%gs) reached while draining: stopping now", limit)
                return 130
            self._tick_progress(captures)
            while self._requests:
                self._requests.pop()
                quitting += 1
                if quitting == 1:
                    if limit > 0:
                        stop_at = time.monotonic() + limit
                    log.info("stopping: draining what was already read%s",
                             " (at most %gs, packetbeat.shutdown_timeout)" % limit if limit > 0 else "")
                    if self.progress is not None:
                        self.progress.stopped = True
                    for c in captures:
                        c.signal(signal.SIGTERM)
                    _stop_publisher(self._run_dir)
                    end_remote_streams(stats.context, self.settings, self._run_dir)   # role workers
                else:
                    log.warning("second stop request: stopping now")
                    return 130
            done = True
            now = time.monotonic()
            for c in children:
                if c.due is not None:          # a restarted publisher (queue.disk)
                    done = False
                    if now >= c.due:
                        log.info("restarting %s", c.name)
                        c.start()
                    continue
                rc = c.poll()
                if rc is None:
                    done = False
                elif c in captures:
                    # 0: it sent its end-of-streams; 2: a bad file, reported, end-of-streams sent
                    if rc not in (0, 2) and not c.eos_sent:
                        c.eos_sent = True
                        incomplete = True
                        self._force_eos(stats.context, c.name, workers,
                                        "%s exited with code %d before its end-of-stream" % (c.name, rc))
                elif rc != 0:
                    if c is children[0] and self._spooled():
                        if self._schedule_restart(c, rc, now):
                            done = False
                            continue
                        return 1
                    if c in workers and self.settings.cluster.get("role") == "workers":
                        # a worker host: restarted; what the dead worker held is lost (counted at the end)
                        incomplete = True
                        if self._remote_worker_died(c, rc, now, stats.context):
                            done = False
                            continue
                        return 1
                    if (c in workers and endpoints.replayed(self.settings.cluster, False)
                            and any(k.rc is None for k in captures)):
                        # the capture sends the restarted worker what it had not acknowledged
                        self.errors.append("%s exited with %s and was restarted: its open transactions were "
                                           "cut" % (c.name, _how(rc)))
                        log.error(self.errors[-1])
                        incomplete = True
                        self._streams_ended.discard(c.name)
                        if self._schedule_restart(c, rc, now):
                            done = False
                            continue
                        return 1
                    if (c in workers and endpoints.replayed(self.settings.cluster, False) and captures
                            and all(k.rc in (0, 2) for k in captures)):
                        # the capture ends only once every batch's events are with the publisher
                        self.errors.append("%s exited with %s after the capture had every acknowledgement: "
                                           "nothing is missing" % (c.name, _how(rc)))
                        log.error(self.errors[-1])
                        continue
                    self.errors.append("%s exited with code %d; the run is incomplete" % (c.name, rc))
                    log.error(self.errors[-1])
                    return 1
            if done:
                break
            if not captures:                              # a worker host (cluster.role): none of its own
                if self._remote_eos_net(workers, stats.context, now):
                    incomplete = True
            elif captures_gone_at is None:
                # a capture that sent its end-of-streams stays until the workers have read them
                if all(c.rc is not None or c.name in self._eos_sent for c in captures):
                    captures_gone_at = now
            elif now - captures_gone_at > FILE_EOS_GRACE_S:
                captures_gone_at = float("inf")       # once
                if any(w.rc is None and w.name not in self._streams_ended for w in workers):
                    incomplete = True
                    for c in captures:
                        self._force_eos(stats.context, c.name, workers,
                                        "%.0f s after %s ended, a worker still waits for its end-of-stream"
                                        % (FILE_EOS_GRACE_S, c.name))
        failed = [c for c in children if c.rc]
        if failed or incomplete:
            return 1
        return 0

    def _shard_of(self, c) -> int:
        return self.settings.cluster.get("first_shard", 0) + int(c.name.rsplit("-", 1)[1])

    def _remote_worker_died(self, c, rc: int, now: float, ctx) -> bool:
        """A worker host replaying a file: restart a dead worker (False: restarted too often).
        The captures are on other hosts and keep nothing for it (capture -> worker delivery
        across hosts is not acknowledged): the batches it held are lost, counted by
        ``_remote_losses`` from the packets each capture says it sent in its end-of-stream."""
        ended = c.name in self._streams_ended
        self.errors.append("%s (shard %d) exited with %s after %d packets analysed (as reported) and was "
                           "restarted%s" % (
            c.name, self._shard_of(c), _how(rc), self._reported[c.name]["worker.packets"],
            ": it had every end-of-stream; the events it had not sent are lost" if ended else
            ": across hosts the capture does not send again what the dead worker held (lost, counted below)"))
        log.error(self.errors[-1])
        self._remote_restarted.add(c.name)
        if not self._schedule_restart(c, rc, now):
            return False
        if ended:
            # its streams ended in the dead worker: the new one ends them at once (and the publisher has its eos)
            self._streams_ended.discard(c.name)
            end_worker_streams(ctx, self._run_dir, [int(c.name.rsplit("-", 1)[1])])
        return True

    def _remote_eos_net(self, workers, ctx, now: float) -> bool:
        """A worker host: a restarted worker still waits for an end-of-stream that may
        have gone with its predecessor (sent just before it died) while every other
        worker had all of theirs ``FILE_EOS_GRACE_S`` ago: end its streams, once, with
        an error. True when it did."""
        waiting = [w for w in workers if w.name in self._remote_restarted and w.rc is None
                   and w.due is None and w.name not in self._streams_ended]
        others = [w for w in workers if w.name not in self._remote_restarted]
        if not waiting or not others or not all(w.name in self._streams_ended or w.rc == 0 for w in others):
            self._others_ended_at = None
            return False
        if self._others_ended_at is None:
            self._others_ended_at = now
        if now - self._others_ended_at < FILE_EOS_GRACE_S:
            return False
        self._others_ended_at = float("inf")      # once
        self.errors.append("%s: %.0f s after every other worker had its end-of-streams, still none: ended its "
                           "streams (the capture's end-of-stream went with the dead worker)"
                           % (", ".join(w.name for w in waiting), FILE_EOS_GRACE_S))
        log.error(self.errors[-1])
        self.totals["coordinator.forced_eos"] += 1
        end_worker_streams(ctx, self._run_dir, [int(w.name.rsplit("-", 1)[1]) for w in waiting])
        return True

    def _remote_losses(self) -> None:
        """One error line per restarted worker of a worker host: the packets its shard was
        sent (the captures' end-of-streams say how many) and did not analyse."""
        for name in sorted(self._remote_restarted):
            got = self._reported.get(name, {})
            shard = self.settings.cluster.get("first_shard", 0) + int(name.rsplit("-", 1)[1])
            sent, seen = got.get("worker.capture_sent_packets", 0), got.get("worker.packets", 0)
            if sent:
                lost = max(0, sent - seen)
                self.totals["coordinator.lost_packets"] += lost
                self.errors.append("%s (shard %d): the captures sent it %d packets, %d analysed as reported (the dead "
                                   "worker's last report was at most 1 s before it died): up to %d packets lost "
                                   "with it (its queue and socket buffers, and what it had not reported), and the "
                                   "transactions open in it" % (name, shard, sent, seen, lost))
            else:
                self.errors.append("%s (shard %d): how many packets died with it is not known (no capture said "
                                   "how many it sent: an end-of-stream was missing or forced)" % (name, shard))
            log.error(self.errors[-1])

    def _tick_progress(self, captures) -> None:
        if self.progress is None or not captures:
            return
        cap = captures[0]
        if cap.rc is not None or cap.name in self._eos_sent:
            self.progress.reading_done()
        self.progress.tick(self.totals, cap.proc.pid if cap.proc is not None and cap.rc is None else None)

    def process_table(self) -> dict:
        """Each child of this host: pid, state, restarts and its own counters (the
        ``/processes`` endpoint, ``packetbeat top``). Called from the endpoint's thread."""
        out = {}
        reported = dict(self._reported)
        for c in list(self._children):
            if c.due is not None:
                state = "restarting"
            elif c.proc is None:
                state = "starting"
            elif c.rc is None:
                state = "running"
            elif c.rc == 0:
                state = "finished"
            else:
                state = "exited (%s)" % _how(c.rc)
            out[c.name] = {"pid": c.proc.pid if c.proc is not None else None, "state": state,
                           "restarts": len(c.restarts),
                           "metrics": {k: v for k, v in dict(reported.get(c.name, {})).items()
                                       if isinstance(v, int)}}
        return out

    def _force_eos(self, ctx, name: str, workers, why: str) -> None:
        """File mode: end capture ``name``'s stream for the workers that still
        wait for it, with an error (the run's exit status is 1) and a count."""
        if self.settings.cluster.get("role") == "capture":     # the workers are remote: end it for every shard
            waiting = list(range(self.settings.cluster["workers"]))
        else:
            waiting = [int(w.name.rsplit("-", 1)[1]) for w in workers
                       if w.rc is None and w.name not in self._streams_ended]
        self.errors.append("%s: the coordinator ended its stream for %s; packets it had not sent are "
                           "missing from the output" % (why, ", ".join("worker-%d" % i for i in waiting) or
                                                        "no worker (all had finished)"))
        log.error(self.errors[-1])
        self.totals["coordinator.forced_eos"] += 1
        if waiting:
            self._eos_for(ctx, name, waiting)

    def _spooled(self) -> bool:
        """A publisher with queue.disk loses nothing when it dies: restart it.
        (The workers resend what it had not acknowledged.)"""
        queue = (self.settings.raw or {}).get("queue") or {}
        return self.publish and isinstance(queue, dict) and bool(queue.get("disk"))

    def _schedule_restart(self, c, rc: int, now: float) -> bool:
        """Back off and restart ``c``; False (error recorded) after
        cluster.max_restarts restarts within cluster.restart_window, or at once
        for exit code 2 (a problem restarting cannot solve, reported by the child)."""
        cluster = self.settings.cluster
        if rc == 2:
            self.errors.append("%s cannot run (see the error above); not restarting it" % c.name)
            log.error(self.errors[-1])
            return False
        window = float(cluster["restart_window"])
        c.restarts = [t for t in c.restarts if now - t < window] + [now]
        if len(c.restarts) > cluster["max_restarts"]:
            self.errors.append("%s exited (code %d) %d times within %.0f s; giving up"
                               % (c.name, rc, len(c.restarts), window))
            log.error(self.errors[-1])
            return False
        delay = min(10.0, 0.5 * 2 ** (len(c.restarts) - 1))
        log.warning("%s exited with code %d; restarting in %.1f s", c.name, rc, delay)
        self.totals["coordinator.restarts"] += 1
        c.due = now + delay
        return True

    def _live_loop(self, children, captures, stats) -> int:
        cluster = self.settings.cluster
        window = float(cluster["restart_window"])
        quitting = 0
        captures_gone_at: float | None = None
        limit = float(getattr(self.settings, "shutdown_timeout", 0.0) or 0.0)   # packetbeat.shutdown_timeout
        stop_at: float | None = None
        while True:
            self._drain_stats(stats, 100)
            self.monitor.tick()
            if stop_at is not None and time.monotonic() >= stop_at:
                log.warning("packetbeat.shutdown_timeout (%gs) reached while draining: stopping now", limit)
                return 130
            while self._requests:
                self._requests.pop()
                quitting += 1
                if quitting == 1:
                    if limit > 0:
                        stop_at = time.monotonic() + limit
                    log.info("stopping: draining what was already captured%s",
                             " (at most %gs, packetbeat.shutdown_timeout)" % limit if limit > 0 else "")
                    for c in captures:
                        c.due = None
                        c.signal(signal.SIGTERM)
                    _stop_publisher(self._run_dir)
                    end_remote_streams(stats.context, self.settings, self._run_dir)   # role workers
                else:
                    log.warning("second stop request: stopping now")
                    return 130
            now = time.monotonic()
            done = True
            for c in children:
                if c.due is not None:
                    if quitting and c in captures:
                        c.due = None                 # not coming back: end its stream for it
                        self._eos_for(stats.context, c.name)
                        continue
                    done = False
                    if now >= c.due or quitting:     # a worker/publisher is needed for the drain
                        log.info("restarting %s", c.name)
                        c.start()
                    continue
                rc = c.poll()
                if rc is None:
                    done = False
                    continue
                if quitting and (rc == 0 or c in captures):
                    if rc != 0 and not c.eos_sent:
                        c.eos_sent = True            # a capture that died while draining
                        self._eos_for(stats.context, c.name)
                    continue
                if rc == 2:
                    self.errors.append("%s cannot %s (see the error above); not restarting it"
                                       % (c.name, "capture" if c in captures else "run"))
                    log.error(self.errors[-1])
                    return 1
                c.restarts = [t for t in c.restarts if now - t < window] + [now]
                if len(c.restarts) > cluster["max_restarts"]:
                    self.errors.append("%s exited (code %d) %d times within %.0f s; giving up"
                                       % (c.name, rc, len(c.restarts), window))
                    log.error(self.errors[-1])
                    return 1
                delay = min(10.0, 0.5 * 2 ** (len(c.restarts) - 1))
                log.warning("%s exited with code %d; restarting in %.1f s", c.name, rc, delay)
                self.totals["coordinator.restarts"] += 1
                c.due = now + delay
                done = False
            if done:
                break
            if quitting and captures_gone_at is None and all(c.rc is not None or c.name in self._eos_sent
                                                             for c in captures):
                captures_gone_at = now
            elif captures_gone_at is not None and now - captures_gone_at > EOS_GRACE_S:
                captures_gone_at = float("inf")       # once
                log.error("the workers have not finished %.0f s after the captures stopped: ending the "
                          "captures' streams for them (packets still queued for a worker may be lost)",
                          EOS_GRACE_S)
                self.totals["coordinator.forced_eos"] += 1
                for c in captures:
                    self._eos_for(stats.context, c.name)
        return 1 if any(c.rc for c in children if c not in captures) else 0

    def _eos_for(self, ctx, name: str, workers: list[int] | None = None) -> None:
        """Send the end-of-stream a dead capture could not send, so that the
        workers (which count one per capture) finish the drain."""
        log.warning("%s is gone: ending its stream for it", name)
        for i in range(self.settings.cluster["workers"]) if workers is None else workers:
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 60_000)
            sock.setsockopt(zmq.SNDTIMEO, 60_000)
            transport.connect_shard(sock, self.settings, self._run_dir, i, "coordinator")
            try:
                # forced: the worker then also reads what the capture queued before it went
                sock.send_multipart(encode_batch("eos", name, 0, [], forced=1))
            except zmq.Again:
                log.error("worker-%d did not take the end-of-stream of %s", i, name)
            sock.close()

    def _rebase(self, sender, base: dict) -> None:
        """A restarted child's counters of the whole run so far (the publisher with
        queue.disk, from its spool state) replace what its dead predecessor reported:
        totals are per run, not per process."""
        got = self._reported[sender]
        for k, v in base.items():
            if isinstance(v, int):
                self.totals[k] += v - got[k]
                got[k] = v

    def _drain_stats(self, sock, timeout_ms: int) -> None:
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not sock.poll(left):
                return
            try:
                header, body = decode_batch(sock.recv_multipart())
            except WireError:
                continue
            if header["kind"] == "stats" and body and isinstance(body[0], dict):
                for k, v in body[0].items():
                    if k == "streams_ended":          # a worker had every end-of-stream it waits for
                        self._streams_ended.add(header.get("from"))
                    elif k == "eos_sent":             # a capture sent its end-of-streams
                        self._eos_sent.add(header.get("from"))
                    elif k == "error":
                        self.errors.append(str(v))
                    elif k == "run_base" and isinstance(v, dict):
                        self._rebase(header.get("from"), v)
                    elif isinstance(v, int):
                        self.totals[k] += v
                        self._reported[header.get("from")][k] += v
            timeout_ms = 0
            deadline = time.monotonic()


def _stop_publisher(run_dir: str) -> None:
    """Tell the publisher the run is stopping (a file in the run directory, which it
    looks for every 0.25 s: a signal could reach it before it can handle one). It still
    takes every event up to the workers' end of stream, but gives an output that is
    down only a few seconds before it counts what it could not deliver
    (publisher/process.py)."""
    from coordinator.publisher.process import STOP_FILE
    try:
        with open(os.path.join(run_dir, STOP_FILE), "w"):
            pass
    except OSError as exc:
        log.error("cannot tell the publisher to stop: %s", exc)


def _how(rc: int) -> str:
    if rc < 0:
        try:
            return "signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "signal %d" % -rc
    return "code %d" % rc


def _hand_over(run_dir: str, user: str) -> None:
    """Let ``user`` (the children's identity after dropping root) create and
    reach the run's ipc endpoints."""
    import pwd
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        return                     # the capture reports the unknown user
    os.chown(run_dir, pw.pw_uid, pw.pw_gid)
    for name in os.listdir(run_dir):
        os.chown(os.path.join(run_dir, name), pw.pw_uid, pw.pw_gid)
