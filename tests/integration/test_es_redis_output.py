"""output.redis against the real Redis server on 127.0.0.1:6379 (skipped when absent)."""
from __future__ import annotations

import json
import uuid

import pytest

from coordinator.publisher.outputs import make_output
from coordinator.publisher.redis_out import RedisConfig, RedisOutput
from shared.confutil import ConfigError, build
from tests.helpers import PCAPS, run_packetbeat

redis = pytest.importorskip("redis")


@pytest.fixture
def rds():
    r = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        r.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    keys = []
    yield r, keys
    if keys:
        r.delete(*keys)
    r.close()


def out_for(**raw):
    return RedisOutput(build(RedisConfig, raw, "output.redis"), sleep=lambda s: None)


def test_list_push_in_order_with_key_format(rds):
    r, keys = rds
    base = "pbtest-%s" % uuid.uuid4().hex[:8]
    keys += [base + "-http", base + "-dns"]
    out = out_for(hosts=["127.0.0.1:6379"], key=base + "-%{[type]}")
    evs = [{"type": "http" if i % 3 else "dns", "n": i} for i in range(30)]
    res = out.publish_batch(evs)
    assert all(x.ok for x in res)
    http = [json.loads(x) for x in r.lrange(base + "-http", 0, -1)]
    dns = [json.loads(x) for x in r.lrange(base + "-dns", 0, -1)]
    assert [e["n"] for e in http] == [i for i in range(30) if i % 3]
    assert [e["n"] for e in dns] == [i for i in range(0, 30, 3)]
    assert out.stats.events == 30
    out.close()


def test_channel_publish(rds):
    r, _ = rds
    chan = "pbtest-%s" % uuid.uuid4().hex[:8]
    ps = r.pubsub()
    ps.subscribe(chan)
    assert ps.get_message(timeout=2)["type"] == "subscribe"
    out = out_for(hosts=["127.0.0.1"], key=chan, datatype="channel")
    assert all(x.ok for x in out.publish_batch([{"n": 1}, {"n": 2}]))
    got = [json.loads(ps.get_message(timeout=2)["data"]) for _ in range(2)]
    assert got == [{"n": 1}, {"n": 2}]
    ps.close()


def test_dead_host_backed_off_and_next_used(rds):
    r, keys = rds
    key = "pbtest-%s" % uuid.uuid4().hex[:8]
    keys.append(key)
    out = out_for(hosts=["127.0.0.1:1", "127.0.0.1:6379"], key=key, timeout="1s")
    for _ in range(3):
        assert all(x.ok for x in out.publish_batch([{"n": 1}]))
    assert r.llen(key) == 3
    assert out._fails[0] == 1                     # tried once, then skipped while backed off
    only_dead = out_for(hosts=["127.0.0.1:1"], key=key, max_retries=1, timeout="1s")
    res = only_dead.publish_batch([{"n": 1}])
    assert not res[0].ok and res[0].retry


def test_config_errors():
    for raw, key in (({"datatype": "set"}, "output.redis.datatype"), ({"hosts": ["x:port"]}, "output.redis.hosts"),
                     ({"db": 99}, "output.redis.db")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            build(RedisConfig, raw, "output.redis")


def test_pipeline_into_redis(rds, tmp_path):
    r, keys = rds
    key = "pbtest-%s" % uuid.uuid4().hex[:8]
    keys.append(key)
    proc, _ = run_packetbeat(tmp_path, PCAPS / "http_sample.pcap",
                             extra_cfg={"output.file": {"enabled": False},
                                        "output.redis": {"hosts": ["127.0.0.1:6379"], "key": key}})
    assert proc.returncode == 0, proc.stderr[-2000:]
    evs = [json.loads(x) for x in r.lrange(key, 0, -1)]
    assert len(evs) == 30 and all(e["type"] == "http" for e in evs)
    assert isinstance(make_output({"redis": {"key": key}}), RedisOutput)
