"""ZeroMQ endpoint names of one run (ipc:// under the run directory)."""
from __future__ import annotations

import os


def shard(run_dir: str, i: int) -> str:
    return "ipc://" + os.path.join(run_dir, "shard-%d" % i)


def publisher(run_dir: str) -> str:
    return "ipc://" + os.path.join(run_dir, "publisher")


def coordinator(run_dir: str) -> str:
    return "ipc://" + os.path.join(run_dir, "coord")
