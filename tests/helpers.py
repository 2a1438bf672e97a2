"""Shared test helpers: run the real CLI on a capture and read its NDJSON output."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
PCAPS = ROOT / "tests" / "golden" / "pcaps"


def run_packetbeat(tmp_path, pcap, protocols=None, extra_cfg=None, args=(), workers=2, timeout=120):
    """Run ``python -m coordinator`` on ``pcap`` with file output; return (proc, events)."""
    out = tmp_path / "out"
    cfg = {
        "packetbeat.interfaces.device": "any",
        "packetbeat.protocols": protocols or [{"type": "http", "ports": [80, 8080, 8000, 5000, 8002, 8888]}],
        "output.file": {"path": str(out), "filename": "events"},
        "cluster.workers": workers,
        "logging.to_stderr": True,
    }
    cfg.update(extra_cfg or {})
    cfg_path = tmp_path / "packetbeat.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "coordinator", "-c", str(cfg_path), "-I", str(pcap), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return proc, read_events(out)


def read_events(out) -> list[dict]:
    events = []
    out = pathlib.Path(out)
    if not out.exists():
        return events
    for f in sorted(out.rglob("*")):
        if f.is_file():
            text = f.read_bytes().decode("utf-8", "replace")
            # a run still in progress may be writing the last line: read whole lines only
            for line in text.splitlines(keepends=True):
                if line.endswith("\n") and line.strip():
                    events.append(json.loads(line))
    return events


VOLATILE = ("agent", "host", "ecs")


def canonical(events) -> list[str]:
    """Events without per-run fields, as sorted JSON text (order-independent compare)."""
    out = []
    for ev in events:
        ev = {k: v for k, v in ev.items() if k not in VOLATILE}
        out.append(json.dumps(ev, sort_keys=True))
    return sorted(out)
