#!/usr/bin/env python3
"""Real DNS traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root, with dnsmasq and tcpdump installed)::

    .venv/bin/python tests/golden/gen/dns_real.py [--out tests/golden/pcaps] [--port 10053]

Two servers answer on PORT:

- ``dnsmasq`` on 127.0.0.1 and ::1 (UDP and TCP), started privately with
  local records only: A+AAAA (``--host-record``), ``--address``, CNAME, MX,
  SRV, TXT, PTR, CAA and HTTPS (``--dns-rr``), an NXDOMAIN domain; names it
  does not know are REFUSED (no upstream);
- a small responder of this script on 127.0.0.2 (UDP), for what dnsmasq
  cannot serve: DNSKEY, RRSIG, DS, NSEC, NSEC3, SVCB, an SOA answer with
  authority and glue records, EDNS options (NSID, cookie, client subnet),
  answers without EDNS, an unanswered query, a retransmitted query (same
  ID, answered the second time) and a response with a compression loop.
  Its answers are built with dnspython's message API, so the bytes on the
  wire are what a resolver library writes.

The client is dnspython (``dns.query.udp``/``dns.query.tcp``, EDNS with the
DO bit, several queries on one TCP connection, two queries written in one
TCP segment). ``tcpdump -i lo -U -w FILE 'port PORT'`` captures meanwhile;
it is stopped with SIGINT and must report 0 drops. The truth file records,
per transaction, what the client sent and what it decoded from the answer.
Before writing, the script checks the capture: every query and response of
the truth must be on the wire (decoded with dnspython from the capture).
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

sys.path.insert(0, str(Path(__file__).resolve().parent))   # also when loaded by file path (tests/live)
from loopcap import start_tcpdump, stop_tcpdump  # noqa: E402

DNSMASQ_V4 = "127.0.0.1"
DNSMASQ_V6 = "::1"
RESPONDER = "127.0.0.2"
TTL = 300
MAX_PCAP_BYTES = 300 * 1024
ZONE = "gen.test"

# ------------------------------------------------------------------ records
KSK = base64.b64encode(bytes(range(64))).decode()
ZSK = base64.b64encode(bytes(range(64, 128))).decode()
SIG = base64.b64encode(bytes(range(128, 192))).decode()
HTTPS_RDATA = '1 . alpn="h2,h3" ipv4hint="10.10.0.9"'
CAA_RDATA = '0 issue "letsencrypt.org"'


def _hex(rdtype: str, text: str) -> str:
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)
    return rd.to_wire().hex()


def dnsmasq_args(exe: str, port: int) -> list[str]:
    big = ["--txt-record=big.%s,%s%d" % (ZONE, "x" * 200, i) for i in range(4)]
    return [exe, "--no-daemon", f"--port={port}", f"--listen-address={DNSMASQ_V4}",
            f"--listen-address={DNSMASQ_V6}", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", f"--local-ttl={TTL}", "--log-facility=-",
            f"--host-record=host.{ZONE},10.10.0.1,fd00::1",
            f"--address=/addr.{ZONE}/10.10.0.2",
            f"--address=/nx.{ZONE}/",
            f"--cname=alias.{ZONE},host.{ZONE}",
            f"--mx-host={ZONE},mail.{ZONE},10",
            f"--mx-host={ZONE},mail2.{ZONE},20",
            f"--srv-host=_sip._udp.{ZONE},sip.{ZONE},5060,10,20",
            f"--txt-record=txt.{ZONE},v=spf1 -all,second string",
            f"--ptr-record=5.0.10.10.in-addr.arpa,ptr.{ZONE}",
            f"--dns-rr=caa.{ZONE},257,{_hex('CAA', CAA_RDATA)}",
            f"--dns-rr=www.{ZONE},65,{_hex('HTTPS', HTTPS_RDATA)}",
            *big]


def _rrset(name: str, rdtype: str, *texts: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, TTL, "IN", rdtype, *texts)


def responder_answer(q: dns.message.Message, seen: dict) -> bytes | None:
    """The responder's answer to ``q`` (wire bytes), or None to stay silent."""
    qname = q.question[0].name.to_text(omit_final_dot=True)
    qtype = dns.rdatatype.to_text(q.question[0].rdtype)
    sec = f"sec.{ZONE}."
    if qname == f"drop.{ZONE}":
        return None
    if qname == f"retry.{ZONE}":
        seen[q.id] = seen.get(q.id, 0) + 1
        if seen[q.id] == 1:
            return None
    if qname == f"loop.{ZONE}":
        # a response whose answer name is a compression pointer to itself
        r = dns.message.make_response(q)
        head = r.to_wire()
        hdr = bytearray(head[:12])
        hdr[6:8] = b"\x00\x01"              # ANCOUNT 1
        off = len(head)
        return bytes(hdr) + head[12:] + struct.pack("!H", 0xC000 | off) + struct.pack("!HHIH", 1, 1, TTL, 4) + \
            bytes([10, 10, 0, 99])
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    if qname == sec.rstrip(".") and qtype == "DNSKEY":
        r.flags |= dns.flags.AD
        r.answer.append(_rrset(sec, "DNSKEY", f"257 3 13 {KSK}", f"256 3 13 {ZSK}"))
        r.answer.append(_rrset(sec, "RRSIG", f"DNSKEY 13 3 {TTL} 20300101000000 20240101000000 4242 {sec} {SIG}"))
    elif qname == sec.rstrip(".") and qtype == "DS":
        r.answer.append(_rrset(sec, "DS", "4242 13 2 " + "ab" * 32, "4243 13 1 " + "cd" * 20))
    elif qname == f"nsec.{ZONE}":
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(_rrset(f"{ZONE}.", "SOA", f"ns1.{ZONE}. hostmaster.{ZONE}. 2024010101 7200 900 1209600 300"))
        r.authority.append(_rrset(f"mail.{ZONE}.", "NSEC", f"sec.{ZONE}. A MX RRSIG NSEC TYPE1234"))
        r.authority.append(_rrset(f"mail.{ZONE}.", "RRSIG", f"NSEC 13 3 {TTL} 20300101000000 20240101000000 4242 {ZONE}. {SIG}"))
    elif qname == f"nsec3.{ZONE}":
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(_rrset(f"{ZONE}.", "SOA", f"ns1.{ZONE}. hostmaster.{ZONE}. 2024010101 7200 900 1209600 300"))
        r.authority.append(_rrset(f"2t7b4g4vsa5smi47k61mv5bv1a22bojr.{ZONE}.", "NSEC3",
                                  "1 1 10 AABBCCDD 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S A NS SOA RRSIG DNSKEY NSEC3PARAM"))
        r.authority.append(_rrset(f"{ZONE}.", "NSEC3PARAM", "1 0 10 AABBCCDD"))
    elif qname == f"svc.{ZONE}" and qtype == "SVCB":
        r.answer.append(_rrset(f"svc.{ZONE}.", "SVCB", f'1 backend.{ZONE}. alpn="h2" port="8443"'))
    elif qname == f"zone.{ZONE}" and qtype == "SOA":
        r.answer.append(_rrset(f"zone.{ZONE}.", "SOA", f"ns1.zone.{ZONE}. admin.zone.{ZONE}. 7 3600 600 86400 60"))
        r.authority.append(_rrset(f"zone.{ZONE}.", "NS", f"ns1.zone.{ZONE}.", f"ns2.zone.{ZONE}."))
        r.additional.append(_rrset(f"ns1.zone.{ZONE}.", "A", "10.10.1.1"))
        r.additional.append(_rrset(f"ns1.zone.{ZONE}.", "AAAA", "fd00::1:1"))
    elif qname == f"options.{ZONE}":
        opts = [dns.edns.GenericOption(dns.edns.NSID, b"gen-responder")]
        for o in q.options:
            if o.otype == dns.edns.COOKIE:
                opts.append(dns.edns.GenericOption(dns.edns.COOKIE, o.to_wire() + bytes(range(8))))
            elif o.otype == dns.edns.ECS:
                opts.append(dns.edns.ECSOption(o.address, o.srclen, 16))
        r.use_edns(0, dns.flags.DO, 1232, options=opts)
        r.answer.append(_rrset(f"options.{ZONE}.", "A", "10.10.0.7"))
    elif qname == f"noedns.{ZONE}":
        r.use_edns(False)
        r.answer.append(_rrset(f"noedns.{ZONE}.", "A", "10.10.0.8"))
    elif qname == f"retry.{ZONE}":
        r.answer.append(_rrset(f"retry.{ZONE}.", "A", "10.10.0.6"))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return r.to_wire()


