"""Acknowledged worker -> publisher delivery and the spooled publisher (no network output)."""
from __future__ import annotations

import collections
import json

import zmq

from coordinator.publisher.outputs import OK, Result
from coordinator.publisher.reliable import SpooledPublisher
from coordinator.publisher.spool import Spool
from shared.delivery import AckedSender, ack_frames
from shared.wire import decode_batch, encode_batch


def router(ctx, endpoint):
    r = ctx.socket(zmq.ROUTER)
    r.bind(endpoint)
    return r


def recv(r, timeout_ms=2000):
    assert r.poll(timeout_ms), "nothing received"
    frames = r.recv_multipart()
    header, body = decode_batch(frames[1:])
    return frames[0], header, body


def test_sender_window_acks_and_resend_after_publisher_restart(tmp_path):
    ctx = zmq.Context()
    ep = "ipc://%s" % (tmp_path / "pub")
    r = router(ctx, ep)
    s = AckedSender(ctx, ep, "worker-0", window=2, resend_after=0.2)
    try:
        s.send(0, encode_batch("events", "worker-0", 0, [{"a": 0}]))
        s.send(1, encode_batch("events", "worker-0", 1, [{"a": 1}]))
        ident, h0, b0 = recv(r)
        assert ident == b"worker-0" and h0["seq"] == 0 and b0 == [{"a": 0}]
        assert recv(r)[1]["seq"] == 1
        r.send_multipart(ack_frames(ident, 0))          # cumulative: 0 done
        s.send(2, encode_batch("events", "worker-0", 2, [{"a": 2}]))   # window had room after the ack
        assert list(s.unacked) == [1, 2]
        assert recv(r)[1]["seq"] == 2
        # the publisher dies with 1 and 2 unacknowledged; a new one binds the same endpoint
        r.close(linger=0)
        r = router(ctx, ep)
        assert not s.flush(timeout=0.1)                  # nothing acks now
        got = []
        while len(got) < 2:
            s._wait()                                    # no ack: resend everything unacked
            while r.poll(100):
                got.append(decode_batch(r.recv_multipart()[1:])[0]["seq"])
        assert got[:2] == [1, 2] and s.resends >= 2
        r.send_multipart(ack_frames(b"worker-0", 2))
        assert s.flush(timeout=2.0) and not s.unacked and s.acked == 2
    finally:
        s.close()
        r.close(linger=0)
        ctx.term()


class FakeOutput:
    """publish_encoded that rejects (retryably) the items listed in ``flaky`` once."""

    def __init__(self, flaky=(), bad=()):
        self.flaky = set(flaky)
        self.bad = set(bad)
        self.sent: list[str] = []
        self.index = lambda ev: "idx"
        self.bulk_max_size = 1000

    def publish_encoded(self, items):
        out = []
        for _, doc_id, line in items:
            self.sent.append(doc_id)
            n = line
            if n in self.flaky:
                self.flaky.discard(n)
                out.append(Result(False, "429", retry=True))
            elif n in self.bad:
                out.append(Result(False, "400 mapper_parsing_exception"))
            else:
                out.append(OK)
        return out


class Enrich:
    ephemeral_id = "EPH"

    def __call__(self, ev):
        ev["agent"] = {"ephemeral_id": self.ephemeral_id}
        return ev


def publisher(tmp_path, output, workers=1):
    spool = Spool(str(tmp_path / "spool"), max_size=1 << 20, segment_size=4096, fsync="never")
    return SpooledPublisher(spool, output, Enrich(), workers, collections.Counter(), bulk_max_size=4,
                            backoff_init=0.01, backoff_max=0.02, sleep=lambda s: None)


def hdr(worker, seq, kind="events"):
    return {"from": worker, "seq": seq, "kind": kind}


def test_accept_in_order_duplicates_and_gaps(tmp_path):
    pub = publisher(tmp_path, FakeOutput())
    assert pub.accept(hdr("w0", 0), [{"n": 0}]) == 0
    assert pub.accept(hdr("w0", 0), [{"n": 0}]) == 0        # duplicate: acked again, not spooled
    assert pub.accept(hdr("w0", 2), [{"n": 2}]) == 0        # gap: not taken
    assert pub.accept(hdr("w0", 1), [{"n": 1}]) == 1
    assert pub.spool.end == 2
    assert pub.counters["publisher.duplicates"] == 1 and pub.counters["publisher.gaps"] == 1


def test_drain_retries_only_failed_items_and_acks(tmp_path):
    line2 = b'{"n":2,"agent":{"ephemeral_id":"EPH"}}'
    out = FakeOutput(flaky={line2}, bad={b'{"n":3,"agent":{"ephemeral_id":"EPH"}}'})
    pub = publisher(tmp_path, out)
    pub.accept(hdr("w0", 0), [{"n": i} for i in range(5)])
    pub.accept(hdr("w0", 1, "eos"), [])
    assert pub.finished
    while pub.drain_once():
        pass
    assert len(out.sent) == 6 and len(set(out.sent)) == 5      # only the 429 item went twice
    assert pub.counters["publisher.published"] == 4 and pub.counters["publisher.failed"] == 1
    assert pub.spool.pending == 0
    assert pub.spool.meta == {"last_seq": {"w0": 1}, "done": ["w0"],
                              "counters": {"publisher.published": 4, "publisher.failed": 1}}


