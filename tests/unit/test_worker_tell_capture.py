"""A worker's message to a capture (file mode's ``bye`` / ``hello``) is delivered
before ``_tell_capture`` returns, and one that cannot be delivered never holds the
worker's own context at exit (the 5 s stall at the end of a run)."""
import time

import zmq

from shared import endpoints
from shared.wire import decode_batch, encode_batch
from worker import process

CLUSTER = {"captures": 1, "workers": 1}


def test_delivered_on_return(tmp_path):
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(endpoints.capture_acks(str(tmp_path), endpoints.capture_name(CLUSTER, 0)))
    try:
        process._tell_capture(str(tmp_path), CLUSTER, encode_batch("ack", "worker-0", 7, [], shard=0, bye=1))
        # in the capture's socket already: a capture that closes now has been told
        assert pull.poll(0)
        header, _ = decode_batch(pull.recv_multipart())
        assert header["bye"] == 1 and header["seq"] == 7
    finally:
        pull.close(linger=0)
        ctx.term()


def test_a_gone_capture_does_not_hold_the_workers_exit(tmp_path, monkeypatch):
    monkeypatch.setattr(process, "TELL_LINGER_MS", 300)
    ctx = zmq.Context()                # the worker's own context: nothing of the message is left on it
    t0 = time.monotonic()
    process._tell_capture(str(tmp_path), CLUSTER, encode_batch("ack", "worker-0", 7, [], shard=0, bye=1))
    told = time.monotonic() - t0
    t1 = time.monotonic()
    ctx.term()
    assert time.monotonic() - t1 < 0.2
    assert 0.25 <= told < 3.0          # given up after its linger, not for ever
