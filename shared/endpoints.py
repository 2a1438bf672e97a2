"""ZeroMQ endpoint names of one run: the one place endpoints are chosen.

On one host (``cluster.role: all``) everything is ``ipc://`` under the run
directory. Across hosts (docs/architecture.md, "Several hosts") a capture
host's shard ``i`` is ``cluster.shards[i]`` (``tcp://host:port``) and a worker
host's worker ``k`` binds ``cluster.listen``'s port + ``k`` as well as its
local ipc endpoint (where its coordinator can reach it).
"""
from __future__ import annotations

import os
import socket


def shard(run_dir: str, i: int) -> str:
    """Worker ``i``'s local endpoint (also bound on a worker host)."""
    return "ipc://" + os.path.join(run_dir, "shard-%d" % i)


def publisher(run_dir: str) -> str:
    return "ipc://" + os.path.join(run_dir, "publisher")


def coordinator(run_dir: str) -> str:
    return "ipc://" + os.path.join(run_dir, "coord")


def capture_acks(run_dir: str, capture: str) -> str:
    """Where capture ``capture`` (file mode, one host) reads the acknowledgements
    of its packet batches (shared/replay.py)."""
    return "ipc://" + os.path.join(run_dir, "acks-" + capture.replace("/", "_"))


def replayed(cluster: dict, live: bool) -> bool:
    """Whether capture -> worker delivery is acknowledged (shared/replay.py):
    file mode on one host. Across hosts a dead worker still ends the run."""
    return not live and cluster.get("role", "all") == "all"


def shard_connect(cluster: dict, run_dir: str, i: int) -> str:
    """Where a capture sends shard ``i``: the remote worker on a capture host."""
    if cluster.get("role") == "capture":
        return cluster["shards"][i]
    return shard(run_dir, i)


def shard_binds(cluster: dict, run_dir: str, k: int) -> list[str]:
    """What worker ``k`` binds: its ipc endpoint, and on a worker host also
    ``cluster.listen`` with the port moved up by ``k``."""
    out = [shard(run_dir, k)]
    if cluster.get("role") == "workers":
        out.append(listen_endpoint(cluster["listen"], k))
    return out


def split_tcp(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` -> (host, port); raises ValueError."""
    if not endpoint.startswith("tcp://"):
        raise ValueError("expected tcp://host:port, got %r" % endpoint)
    hostport = endpoint[6:]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected tcp://host:port, got %r" % endpoint)
    return host, int(port)


def listen_endpoint(listen: str, k: int) -> str:
    host, port = split_tcp(listen)
    return "tcp://%s:%d" % (host, port + k)


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// to 127.0.0.0/8, ::1 or localhost."""
    if not endpoint.startswith("tcp://"):
        return True
    host, _ = split_tcp(endpoint)
    host = host.strip("[]")
    return host == "localhost" or host == "::1" or host.startswith("127.")


def capture_name(cluster: dict, index: int) -> str:
    """Capture names must be unique across hosts (workers count one end of
    stream per name): a capture host prefixes ``cluster.name`` or its host name."""
    if cluster.get("role") == "capture":
        return "%s/capture-%d" % (cluster.get("name") or socket.gethostname(), index)
    return "capture-%d" % index
