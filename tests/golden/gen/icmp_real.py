#!/usr/bin/env python3
"""Real ICMP traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root: tcpdump and raw sockets need it)::

    .venv/bin/python tests/golden/gen/icmp_real.py [--out tests/golden/pcaps]

Starts ``tcpdump -i lo -nn -U -s 0 -w FILE 'icmp or icmp6'``, then drives real
clients against the kernel's ICMP stack on this machine:

- ``ping -v -c 3 127.0.0.1`` and ``ping -6 -v -c 3 ::1`` (iputils): echo
  request/reply pairs; ident, icmp_seq and round-trip time are read from
  ping's own output;
- a UDP datagram to a closed port on 127.0.0.1 and on ::1 (Python ``socket``,
  connected, so the kernel's ICMP port-unreachable comes back to the client as
  ``ECONNREFUSED``);
- over a raw ICMP socket (Python ``socket.SOCK_RAW``): a timestamp request
  (type 13, answered by the kernel with type 14), an echo reply nobody asked
  for (published alone) and an echo request with a wrong checksum (the kernel
  drops it, so it is never answered).

Then it stops tcpdump with SIGINT (it must report 0 drops) and writes
``icmp_real.pcap`` plus ``icmp_real.truth.json``: one record per transaction
the clients made, from what they sent and what came back. Before writing, the
capture is checked against the truth: the ICMP messages on the wire (version,
type, code, id, seq) must be exactly those the truth implies.

The capture is not byte-reproducible (idents, times differ per run); the
committed file is one run, and its truth file goes with it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from loopcap import start_tcpdump, stop_tcpdump

MAX_PCAP_BYTES = 300 * 1024
PING_COUNT = 3
PING_DATA = 56                   # ping's default data bytes (after the 8-byte ICMP header)
UDP_PROBE = b"is anybody listening?"
ORPHAN_ID, ORPHAN_SEQ = 0xBEEF, 7
TIMESTAMP_ID, TIMESTAMP_SEQ = 0x7153, 1
BADSUM_ID, BADSUM_SEQ = 0xBAD5, 1
ORPHAN_NOTE = "Response was received without an associated request."
NO_REPLY_NOTE = "Request was received without an associated response."


def _tool(name: str, hint: str) -> str:
    exe = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/bin/{name}")
                                      if Path(p).exists()), None)
    if exe is None:
        sys.exit(f"icmp_real.py: {name} is not installed ({hint}).")
    return exe


def find_tools() -> tuple[str, str]:
    if os.geteuid() != 0:
        sys.exit("icmp_real.py: run as root (tcpdump on lo and raw ICMP sockets need it).")
    return (_tool("tcpdump", "Debian/Ubuntu: apt-get install -y tcpdump"),
            _tool("ping", "Debian/Ubuntu: apt-get install -y iputils-ping"))


# --------------------------------------------------------------------------- truth records
def _txn(case: str, version: int, client: str, server: str, req: tuple | None, resp: tuple | None,
         ident: int = 0, seq: int = 0, req_bytes: int = 0, resp_bytes: int = 0,
         notes: list[str] | None = None, **extra) -> dict:
    """One transaction as the client saw it. ``req``/``resp`` are (type, code)
    or None; ``*_bytes`` count what follows the 8-byte ICMP header."""
    rec = {
        "case": case, "version": version, "client_ip": client, "server_ip": server,
        "request": None if req is None else {"type": req[0], "code": req[1]},
        "response": None if resp is None else {"type": resp[0], "code": resp[1]},
        "id": ident, "seq": seq, "request_bytes": req_bytes, "response_bytes": resp_bytes,
        "notes": notes or [],
    }
    rec.update(extra)
    return rec


# --------------------------------------------------------------------------- clients
_PING_LINE = re.compile(r"(\d+) bytes from (\S+?):? icmp_seq=(\d+) ident=(\d+) .*time=([\d.]+) ms")


def run_ping(ping: str, version: int) -> list[dict]:
    host = "127.0.0.1" if version == 4 else "::1"
    argv = [ping, "-v", "-n", "-c", str(PING_COUNT), "-i", "0.2", "-W", "2"]
    argv += ["-6"] if version == 6 else ["-4"]
    p = subprocess.run(argv + [host], capture_output=True, text=True, timeout=30)
    replies = [m for m in map(_PING_LINE.search, p.stdout.splitlines()) if m]
    if p.returncode != 0 or len(replies) != PING_COUNT:
        sys.exit(f"icmp_real.py: {' '.join(argv + [host])} failed (rc={p.returncode}):\n{p.stdout}{p.stderr}")
    out = []
    for m in replies:
        nbytes, _, seq, ident, rtt = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4)), float(m.group(5))
        out.append(_txn("ping%d" % version, version, host, host,
                        (8, 0) if version == 4 else (128, 0), (0, 0) if version == 4 else (129, 0),
                        ident, seq, PING_DATA, nbytes - 8, client_rtt_ms=rtt,
                        tool=f"iputils {ping_version(ping)} ping -{version}"))
    return out


def ping_version(ping: str) -> str:
    p = subprocess.run([ping, "-V"], capture_output=True, text=True)
    m = re.search(r"iputils[- ](\S+)", p.stdout + p.stderr)
    return m.group(1) if m else "unknown"


def udp_to_closed_port(version: int) -> dict:
    family, host = (socket.AF_INET, "127.0.0.1") if version == 4 else (socket.AF_INET6, "::1")
    probe = socket.socket(family, socket.SOCK_DGRAM)
    probe.bind((host, 0))                      # a port nobody listens on once this socket is closed
    port = probe.getsockname()[1]
    probe.close()
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.connect((host, port))
        s.send(UDP_PROBE)
        try:
            s.recv(100)
            sys.exit(f"icmp_real.py: something answered on udp port {port}; no port-unreachable to capture")
        except ConnectionRefusedError:
            pass
        except socket.timeout:
            sys.exit(f"icmp_real.py: no ICMP port-unreachable for udp port {port} (firewall?)")
    finally:
        s.close()
    # The error quotes the whole offending datagram (it is far below the
    # 576 / 1280-byte quoting limits): IP header + UDP header + data.
    quoted = (20 if version == 4 else 40) + 8 + len(UDP_PROBE)
    typ = (3, 3) if version == 4 else (1, 4)
    return _txn("udp%d_closed_port" % version, version, host, host, typ, None, 0, 0, quoted,
                client_error="ECONNREFUSED", udp_port=port, one_way=True, tool="python socket (UDP, connected)")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _icmp4(typ: int, code: int, ident: int, seq: int, body: bytes, bad_sum: bool = False) -> bytes:
    hdr = struct.pack("!BBHHH", typ, code, 0, ident, seq)
    csum = _checksum(hdr + body)
    if bad_sum:
        csum ^= 0x5A5A
    return struct.pack("!BBHHH", typ, code, csum, ident, seq) + body


def _wait_for(raw: socket.socket, typ: int, ident: int, seq: int, timeout: float) -> bytes | None:
    """The first ICMP message of ``typ`` with ``ident``/``seq`` read from a raw
    IPv4 ICMP socket (which also sees our own requests on lo)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        raw.settimeout(left)
        try:
            pkt = raw.recv(65535)
        except socket.timeout:
            return None
        icmp = pkt[(pkt[0] & 0x0F) * 4:]
        if len(icmp) >= 8:
            t, _, _, i, s = struct.unpack_from("!BBHHH", icmp)
            if t == typ and i == ident and s == seq:
                return icmp


