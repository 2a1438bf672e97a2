"""The disk queue on a file system that is really full (a small tmpfs): a clear
one-line error naming the path, backpressure (accept waits), and it goes on once
there is room; no traceback, nothing lost."""
from __future__ import annotations

import collections
import logging
import os
import subprocess
import threading
import time

import msgpack
import pytest

from coordinator.publisher.reliable import SpooledPublisher
from coordinator.publisher.spool import Spool, SpoolDiskFull


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % p.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


class Output:
    bulk_max_size = 1000
    index = None

    def __init__(self):
        self.lines = []

    def publish_encoded(self, items):
        from coordinator.publisher.outputs import OK
        self.lines += [line for _, _, line in items]
        return [OK] * len(items)


class Enrich:
    def __call__(self, ev):
        return ev


def fill(mnt, leave: int) -> None:
    """Fill the file system but ``leave`` bytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(mnt / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_spool_on_a_full_disk_says_so_and_waits_until_there_is_room(small_fs, caplog):
    spool_dir = small_fs / "spool"
    spool = Spool(str(spool_dir), max_size=10 << 20, segment_size=64 << 10, fsync="never")
    fill(small_fs, 64 << 10)
    with pytest.raises(SpoolDiskFull) as info:
        for i in range(100):      # batches an earlier run left (records as reliable.py writes them)
            spool.append(msgpack.packb(["events", "old", i, [["idx", "id%d" % i, "z" * 20000]], "A"]))
    msg = str(info.value)
    assert str(spool_dir) in msg and "no space left" in msg and "queue.disk.max_size" in msg
    appended = spool.end

    out = Output()
    pub = SpooledPublisher(spool, out, Enrich(), 1, collections.Counter(), bulk_max_size=10,
                           sleep=lambda s: None, run_id="B")
    done = threading.Event()

    def accept():
        pub.accept({"from": "w0", "seq": 0, "kind": "events"}, [{"n": i, "pad": "y" * 2000} for i in range(30)])
        done.set()
    with caplog.at_level(logging.ERROR, logger="packetbeat.publisher"):
        t = threading.Thread(target=accept, daemon=True)
        t.start()
        time.sleep(1.5)
        assert not done.is_set()                     # backpressure: it waits for room
        assert pub.counters["publisher.disk_full_waits"] >= 1
        (small_fs / "filler").unlink()               # room again
        assert done.wait(10)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(spool_dir) in errors[0] and "waiting" in errors[0]
    assert spool.end == appended + 1
    while pub.drain_once():
        pass
    assert len(out.lines) == appended + 30 and spool.pending == 0
    spool.close()
