"""The publisher's loop without sockets: decode event batches, enrich, chunk, file output.

    python bench/bench_publisher.py [--packets N] [--repeat R] [--profile] [--wire json,dicts]

The events are those the worker engine makes from the generated HTTP capture,
packed into wire batches of 256 as a worker sends them. Timed: decode_batch,
enrichment, Chunker and FileOutput writing to a temporary directory.
``--wire json`` (today's wire: workers send JSON text, the publisher splices
its keys in, as coordinator/publisher/process.py does) and ``dicts`` (the
previous wire: msgpack event maps, enriched as dicts, encoded by the
Chunker) are run alternately in the same process for an A/B.
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
from shared.wire import decode_batch, encode_batch, encode_events  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.registry import load_registry  # noqa: E402


def _frames(packets: int, wire: str = "json") -> tuple[list, int]:
    path, _ = http_capture(packets)
    records = [list(r) for r in read_records(path)]
    eng = Engine([{"type": "http", "ports": [80, 8080]}], load_registry())
    for i in range(0, len(records), 128):
        eng.handle(records[i:i + 128])
    eng.finish()
    events = eng.take_events()
    if wire == "json":
        frames = [encode_events("worker-0", n, events[i:i + 256])
                  for n, i in enumerate(range(0, len(events), 256))]
    else:
        frames = [encode_batch("events", "worker-0", n, events[i:i + 256])
                  for n, i in enumerate(range(0, len(events), 256))]
    return frames, len(events)


def _publish(frames: list, tmp: str) -> int:
    out = make_output({"file": {"path": tmp, "filename": "events", "rotate_every_kb": 1024 * 1024}})
    enrich = Enricher(beat_name="bench", hostname="bench", version="8.0.0")
    chunker = Chunker(chunk_size=2048, max_chunk_bytes=10 * 1024 * 1024, flush_after_seconds=1.0)
    written = 0
    for frame in frames:
        header, body = decode_batch(frame)
        now = time.monotonic()
        flags = enrich.clean_positions(header, len(body)) if header.get("enc") == "json" else None
        for i, ev in enumerate(body):
            if type(ev) is bytes:
                batch = chunker.feed(None, now, enrich.enrich_line(ev, flags[i] if flags else None))
            else:
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
    ap.add_argument("--wire", default="json,dicts", help="comma list of json, dicts (run alternately)")
    a = ap.parse_args()
    wires = a.wire.split(",")
    sets = {w: _frames(a.packets, w) for w in wires}
    gc.collect()
    gc.freeze()        # the engine's records are not the publisher's: keep them out of GC passes
    best: dict = {}
    for _ in range(a.repeat):
        for w in wires:                     # interleaved A/B
            frames, n = sets[w]
            with tempfile.TemporaryDirectory() as tmp:
                if a.profile:
                    import cProfile
                    import pstats
                    prof = cProfile.Profile()
                    prof.enable()
                t0 = time.perf_counter()
                c0 = time.process_time()
                written = _publish(frames, tmp)
                cpu = time.process_time() - c0
                dt = time.perf_counter() - t0
                if a.profile:
                    prof.disable()
                    pstats.Stats(prof).sort_stats("tottime").print_stats(12)
            if written != n:
                print("MISMATCH: wrote %d of %d events" % (written, n))
                sys.exit(1)
            wall, per_cpu = best.get(w, (0, 0))
            best[w] = (max(wall, n / dt), max(per_cpu, n / cpu))
    from coordinator.publisher import outputs
    enc = "orjson" if getattr(outputs, "orjson", None) is not None else "stdlib json"
    for w in wires:
        print("publisher (decode+enrich+chunk+file, %s, wire=%s): %d events: best %.0f events/s wall, "
              "%.0f events/cpu-s  [%s]" % (enc, w, sets[w][1], best[w][0], best[w][1], env_line()))


if __name__ == "__main__":
    main()