def test_restart_resumes_from_spool_with_same_ids(tmp_path):
    out = FakeOutput()
    pub = publisher(tmp_path, out, workers=2)
    pub.accept(hdr("w0", 0), [{"n": 0}, {"n": 1}])
    pub.accept(hdr("w1", 0), [{"n": 9}])
    pub.drain_once()                                            # all three go out, record(s) acked
    pub.accept(hdr("w0", 1), [{"n": 2}])
    pub.accept(hdr("w0", 2, "eos"), [])
    first_ids = list(out.sent)
    pub.spool.close()                                           # crash: nothing else happens
    out2 = FakeOutput()
    pub2 = publisher(tmp_path, out2, workers=2)
    assert pub2.last_seq == {"w0": 2, "w1": 0} and pub2.done == {"w0"}
    assert pub2.accept(hdr("w0", 1), [{"n": 2}]) == 2           # resent after the crash: duplicate
    while pub2.drain_once():
        pass
    assert len(out2.sent) == 1 and out2.sent[0] not in first_ids
    # the spooled id is the one computed when the batch was accepted: origin and the worker's text
    from coordinator.publisher.elasticsearch import event_id
    assert event_id("w0:1:0", b'{"n":2}') == out2.sent[0]


def test_the_next_run_outputs_what_an_earlier_run_left_and_takes_its_own_batches(tmp_path):
    """Run A spools everything with the output down and ends; run B (a new run id) must
    output A's events and take its own workers' batches from seq 0 again. A publisher
    restarted within run B resumes B's state and skips A's records for it."""
    def make(run, output):
        spool = Spool(str(tmp_path / "spool"), max_size=1 << 20, segment_size=4096, fsync="never")
        return SpooledPublisher(spool, output, Enrich(), 1, collections.Counter(), bulk_max_size=4,
                                backoff_init=0.01, backoff_max=0.02, sleep=lambda s: None, run_id=run)
    a = make("A", FakeOutput())
    for seq in range(3):
        assert a.accept(hdr("w0", seq), [{"run": "A", "n": seq}]) == seq
    a.accept(hdr("w0", 3, "eos"), [])
    assert a.finished and a.waiting_events() == (4, 3)
    a.spool.close()

    class Lines(FakeOutput):
        def publish_encoded(self, items):
            self.lines = getattr(self, "lines", []) + [line for _, _, line in items]
            return FakeOutput.publish_encoded(self, items)
    out = Lines()
    b = make("B", out)
    assert not b.finished and b.last_seq == {}
    assert b.accept(hdr("w0", 0), [{"run": "B", "n": 0}]) == 0       # not a duplicate of A's seq 0
    b.spool.close()
    b2 = make("B", out)                       # restarted within run B
    assert b2.last_seq == {"w0": 0} and not b2.finished
    assert b2.accept(hdr("w0", 1, "eos"), []) == 1 and b2.finished
    while b2.drain_once():
        pass
    sent = sorted(json.loads(x)["run"] + str(json.loads(x)["n"]) for x in out.lines)
    assert sent == ["A0", "A1", "A2", "B0"] and b2.spool.pending == 0


def test_output_counters_of_the_run_survive_a_publisher_restart(tmp_path):
    """The spool state keeps the run's published/failed counts with each acknowledgement;
    a publisher restarted within the run starts from them (events sent again after the
    restart, never acknowledged before it, are counted once: by the new process)."""
    def make(counters):
        spool = Spool(str(tmp_path / "spool"), max_size=1 << 20, segment_size=4096, fsync="never")
        bad = {b'{"n":-1,"agent":{"ephemeral_id":"EPH"}}'}
        return SpooledPublisher(spool, FakeOutput(bad=bad), Enrich(), 1, counters, bulk_max_size=4,
                                backoff_init=0.01, backoff_max=0.02, sleep=lambda s: None, run_id="R")
    c1 = collections.Counter()
    a = make(c1)
    assert a.run_base == {}
    for seq in range(3):
        a.accept(hdr("w0", seq), [{"n": seq}, {"n": -1} if seq == 1 else {"m": seq}])
    assert a.drain_once()                    # 2 records of 2 events: one bad
    assert c1["publisher.published"] == 3 and c1["publisher.failed"] == 1
    a.spool.close()                          # killed: the third record was never output
    c2 = collections.Counter()
    b = make(c2)
    assert b.run_base == {"publisher.published": 3, "publisher.failed": 1}
    while b.drain_once():
        pass
    assert c2["publisher.published"] == 2
    b.spool.close()
    assert make(collections.Counter()).run_base == {"publisher.published": 5, "publisher.failed": 1}


def test_coordinator_totals_take_a_restarted_childs_run_base():
    from coordinator.supervisor import Supervisor
    sup = Supervisor.__new__(Supervisor)
    sup.totals = collections.Counter()
    sup._reported = collections.defaultdict(collections.Counter)
    sup._streams_ended, sup._eos_sent, sup.errors = set(), set(), []
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind("inproc://stats")
    push = ctx.socket(zmq.PUSH)
    push.connect("inproc://stats")
    try:
        def stats(d):
            push.send_multipart(encode_batch("stats", "publisher", 0, [d]))
            sup._drain_stats(pull, 1000)
        stats({"publisher.published": 40, "publisher.events": 50})
        stats({"publisher.published": 7})         # reported, then the publisher is killed
        stats({"run_base": {"publisher.published": 45}})   # from the spool: 45 were acknowledged
        assert sup.totals["publisher.published"] == 45 and sup.totals["publisher.events"] == 50
        stats({"publisher.published": 5})
        assert sup.totals["publisher.published"] == 50
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        ctx.term()
