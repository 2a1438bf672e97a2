#!/usr/bin/env python3
"""Peak memory of the whole pipeline under two floods (issue: bounded state).

    python bench/flood.py syn      [--count 1000000] [--normal 100] [--workers 2] [--set key=value ...]
    python bench/flood.py halfopen [--count 200000]  [--normal 100] [--workers 2] [--set key=value ...]

``syn``: ``--count`` SYNs to port 80 within one second of capture time, from
distinct client endpoints, never answered; ``halfopen``: ``--count`` connections
that complete the handshake and send one HTTP request, never answered and
never closed. Both interleave ``--normal`` complete HTTP transactions (handshake,
GET, 200, FIN both ways), which must all come out.

The capture is written with ``struct`` (no checksums: the decoder does not
check them) to bench/out/, then ``python -m coordinator -I`` runs on it with
file output while the RSS of the coordinator and every descendant is summed
every 20 ms. Prints the peak of that sum, the run time, the events and how many
of the normal transactions came out, with the speed index.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import struct
import subprocess
import sys
import time

import psutil
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import env_line  # noqa: E402

OUT = ROOT / "bench" / "out"
_PCAP_HDR = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
_ETH = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10
T0 = 1_700_000_000


def frame(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
          payload: bytes = b"") -> bytes:
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    ip = _IP.pack(0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return _ETH + ip + tcp + payload


class Writer:
    def __init__(self, path: pathlib.Path):
        self.f = open(path, "wb")
        self.f.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.n = 0

    def add(self, t_us: int, data: bytes) -> None:
        self.f.write(_REC.pack(T0 + t_us // 1_000_000, t_us % 1_000_000, len(data), len(data)))
        self.f.write(data)
        self.n += 1

    def close(self) -> None:
        self.f.close()


SERVER = bytes((10, 0, 0, 1))
REQ = b"GET /flood HTTP/1.1\r\nHost: server\r\nUser-Agent: flood\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def client(i: int) -> tuple[bytes, int]:
    """A distinct client endpoint per index (10.64.0.0/10, ports 1024-65535)."""
    host, port = divmod(i, 64000)
    return bytes((10, 64 + (host >> 16 & 0x3F), host >> 8 & 0xFF, host & 0xFF)), 1024 + port


def normal(w: Writer, t_us: int, k: int) -> None:
    c = bytes((10, 9, k >> 8 & 0xFF, k & 0xFF))
    cp, s = 40000 + k, SERVER
    cs, ss = 1000, 5000
    w.add(t_us, frame(c, cp, s, 80, cs, 0, SYN))
    w.add(t_us + 10, frame(s, 80, c, cp, ss, cs + 1, SYN | ACK))
    w.add(t_us + 20, frame(c, cp, s, 80, cs + 1, ss + 1, ACK))
    w.add(t_us + 30, frame(c, cp, s, 80, cs + 1, ss + 1, PSH | ACK, REQ))
    w.add(t_us + 40, frame(s, 80, c, cp, ss + 1, cs + 1 + len(REQ), PSH | ACK, RESP))
    w.add(t_us + 50, frame(c, cp, s, 80, cs + 1 + len(REQ), ss + 1 + len(RESP), FIN | ACK))
    w.add(t_us + 60, frame(s, 80, c, cp, ss + 1 + len(RESP), cs + 2 + len(REQ), FIN | ACK))
    w.add(t_us + 70, frame(c, cp, s, 80, cs + 2 + len(REQ), ss + 2 + len(RESP), ACK))


def generate(kind: str, count: int, nnormal: int) -> pathlib.Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("flood_%s_%d_%d.pcap" % (kind, count, nnormal))
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    w = Writer(tmp)
    every = max(1, count // max(1, nnormal))
    span_us = 1_000_000 if kind == "syn" else 10_000_000
    k = 0
    for i in range(count):
        t = i * span_us // count
        src, sport = client(i)
        if kind == "syn":
            w.add(t, frame(src, sport, SERVER, 80, i * 7919, 0, SYN))
        else:
            w.add(t, frame(src, sport, SERVER, 80, 100, 0, SYN))
            w.add(t + 1, frame(SERVER, 80, src, sport, 900, 101, SYN | ACK))
            w.add(t + 2, frame(src, sport, SERVER, 80, 101, 901, ACK))
            w.add(t + 3, frame(src, sport, SERVER, 80, 101, 901, PSH | ACK, REQ))
        if i % every == 0 and k < nnormal:
            normal(w, t, k)
            k += 1
    while k < nnormal:
        normal(w, span_us + k * 100, k)
        k += 1
    w.close()
    tmp.rename(path)
    return path


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(pcap: pathlib.Path, workers: int, sets: list[str], workdir: pathlib.Path) -> dict:
    out = workdir / "events"
    cfg = {
        "packetbeat.interfaces.device": "any",
        "packetbeat.protocols": [{"type": "http", "ports": [80]}],
        "output.file": {"path": str(out), "filename": "events", "rotate_every_kb": 1024 * 1024},
        "cluster.workers": workers,
    }
    cfg_path = workdir / "packetbeat.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "coordinator", "-c", str(cfg_path), "-I", str(pcap)]
    for s in sets:
        argv += ["-E", s]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.02)
    err = p.stderr.read().decode(errors="replace")
    wall = time.monotonic() - t0
    events = normal_ok = 0
    notes: dict[str, int] = {}
    for f in sorted(out.glob("events*")):
        for line in f.read_text().splitlines():
            ev = json.loads(line)
            events += 1
            if ev.get("url", {}).get("path") == "/flood" and ev.get("http", {}).get("response", {}).get(
                    "status_code") == 200:
                normal_ok += 1
            msg = ev.get("error", {}).get("message")
            for m in ([msg] if isinstance(msg, str) else msg or []):
                notes[m] = notes.get(m, 0) + 1
    return {"rc": p.returncode, "peak_mb": peak / 2**20, "wall_s": wall, "events": events,
            "normal_ok": normal_ok, "notes": notes, "stderr_tail": err[-1500:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=("syn", "halfopen"))
    ap.add_argument("--count", type=int)
    ap.add_argument("--normal", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    count = a.count or (1_000_000 if a.kind == "syn" else 200_000)
    pcap = generate(a.kind, count, a.normal)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        r = run(pcap, a.workers, a.set, pathlib.Path(d))
    print(env_line())
    print("flood %s count=%d normal=%d workers=%d: peak RSS (all processes) %.0f MB, %.1f s, rc=%d, "
          "events %d, normal transactions out %d/%d" % (a.kind, count, a.normal, a.workers, r["peak_mb"],
                                                        r["wall_s"], r["rc"], r["events"], r["normal_ok"],
                                                        a.normal))
    for m, n in sorted(r["notes"].items(), key=lambda x: -x[1])[:5]:
        print("  note %r: %d" % (m, n))
    if r["rc"] != 0:
        print(r["stderr_tail"])
    return 0 if r["rc"] == 0 and r["normal_ok"] == a.normal else 1


if __name__ == "__main__":
    sys.exit(main())
