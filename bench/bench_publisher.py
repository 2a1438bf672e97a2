"""The publisher's loop without sockets: decode event batches, enrich, chunk, file output.

    python bench/bench_publisher.py [--packets N] [--repeat R] [--profile]

The events are those the worker engine makes from the generated HTTP capture,
packed into wire batches of 256 as a worker sends them. Timed: decode_batch,
Enricher, Chunker (which JSON-encodes each event once) and FileOutput writing
to a temporary directory.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import env_line, http_capture, read_records  # noqa: E402
from coordinator.publisher.chunker import Chunker  # noqa: E402
from coordinator.publisher.enrich import Enricher  # noqa: E402
from coordinator.publisher.outputs import make_output  # noqa: E402
from shared.wire import decode_batch, encode_batch  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.registry import load_registry  # noqa: E402


def _frames(packets: int) -> tuple[list, int]:
    path, _ = http_capture(packets)
    records = [list(r) for r in read_records(path)]
    eng = Engine([{"type": "http", "ports": [80, 8080]}], load_registry())
    for i in range(0, len(records), 128):
        eng.handle(records[i:i + 128])
    eng.finish()
    events = eng.take_events()
    frames = [encode_batch("events", "worker-0", n, events[i:i + 256])
              for n, i in enumerate(range(0, len(events), 256))]
    return frames, len(events)


def _publish(frames: list, tmp: str) -> int:
    out = make_output({"file": {"path": tmp, "filename": "events", "rotate_every_kb": 1024 * 1024}})
    enrich = Enricher(beat_name="bench", hostname="bench", version="8.0.0")
    chunker = Chunker(chunk_size=2048, max_chunk_bytes=10 * 1024 * 1024, flush_after_seconds=1.0)
    written = 0
    for frame in frames:
        _, body = decode_batch(frame)
        now = time.monotonic()
        for ev in body:
            batch = chunker.feed(enrich(ev), now)
            if batch:
                written += sum(r.ok for r in out.publish_batch(batch))
        batch = chunker.poll(now)
        if batch:
            written += sum(r.ok for r in out.publish_batch(batch))
    batch = chunker.flush()
    if batch:
        written += sum(r.ok for r in out.publish_batch(batch))
    out.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    frames, n = _frames(a.packets)
    gc.collect()
    gc.freeze()        # the engine's records are not the publisher's: keep them out of GC passes
    best = None
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            if a.profile:
                import cProfile
                import pstats
                prof = cProfile.Profile()
                prof.enable()
            t0 = time.perf_counter()
            written = _publish(frames, tmp)
            dt = time.perf_counter() - t0
            if a.profile:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(12)
        if written != n:
            print("MISMATCH: wrote %d of %d events" % (written, n))
            sys.exit(1)
        rate = n / dt
        best = rate if best is None or rate > best else best
    from coordinator.publisher import outputs
    enc = "orjson" if getattr(outputs, "orjson", None) is not None else "stdlib json"
    print("publisher (decode+enrich+chunk+file, %s): %d events: best %.0f events/s  [%s]"
          % (enc, n, best, env_line()))


if __name__ == "__main__":
    main()