def raw_socket_cases() -> list[dict]:
    out = []
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        # timestamp request: originate (ms since midnight UT), receive, transmit
        now_ms = int((time.time() % 86400) * 1000)
        body = struct.pack("!III", now_ms, 0, 0)
        raw.sendto(_icmp4(13, 0, TIMESTAMP_ID, TIMESTAMP_SEQ, body), ("127.0.0.1", 0))
        reply = _wait_for(raw, 14, TIMESTAMP_ID, TIMESTAMP_SEQ, 2.0)
        if reply is None:
            sys.exit("icmp_real.py: the kernel did not answer the ICMP timestamp request")
        out.append(_txn("timestamp", 4, "127.0.0.1", "127.0.0.1", (13, 0), (14, 0),
                        TIMESTAMP_ID, TIMESTAMP_SEQ, len(body), len(reply) - 8, tool="python raw socket"))
        # an echo reply nobody asked for
        body = b"unsolicited"
        raw.sendto(_icmp4(0, 0, ORPHAN_ID, ORPHAN_SEQ, body), ("127.0.0.1", 0))
        out.append(_txn("unsolicited_echo_reply", 4, "127.0.0.1", "127.0.0.1", None, (0, 0),
                        ORPHAN_ID, ORPHAN_SEQ, 0, len(body), [ORPHAN_NOTE], tool="python raw socket"))
        # an echo request the kernel drops (wrong checksum): never answered
        body = b"bad checksum, no answer"
        raw.sendto(_icmp4(8, 0, BADSUM_ID, BADSUM_SEQ, body, bad_sum=True), ("127.0.0.1", 0))
        if _wait_for(raw, 0, BADSUM_ID, BADSUM_SEQ, 0.5) is not None:
            sys.exit("icmp_real.py: the kernel answered an echo request with a wrong checksum")
        out.append(_txn("echo_bad_checksum", 4, "127.0.0.1", "127.0.0.1", (8, 0), None,
                        BADSUM_ID, BADSUM_SEQ, len(body), 0, [NO_REPLY_NOTE], tool="python raw socket"))
    finally:
        raw.close()
    return out


