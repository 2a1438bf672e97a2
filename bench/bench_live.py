"""Live capture: tcpreplay of a large HTTP capture into a veth, at increasing rates.

    python bench/bench_live.py [--packets N] [--capture mixed|small] [--workers W] [--captures C]
                               [--rates 20000,50000,...] [--buffer-mb M] [--hwm H] [--type af_packet|pcap]
                               [--cpu-only] [--sender-only]

Needs root (network namespaces, AF_PACKET) and tcpreplay. For each rate a
fresh ``packetbeat`` captures on the server end of a veth pair (inside its
own namespace) while tcpreplay sends the generated capture
(``bench/gen_http_pcap.py``) from the client end at ``--pps`` rate. A rate
passes when nothing was lost anywhere: no kernel drops (PACKET_STATISTICS),
no batch dropped because a worker queue was full, and every transaction in
the capture published. Prints one line per rate, with the CPU seconds each
process used (and per captured packet: on a shared machine that is the
figure to compare), and the highest passing rate. ``--captures C`` runs C
capture processes in one PACKET_FANOUT_HASH group (``cluster.captures``);
``--capture small`` replays the small request/response capture
(bench/gen_http_pcap.py --small).

``--sender-only`` measures the machine's ceiling instead: the same replay at
each rate with nothing of ours running, once with no capture at all and once
with tcpdump (C, libpcap's TPACKET_V3 ring, writing to /dev/null) capturing
on the server end; it prints the rate tcpreplay reached, its CPU (user +
system: the veth's receive path runs in the sender's system time) and
tcpdump's drops.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import CAPTURES, ROOT, env_line, http_capture  # noqa: E402
from tests.live_capture.netns import Veth, netns_available  # noqa: E402


def run_rate(veth: Veth, pcap: str, transactions: int, rate: int, workers: int, buffer_mb: int,
             hwm: int = 64, kind: str = "af_packet", captures: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        cfg = {"packetbeat.interfaces": {"device": veth.srv_dev, "buffer_size_mb": buffer_mb, "type": kind},
               "packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
               "output.file": {"path": out, "filename": "events", "rotate_every_kb": 1024 * 1024},
               "cluster.workers": workers, "cluster.hwm": hwm, "cluster.captures": captures,
               "logging.to_stderr": True}
        cp = os.path.join(tmp, "pb.yml")
        with open(cp, "w") as fh:
            yaml.safe_dump(cfg, fh)
        log = os.path.join(tmp, "pb.log")
        with open(log, "w") as lf:
            pb = subprocess.Popen(veth.srv(sys.executable, "-m", "coordinator", "-c", cp, "-e", "-v"),
                                  cwd=str(ROOT), stdout=lf, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while "capturing on" not in open(log).read():
                if time.monotonic() > deadline or pb.poll() is not None:
                    raise RuntimeError("packetbeat did not start:\n" + open(log).read())
                time.sleep(0.1)
            time.sleep(2.0)                      # workers and publisher connected
            speed = ["--topspeed"] if rate == 0 else ["--pps", str(rate)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            # -T nano: the sender sleeps between packets instead of spinning (gtod), leaving the CPU to us
            rp = subprocess.run(veth.cli("tcpreplay", "-K", "-T", "nano", "-i", veth.cli_dev, *speed, pcap),
                                capture_output=True, text=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            sender_cpu = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
            if rp.returncode:
                raise RuntimeError("tcpreplay failed: " + rp.stderr)
            sent = int(re.search(r"Actual: (\d+) packets", rp.stdout).group(1))
            m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rp.stdout)
            achieved = float(m.group(1)) if m else float("nan")
            time.sleep(3.0)                      # let the pipeline catch up before the drain
            cpu = role_cpu(pb.pid)
            cpu["tcpreplay"] = sender_cpu
            pb.send_signal(signal.SIGINT)
            try:
                pb.wait(300)
            except subprocess.TimeoutExpired:
                # keep the evidence, leave nothing running
                import psutil
                tail = open(log).read().splitlines()[-40:]
                for child in psutil.Process(pb.pid).children(recursive=True):
                    child.kill()
                pb.kill()
                pb.wait()
                raise RuntimeError("the drain did not finish within 300 s; log tail:\n" + "\n".join(tail)) from None
        text = open(log).read()
        m = re.search(r"Total metrics: (\{.*\})", text)
        totals = ast.literal_eval(m.group(1)) if m else {}
        events = 0
        for dp, _, fns in os.walk(out):
            for fn in fns:
                with open(os.path.join(dp, fn), "rb") as fh:
                    events += sum(1 for _ in fh)
    kernel = totals.get("capture.kernel_drops", 0)
    ours = totals.get("capture.dropped_queue_full", 0)
    return {"rate": rate, "achieved": achieved, "sent": sent, "seen": totals.get("capture.kernel_packets", 0),
            "kernel_drops": kernel, "queue_drops": ours, "events": events, "transactions": transactions,
            "cpu": cpu,
            "ok": kernel == 0 and ours == 0 and events == transactions}


def sender_ceiling(veth: Veth, pcap: str, rate: int, with_tcpdump: bool, buffer_mb: int) -> dict:
    """tcpreplay into the veth at ``rate`` (0 = topspeed) with nothing of ours running;
    optionally tcpdump capturing on the server end. CPU seconds of each, and tcpdump's drops."""
    td = None
    if with_tcpdump:
        td = subprocess.Popen(veth.srv("tcpdump", "-i", veth.srv_dev, "-n", "-B", str(buffer_mb * 1024),
                                       "-w", "/dev/null"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
    speed = ["--topspeed"] if rate == 0 else ["--pps", str(rate)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rp = subprocess.run(veth.cli("tcpreplay", "-K", "-T", "nano", "-i", veth.cli_dev, *speed, pcap),
                        capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rp.returncode:
        raise RuntimeError("tcpreplay failed: " + rp.stderr)
    out = {"rate": rate, "sent": int(re.search(r"Actual: (\d+) packets", rp.stdout).group(1)),
           "sender_cpu": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
           "sender_sys": round(after.ru_stime - before.ru_stime, 2)}
    m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rp.stdout)
    out["achieved"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"Actual: \d+ packets \(\d+ bytes\) sent in ([\d.]+) seconds", rp.stdout)
    out["seconds"] = float(m.group(1)) if m else float("nan")
    if td is not None:
        time.sleep(1.0)
        import psutil
        try:
            kids = psutil.Process(td.pid).children(recursive=True) + [psutil.Process(td.pid)]
            out["tcpdump_cpu"] = round(sum(k.cpu_times().user + k.cpu_times().system for k in kids), 2)
        except psutil.NoSuchProcess:
            out["tcpdump_cpu"] = float("nan")
        td.send_signal(signal.SIGINT)
        _, err = td.communicate(timeout=30)
        got = re.search(r"(\d+) packets captured", err)
        drop = re.search(r"(\d+) packets dropped by kernel", err)
        out["tcpdump_captured"] = int(got.group(1)) if got else -1
        out["tcpdump_drops"] = int(drop.group(1)) if drop else -1
    return out


def role_cpu(pid: int) -> dict:
    """CPU seconds (user + system) used so far by each process of the run, by role."""
    import psutil
    out: dict = {}
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            argv = p.cmdline()
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        if "coordinator.child" in argv:
            i = argv.index("coordinator.child")
            role = argv[i + 1] if argv[i + 1] == "publisher" else "%s-%s" % (argv[i + 1], argv[argv.index("--index") + 1])
        elif "coordinator" in argv:
            role = "coordinator"
        else:
            continue
        out[role] = round(out.get(role, 0.0) + t.user + t.system, 2)
    return out


def capture_cpu(path: str, seconds: float = 5.0, workers: int = 2) -> tuple[int, float]:
    """The capture process's own cost, without the kernel or a loaded box: the
    capture's packets laid out as TPACKET_V3 blocks in memory, then ring walk
    + decode + shard + batch + msgpack encode (``encode_batch``), no sockets.
    Returns (packets, cpu seconds)."""
    import struct
    from bench.common import read_records
    from coordinator.capture import afpacket
    from coordinator.capture.afpacket import AfPacketSource
    from coordinator.capture.process import Sharder
    from shared.wire import encode_batch
    block = 1 << 20
    blocks = []
    cur = bytearray(block)
    pos = first = 48
    n = 0

    def close_block():
        struct.pack_into("<IIII", cur, 8, afpacket.TP_STATUS_USER, n, first, pos)
    for ts, _lt, raw in read_records(path):
        size = (80 + len(raw) + 15) & ~15
        if pos + size > block:
            close_block()
            blocks.append(cur)
            cur, pos, n = bytearray(block), first, 0
        struct.pack_into("<IIIIIIHHIIH", cur, pos, size, ts // 10**9, ts % 10**9, len(raw), len(raw),
                         afpacket.TP_STATUS_USER, 80, 94, 0, 0, 0)
        cur[pos + 80:pos + 80 + len(raw)] = raw
        pos += size
        n += 1
    close_block()
    blocks.append(cur)
    ring = bytearray(b"".join(blocks))
    src = object.__new__(AfPacketSource)
    src.ring, src.block_size, src.block_nr, src._block = ring, block, len(blocks), 0
    src.snaplen, src.cooked, src.ignore_outgoing, src.linktype = 65535, False, False, 1
    src._lo_index, src.outgoing_skipped = 1, 0
    sharder = Sharder(workers, lambda i, recs: encode_batch("pkts", "capture-0", 0, recs), 128)
    status = [struct.unpack_from("<I", ring, i * block + 8)[0] for i in range(len(blocks))]
    packets = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        for i, st in enumerate(status):             # hand every block back to "user" for the next lap
            struct.pack_into("<I", ring, i * block + 8, st)
        for _ in range(len(blocks)):
            recs = src.read_block(0)
            packets += len(recs)
            sharder.feed(recs)
        sharder.flush()
    return packets, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--capture", default="mixed", choices=CAPTURES,
                    help="mixed: bench/out/http_N_500.pcap; small: many small request/response pairs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--captures", type=int, default=1, help="cluster.captures (one PACKET_FANOUT_HASH group)")
    ap.add_argument("--rates", default="20000,50000,100000,150000,200000,0",
                    help="packets/s, comma separated; 0 = tcpreplay --topspeed")
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--hwm", type=int, default=64, help="cluster.hwm: batches queued per worker before dropping")
    ap.add_argument("--type", default="af_packet", choices=("af_packet", "pcap"), help="packetbeat.interfaces.type")
    ap.add_argument("--cpu-only", action="store_true",
                    help="only measure the capture process's CPU cost per packet (no root, no tcpreplay)")
    ap.add_argument("--sender-only", action="store_true",
                    help="the machine's ceiling: tcpreplay alone, then with tcpdump capturing (nothing of ours)")
    a = ap.parse_args()
    if a.cpu_only:
        path, _ = http_capture(a.packets, kind=a.capture)
        packets, cpu = capture_cpu(str(path), workers=a.workers)
        print("capture path (ring walk + decode + shard + batch + encode), one process: %.0f packets/s of cpu  [%s]"
              % (packets / cpu, env_line()))
        return
    why = netns_available()
    if why:
        sys.exit("bench_live: " + why)
    if shutil.which("tcpreplay") is None:
        sys.exit("bench_live: tcpreplay is not installed (apt-get install tcpreplay)")
    path, transactions = http_capture(a.packets, kind=a.capture)
    if a.sender_only:
        veth = Veth("bl", 250)
        try:
            for rate in [int(r) for r in a.rates.split(",")]:
                for with_tcpdump in (False, True):
                    r = sender_ceiling(veth, str(path), rate, with_tcpdump, a.buffer_mb)
                    line = ("rate %s, %s: tcpreplay sent %d in %.2f s = %.0f pps, tcpreplay cpu %.2f s (%.2f system)"
                            " = %.1f us per packet" % (r["rate"] or "topspeed",
                                                      "tcpdump capturing" if with_tcpdump else "no capture",
                                                      r["sent"], r["seconds"], r["achieved"], r["sender_cpu"],
                                                      r["sender_sys"], r["sender_cpu"] * 1e6 / max(1, r["sent"])))
                    if with_tcpdump:
                        line += "; tcpdump captured %d, kernel drops %d, cpu %.2f s" % (
                            r["tcpdump_captured"], r["tcpdump_drops"], r["tcpdump_cpu"])
                    print(line, flush=True)
        finally:
            veth.close()
        print("[%s, load %s]" % (env_line(), "%.1f %.1f %.1f" % os.getloadavg()))
        return
    best = None
    veth = Veth("bl", 250)
    try:
        for rate in [int(r) for r in a.rates.split(",")]:
            r = run_rate(veth, str(path), transactions, rate, a.workers, a.buffer_mb, a.hwm, a.type, a.captures)
            print("rate %s: sent %d at %.0f pps, kernel saw %d, kernel drops %d, queue drops %d, "
                  "events %d of %d -> %s" % (r["rate"] or "topspeed", r["sent"], r["achieved"], r["seen"],
                                             r["kernel_drops"], r["queue_drops"], r["events"], r["transactions"],
                                             "ZERO LOSS" if r["ok"] else "LOSS"), flush=True)
            seen = max(1, r["seen"] - r["kernel_drops"])
            print("    cpu seconds by process: %s; us per captured packet: %s" % (
                r["cpu"], {k: round(v * 1e6 / seen, 1) for k, v in r["cpu"].items()}), flush=True)
            if r["ok"] and (best is None or r["achieved"] > best):
                best = r["achieved"]
    finally:
        veth.close()
    print("highest rate with zero drops (%s, %s capture, %d workers, %d capture process%s, %d packets, hwm %d, "
          "ring %d MiB): %s packets/s  [%s, load %s]"
          % (a.type, a.capture, a.workers, a.captures, "" if a.captures == 1 else "es", a.packets, a.hwm, a.buffer_mb,
             "%.0f" % best if best else "none", env_line(),
             "%.1f %.1f %.1f" % os.getloadavg()))


if __name__ == "__main__":
    main()
