"""Real SIP traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump; needs
``sipp``, Debian package ``sip-tester``)::

    .venv/bin/python tests/golden/gen/sip_real.py [--out DIR]

SIPp plays both sides, a UAS on 127.0.0.1:5060 and a UAC, over UDP and over TCP,
with the scenario files beside this script (``sip/*.xml``):

- ``call``: INVITE with SDP / 100 / 180 / 200 with SDP / ACK / BYE (compact header
  names v: f: t: i: m: l:) / 200; Allow on two lines, Supported, User-Agent;
- ``register``: REGISTER / 401 (WWW-Authenticate Digest) / REGISTER with
  Authorization / 200 (Contact with ``expires``, ``q``, ``transport``, ``line``);
- ``cancel``: INVITE / 100 / 180 / CANCEL / 200 / 487 / ACK;
- ``errors``: OPTIONS / 200 (Allow, Accept, Supported), INVITE / 486 / ACK,
  MESSAGE (text body) / 503.

Then this script's own client (for what SIPp cannot do) talks to a SIPp UAS
(``sip/uas_py.xml``): over UDP an OPTIONS with compact headers and no
Content-Length; over TCP two OPTIONS written in one segment and one OPTIONS with
a 3000-byte body written in three segments.

The truth file is written from the client side: what each client sent and
received, in order, from SIPp's ``-trace_msg`` message log of the UAC (the bytes
of every message it sent or read) and from the Python client's own sockets, with
the facts of each message read by this script (start line, Call-ID, CSeq, tags,
Via, ...). The script refuses to write the files unless every UDP message is
exactly one datagram of the capture, every TCP direction of the capture carries
exactly the messages the client logged, and tcpdump reported no drops.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "sip"
SERVER = ("127.0.0.1", 5060)
MAX_PCAP_BYTES = 200_000
RUNS = [("call", "udp"), ("call", "tcp"), ("register", "udp"), ("register", "tcp"),
        ("cancel", "udp"), ("cancel", "tcp"), ("errors", "udp"), ("errors", "tcp")]
UAC_PORT0 = 15060             # run k uses 15060 + k
PY_UDP_PORT = 15068
PY_TCP_PORT = 15069

COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported", "e": "content-encoding"}


# --------------------------------------------------------------------------- message facts

def headers_of(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    hdrs = []
    for ln in lines[1:]:
        name, _, value = ln.partition(":")
        name = name.strip().lower()
        hdrs.append((COMPACT.get(name, name), value.strip()))
    return lines[0], hdrs, body


def _tag(v: str) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", v.split(">")[-1] if ">" in v else v)
    return m.group(1) if m else None


def _user(v: str) -> str | None:
    m = re.search(r"sips?:([^@;>:]+)(?::[^@]*)?@", v)
    return m.group(1) if m else None


def facts(raw: bytes) -> dict:
    """What the script itself reads in a message (the truth the test checks)."""
    first, hdrs, body = headers_of(raw)
    h: dict[str, list[str]] = {}
    for k, v in hdrs:
        h.setdefault(k, []).append(v)
    last = {k: v[-1] for k, v in h.items()}
    f: dict = {"start_line": first}
    if first.startswith("SIP/"):
        _, code, phrase = first.split(" ", 2)
        f.update(type="response", code=int(code), phrase=phrase)
    else:
        method, uri, _ = first.split(" ")
        f.update(type="request", method=method, uri=uri)
    cseq = last["cseq"].split()
    f.update(call_id=last["call-id"], cseq_code=int(cseq[0]), cseq_method=cseq[1],
             from_tag=_tag(last["from"]), to_tag=_tag(last["to"]),
             from_user=_user(last["from"]), to_user=_user(last["to"]),
             via=h.get("via", []))
    if "user-agent" in last:
        f["user_agent"] = last["user-agent"]
    if "content-length" in last:
        f["content_length"] = int(last["content-length"])
    if "content-type" in last:
        f["content_type"] = last["content-type"].lower()
    if "allow" in h:
        f["allow"] = [x.strip().lower() for v in h["allow"] for x in v.split(",") if x.strip()]
    if "contact" in h:
        m = re.search(r"<([^>]*)>", h["contact"][0])
        f["contact_uri"] = m.group(1) if m else h["contact"][0].split(";")[0]
        e = re.search(r">[^,]*;\s*expires=(\d+)", h["contact"][0])
        if e:
            f["contact_expires"] = int(e.group(1))
    if "authorization" in h:
        a = h["authorization"][0]
        f["auth_scheme"] = a.split(" ", 1)[0]
        f["auth_user"] = re.search(r'username="([^"]*)"', a).group(1)
        f["auth_realm"] = re.search(r'realm="([^"]*)"', a).group(1)
    if f.get("content_type") == "application/sdp" and body:
        for ln in body.decode().split("\r\n"):
            if ln.startswith("o="):
                f["sdp_owner"] = ln[2:].split(" ")
            elif ln.startswith("s="):
                f["sdp_session"] = ln[2:]
            elif ln.startswith("c=") and "sdp_connection" not in f:
                f["sdp_connection"] = ln[2:]
    return f


# --------------------------------------------------------------------------- SIPp

_LOG_ENTRY = re.compile(rb"(UDP|TCP) message (sent) \((\d+) bytes\):\n\n|(UDP|TCP) message (received) \[(\d+)\] bytes :\n\n")


def read_message_log(path: Path) -> list[tuple[str, bytes]]:
    """(``sent``/``received``, bytes) of every message in a SIPp -trace_msg log."""
    data = path.read_bytes()
    out = []
    for m in _LOG_ENTRY.finditer(data):
        what = (m.group(2) or m.group(5)).decode()
        n = int(m.group(3) or m.group(6))
        out.append((what, data[m.end():m.end() + n]))
    return out


def wait_listening(transport: str, port: int = SERVER[1], timeout: float = 10.0) -> None:
    """Wait until something listens on ``port`` (read from /proc: no packet is sent)."""
    table, state = ("/proc/net/udp", "07") if transport == "udp" else ("/proc/net/tcp", "0A")
    want = ":%04X" % port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == state:
                    time.sleep(0.05)
                    return
        time.sleep(0.05)
    raise SystemExit("sip_real.py: nothing listens on %s port %d" % (transport, port))


def sipp_run(name: str, transport: str, k: int, tmp: Path) -> list[dict]:
    t = "u1" if transport == "udp" else "t1"
    uas_log = tmp / ("uas-%d.log" % k)
    uac_log = tmp / ("uac-%d.log" % k)
    uas = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / ("uas_%s.xml" % name)), "-i", SERVER[0],
                            "-p", str(SERVER[1]), "-t", t, "-m", "1", "-nostdin", "-trace_msg",
                            "-message_file", str(uas_log)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(transport)
    port = UAC_PORT0 + k
    rc = subprocess.run(["sipp", "-sf", str(SCENARIOS / ("uac_%s.xml" % name)), "-i", "127.0.0.1",
                         "-p", str(port), "-t", t, "-m", "1", "-s", "bob", "-nostdin", "-trace_msg",
                         "-message_file", str(uac_log), "%s:%d" % SERVER],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode
    try:
        uas.wait(timeout=15)
    except subprocess.TimeoutExpired:
        uas.kill()
        raise SystemExit("sip_real.py: the SIPp UAS of %s/%s did not end" % (name, transport))
    if rc != 0 or uas.returncode != 0:
        raise SystemExit("sip_real.py: SIPp %s/%s failed (uac rc=%s, uas rc=%s)" % (name, transport, rc, uas.returncode))
    msgs = []
    for what, raw in read_message_log(uac_log):
        msgs.append({"client": "sipp", "scenario": name, "transport": transport, "client_port": port,
                     "from_client": what == "sent", "raw": raw.decode("utf-8")})
    return msgs


# --------------------------------------------------------------------------- own client

def _options(call_id: str, port: int, transport: str, body: bytes = b"", compact: bool = False,
             length: bool = True) -> bytes:
    tr = transport.upper()
    if compact:
        lines = ["OPTIONS sip:bob@127.0.0.1:5060 SIP/2.0",
                 "v: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-py-%s" % (tr, port, call_id),
                 "f: <sip:erin@127.0.0.1:%d>;tag=py-%s" % (port, call_id),
                 "t: <sip:bob@127.0.0.1:5060>",
                 "i: %s" % call_id,
                 "CSeq: 7 OPTIONS",
                 "m: <sip:erin@127.0.0.1:%d>" % port,
                 "k: path, outbound",
                 "Max-Forwards: 70"]
    else:
        lines = ["OPTIONS sip:bob@127.0.0.1:5060 SIP/2.0",
                 "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-py-%s" % (tr, port, call_id),
                 "From: <sip:erin@127.0.0.1:%d>;tag=py-%s" % (port, call_id),
                 "To: <sip:bob@127.0.0.1:5060>",
                 "Call-ID: %s" % call_id,
                 "CSeq: 7 OPTIONS",
                 "User-Agent: packetbeat-py sip_real.py",
                 "Max-Forwards: 70"]
    if body:
        lines.append("Content-Type: text/plain")
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _read_messages(sock: socket.socket, count: int) -> list[bytes]:
    buf = b""
    out = []
    sock.settimeout(10)
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            _, hdrs, _ = headers_of(buf[:end + 4])
            cl = int(dict(hdrs).get("content-length", "0"))
            if len(buf) >= end + 4 + cl:
                out.append(buf[:end + 4 + cl])
                buf = buf[end + 4 + cl:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("sip_real.py: the UAS closed the connection")
        buf += chunk
    return out


def own_client(tmp: Path) -> list[dict]:
    msgs: list[dict] = []

    def rec(transport, port, from_client, raw, **extra):
        d = {"client": "python", "scenario": "python", "transport": transport, "client_port": port,
             "from_client": from_client, "raw": raw.decode("utf-8")}
        d.update(extra)
        msgs.append(d)

    # UDP: compact headers, no Content-Length
    uas = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / "uas_py.xml"), "-i", SERVER[0], "-p", str(SERVER[1]),
                            "-t", "u1", "-m", "1", "-nostdin"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", PY_UDP_PORT))
        s.settimeout(10)
        req = _options("py-udp-1", PY_UDP_PORT, "udp", compact=True, length=False)
        s.sendto(req, SERVER)
        rec("udp", PY_UDP_PORT, True, req)
        resp, _ = s.recvfrom(65536)
        rec("udp", PY_UDP_PORT, False, resp)
    uas.wait(timeout=15)

    # TCP: two requests in one segment, one request over three segments
    uas = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / "uas_py.xml"), "-i", SERVER[0], "-p", str(SERVER[1]),
                            "-t", "t1", "-m", "3", "-nostdin"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening("tcp")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind(("127.0.0.1", PY_TCP_PORT))
        s.connect(SERVER)
        a = _options("py-tcp-1", PY_TCP_PORT, "tcp")
        b = _options("py-tcp-2", PY_TCP_PORT, "tcp", compact=True)
        s.sendall(a + b)
        rec("tcp", PY_TCP_PORT, True, a, segment="shared")
        rec("tcp", PY_TCP_PORT, True, b, segment="shared")
        for r in _read_messages(s, 2):
            rec("tcp", PY_TCP_PORT, False, r)
        body = b"".join(b"line %04d of a body that spans three TCP segments\r\n" % i for i in range(56))
        c = _options("py-tcp-3", PY_TCP_PORT, "tcp", body=body)
        cut1, cut2 = 200, len(c) - 900
        for part in (c[:cut1], c[cut1:cut2], c[cut2:]):
            s.sendall(part)
            time.sleep(0.05)
        rec("tcp", PY_TCP_PORT, True, c, segment="split")
        for r in _read_messages(s, 1):
            rec("tcp", PY_TCP_PORT, False, r)
        time.sleep(0.2)
    uas.wait(timeout=15)
    return msgs


# --------------------------------------------------------------------------- capture check

def check_capture(pcap: Path, msgs: list[dict]) -> tuple[int, int]:
    """Every UDP message is one datagram; every TCP direction carries exactly
    the messages logged (in order). Returns (packets, TCP segments with payload)."""
    from scapy.layers.inet import TCP, UDP
    from scapy.utils import rdpcap
    pkts = rdpcap(str(pcap))
    datagrams: list[tuple[int, bool, bytes]] = []
    streams: dict[tuple[int, bool], dict[int, bytes]] = {}
    segments = 0
    for p in pkts:
        if UDP in p:
            u = p[UDP]
            to_server = u.dport == SERVER[1]
            datagrams.append((u.sport if to_server else u.dport, to_server, bytes(u.payload)))
        elif TCP in p and bytes(p[TCP].payload):
            t = p[TCP]
            to_server = t.dport == SERVER[1]
            streams.setdefault((t.sport if to_server else t.dport, to_server), {})[t.seq] = bytes(t.payload)
            segments += 1
    udp_truth = [(m["client_port"], m["from_client"], m["raw"].encode()) for m in msgs if m["transport"] == "udp"]
    if sorted(udp_truth) != sorted(datagrams):
        raise SystemExit("sip_real.py: the UDP datagrams of the capture are not the messages the clients logged")
    tcp_truth: dict[tuple[int, bool], bytes] = {}
    for m in msgs:
        if m["transport"] == "tcp":
            key = (m["client_port"], m["from_client"])
            tcp_truth[key] = tcp_truth.get(key, b"") + m["raw"].encode()
    wire = {k: b"".join(v[s] for s in sorted(v)) for k, v in streams.items()}
    if wire != tcp_truth:
        raise SystemExit("sip_real.py: the TCP streams of the capture are not the messages the clients logged")
    return len(pkts), segments


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / "pcaps")
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    if shutil.which("sipp") is None:
        raise SystemExit("sip_real.py: sipp is not installed (Debian: apt-get install sip-tester)")
    version = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip().splitlines()[0].strip()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        tmp.chmod(0o777)               # tcpdump may drop root privileges before writing
        pcap = tmp / "sip_real.pcap"
        dump = start_tcpdump(tcpdump, pcap, "port %d" % SERVER[1])
        msgs: list[dict] = []
        try:
            for k, (name, transport) in enumerate(RUNS):
                msgs += sipp_run(name, transport, k, tmp)
            msgs += own_client(tmp)
        finally:
            report = stop_tcpdump(dump)
        n, segments = check_capture(pcap, msgs)
        size = pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit("sip_real.py: capture is %d bytes, over the %d limit" % (size, MAX_PCAP_BYTES))
        shutil.copyfile(pcap, args.out / "sip_real.pcap")
    for m in msgs:
        m["facts"] = facts(m["raw"].encode())
    truth = {
        "pcap": "sip_real.pcap",
        "generator": "tests/golden/gen/sip_real.py",
        "server": "%s UAS on %s:%d (scenarios tests/golden/gen/sip/uas_*.xml)" % (version, *SERVER),
        "clients": "%s UAC (tests/golden/gen/sip/uac_*.xml, -trace_msg log), Python sockets" % version,
        "packets": n,
        "messages": msgs,
    }
    (args.out / "sip_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print("%s: %d packets, %d messages, %d bytes" % (args.out / "sip_real.pcap", n, len(msgs), size))
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