class Responder(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((RESPONDER, port))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.seen: dict = {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            out = responder_answer(dns.message.from_wire(data), self.seen)
            if out is not None:
                self.sock.sendto(out, peer)

    def close(self) -> None:
        self.stop.set()
        self.join(2)
        self.sock.close()


# ------------------------------------------------------------------ client side
class Tap:
    """A socket handed to dnspython that keeps the bytes it really received,
    so the truth holds the size of the message on the wire (dnspython's
    ``to_wire()`` of a decoded answer may compress differently)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received = bytearray()

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def recvfrom(self, n: int):
        data, peer = self._sock.recvfrom(n)
        self.received += data
        return data, peer

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self.received += data
        return data

    def take(self) -> bytes:
        data = bytes(self.received)
        self.received.clear()
        return data


def _rr_list(section) -> list[dict]:
    out = []
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.OPT:
            continue
        for rd in rrset:
            out.append({"name": rrset.name.to_text(), "type": dns.rdatatype.to_text(rrset.rdtype),
                        "class": dns.rdataclass.to_text(rrset.rdclass), "ttl": rrset.ttl,
                        "rdata": rd.to_text()})
    return out


def _edns(m: dns.message.Message) -> dict | None:
    if m.edns < 0:
        return None
    return {"version": m.edns, "do": bool(m.ednsflags & dns.flags.DO), "udp_size": m.payload,
            "options": {str(o.otype.value if hasattr(o.otype, "value") else o.otype): o.to_wire().hex()
                        for o in m.options}}


class Recorder:
    def __init__(self, port: int) -> None:
        self.port = port
        self.txns: list[dict] = []

    def add(self, case: str, transport: str, sock_name, server: str, q: dns.message.Message,
            q_size: int, r: dns.message.Message | None, r_size: int, notes: list[str] = (),
            outcome: str = "answered") -> None:
        qq = q.question[0]
        t = {"case": case, "transport": transport, "client_ip": sock_name[0], "client_port": sock_name[1],
             "server_ip": server, "server_port": self.port, "id": q.id,
             "qname": qq.name.to_text(), "qtype": dns.rdatatype.to_text(qq.rdtype),
             "qclass": dns.rdataclass.to_text(qq.rdclass), "query_flags": dns.flags.to_text(q.flags),
             "query_edns": _edns(q), "query_bytes": q_size, "outcome": outcome, "notes": list(notes),
             "response": None}
        if r is not None:
            t["response"] = {"rcode": dns.rcode.to_text(r.rcode()), "flags": dns.flags.to_text(r.flags),
                             "bytes": r_size, "answers": _rr_list(r.answer),
                             "authorities": _rr_list(r.authority), "additionals": _rr_list(r.additional),
                             "edns": _edns(r)}
        self.txns.append(t)


def udp_ask(rec: Recorder, case: str, server: str, name: str, rdtype: str, notes=(), **make) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **make)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
        s.setblocking(False)                # dnspython waits on the sockets it is given
        tap = Tap(s)
        r = dns.query.udp(q, server, port=rec.port, timeout=3, sock=tap, ignore_trailing=True)
        rec.add(case, "udp", s.getsockname()[:2], server, q, len(q.to_wire()), r, len(tap.take()), notes)
    return r


def _tcp_read(sock: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            d = sock.recv(n - len(buf))
            if not d:
                raise EOFError("server closed the TCP connection")
            buf += d
        return buf
    (n,) = struct.unpack("!H", exact(2))
    return exact(n)


def tcp_session(rec: Recorder, case: str, server: str, questions: list[tuple], pipelined: bool = False) -> None:
    """Several queries on one TCP connection; ``pipelined``: all written in one send()."""
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((server, rec.port))
        me = s.getsockname()[:2]
        qs = [dns.message.make_query(n, t, **kw) for n, t, kw in questions]
        if pipelined:
            s.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in qs)))
            for q in qs:
                wire = _tcp_read(s)
                r = dns.message.from_wire(wire)
                if r.id != q.id:
                    raise RuntimeError(f"{case}: answers out of order")
                rec.add(case, "tcp", me, server, q, len(q.to_wire()) + 2, r, len(wire) + 2,
                        ["queries written in one TCP segment"])
        else:
            tap = Tap(s)
            for q in qs:
                r = dns.query.tcp(q, server, port=rec.port, timeout=5, sock=tap)
                rec.add(case, "tcp", me, server, q, len(q.to_wire()) + 2, r, len(tap.take()))


def drive_clients(rec: Recorder) -> None:
    Z = ZONE
    v4, v6, rs = DNSMASQ_V4, DNSMASQ_V6, RESPONDER
    dnssec = {"use_edns": 0, "want_dnssec": True}
    # dnsmasq over UDP
    udp_ask(rec, "a", v4, f"host.{Z}", "A")
    udp_ask(rec, "aaaa_edns_do", v4, f"host.{Z}", "AAAA", **dnssec)
    udp_ask(rec, "address", v4, f"www.addr.{Z}", "A")
    udp_ask(rec, "cname", v4, f"alias.{Z}", "A")
    udp_ask(rec, "mx", v4, Z, "MX")
    udp_ask(rec, "srv", v4, f"_sip._udp.{Z}", "SRV")
    udp_ask(rec, "txt", v4, f"txt.{Z}", "TXT")
    udp_ask(rec, "ptr", v4, "5.0.10.10.in-addr.arpa", "PTR")
    udp_ask(rec, "ptr_host_record", v4, "1.0.10.10.in-addr.arpa", "PTR")
    udp_ask(rec, "caa", v4, f"caa.{Z}", "CAA")
    udp_ask(rec, "https", v4, f"www.{Z}", "HTTPS", **dnssec)
    udp_ask(rec, "nxdomain", v4, f"missing.nx.{Z}", "A")
    udp_ask(rec, "refused", v4, "unknown.example.org", "A")
    udp_ask(rec, "truncated", v4, f"big.{Z}", "TXT", ["TC bit: the answer does not fit 512 bytes"], use_edns=False)
    udp_ask(rec, "ipv6_transport", v6, f"host.{Z}", "A", **dnssec)
    # dnsmasq over TCP: the truncated answer again, then several queries per connection
    tcp_session(rec, "tcp_after_truncation", v4, [(f"big.{Z}", "TXT", {"use_edns": False})])
    tcp_session(rec, "tcp_session", v4, [(f"host.{Z}", "A", dnssec), (f"alias.{Z}", "A", {}),
                                         (Z, "MX", {}), (f"missing.nx.{Z}", "AAAA", {})])
    tcp_session(rec, "tcp_pipelined", v4, [(f"host.{Z}", "AAAA", {}), (f"txt.{Z}", "TXT", {})], pipelined=True)
    tcp_session(rec, "tcp_ipv6", v6, [(f"caa.{Z}", "CAA", dnssec)])
    # the responder: DNSSEC records, SVCB, sections, EDNS options and edge cases
    udp_ask(rec, "dnskey_rrsig", rs, f"sec.{Z}", "DNSKEY", **dnssec)
    udp_ask(rec, "ds", rs, f"sec.{Z}", "DS", **dnssec)
    udp_ask(rec, "nsec_nxdomain", rs, f"nsec.{Z}", "A", **dnssec)
    udp_ask(rec, "nsec3_nxdomain", rs, f"nsec3.{Z}", "A", **dnssec)
    udp_ask(rec, "svcb", rs, f"svc.{Z}", "SVCB", **dnssec)
    udp_ask(rec, "soa_authority_glue", rs, f"zone.{Z}", "SOA")
    udp_ask(rec, "edns_options", rs, f"options.{Z}", "A",
            use_edns=0, want_dnssec=True,
            options=[dns.edns.GenericOption(dns.edns.NSID, b""),
                     dns.edns.GenericOption(dns.edns.COOKIE, bytes(range(1, 9))),
                     dns.edns.ECSOption("192.0.2.0", 24)])
    udp_ask(rec, "edns_not_answered_with_edns", rs, f"noedns.{Z}", "A", ["Responder does not support EDNS"],
            **dnssec)
    unanswered(rec)
    retransmitted(rec)
    compression_loop(rec)


def _udp_sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)                    # dnspython waits on the sockets it is given
    return s


def unanswered(rec: Recorder) -> None:
    q = dns.message.make_query(f"drop.{ZONE}", "A")
    with _udp_sock() as s:
        try:
            dns.query.udp(q, RESPONDER, port=rec.port, timeout=0.5, sock=s)
            raise RuntimeError("drop.gen.test was answered")
        except dns.exception.Timeout:
            pass
        rec.add("no_response", "udp", s.getsockname(), RESPONDER, q, len(q.to_wire()), None, 0,
                ["the responder never answers"], outcome="no_response")


def retransmitted(rec: Recorder) -> None:
    q = dns.message.make_query(f"retry.{ZONE}", "A")
    with _udp_sock() as s:
        try:
            dns.query.udp(q, RESPONDER, port=rec.port, timeout=0.5, sock=s)
            raise RuntimeError("the first retry.gen.test query was answered")
        except dns.exception.Timeout:
            pass
        rec.add("retransmitted", "udp", s.getsockname(), RESPONDER, q, len(q.to_wire()), None, 0,
                ["first copy unanswered; the client sent it again with the same ID"], outcome="duplicate")
        tap = Tap(s)
        r = dns.query.udp(q, RESPONDER, port=rec.port, timeout=3, sock=tap)
        rec.add("retransmitted", "udp", s.getsockname(), RESPONDER, q, len(q.to_wire()), r, len(tap.take()),
                ["second copy, answered"])


def compression_loop(rec: Recorder) -> None:
    q = dns.message.make_query(f"loop.{ZONE}", "A")
    with _udp_sock() as s:
        s.settimeout(3)
        s.sendto(q.to_wire(), (RESPONDER, rec.port))
        data, _ = s.recvfrom(65535)
        try:
            dns.message.from_wire(data)
            raise RuntimeError("the compression loop response decoded")
        except dns.exception.DNSException:
            pass
        rec.add("compression_loop", "udp", s.getsockname(), RESPONDER, q, len(q.to_wire()), None, len(data),
                ["the response's answer name points at itself: undecodable, the query stays unanswered"],
                outcome="undecodable_response")


# ------------------------------------------------------------------ capture
def find(exe: str) -> str:
    path = shutil.which(exe) or next((p for p in (f"/usr/sbin/{exe}", f"/usr/bin/{exe}") if Path(p).exists()), None)
    if path is None:
        sys.exit(f"dns_real.py: {exe} is not installed (Debian/Ubuntu: apt-get install -y {exe})")
    return path


def start_dnsmasq(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(dnsmasq_args(find("dnsmasq"), port), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            q = dns.message.make_query(f"host.{ZONE}", "A")
            dns.query.udp(q, DNSMASQ_V4, port=port, timeout=0.3)
            return proc
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None:
                sys.exit("dns_real.py: dnsmasq exited: " + proc.stdout.read().decode(errors="replace"))
    proc.kill()
    sys.exit("dns_real.py: dnsmasq did not answer within 5 s")


def dnsmasq_version() -> str:
    out = subprocess.run([find("dnsmasq"), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "dnsmasq"


def check_capture(pcap: Path, rec: Recorder) -> int:
    """Every query and answer of the truth must be in the capture."""
    from scapy.layers.inet import TCP, UDP
    from scapy.utils import rdpcap
    pkts = rdpcap(str(pcap))
    seen: set = set()
    streams: dict = {}
    for p in pkts:
        if UDP in p:
            u = p[UDP]
            to_server = u.dport == rec.port
            cport = u.sport if to_server else u.dport
            try:
                m = dns.message.from_wire(bytes(u.payload))
                seen.add(("udp", cport, m.id, to_server))
            except dns.exception.DNSException:
                seen.add(("udp", cport, "undecodable", to_server))
        elif TCP in p and bytes(p[TCP].payload):
            t = p[TCP]
            to_server = t.dport == rec.port
            cport = t.sport if to_server else t.dport
            streams.setdefault((cport, to_server), {})[t.seq] = bytes(t.payload)
    for (cport, to_server), segs in streams.items():
        data = b"".join(v for _, v in sorted(segs.items()))
        while len(data) >= 2:
            (n,) = struct.unpack("!H", data[:2])
            seen.add(("tcp", cport, dns.message.from_wire(data[2:2 + n]).id, to_server))
            data = data[2 + n:]
    for t in rec.txns:
        if ("%s" % t["transport"], t["client_port"], t["id"], True) not in seen:
            raise RuntimeError(f"{t['case']}: query not in the capture")
        if t["response"] is not None and (t["transport"], t["client_port"], t["id"], False) not in seen:
            raise RuntimeError(f"{t['case']}: answer not in the capture")
        if t["outcome"] == "undecodable_response" and ("udp", t["client_port"], "undecodable", False) not in seen:
            raise RuntimeError(f"{t['case']}: undecodable answer not in the capture")
    return len(pkts)


def generate(out: Path, port: int, name: str = "dns_real") -> dict:
    """Run servers, clients and tcpdump; write ``name``.pcap and ``name``.truth.json into ``out``."""
    tcpdump = find("tcpdump")
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(port)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / f"{name}.pcap"
        Path(tmp).chmod(0o777)            # tcpdump may drop root privileges before writing
        masq = start_dnsmasq(port)
        responder = Responder(port)
        responder.start()
        try:
            dump = start_tcpdump(tcpdump, tmp_pcap, "port %d" % port)
            try:
                drive_clients(rec)
            finally:
                report = stop_tcpdump(dump)
        finally:
            responder.close()
            masq.terminate()
            masq.wait(5)
        n = check_capture(tmp_pcap, rec)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            sys.exit(f"dns_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, out / f"{name}.pcap")
    truth = {
        "pcap": f"{name}.pcap",
        "generator": "tests/golden/gen/dns_real.py",
        "linktype": 1,
        "packets": n,
        "server": f"{dnsmasq_version()} on {DNSMASQ_V4} and [{DNSMASQ_V6}]:{port}; "
                  f"dnspython {dns.version.version} responder on {RESPONDER}:{port}",
        "clients": f"dnspython {dns.version.version} (dns.query.udp, dns.query.tcp, raw TCP pipelining)",
        "tcpdump": report.strip(),
        "transactions": rec.txns,
    }
    (out / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--port", type=int, default=10053)
    args = ap.parse_args(argv)
    truth = generate(args.out, args.port)
    size = (args.out / truth["pcap"]).stat().st_size
    print(f"{args.out / truth['pcap']}: {truth['packets']} packets, {len(truth['transactions'])} transactions, "
          f"{size} bytes")
    print(truth["tcpdump"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
