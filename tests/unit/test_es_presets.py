"""output.elasticsearch.preset and queue.mem: each value set, and each taking effect."""
from __future__ import annotations

import threading
import time

import pytest

from coordinator.publisher.elasticsearch import (PRESETS, ElasticsearchConfig, ElasticsearchOutput,
                                                 preset_overrides)
from coordinator.publisher.memqueue import MemQueue, MemQueueConfig, check_queue, effective_queue
from coordinator.config import load_config
from shared.confutil import ConfigError, build
from tests.esserver import EsServer

# the table of Packetbeat 8's output documentation (preset: balanced, throughput, scale, latency)
DOCUMENTED = {
    "balanced": (1600, 1, 3200, 1600, 10.0, 1, 3.0, (1.0, 60.0)),
    "throughput": (1600, 4, 12800, 1600, 5.0, 1, 15.0, (1.0, 60.0)),
    "scale": (1600, 1, 3200, 1600, 20.0, 1, 1.0, (5.0, 300.0)),
    "latency": (50, 1, 4100, 2050, 1.0, 1, 60.0, (1.0, 60.0)),
}


def es_cfg(**raw) -> ElasticsearchConfig:
    return build(ElasticsearchConfig, raw, "output.elasticsearch")


@pytest.mark.parametrize("preset", sorted(DOCUMENTED))
def test_each_preset_sets_the_documented_values_over_explicit_ones(preset):
    # explicit settings the preset replaces (the documentation: "a performance preset will
    # override other configuration flags"); the ones it does not set stay
    cfg = es_cfg(preset=preset, bulk_max_size=7, worker=9, compression_level=6, idle_connection_timeout="99s",
                 timeout="7s", queue={"mem": {"events": 10, "flush": {"min_events": 5}}})
    bulk, worker, events, min_events, flush_timeout, level, idle, backoff = DOCUMENTED[preset]
    assert (cfg.bulk_max_size, cfg.worker, cfg.compression_level, float(cfg.idle_connection_timeout)) == \
        (bulk, worker, level, idle)
    assert (float(cfg.backoff.init), float(cfg.backoff.max)) == backoff
    kind, q = check_queue(cfg.queue)
    assert kind == "mem" and (q.events, q.flush.min_events, float(q.flush.timeout)) == \
        (events, min_events, flush_timeout)
    assert float(cfg.timeout) == 7.0
    assert preset_overrides(preset, {"worker": 9, "timeout": "7s", "queue": {"mem": {"events": 10}}}) == \
        ["queue.mem.events", "worker"]


def test_custom_and_default_apply_the_configuration_as_it_is():
    for cfg in (es_cfg(), es_cfg(preset="custom")):
        assert (cfg.preset, cfg.bulk_max_size, cfg.worker, cfg.compression_level, cfg.queue) == \
            ("custom", 1600, 1, 1, {})
    cfg = es_cfg(preset="custom", worker=3, bulk_max_size=10, queue={"mem": {"events": 50, "flush": {"timeout": "0s"}}})
    assert (cfg.worker, cfg.bulk_max_size) == (3, 10)
    assert preset_overrides("custom", {"worker": 3}) == []


