"""coordinator/progress.py without processes: the lines it writes, from totals and a clock."""
from __future__ import annotations

import io
import types

from coordinator.progress import Progress, describe_output, summary


def _settings(output=None, role="all", workers=2):
    return types.SimpleNamespace(output=output if output is not None else {"file": {"path": "/o", "filename": "ev"}},
                                 cluster={"role": role, "workers": workers, "shards": ["tcp://b:7000"]})


def test_lines_without_a_terminal(tmp_path):
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"\0" * 2_000_000)
    out = io.StringIO()
    now = [100.0]
    p = Progress(_settings(), str(pcap), loops=1, stream=out, tty=False, interval=10.0, clock=lambda: now[0])
    p.start()
    totals = {"capture.packets": 900, "capture.skipped_empty_tcp": 100, "publisher.published": 40}
    p.tick(totals, None, now=105.0)                   # before the interval: nothing
    p._last = 500_000                                  # what the capture's file offset said
    now[0] = 110.0
    p.tick(totals, None)
    totals = dict(totals, **{"capture.packets": 1800, "publisher.published": 90, "publisher.failed": 3})
    p.reading_done()
    now[0] = 120.0
    p.tick(totals, None)
    line = p.finish(dict(totals, **{"capture.cut_connections": 4, "capture.cut_transactions": 2}), 1,
                    ["worker-1 died"], now=121.0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "packetbeat: reading %s (2.0 MB) with 2 worker(s), events to file /o/ev*" % pcap
    assert lines[1] == "packetbeat: 25% of x.pcap (500.0 kB of 2.0 MB), 1000 packets (0/s), 40 events, 0 dropped, 10 s"
    assert lines[2] == "packetbeat: 100% of x.pcap (2.0 MB of 2.0 MB), 1900 packets (90/s), 90 events, 3 dropped, 20 s"
    assert line == lines[3] == ("packetbeat: done: 1900 packets in 21.0 s (1800 analysed), 90 events to file /o/ev*; "
                                "3 events failed, 2 transactions on 4 connections cut by a worker restart, "
                                "exit 1: 1 error(s) below")


def test_summary_and_outputs():
    s = _settings({"elasticsearch": {"hosts": ["http://es:9200"]}})
    assert summary(s, {"capture.packets": 5, "publisher.published": 2, "publisher.spooled_waiting": 7}, 1.0, True,
                   0, []) == ("packetbeat: done: 5 packets in 1.0 s, 2 events to Elasticsearch http://es:9200; "
                              "7 events wait in the disk queue")
    assert summary(_settings(), {"capture.packets": 5, "publisher.discarded": 3}, 2.0, False, 0, [],
                   stopped="1.0 MB of 2.0 MB read") == \
        "packetbeat: done: stopped on request (1.0 MB of 2.0 MB read), 5 packets in 2.0 s, 3 events not published (-N)"
    assert describe_output(_settings(role="capture"), True) == "analysed on the worker host(s) tcp://b:7000"
    assert describe_output(_settings({"console": {}}), True) == "to the console (stdout)"
    assert describe_output(_settings({"redis": {"hosts": ["r:6379"], "key": "k"}}), True) == "to Redis r:6379 (key k)"
    assert describe_output(_settings({"file": {"enabled": False}, "console": {}}), True) == "to the console (stdout)"
