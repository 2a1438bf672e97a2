"""The capture (file mode) stays until its workers have read everything.

libzmq 4.3.5 drops what is still in a connection's socket buffer when the
sender hangs up while the receiver's queue is at its HWM (LINGER only waits
until the bytes are in that buffer; libzmq issues #1922, #4660): the capture
used to close and exit 0 right after its end-of-streams, and a worker that
was behind lost its last batch and its end-of-stream, and waited for ever
(the drain hang of bench_e2e.py). The real capture child here sends to a stand-in worker (a
PULL bound at the shard endpoint, as the worker binds it) that reads every
batch and the end-of-stream: the capture must still be running while that
socket is open, and exit 0 once it is closed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import zmq

from shared import endpoints
from coordinator.config import validate_tree
from shared.config import expand_dotted
from shared.wire import decode_batch, encode_batch
from tests.helpers import PCAPS, ROOT


def test_capture_waits_for_the_worker_to_close(tmp_path):
    settings = validate_tree(expand_dotted({"packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
                                            "output.file": {"path": str(tmp_path / "out")},
                                            "cluster.workers": 1}))
    run_dir = str(tmp_path)
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(settings.to_json())
    ctx = zmq.Context()
    coord = ctx.socket(zmq.PULL)                       # the coordinator's stats endpoint
    coord.bind(endpoints.coordinator(run_dir))
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, settings.cluster["hwm"])
    pull.bind(endpoints.shard(run_dir, 0))
    acks = ctx.socket(zmq.PUSH)                        # as the publisher acknowledges (shared/replay.py)
    acks.connect(endpoints.capture_acks(run_dir, "capture-0"))
    p = subprocess.Popen([sys.executable, "-m", "coordinator.child", "capture", "--index", "0",
                          "--settings", str(settings_path), "--run-dir", run_dir,
                          "--file", str(PCAPS / "http_sample.pcap"), "--loops", "20"],
                         cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        packets = 0
        eos = False
        while not eos:
            assert pull.poll(30_000), "no end-of-stream from the capture"
            header, body = decode_batch(pull.recv_multipart())
            acks.send_multipart(encode_batch("ack", "worker-0", header["seq"], [], shard=0))
            if header["kind"] == "pkts":
                packets += len(body)
            eos = header["kind"] == "eos"
        # 201 packets a replay; 63 of them are empty TCP segments, skipped unless flows are on
        assert packets == 20 * (201 if settings.flows is not None else 138)
        time.sleep(1.0)
        assert p.poll() is None, "the capture exited while the worker's socket was still open"
        stats = []
        while coord.poll(0):
            stats.append(decode_batch(coord.recv_multipart())[1][0])
        assert any(s.get("eos_sent") for s in stats)     # it told the coordinator (the drain's safety net)
        pull.close(linger=0)                               # the worker is done
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        pull.close(linger=0)
        acks.close(linger=0)
        coord.close(linger=0)
        ctx.term()
