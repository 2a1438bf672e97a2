"""Events/s one publisher pushes into the test Elasticsearch server.

    python bench/bench_es.py [--events N] [--bulk 1000] [--workers 1]

The server (tests/esserver.py) runs in its own process so it does not share
the publisher's GIL. Events are real ones (tests/golden/pcaps/http_sample.pcap
through the pipeline), enriched and encoded once. Two stages are timed, each
with compression off and on:

- ``output``: ``ElasticsearchOutput.publish_encoded`` of pre-encoded
  ``(index, id, line)`` items, bulk ``--bulk`` (the output thread's work);
- ``spooled``: the publisher's whole path with ``queue.disk``: worker
  batches as the workers send them (``shared.wire.encode_events``: msgpack
  of JSON texts; their encoding is the worker's cost, done before the
  clock starts) -> decode, accept (enrich by splicing, index, id, spool
  append) then output from the spool (bulk body by concatenation).

The server parses, stores and deduplicates every document (409 on a second
create of an id); its dynamic-mapping check (a Python walk of every
document's types, ~50 us per event, which the tests exercise) is off unless
``--server-mapping-check``, so that the wall rate measures the publisher and
not the single-process test server. Reported per run:
wall events/s, and events per CPU second of the publisher process (threads
included), which is what one publisher can push when Elasticsearch keeps up.
"""
from __future__ import annotations

import argparse
import collections
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench.common import ROOT, env_line  # noqa: E402

# gc off in the server process: it only keeps acyclic documents, and collections
# over 100k stored documents would be most of its time
SERVER = ("import gc, sys, time; gc.disable(); from tests.esserver import EsServer; "
          "es = EsServer(check_mappings=sys.argv[1] == '1').start(); "
          "print(es.port, flush=True); sys.stdin.read(); print(es.count(), flush=True)")


def sample_events() -> list[dict]:
    from tests.helpers import PCAPS, run_packetbeat
    with tempfile.TemporaryDirectory() as tmp:
        proc, events = run_packetbeat(pathlib.Path(tmp), PCAPS / "http_sample.pcap", workers=1)
        if proc.returncode != 0 or not events:
            raise SystemExit("reference run failed: %s" % proc.stderr[-2000:])
    for ev in events:
        for k in ("agent", "host", "ecs"):
            ev.pop(k, None)
    return events


def start_server(check_mappings: bool = False):
    p = subprocess.Popen([sys.executable, "-c", SERVER, "1" if check_mappings else "0"], cwd=str(ROOT), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    port = int(p.stdout.readline())
    return p, "http://127.0.0.1:%d" % port


def stop_server(p) -> tuple[int, float]:
    import psutil
    cpu = psutil.Process(p.pid).cpu_times()
    p.stdin.close()
    count = int(p.stdout.readline())
    p.wait()
    return count, cpu.user + cpu.system


def make_output(url: str, bulk: int, workers: int, compression: int):
    from coordinator.publisher.elasticsearch import ElasticsearchConfig, ElasticsearchOutput
    from shared.confutil import build
    cfg = build(ElasticsearchConfig, {"hosts": [url], "bulk_max_size": bulk, "worker": workers,
                                      "compression_level": compression, "index": "bench-%{+yyyy.MM.dd}"},
                "output.elasticsearch")
    return ElasticsearchOutput(cfg)


def bench_output(events, n, url, bulk, workers, compression) -> float:
    from coordinator.publisher.elasticsearch import event_id
    from coordinator.publisher.outputs import encode_event
    out = make_output(url, bulk, workers, compression)
    lines = [encode_event(e) for e in events]
    items = [(out.index(events[i % len(events)]), event_id("b:%d" % i, lines[i % len(lines)]),
              lines[i % len(lines)]) for i in range(n)]
    t0 = time.perf_counter()
    c0 = time.process_time()
    failed = 0
    for i in range(0, n, bulk):
        failed += sum(1 for r in out.publish_encoded(items[i:i + bulk]) if not r.ok)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out.close()
    if failed:
        raise SystemExit("%d events failed" % failed)
    return n / dt, n / cpu


def bench_spooled(events, n, url, bulk, workers, compression) -> float:
    from coordinator.publisher.enrich import Enricher
    from coordinator.publisher.reliable import SpooledPublisher
    from coordinator.publisher.spool import Spool
    from shared.wire import decode_batch, encode_events
    out = make_output(url, bulk, workers, compression)
    enrich = Enricher(beat_name="bench", hostname="bench", version="8.15.0", agent_id="a", ephemeral_id="e")
    batch = 256
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(tmp, max_size=4 << 30, fsync="never")
        counters: collections.Counter = collections.Counter()
        pub = SpooledPublisher(spool, out, enrich, 1, counters, bulk_max_size=bulk)
        frames = [encode_events("w0", seq, [events[j % len(events)] for j in range(i, min(n, i + batch))])
                  for seq, i in enumerate(range(0, n, batch))]       # what the workers send
        t0 = time.perf_counter()
        c0 = time.process_time()
        pub.start()
        seq = 0
        for f in frames:
            header, body = decode_batch(f)
            pub.accept(header, body)
            seq += 1
        pub.accept({"from": "w0", "seq": seq, "kind": "eos"}, [])
        pub.wait_drained(0.01)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        pub.stop()
    out.close()
    if counters["publisher.published"] != n:
        raise SystemExit("published %d of %d" % (counters["publisher.published"], n))
    return n / dt, n / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--bulk", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--stages", default="output,spooled", help="comma list of output, spooled")
    ap.add_argument("--compression", default="0,1", help="comma list of levels")
    ap.add_argument("--server-mapping-check", action="store_true",
                    help="keep the test server's dynamic-mapping check on (its own ~50 us/event type walk "
                         "then bounds the wall rate)")
    a = ap.parse_args()
    events = sample_events()
    print(env_line())
    print("events=%d bulk=%d worker=%d (sample of %d distinct events)" % (a.events, a.bulk, a.workers,
                                                                          len(events)))
    stages = {"output": bench_output, "spooled": bench_spooled}
    for stage in a.stages.split(","):
        fn = stages[stage]
        for comp in (int(c) for c in a.compression.split(",")):
            p, url = start_server(a.server_mapping_check)
            rate, per_cpu = fn(events, a.events, url, a.bulk, a.workers, comp)
            count, cpu = stop_server(p)
            assert count == a.events, (count, a.events)
            print("%-8s compression=%d  wall %7.0f events/s   publisher %7.0f events/cpu-s   "
                  "(server cpu %.1f s)" % (stage, comp, rate, per_cpu, cpu))


if __name__ == "__main__":
    main()