@pytest.mark.parametrize("raw,key", [
    ({"preset": "fast"}, "output.elasticsearch.preset"),
    ({"idle_connection_timeout": "-1s"}, "output.elasticsearch.idle_connection_timeout"),
    ({"queue": {"mem": {"events": 0}}}, "output.elasticsearch.queue.mem.events"),
    ({"queue": {"mem": {}, "disk": {}}}, "output.elasticsearch.queue"),
    ({"queue": {"ram": {}}}, "output.elasticsearch.queue.ram"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ConfigError) as e:
        es_cfg(**raw)
    assert e.value.path == key


def test_the_stock_preset_balanced_loads_through_the_configuration(tmp_path):
    cfg = tmp_path / "pb.yml"
    cfg.write_text("output.elasticsearch:\n  hosts: ['localhost:9200']\n  preset: balanced\n  worker: 8\n"
                   "queue.mem.events: 100\n")
    settings = load_config(str(cfg), [])
    es = settings.output["elasticsearch"]
    assert (es["preset"], es["worker"], es["queue"]["mem"]["events"]) == ("balanced", 1, 3200)
    kind, q, note = effective_queue(settings)
    assert (kind, q.events, q.flush.min_events) == ("mem", 3200, 1600) and "replace" in note
    # a top-level disk queue is kept under a preset (see docs/elasticsearch.md)
    cfg.write_text("output.elasticsearch:\n  hosts: ['localhost:9200']\n  preset: throughput\n"
                   "queue.disk.path: %s\n" % (tmp_path / "q"))
    kind, q, note = effective_queue(load_config(str(cfg), []))
    assert kind == "disk" and "queue.disk is kept" in note


def test_every_preset_is_tested():
    assert set(PRESETS) == set(DOCUMENTED) | {"custom"}


# -- the values take effect -------------------------------------------------------

def test_queue_batches_are_min_of_bulk_max_size_and_min_events_and_wait_for_the_timeout():
    q = MemQueue.from_config(build(MemQueueConfig, {"events": 100, "flush": {"min_events": 10,
                                                                           "timeout": "300ms"}}, "q"), 50)
    assert (q.capacity, q.batch_size, q.flush_timeout) == (100, 10, 0.3)
    q.put([None] * 25, [b"x"] * 25)
    assert len(q.get()[1]) == 10 and len(q.get()[1]) == 10       # full batches at once
    t0 = time.monotonic()
    assert len(q.get()[1]) == 5                                  # the rest after flush.timeout
    assert 0.25 <= time.monotonic() - t0 < 2
    q2 = MemQueue.from_config(build(MemQueueConfig, {"flush": {"min_events": 0}}, "q"), 50)
    assert (q2.batch_size, q2.flush_timeout) == (50, 0.0)           # synchronous: whatever is there
    q2.put([None] * 3, [b"x"] * 3)
    t0 = time.monotonic()
    assert len(q2.get()[1]) == 3 and time.monotonic() - t0 < 0.2
    q2.close()
    assert q2.get() is None


def test_a_full_queue_makes_put_wait_until_the_output_takes_events():
    q = MemQueue(events=10, batch_size=5, flush_timeout=0)
    assert q.put([None] * 10, [b"x"] * 10)
    done = threading.Event()

    def putter():
        q.put([None] * 3, [b"y"] * 3)
        done.set()

    threading.Thread(target=putter, daemon=True).start()
    assert not done.wait(0.5)                   # full: waits
    assert len(q.get()[1]) == 5
    assert done.wait(2) and len(q) == 8
    assert q.put([None] * 2, [b"z"] * 2) and len(q) == 10
    assert not q.put([None] * 20, [b"z"] * 20, give_up=lambda: True) and len(q) == 10


def test_worker_compression_and_bulk_size_of_a_preset_reach_elasticsearch():
    """throughput: 4 workers (4 bulk requests at once for one batch), gzip level 1;
    latency: bulk_max_size 50 (the publisher's batches)."""
    with EsServer() as es:
        cfg = es_cfg(hosts=[es.url], preset="throughput", index="pb-%{+yyyy.MM.dd}")
        out = ElasticsearchOutput(cfg)
        assert out._pool is not None and out._pool._max_workers == 4
        seen = []
        orig = es.route

        def route(method, parts, params, body):
            if parts[-1:] == ["_bulk"]:
                seen.append(threading.current_thread().name)
            return orig(method, parts, params, body)

        es.route = route
        evs = [{"@timestamp": "2026-01-01T00:00:00Z", "n": i} for i in range(40)]
        assert all(r.ok for r in out.publish_batch(evs))
        assert len(seen) == 4 and es.count("pb-*") == 40
        out.close()
        q = MemQueue.from_config(build(MemQueueConfig, es_cfg(preset="latency").queue["mem"], "q"),
                                 es_cfg(preset="latency").bulk_max_size)
        assert q.batch_size == 50 and q.flush_timeout == 1.0


def test_idle_connection_timeout_closes_idle_connections():
    with EsServer() as es:
        for timeout, expect_open in (("200ms", 0), ("60s", 1)):
            out = ElasticsearchOutput(es_cfg(hosts=[es.url], idle_connection_timeout=timeout,
                                             index="pb-%{+yyyy.MM.dd}"))
            assert out.publish_batch([{"@timestamp": "2026-01-01T00:00:00Z"}])[0].ok
            time.sleep(0.4)
            out.close_idle()
            time.sleep(0.2)
            assert es.open_connections() == expect_open, timeout
            before = es.store.connections
            assert out.publish_batch([{"@timestamp": "2026-01-01T00:00:01Z"}])[0].ok   # reconnects
            assert es.store.connections == before + (1 - expect_open)
            out.close()
