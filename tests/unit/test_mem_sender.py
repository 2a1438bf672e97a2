"""The memory queue's output thread: retries an unreachable output until it can, stops on request."""
from __future__ import annotations

import collections
import logging
import time

from coordinator.publisher.memqueue import MemQueue
from coordinator.publisher.outputs import OK, Result
from coordinator.publisher.sender import MemSender


class FlakyOutput:
    """Unreachable for the first ``down`` calls (or until ``up`` is set), then takes everything;
    ``bad`` lines are refused for good (a mapping error)."""

    def __init__(self, down: int = 0, bad=()):
        self.down = down
        self.calls = 0
        self.taken: list[bytes] = []
        self.bad = set(bad)

    def publish_batch(self, batch, lines=None):
        self.calls += 1
        lines = batch.lines
        if self.calls <= self.down:
            return [Result(False, "Elasticsearch at http://x:9200: connection refused", retry=True,
                           unreachable=True)] * len(lines)
        out = []
        for line in lines:
            if line in self.bad:
                out.append(Result(False, "400 mapper_parsing_exception"))
            else:
                self.taken.append(line)
                out.append(OK)
        return out

    def close(self):
        pass


def run(output, lines, backoff=(0.01, 0.04), on_connect=None):
    q = MemQueue(events=100, batch_size=10, flush_timeout=0)
    counters = collections.Counter()
    s = MemSender(q, output, counters, *backoff, on_connect=on_connect)
    s.start()
    q.put([None] * len(lines), lines)
    return q, s, counters


def test_unreachable_output_is_retried_until_it_takes_everything(caplog):
    caplog.set_level(logging.INFO, "packetbeat.publisher")
    out = FlakyOutput(down=6, bad=[b"7"])
    lines = [b"%d" % i for i in range(25)]
    q, s, counters = run(out, lines)
    q.close()
    assert s.join(10)
    assert sorted(out.taken) == sorted(x for x in lines if x != b"7")     # nothing dropped but the refused one
    assert counters["publisher.published"] == 24 and counters["publisher.failed"] == 1
    assert counters["publisher.retry_rounds"] == 6 and "publisher.not_delivered" not in counters
    text = caplog.text
    assert "connection refused; attempt 6 failed" in text and "output reachable again after" in text


def test_backoff_doubles_up_to_max():
    out = FlakyOutput(down=5)
    t0 = time.monotonic()
    q, s, counters = run(out, [b"a"], backoff=(0.05, 0.1))
    q.close()
    assert s.join(10)
    took = time.monotonic() - t0
    assert 0.05 + 0.1 + 0.1 + 0.1 + 0.1 <= took + 0.02 < 3            # 0.05, then capped at 0.1


def test_stop_gives_up_on_a_down_output_and_counts_what_is_left():
    out = FlakyOutput(down=10**9)
    q, s, counters = run(out, [b"%d" % i for i in range(25)], backoff=(5.0, 5.0))
    time.sleep(0.3)                                     # first attempt failed, waiting 5 s
    t0 = time.monotonic()
    s.stop()                                            # one last attempt, then gives up its batch
    time.sleep(0.3)
    s.abandon()                                         # the publisher's grace is over
    q.close()
    assert s.join(5) and time.monotonic() - t0 < 2
    assert s.not_delivered + len(q) == 25 and out.taken == []
    assert q.drain() + s.not_delivered == 25


def test_on_connect_runs_first_and_again_after_the_output_was_unreachable():
    calls = []

    def on_connect():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("Elasticsearch at http://x:9200: connection refused (loading the index template)")

    out = FlakyOutput(down=1)
    q, s, counters = run(out, [b"a", b"b"], on_connect=on_connect)
    q.close()
    assert s.join(10)
    # refused at setup, then set up, then the send was unreachable (set up again), then sent
    assert len(calls) == 3 and out.calls == 2 and sorted(out.taken) == [b"a", b"b"]
