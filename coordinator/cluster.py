"""What a host runs under ``cluster.role`` (docs/architecture.md, "Several hosts").

- ``all``: publisher, workers and captures (one host, ipc:// endpoints);
- ``capture``: only the capture process(es); shard ``i`` is the remote
  ``cluster.shards[i]``; the run ends when their end-of-stream was delivered;
- ``workers``: publisher and workers, fed over tcp:// by the captures of other
  hosts; the run ends when every worker has had ``cluster.captures``
  end-of-streams (``cluster.replay``: captures reading files), or when this host is
  stopped (live: it runs until then, and ends its workers' streams itself).
"""
from __future__ import annotations

import logging

import zmq

from shared import endpoints
from shared.wire import encode_batch

log = logging.getLogger("packetbeat.coordinator")


def local_children(cluster: dict, publisher, workers: list, captures: list) -> tuple[list, list]:
    """(children to start, the captures among them) for this host's role."""
    role = cluster.get("role", "all")
    if role == "capture":
        return list(captures), list(captures)
    if role == "workers":
        return [publisher] + list(workers), []
    return [publisher] + list(workers) + list(captures), list(captures)


def end_remote_streams(ctx, settings, run_dir: str) -> None:
    """A worker host being stopped: its captures are elsewhere and may go on
    sending, so end every stream of its workers (through their local ipc
    endpoints); what they hold is still analysed and published."""
    cluster = settings.cluster
    if cluster.get("role") != "workers":
        return
    log.info("ending the remote captures' streams of %d workers", cluster["workers"])
    end_worker_streams(ctx, run_dir, range(cluster["workers"]))


def end_worker_streams(ctx, run_dir: str, workers) -> None:
    """End every capture's stream of these local workers (an ``eos`` from ``*``),
    through their ipc endpoints (a worker restarted meanwhile gets it when it binds)."""
    from worker.process import ALL_STREAMS
    for i in workers:
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 10_000)
        sock.setsockopt(zmq.SNDTIMEO, 10_000)
        sock.connect(endpoints.shard(run_dir, i))
        try:
            sock.send_multipart(encode_batch("eos", ALL_STREAMS, 0, []))
        except zmq.Again:
            log.error("worker-%d did not take the end of its streams", i)
        sock.close()