def drive_clients(ping: str) -> list[dict]:
    txns = []
    txns += run_ping(ping, 4)
    txns += run_ping(ping, 6)
    txns.append(udp_to_closed_port(4))
    txns.append(udp_to_closed_port(6))
    txns += raw_socket_cases()
    return txns


# --------------------------------------------------------------------------- capture




def wire_messages(txns: list[dict]) -> list[tuple]:
    """(version, type, code, id, seq) of every ICMP message the truth implies."""
    out = []
    for t in txns:
        for side in ("request", "response"):
            if t[side] is not None:
                ident, seq = (t["id"], t["seq"]) if not t.get("one_way") else (None, None)
                out.append((t["version"], t[side]["type"], t[side]["code"], ident, seq))
    return sorted(out, key=repr)


def check_capture(pcap: Path, txns: list[dict]) -> int:
    """The ICMP messages on the wire must be exactly those the truth implies;
    returns the packet count."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap
    pkts = rdpcap(str(pcap))
    seen = []
    for p in pkts:
        if IP in p and p[IP].proto == 1:
            icmp = bytes(p[IP].payload)
            version = 4
        elif IPv6 in p and p[IPv6].nh == 58:
            icmp = bytes(p[IPv6].payload)
            version = 6
        else:
            raise RuntimeError("unexpected packet in the capture: %r" % p)
        typ, code, _, ident, seq = struct.unpack_from("!BBHHH", icmp)
        one_way = typ in ((3, 4, 5, 11, 12) if version == 4 else (1, 2, 3, 4))
        seen.append((version, typ, code, None if one_way else ident, None if one_way else seq))
    want = wire_messages(txns)
    if sorted(seen, key=repr) != want:
        raise RuntimeError("capture does not match what the clients did:\n wire  %s\n truth %s"
                           % (sorted(seen, key=repr), want))
    return len(pkts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    args = ap.parse_args(argv)
    tcpdump, ping = find_tools()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "icmp_real.pcap"
        Path(tmp).chmod(0o777)            # tcpdump may drop root privileges before writing
        dump = start_tcpdump(tcpdump, tmp_pcap, "icmp or icmp6")
        try:
            txns = drive_clients(ping)
        finally:
            report = stop_tcpdump(dump)
        n = check_capture(tmp_pcap, txns)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            sys.exit(f"icmp_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "icmp_real.pcap")
    truth = {
        "pcap": "icmp_real.pcap",
        "generator": "tests/golden/gen/icmp_real.py",
        "linktype": 1,
        "packets": n,
        "server": "Linux %s kernel ICMP/ICMPv6 stack on lo" % os.uname().release,
        "clients": "iputils %s ping; Python %s socket (UDP, raw ICMP)" % (ping_version(ping), sys.version.split()[0]),
        "tcpdump": report.strip().splitlines(),
        "transactions": txns,
    }
    (args.out / "icmp_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'icmp_real.pcap'}: {n} packets, {len(txns)} transactions, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
