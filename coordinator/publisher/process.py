"""The publisher process: PULL event batches from every worker, enrich, batch, output.

It binds the single PULL that all workers PUSH to. Events are enriched with
agent metadata, tags and fields, grouped by the chunker (count, bytes or age)
and written by the configured output. When every worker has sent its
``eos`` it flushes the output and exits. With ``-N`` (publish disabled)
events are counted and discarded.
"""
from __future__ import annotations

import collections
import logging
import signal
import socket
import time

import zmq

from coordinator.publisher.chunker import Chunker
from coordinator.publisher.enrich import Enricher
from coordinator.publisher.outputs import make_output
from shared import endpoints
from shared.version import VERSION
from shared.wire import WireError, decode_batch, encode_batch

log = logging.getLogger("packetbeat.publisher")


def run_publisher(settings, run_dir: str, publish: bool = True) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cluster = settings.cluster
    counters: collections.Counter = collections.Counter()
    hostname = socket.gethostname()
    enrich = Enricher(beat_name=settings.name or hostname, hostname=hostname, version=VERSION,
                      tags=settings.tags, fields=settings.fields,
                      fields_under_root=settings.fields_under_root,
                      data_path=(settings.path or {}).get("data", ""))
    out_cfg = next(iter(settings.output.values()))
    output = make_output(settings.output) if publish else None
    chunker = Chunker(chunk_size=int(out_cfg.get("bulk_max_size") or 2048),
                      max_chunk_bytes=10 * 1024 * 1024, flush_after_seconds=1.0)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, cluster["hwm"])
    pull.bind(endpoints.publisher(run_dir))
    coord = ctx.socket(zmq.PUSH)
    coord.connect(endpoints.coordinator(run_dir))
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    eos_needed = cluster["workers"]

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
    try:
        while eos_needed:
            if not poller.poll(250):
                write(chunker.poll(time.monotonic()))
                continue
            frames = pull.recv_multipart()
            try:
                header, body = decode_batch(frames)
            except WireError as exc:
                counters["publisher.bad_frames"] += 1
                log.error("dropped a bad frame: %s", exc)
                continue
            if header["kind"] == "events":
                now = time.monotonic()
                counters["publisher.events"] += len(body)
                for ev in body:
                    batch = chunker.feed(enrich(ev), now)
                    if batch:
                        write(batch)
                write(chunker.poll(now))
            elif header["kind"] == "eos":
                eos_needed -= 1
        write(chunker.flush())
    finally:
        if output is not None:
            output.close()
        if counters.get("publisher.failed"):
            rc = 1
        coord.send_multipart(encode_batch("stats", "publisher", 0, [dict(counters)]))
        pull.close(linger=0)
        coord.close(linger=-1)
        ctx.term()
    return rc
