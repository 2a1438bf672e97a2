"""A protocol plugin installed as a separate distribution is found through the
``packetbeat.protocols`` entry-point group and runs in the real pipeline, with
no edit of this project."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import yaml

from tests.helpers import PCAPS, ROOT, read_events

PLUGIN = '''
from dataclasses import dataclass, field
from worker.plugin import ProtocolCommon
from worker.ecs import transaction_event


@dataclass(frozen=True)
class ByteCountConfig(ProtocolCommon):
    ports: list[int] = field(default_factory=lambda: [8080])
    label: str = "bytes"


class ByteCountPlugin:
    """Publishes one event per TCP connection with the bytes seen each way."""
    config_class = ByteCountConfig
    transports = ("tcp",)

    def __init__(self, config, emit):
        self.config, self.emit = config, emit

    def ports(self):
        return list(self.config.ports)

    def parse(self, pkt, tcptuple, direction, state):
        state = state or {"start": pkt.ts, "n": [0, 0]}
        state["n"][direction] += len(pkt.payload)
        return state

    def received_fin(self, tcptuple, direction, state):
        return state

    def gap_in_stream(self, tcptuple, direction, nbytes, state):
        return state, False

    def connection_timeout(self):
        return 0

    def flush(self, tcptuple, state, ts):
        ev = transaction_event("bytecount", tcptuple, state["start"], None, state["n"][0], state["n"][1])
        ev["bytecount"] = {"label": self.config.label}
        self.emit(ev)
'''


def test_entry_point_plugin_runs_in_pipeline(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "bytecount_plugin.py").write_text(PLUGIN)
    dist = site / "bytecount_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bytecount-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [packetbeat.protocols]
        bytecount = bytecount_plugin:ByteCountPlugin
    """))
    out = tmp_path / "out"
    cfg = tmp_path / "pb.yml"
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "bytecount", "ports": [8080], "label": "api"}],
        "output.file": {"path": str(out), "filename": "events"},
        "cluster.workers": 2,
    }))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    p = subprocess.run([sys.executable, "-m", "coordinator", "-c", str(cfg), "-I", str(PCAPS / "http_sample.pcap"), "-e"],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    events = read_events(out)
    assert events and all(e["type"] == "bytecount" and e["bytecount"] == {"label": "api"} for e in events)
    assert all(e["server"]["port"] == 8080 for e in events)
    assert sum(e["source"].get("bytes", 0) for e in events) > 0

    # an unknown option of the plugin is a configuration error naming the key, before anything runs
    cfg.write_text(yaml.safe_dump({
        "packetbeat.protocols": [{"type": "bytecount", "lable": "x"}],
        "output.console.enabled": True,
    }))
    p = subprocess.run([sys.executable, "-m", "coordinator", "test", "config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60, cwd=str(ROOT), env=env)
    assert p.returncode == 1 and "packetbeat.protocols[0].lable" in p.stderr
