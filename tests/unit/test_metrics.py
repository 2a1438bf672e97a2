"""shared/metrics.py and coordinator/monitor.py: deltas, nesting, the reporter thread, the log line."""
from __future__ import annotations

import collections
import json
import logging
import time
import urllib.request

import pytest
import zmq

from coordinator.monitor import Monitor, MonitorError, go_duration
from shared.confutil import ConfigError
from shared.metrics import StatsReporter, check_config, delta, nest, report_period
from shared.wire import decode_batch


class _S:
    def __init__(self, metrics=None, http=None, name=""):
        self.logging = {"metrics": metrics or {}}
        self.raw = {"http": http} if http is not None else {}
        self.name = name


def test_delta_and_nest():
    reported: dict = {}
    assert delta({"a.b": 3, "c": 0, "e": "x"}, reported) == {"a.b": 3}
    assert delta({"a.b": 5, "c": 2}, reported) == {"a.b": 2, "c": 2}
    assert delta({"a.b": 5, "c": 2}, reported) == {}
    assert nest({"tcp.packets": 9, "tcp.gap.bytes": 3, "tcp.gap": 1, "x": 1}) == \
        {"tcp": {"packets": 9, "gap": {"bytes": 3, "value": 1}}, "x": 1}


def test_config_checks_and_period():
    assert report_period(_S()) == 1.0               # progress and the endpoint stay current
    assert report_period(_S({"period": "500ms"})) == 0.5
    assert report_period(_S({"enabled": False})) == 1.0
    assert report_period(_S({"enabled": False}, {"enabled": True})) == 1.0
    with pytest.raises(ConfigError, match="logging.metrics.period: must be a positive duration"):
        check_config(_S({"period": "0s"}))
    with pytest.raises(ConfigError, match="http.port: expected an integer"):
        check_config(_S(http={"port": "x"}))
    with pytest.raises(ConfigError, match="http.hots: unknown option"):
        check_config(_S(http={"hots": "a"}))
    assert [go_duration(s) for s in (30, 0.5, 1.5, 90)] == ["30s", "500ms", "1.5s", "1m30s"]


def test_reporter_sends_deltas_that_add_up(tmp_path):
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    ep = "ipc://%s/coord" % tmp_path
    pull.bind(ep)
    counters: collections.Counter = collections.Counter()
    rep = StatsReporter(ctx, ep, "worker-0", counters, 0.05)
    got = []
    for i in range(30):
        counters["worker.packets"] += 10
        if i % 3 == 0:
            counters["tcp.gaps"] += 1
        time.sleep(0.01)
    rep.stop({"error": "boom"})
    while pull.poll(200):
        header, body = decode_batch(pull.recv_multipart())
        assert header["kind"] == "stats" and header["from"] == "worker-0"
        got.append(body[0])
    pull.close(0)
    ctx.term()
    assert len(got) >= 3                                   # several periodic reports, then the rest
    total: collections.Counter = collections.Counter()
    for d in got:
        total.update({k: v for k, v in d.items() if k != "error"})
    assert total == {"worker.packets": 300, "tcp.gaps": 10}
    assert got[-1].get("error") == "boom" and all("error" not in d for d in got[:-1])


def test_monitor_logs_changes_and_serves_stats(caplog):
    totals: collections.Counter = collections.Counter()
    mon = Monitor(_S({"period": "1s"}, {"enabled": True, "host": "127.0.0.1", "port": 0}, name="pb"), totals)
    mon.start()
    try:
        caplog.set_level(logging.INFO, logger="packetbeat.monitoring")
        t0 = mon.started
        totals.update({"capture.packets": 100, "worker.events": 7})
        mon.tick(t0 + 0.5)                                 # not yet
        mon.tick(t0 + 1.0)
        totals.update({"capture.packets": 50})
        mon.tick(t0 + 2.0)
        mon.tick(t0 + 3.0)                                 # nothing changed: no line
        url = "http://%s:%d" % mon.address
        stats = json.load(urllib.request.urlopen(url + "/stats", timeout=5))
        assert stats["capture"]["packets"] == 150 and stats["worker"]["events"] == 7
        assert stats["beat"]["info"]["uptime"]["ms"] >= 0
        info = json.load(urllib.request.urlopen(url + "/", timeout=5))
        assert info["beat"] == "packetbeat" and info["name"] == "pb"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "/nope", timeout=5)
        # a second endpoint on the same port: a clear error
        other = Monitor(_S(http={"enabled": True, "host": "127.0.0.1", "port": mon.address[1]}), totals)
        with pytest.raises(MonitorError, match="cannot serve the stats endpoint on 127.0.0.1:%d" % mon.address[1]):
            other.start()
    finally:
        mon.finish()
    lines = [r.getMessage() for r in caplog.records if "Non-zero metrics" in r.getMessage()]
    assert len(lines) == 2, lines
    first = json.loads(lines[0].split("\t", 1)[1])["monitoring"]["metrics"]
    assert lines[0].startswith("Non-zero metrics in the last 1s\t")
    assert first["capture"] == {"packets": 100} and first["worker"] == {"events": 7}
    second = json.loads(lines[1].split("\t", 1)[1])["monitoring"]["metrics"]
    assert second["capture"] == {"packets": 50} and "worker" not in second
