"""The whole pipeline (coordinator, capture, N workers, publisher) on real captures."""
from __future__ import annotations

import struct

import pytest

from tests.helpers import CONFORMANCE, PCAPS, canonical, run_packetbeat

SAMPLE = PCAPS / "http_sample.pcap"


def need(path):
    if not path.exists():
        pytest.skip("%s is absent" % path)
    return path


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    need(SAMPLE)
    runs = {}
    for n in (1, 2, 8):
        proc, events = run_packetbeat(tmp_path_factory.mktemp("w%d" % n), SAMPLE, workers=n)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[n] = events
    return runs


def test_sample_produces_http_transactions(sample_runs):
    events = sample_runs[1]
    assert len(events) >= 20
    for ev in events:
        assert ev["type"] == "http"
        assert ev["event"]["dataset"] == "http"
        assert ev["agent"]["type"] == "packetbeat"
        assert ev["network"]["transport"] == "tcp"
        assert isinstance(ev["source"]["port"], int) and isinstance(ev["destination"]["port"], int)
    paired = [e for e in events if "duration" in e["event"]]
    assert paired, "no request/response pairs"
    for ev in paired:
        assert ev["event"]["duration"] >= 0
        assert ev["http"]["response"]["status_code"] >= 100
        assert ev["status"] == ("Error" if ev["http"]["response"]["status_code"] >= 400 else "OK")


def test_identical_output_for_1_2_8_workers(sample_runs):
    assert canonical(sample_runs[1]) == canonical(sample_runs[2]) == canonical(sample_runs[8])


def test_loop_replays_the_file(tmp_path, sample_runs):
    proc, events = run_packetbeat(tmp_path, need(SAMPLE), workers=2, args=["-l", "3"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(events) == 3 * len(sample_runs[1])
    # time only moves forward between loops: every replay has its own timestamps
    assert len({e["@timestamp"] + str(e["source"]["port"]) for e in events}) >= len(events) // 2


def test_no_publish_flag_writes_nothing(tmp_path):
    proc, events = run_packetbeat(tmp_path, need(SAMPLE), args=["-N"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert events == []


def test_truncated_capture_keeps_what_was_read(tmp_path, sample_runs):
    data = need(SAMPLE).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    proc, events = run_packetbeat(tmp_path, cut, workers=2)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "truncated" in proc.stderr.lower() or "cut.pcap" in proc.stderr
    assert 0 < len(events) <= len(sample_runs[1])


def test_garbage_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all" * 10)
    proc, events = run_packetbeat(tmp_path, bad)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "bad.pcap" in proc.stderr
    assert events == []


def test_conformance_capture_over_vlan(tmp_path):
    pcap = CONFORMANCE / "pcaps" / "http_over_vlan.pcap"
    if not pcap.exists():
        pytest.skip("../shared/conformance is absent; this test reads its captures in place")
    proc, events = run_packetbeat(tmp_path, pcap, workers=2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [e["http"]["response"]["status_code"] for e in events if "response" in e.get("http", {})]
