"""A worker waits for one end-of-stream per capture; a repeated one counts once."""
from worker.process import CaptureStreams


def test_each_capture_ends_once():
    s = CaptureStreams(2)
    assert s.end("capture-0") is True
    assert s.open == 1
    # the coordinator ends capture-0's stream again: capture-1 is still open
    assert s.end("capture-0") is False
    assert s.open == 1
    assert s.end("capture-1") is True
    assert s.open == 0
    assert s.end("capture-1") is False
    assert s.open == 0


def test_a_forced_end_is_remembered():
    s = CaptureStreams(1)
    assert s.forced is False
    assert s.end("capture-0", forced=True) is True
    assert s.open == 0 and s.forced is True
