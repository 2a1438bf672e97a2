"""CPU per packet of each stage of the file pipeline, one process, no sockets: the scaling model's inputs.

    python bench/bench_stages.py [--packets N] [--capture mixed|small] [--workers W] [--repeat R]

Stages, each timed with ``time.process_time`` (best of ``--repeat``), over the
generated capture (bench/common.py ``http_capture``):

- ``read``: the capture file's records (coordinator/capture/pcapfile.py), nothing else;
- ``split read``: read + the ownership decision of one of two file captures
  (coordinator/capture/filesplit.py ``ShareFilter``): what each capture process of
  ``cluster.captures`` > 1 spends on the packets it does not forward;
- ``capture``: read + decode + shard + batch (coordinator/capture/process.py ``Sharder``)
  + msgpack of every batch (``shared.wire.encode_batch``), what a file capture process
  does short of the socket send;
- ``worker``: what the workers do with those batches: ``decode_batch`` + the engine
  (decode, TCP, HTTP analyser, events) + JSON of the events (``encode_events``);
- ``publisher``: decode of the event batches, enrichment, chunking, file output
  (as bench/bench_publisher.py, wire=json).

Every figure is printed per packet of the capture (all packets, the empty ACKs
the capture skips included), so the stages add up to the pipeline's CPU per
packet; the worker is also given per packet it receives, the publisher per event.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import CAPTURES, compiled_line, env_line, http_capture  # noqa: E402


def best_cpu(fn, repeat: int):
    """(smallest CPU seconds of ``fn()`` over ``repeat`` runs, its last result)."""
    best = None
    out = None
    for _ in range(repeat):
        gc.collect()
        c0 = time.process_time()
        out = fn()
        dt = time.process_time() - c0
        best = dt if best is None or dt < best else best
    return best, out


def stage_read(path):
    from coordinator.capture.pcapfile import open_capture
    r = open_capture(str(path))
    n = 0
    try:
        for _ in r:
            n += 1
    finally:
        r.close()
    return n


def stage_split_read(path, workers: int):
    from coordinator.capture.filesplit import ShareFilter
    from coordinator.capture.pcapfile import open_capture
    r = open_capture(str(path))
    n = 0
    try:
        for _ in ShareFilter(0, 2, workers).records(iter(r)):
            n += 1
    finally:
        r.close()
    return n


def stage_capture(path, workers: int):
    """Every shard's encoded batches, as the capture sends them."""
    from coordinator.capture.pcapfile import open_capture
    from coordinator.capture.process import Sharder
    from shared.wire import encode_batch
    frames: list = [[] for _ in range(workers)]
    seqs = [0] * workers

    def send(i, records):
        frames[i].append(encode_batch("pkts", "capture-0", seqs[i], records))
        seqs[i] += 1
    sh = Sharder(workers, send)
    r = open_capture(str(path))
    try:
        sh.feed(iter(r))
    finally:
        r.close()
    sh.flush()
    return frames, sh.counters["capture.packets"]


def stage_worker(frames: list):
    """Each shard's frames through a fresh engine, as a worker; returns the event frames."""
    from shared.wire import decode_batch, encode_events
    from worker.engine import Engine
    from worker.process import tune_gc
    from worker.protos.registry import load_registry
    old = gc.get_threshold()
    tune_gc()                    # as the worker process (the frames are frozen with the rest: a worker holds few)
    reg = load_registry()
    out = []
    events = 0
    for shard, shard_frames in enumerate(frames):
        eng = Engine([{"type": "http", "ports": [80, 8080]}], reg)
        name = "worker-%d" % shard
        seq = 0
        for f in shard_frames:
            _, body = decode_batch(f)
            eng.handle(body)
            evs = eng.take_events()
            for i in range(0, len(evs), 256):
                out.append(encode_events(name, seq, evs[i:i + 256]))
                seq += 1
            events += len(evs)
        eng.finish()
        evs = eng.take_events()
        for i in range(0, len(evs), 256):
            out.append(encode_events(name, seq, evs[i:i + 256]))
            seq += 1
        events += len(evs)
    gc.unfreeze()
    gc.set_threshold(*old)
    return out, events


def stage_publisher(frames: list) -> int:
    from bench.bench_publisher import _publish
    with tempfile.TemporaryDirectory() as tmp:
        return _publish(frames, tmp)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--capture", default="mixed", choices=CAPTURES)
    ap.add_argument("--workers", type=int, default=2, help="shards the capture stage makes")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    path, transactions = http_capture(a.packets, kind=a.capture)
    t_read, packets = best_cpu(lambda: stage_read(path), a.repeat)
    t_split, _ = best_cpu(lambda: stage_split_read(path, a.workers), a.repeat)
    t_cap, (frames, forwarded) = best_cpu(lambda: stage_capture(path, a.workers), a.repeat)
    t_wrk, (ev_frames, events) = best_cpu(lambda: stage_worker(frames), a.repeat)
    t_pub, written = best_cpu(lambda: stage_publisher(ev_frames), a.repeat)
    if events != transactions or written != events:
        print("MISMATCH: %d transactions, %d events, %d written" % (transactions, events, written))
        sys.exit(1)
    us = 1e6 / packets
    total = t_cap + t_wrk + t_pub
    print("stages (%s capture, %d packets, %d forwarded to %d shards, %d events; CPU, best of %d):"
          % (a.capture, packets, forwarded, a.workers, events, a.repeat))
    print("  read       %6.2f us/packet  (%.0f packets per CPU-s)" % (t_read * us, packets / t_read))
    print("  split read %6.2f us/packet  (%.0f packets per CPU-s; each capture of cluster.captures > 1)"
          % (t_split * us, packets / t_split))
    print("  capture    %6.2f us/packet  (%.0f packets per CPU-s; read included)" % (t_cap * us, packets / t_cap))
    print("  worker     %6.2f us/packet  (%.0f packets per CPU-s; %.2f us per forwarded packet)"
          % (t_wrk * us, packets / t_wrk, t_wrk * 1e6 / forwarded))
    print("  publisher  %6.2f us/packet  (%.0f events per CPU-s; %.2f events/packet)"
          % (t_pub * us, events / t_pub, events / packets))
    print("  sum        %6.2f us/packet  (one core: %.0f packets/s)  %s  [%s]"
          % (total * us, packets / total, compiled_line(), env_line()))


if __name__ == "__main__":
    main()
