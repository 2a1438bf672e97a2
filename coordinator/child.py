"""Entry point of every child process: ``python -m coordinator.child ROLE ...``.

Children are separate interpreters started by the coordinator (never forked
copies): each one reads the resolved settings JSON written by the coordinator,
sets up its own logging and creates its own ZeroMQ context.
"""
from __future__ import annotations

import argparse
import sys

from shared.settings import load_settings_json
from shared.log import setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="packetbeat-child")
    ap.add_argument("role", choices=("capture", "worker", "publisher"))
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--settings", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--file", default="")
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--no-publish", action="store_true")
    ap.add_argument("--stderr", action="store_true")
    ap.add_argument("--selectors", default="")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--dump", default="")
    ap.add_argument("--no-entry-points", action="store_true",
                    help="the coordinator found no packetbeat.protocols entry point: do not look again")
    a = ap.parse_args(argv)
    with open(a.settings, encoding="utf-8") as fh:
        settings = load_settings_json(fh.read())
    role = a.role if a.role == "publisher" else "%s-%d" % (a.role, a.index)
    setup_logging(settings.logging, role, a.stderr, [s for s in a.selectors.split(",") if s])
    if a.role == "capture" and a.live:
        from coordinator.capture.live import run_live_capture
        from worker.protos.registry import load_registry
        return run_live_capture(settings, a.index, a.run_dir, load_registry(not a.no_entry_points), a.dump)
    if a.role == "capture":
        from coordinator.capture.process import run_capture
        return run_capture(settings, a.index, a.run_dir, a.file, a.loops)
    if a.role == "worker":
        from worker.process import run_worker
        from worker.protos.registry import load_registry
        registry = load_registry(not a.no_entry_points)
        _drop_privileges(a, settings)
        return run_worker(settings, a.index, a.run_dir, registry, live=a.live)
    from coordinator.publisher.process import run_publisher
    _drop_privileges(a, settings)
    return run_publisher(settings, a.run_dir, publish=not a.no_publish)


def _drop_privileges(a, settings) -> None:
    """Live mode: only captures need root (to open their sockets); the other
    roles become ``cluster.run_as_user`` once their code is imported."""
    user = settings.cluster.get("run_as_user") or ""
    if a.live and user:
        from coordinator.capture.live import drop_privileges
        drop_privileges(user)


if __name__ == "__main__":
    sys.exit(main())
