"""The hot modules are compiled in a normal install, the build is not stale,
and the pure Python fallback gives the same events as the compiled modules.

``pip install -e .`` compiles the modules listed in setup.py (Cython). A
machine without a compiler runs the ``.py`` files; set PACKETBEAT_ALLOW_PURE=1
to accept that here (CI must not).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOT = ("shared.decode", "worker.tcp", "worker.engine")
EXT = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _is_extension(name: str) -> bool:
    mod = importlib.import_module(name)
    return (getattr(mod, "__file__", None) or "").endswith(EXT)


@pytest.mark.parametrize("name", HOT)
def test_hot_module_is_compiled(name):
    if os.environ.get("PACKETBEAT_ALLOW_PURE") == "1":
        pytest.skip("PACKETBEAT_ALLOW_PURE=1: the pure Python modules are accepted")
    mod = importlib.import_module(name)
    assert _is_extension(name), (
        "%s is not compiled (%s): run `pip install -e .` with a C compiler and Cython "
        "(or set PACKETBEAT_ALLOW_PURE=1 on a machine without a compiler)" % (name, mod.__file__))


def test_no_stale_extension():
    """An extension built before its .py/.pxd was edited would run the old code."""
    stale = []
    for pkg in ("shared", "worker", "coordinator"):
        for so in (ROOT / pkg).rglob("*.so"):
            stem = so.name.split(".", 1)[0]
            for src in (so.with_name(stem + ".py"), so.with_name(stem + ".pxd")):
                if src.exists() and src.stat().st_mtime > so.stat().st_mtime + 1:
                    stale.append("%s is newer than %s" % (src.relative_to(ROOT), so.name))
            if not so.with_name(stem + ".py").exists():
                stale.append("%s has no %s.py" % (so.relative_to(ROOT), stem))
    assert not stale, "stale compiled modules (run `pip install -e .` again): " + "; ".join(stale)


# Runs in a subprocess; argv[1] == "pure" makes every module of the project
# load from its .py file (extensions of the project are not looked at; the
# third-party ones in site-packages still load).
_SCRIPT = r'''
import importlib.machinery as m, json, os, sys
root = sys.argv[2]
if sys.argv[1] == "pure":
    src_only = m.FileFinder.path_hook((m.SourceFileLoader, m.SOURCE_SUFFIXES))
    default = m.FileFinder.path_hook((m.ExtensionFileLoader, m.EXTENSION_SUFFIXES),
                                     (m.SourceFileLoader, m.SOURCE_SUFFIXES),
                                     (m.SourcelessFileLoader, m.BYTECODE_SUFFIXES))
    def hook(path):
        p = os.path.abspath(path or ".")
        ours = p == root or any(p == os.path.join(root, pkg) or p.startswith(os.path.join(root, pkg) + os.sep)
                                for pkg in ("shared", "worker", "coordinator"))
        return src_only(path) if ours else default(path)
    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
sys.path.insert(0, root)
import collections
import shared.decode, shared.shard, worker.tcp, worker.engine, worker.udp, worker.flows
from shared.shard import shard_of
from worker.engine import Engine
from worker.protos.registry import load_registry
from coordinator.capture.pcapfile import open_capture
files = {n: sys.modules[n].__file__ for n in ("shared.decode", "worker.tcp", "worker.engine", "worker.flows")}
reg = load_registry(with_entry_points=False)
protos = [{"type": "http", "ports": [80, 8080]}, {"type": "dns", "ports": [53, 10053]}, {"type": "icmp"},
          {"type": "pgsql", "ports": [5432]}, {"type": "redis", "ports": [6379]}, {"type": "sip", "ports": [5060]}]
out = []
for name in ("http_sample", "http_synth_sll", "dns_real", "icmp_real", "pgsql_real", "sip_real"):
    r = open_capture(os.path.join(root, "tests", "golden", "pcaps", name + ".pcap"))
    recs = [list(x) for x in r]
    r.close()
    # a few damaged frames: truncated at every length, and a frame cut in the TCP header
    recs += [[recs[-1][0], recs[-1][1], recs[i % len(recs)][2][:i]] for i in range(0, 80, 3)]
    counters = collections.Counter()
    eng = Engine(protos, reg, counters, flows={"timeout": "10s", "period": "-1s"})
    events = []
    for i in range(0, len(recs), 16):
        eng.handle(recs[i:i + 16])
        events += eng.take_events()
    eng.finish()
    events += eng.take_events()
    dec = [shared.decode.decode(lt, raw) for _ts, lt, raw in recs]
    shards = [shard_of(d[0], d[1], d[3], d[2], d[4], 3) for d in dec if d is not None]
    out.append({"pcap": name, "events": events, "counters": sorted(counters.items()),
                "decoded": [list(d) if d else None for d in dec], "shards": shards})
print(json.dumps({"files": files, "runs": out}, default=lambda b: b.hex() if isinstance(b, bytes) else repr(b)))
'''


def _run(mode: str) -> dict:
    p = subprocess.run([sys.executable, "-c", _SCRIPT, mode, str(ROOT)], capture_output=True, text=True,
                       timeout=120, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def test_pure_fallback_gives_the_same_events():
    pure = _run("pure")
    assert all(f.endswith(".py") for f in pure["files"].values()), pure["files"]
    compiled = _run("compiled")
    if os.environ.get("PACKETBEAT_ALLOW_PURE") != "1":
        assert all(f.endswith(EXT) for f in compiled["files"].values()), compiled["files"]
    assert sum(len(r["events"]) for r in pure["runs"]) > 50
    for a, b in zip(pure["runs"], compiled["runs"]):
        assert a["counters"] == b["counters"], a["pcap"]
        assert a["decoded"] == b["decoded"], a["pcap"]
        assert a["shards"] == b["shards"], a["pcap"]
        assert len(a["events"]) == len(b["events"]), a["pcap"]
        for ea, eb in zip(a["events"], b["events"]):
            assert ea == eb, a["pcap"]
    assert len(pure["runs"]) == len(compiled["runs"])
