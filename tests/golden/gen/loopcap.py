"""tcpdump on loopback for the capture generators: find it, start it, stop it, and
refuse a capture that lost packets.

``--immediate-mode`` and a larger buffer matter: without them the last packets
were missing from the file when tcpdump was stopped (seen by several generators).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def _prog() -> str:
    return os.path.basename(sys.argv[0]) or "generator"


def find_tcpdump() -> str:
    exe = shutil.which("tcpdump") or next((p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump")
                                            if Path(p).exists()), None)
    if exe is None:
        sys.exit("%s: tcpdump is not installed, so nothing can be captured.\n"
                 "Install it (Debian/Ubuntu: apt-get install -y tcpdump) and run this script as root." % _prog())
    return exe


def start_tcpdump(exe: str, pcap: Path, bpf: str) -> subprocess.Popen:
    """Capture ``bpf`` on lo into ``pcap``; returns once tcpdump listens."""
    proc = subprocess.Popen([exe, "-i", "lo", "-nn", "-U", "--immediate-mode", "-B", "131072", "-s", "0",
                             "-w", str(pcap), bpf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode(errors="replace")     # "listening on lo, link-type ..."
    if "listening on" not in line:
        proc.kill()
        sys.exit("%s: tcpdump did not start: %s%s" % (_prog(), line.strip(),
                                                     proc.stderr.read().decode(errors="replace")))
    time.sleep(0.5)                    # "listening" is printed before the filter is in place
    return proc


def stop_tcpdump(proc: subprocess.Popen) -> str:
    """Stop tcpdump; its report, or exit when it does not say it dropped nothing."""
    time.sleep(1.0)                    # let the last packets reach the savefile
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    report = err.decode(errors="replace")
    m = re.search(r"(\d+) packets? dropped by kernel", report)
    if m is None or int(m.group(1)):
        sys.exit("%s: tcpdump did not report 0 drops:\n%s" % (_prog(), report))
    return report


def tcp_streams(pcap: Path, server_port: int) -> tuple[dict[tuple[int, bool], dict[int, bytes]], int]:
    """The TCP payloads of a capture as ``{(client port, to_server): {seq: bytes}}``
    and the number of frames
    (retransmissions collapse onto their sequence number), for the generators'
    check that the wire matches what the clients did."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap
    streams: dict[tuple[int, bool], dict[int, bytes]] = {}
    pkts = rdpcap(str(pcap))
    for p in pkts:
        if TCP in p and bytes(p[TCP].payload):
            t = p[TCP]
            to_server = t.dport == server_port
            port = t.sport if to_server else t.dport
            streams.setdefault((port, to_server), {})[t.seq] = bytes(t.payload)
    return streams, len(pkts)
