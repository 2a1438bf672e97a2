#!/usr/bin/env python3
"""Real DHCPv4 traffic between network namespaces, captured with tcpdump.

Usage (from the repository root, as root: namespaces, veth and tcpdump need it)::

    .venv/bin/python tests/golden/gen/dhcpv4_real.py [--out tests/golden/pcaps]

Builds two network namespaces of its own, ``pbdhcp-srv`` and ``pbdhcp-cli``,
joined by a veth pair (``pbdhcp-s`` 10.251.0.1/24 in the server namespace,
``pbdhcp-c`` in the client one; the host's interfaces are never touched),
runs dnsmasq as the DHCP server in ``pbdhcp-srv`` and captures on
``pbdhcp-s`` with ``tcpdump -nn -U -s 0 'udp and (port 67 or 68)'``. Then
real clients run one after the other in ``pbdhcp-cli``, each with its own MAC
address on ``pbdhcp-c``:

- ``udhcpc`` (busybox): DISCOVER/OFFER/REQUEST/ACK with a host name, a vendor
  class and extra requested options, then a renew (SIGUSR1: unicast REQUEST
  and ACK), then a release (SIGUSR2: RELEASE);
- ``dhclient`` (ISC): starts from a lease file holding 10.251.0.200, outside
  the server's range: its INIT-REBOOT REQUEST is refused (NAK, the authoritative
  server's message "address not available"), then DISCOVER/OFFER/REQUEST/ACK
  (time offset, time servers, boot file and server name forced by the server),
  then ``dhclient -r``: RELEASE;
- ``dhcpcd``: INFORM for 10.251.0.120 (with a vendor-identifying vendor class,
  option 124) and the server's ACK;
- ``udhcpc -a -B`` whose reserved address 10.251.0.140 is also held by the
  server's interface: the client's ARP check finds it in use, it sends
  DECLINE, then gets another address (broadcast replies, ``-B``: a unicast
  reply to 10.251.0.140 would stay inside the server's namespace).

Truth (``dhcpv4_real.truth.json``) comes from the client side: what each client
said it sent and received (its log lines) and the lease it was handed (the
variables udhcpc and dhcpcd pass to their scripts, dhclient's lease file),
plus what it was told to send (host name, vendor class, requested options).
Before writing, the capture is checked against it: per client MAC, the
message types of the BOOTREQUESTs on the wire must be those the client logged.

The capture is not byte-reproducible (xids, times differ per run); the
committed file is one run and its truth file goes with it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopcap import find_tcpdump  # noqa: E402

NS_SRV, NS_CLI = "pbdhcp-srv", "pbdhcp-cli"
IF_SRV, IF_CLI = "pbdhcp-s", "pbdhcp-c"
SERVER_IP = "10.251.0.1"
RANGE = ("10.251.0.100", "10.251.0.150")
LEASE_SECS = 300
ROUTER = "10.251.0.1"
DNS = ["10.251.0.53", "10.251.0.54"]
NTP = ["10.251.0.1"]
TIME_SERVERS = ["10.251.0.1", "10.251.0.2"]
TIME_OFFSET = 3600
DOMAIN = "pbdhcp.test"
BOOT_FILE, BOOT_SERVER = "pxelinux.0", "pbbootsrv"
OLD_LEASE = "10.251.0.200"            # outside RANGE: the server refuses it
INFORM_IP = "10.251.0.120"
TAKEN_IP = "10.251.0.140"             # reserved for the DECLINE client, held by the server
MAC = {"udhcpc": "02:00:0a:fb:00:11", "dhclient": "02:00:0a:fb:00:22",
       "dhcpcd": "02:00:0a:fb:00:33", "udhcpc-decline": "02:00:0a:fb:00:44"}
MAX_PCAP_BYTES = 200 * 1024


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, timeout=timeout, capture_output=True, text=True)


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


def tool(name: str, package: str) -> str:
    exe = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}", f"/usr/bin/{name}")
                                      if Path(p).exists()), None)
    if exe is None:
        sys.exit("dhcpv4_real.py: %s is not installed (Debian: apt-get install -y %s)" % (name, package))
    return exe


def version(*cmd: str) -> str:
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10)
    return (p.stdout + p.stderr).strip().splitlines()[0].strip()


# --------------------------------------------------------------------------- network
def setup_net() -> None:
    teardown_net()
    sh("ip", "netns", "add", NS_SRV)
    sh("ip", "netns", "add", NS_CLI)
    sh("ip", "link", "add", IF_SRV, "netns", NS_SRV, "type", "veth", "peer", "name", IF_CLI, "netns", NS_CLI)
    sh("ip", "-n", NS_SRV, "addr", "add", SERVER_IP + "/24", "dev", IF_SRV)
    sh("ip", "-n", NS_SRV, "addr", "add", TAKEN_IP + "/32", "dev", IF_SRV)
    for ns, dev in ((NS_SRV, IF_SRV), (NS_CLI, IF_CLI)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", dev, "up")


def teardown_net() -> None:
    for ns in (NS_CLI, NS_SRV):
        sh("ip", "netns", "del", ns, check=False)


def client_mac(mac: str) -> None:
    sh("ip", "-n", NS_CLI, "addr", "flush", "dev", IF_CLI)
    sh("ip", "-n", NS_CLI, "link", "set", IF_CLI, "down")
    sh("ip", "-n", NS_CLI, "link", "set", IF_CLI, "address", mac)
    sh("ip", "-n", NS_CLI, "link", "set", IF_CLI, "up")
    time.sleep(1.0)


# --------------------------------------------------------------------------- scripts
UDHCPC_SCRIPT = """#!/bin/sh
# what udhcpc hands its script, one file per call; then configure the interface
env | grep -E '^(interface|ip|subnet|mask|router|dns|serverid|lease|domain|ntpsrv|hostname|broadcast|siaddr|sname|boot_file|opt[0-9]+)=' | sort > "{out}/env/udhcpc.$1.$(date +%s%N)"
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${{mask:-24}}" dev "$interface" ;;
esac
exit 0
"""

DHCLIENT_SCRIPT = """#!/bin/sh
env | grep -E '^(reason|interface|new_|old_ip_address)' | sort > "{out}/env/dhclient.$reason.$(date +%s%N)"
case "$reason" in
  PREINIT) ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  EXPIRE|FAIL|RELEASE|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
"""

DHCPCD_SCRIPT = """#!/bin/sh
env | grep -E '^(reason|interface|new_)' | sort > "{out}/env/dhcpcd.$reason.$(date +%s%N)"
exit 0
"""

DHCLIENT_CONF = """send host-name "{host}";
send vendor-class-identifier "{vendor}";
request subnet-mask, broadcast-address, time-offset, routers, domain-name, domain-name-servers, host-name, ntp-servers;
"""
DHCLIENT_REQUESTS = ["Subnet Mask", "Broadcast Address", "Time Offset", "Router", "Domain Name",
                     "Domain Name Server", "Host Name", "NTP Servers"]

DHCLIENT_OLD_LEASE = """lease {{
  interface "{dev}";
  fixed-address {ip};
  option subnet-mask 255.255.255.0;
  option dhcp-server-identifier {server};
  renew 4 2037/01/01 00:00:00;
  rebind 4 2037/01/01 00:00:00;
  expire 4 2037/01/01 00:00:00;
}}
"""

DHCPCD_CONF = """hostname {host}
vendorclassid {vendor}
vendclass {ent} {vivc}
option domain_name_servers, domain_name, ntp_servers, routers
nohook resolv.conf, timesyncd, hostname, ntp
noipv6rs
ipv4only
"""
VIVC_ENTERPRISE, VIVC_DATA = 32473, "pbdhcp-vivc"     # 32473: IANA's number for documentation


def write_exec(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v.strip("'")
    return out


def env_files(tmp: Path, prefix: str) -> list[Path]:
    return sorted((tmp / "env").glob(prefix + ".*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))


# --------------------------------------------------------------------------- clients
class LineReader:
    """Lines of a client's stderr/stdout, waited for with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        os.set_blocking(proc.stdout.fileno(), False)
        self._buf = b""

    def _pump(self) -> None:
        try:
            chunk = self.proc.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            self._buf += chunk
            *done, self._buf = self._buf.split(b"\n")
            self.lines += [d.decode(errors="replace").rstrip() for d in done]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < deadline:
            self._pump()
            if sum(1 for ln in self.lines if rx.search(ln)) >= count:
                return
            if self.proc.poll() is not None:
                self._pump()
                if sum(1 for ln in self.lines if rx.search(ln)) >= count:
                    return
                break
            time.sleep(0.05)
        raise SystemExit("dhcpv4_real.py: no %r from the client; it said:\n%s" % (pattern, "\n".join(self.lines)))

    def finish(self, sig: int | None = signal.SIGTERM) -> list[str]:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._pump()
        if self._buf:
            self.lines.append(self._buf.decode(errors="replace").rstrip())
        return self.lines


def udhcpc_messages(lines: list[str]) -> tuple[list[str], list[str]]:
    """(sent, received) message types from udhcpc's log lines."""
    sent, got = [], []
    for ln in lines:
        if re.search(r"broadcasting discover", ln):
            sent.append("discover")
        elif re.search(r"broadcasting select for \S+", ln):
            got.append("offer")             # a select answers an offer
            sent.append("request")
        elif re.search(r"sending renew to", ln) or re.search(r"broadcasting rebind", ln):
            sent.append("request")
        elif re.search(r"lease of \S+ obtained", ln):
            got.append("ack")
        elif re.search(r"received .*NAK|received DHCP NAK", ln):
            got.append("nak")
        elif re.search(r"broadcasting decline", ln):
            sent.append("decline")
        elif re.search(r"sending release", ln):
            sent.append("release")
    return sent, got


def udhcpc_lease(env: dict[str, str]) -> dict:
    return {
        "ip": env["ip"], "server_identifier": env["serverid"], "lease_time_sec": int(env["lease"]),
        "subnet_mask": env["subnet"], "router": env["router"].split(), "dns_servers": env["dns"].split(),
        "domain_name": env.get("domain"), "ntp_servers": env["ntpsrv"].split() if "ntpsrv" in env else None,
        "broadcast_address": env.get("broadcast"),
        "renewal_time_sec": int(env["opt58"], 16) if "opt58" in env else None,
        "rebinding_time_sec": int(env["opt59"], 16) if "opt59" in env else None,
    }


def run_udhcpc(busybox: str, tmp: Path) -> dict:
    host, vendor = "pbcli-udhcpc", "pbdhcp-udhcpc/1.35"
    client_mac(MAC["udhcpc"])
    script = write_exec(tmp / "udhcpc.sh", UDHCPC_SCRIPT.format(out=tmp))
    proc = subprocess.Popen(in_ns(NS_CLI, busybox, "udhcpc", "-i", IF_CLI, "-f", "-t", "5", "-T", "2",
                                  "-s", str(script), "-x", "hostname:" + host, "-V", vendor,
                                  "-O", "ntpsrv", "-O", "domain"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    r = LineReader(proc)
    r.wait_for(r"lease of \S+ obtained")
    time.sleep(0.5)
    proc.send_signal(signal.SIGUSR1)           # renew
    r.wait_for(r"lease of \S+ obtained", 2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGUSR2)           # release
    r.wait_for(r"entering released state")
    lines = r.finish()
    bound = [p for p in env_files(tmp, "udhcpc") if ".bound." in p.name]
    renew = [p for p in env_files(tmp, "udhcpc") if ".renew." in p.name]
    sent, got = udhcpc_messages(lines)
    return {"case": "udhcpc: discover, offer, request, ack; renew; release", "client": "udhcpc",
            "mac": MAC["udhcpc"], "hostname": host, "vendor_class": vendor,
            "requested_options": ["NTP Servers", "Domain Name"],
            "sent": sent, "received": got, "log": lines,
            "leases": [udhcpc_lease(read_env(bound[-1])), udhcpc_lease(read_env(renew[-1]))]}


def run_udhcpc_decline(busybox: str, tmp: Path) -> dict:
    host = "pbcli-decline"
    client_mac(MAC["udhcpc-decline"])
    for p in env_files(tmp, "udhcpc"):
        p.unlink()
    script = write_exec(tmp / "udhcpc.sh", UDHCPC_SCRIPT.format(out=tmp))
    proc = subprocess.Popen(in_ns(NS_CLI, busybox, "udhcpc", "-i", IF_CLI, "-f", "-q", "-n", "-B",
                                  "-a1000", "-t", "5", "-T", "2", "-A", "2", "-s", str(script),
                                  "-x", "hostname:" + host),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    r = LineReader(proc)
    r.wait_for(r"broadcasting decline")
    r.wait_for(r"lease of \S+ obtained", 2, timeout=40)
    lines = r.finish(None)
    bound = [p for p in env_files(tmp, "udhcpc") if ".bound." in p.name]
    sent, got = udhcpc_messages(lines)
    return {"case": "udhcpc -a: the offered address answers ARP: decline; then a new lease",
            "client": "udhcpc", "mac": MAC["udhcpc-decline"], "hostname": host, "vendor_class": None,
            "requested_options": [], "declined_ip": TAKEN_IP,
            "sent": sent, "received": got, "log": lines,
            "leases": [udhcpc_lease(read_env(bound[-1]))]}


def parse_dhclient_leases(text: str) -> list[dict]:
    out = []
    for block in re.findall(r"lease \{(.*?)\n\}", text, re.S):
        d: dict = {}
        for ln in block.strip().splitlines():
            ln = ln.strip().rstrip(";")
            if ln.startswith("option "):
                _, name, value = ln.split(" ", 2)
                d["option " + name] = value.strip('"')
            else:
                name, _, value = ln.partition(" ")
                d[name] = value.strip('"')
        out.append(d)
    return out


def dhclient_lease(d: dict) -> dict:
    return {
        "ip": d["fixed-address"], "server_identifier": d["option dhcp-server-identifier"],
        "lease_time_sec": int(d["option dhcp-lease-time"]), "subnet_mask": d["option subnet-mask"],
        "router": d["option routers"].split(","), "dns_servers": d["option domain-name-servers"].split(","),
        "domain_name": d.get("option domain-name"), "ntp_servers": d["option ntp-servers"].split(","),
        "broadcast_address": d.get("option broadcast-address"),
        "renewal_time_sec": int(d["option dhcp-renewal-time"]),
        "rebinding_time_sec": int(d["option dhcp-rebinding-time"]),
        "utc_time_offset_sec": int(d["option time-offset"]),
        "time_servers": d["option time-servers"].split(","),
        "server_name": d.get("server-name"), "boot_file_name": d.get("filename"),
        "hostname": d.get("option host-name"),
    }


def dhclient_messages(lines: list[str]) -> tuple[list[str], list[str]]:
    sent, got = [], []
    for ln in lines:
        m = re.match(r"(DHCP[A-Z]+) ", ln)
        if not m:
            continue
        kind = m.group(1)[4:].lower()
        if kind in ("discover", "request", "release", "decline", "inform"):
            sent.append(kind)
        elif kind in ("offer", "ack", "nak"):
            got.append(kind)
    return sent, got


def run_dhclient(dhclient: str, tmp: Path) -> dict:
    host, vendor = "pbcli-dhclient", "pbdhcp-dhclient/4.4.3"
    client_mac(MAC["dhclient"])
    conf = tmp / "dhclient.conf"
    conf.write_text(DHCLIENT_CONF.format(host=host, vendor=vendor))
    leases = tmp / "dhclient.leases"
    leases.write_text(DHCLIENT_OLD_LEASE.format(dev=IF_CLI, ip=OLD_LEASE, server=SERVER_IP))
    script = write_exec(tmp / "dhclient.sh", DHCLIENT_SCRIPT.format(out=tmp))
    common = ["-4", "-v", "-cf", str(conf), "-lf", str(leases), "-pf", str(tmp / "dhclient.pid"),
              "-sf", str(script)]
    # -d keeps it in the foreground: read until bound, then stop it (no release)
    proc = subprocess.Popen(in_ns(NS_CLI, dhclient, "-1", "-d", *common, IF_CLI),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    r = LineReader(proc)
    r.wait_for(r"^bound to ", timeout=60)
    lines = r.finish()
    time.sleep(0.5)
    rel = subprocess.run(in_ns(NS_CLI, dhclient, "-r", *common, IF_CLI),
                         capture_output=True, text=True, timeout=30)
    lines += (rel.stdout + rel.stderr).splitlines()
    sent, got = dhclient_messages(lines)
    parsed = parse_dhclient_leases(leases.read_text())
    bound = [d for d in parsed if d.get("fixed-address") != OLD_LEASE]
    return {"case": "dhclient: init-reboot request for an address outside the range: nak; "
                    "discover, offer, request, ack; release",
            "client": "dhclient", "mac": MAC["dhclient"], "hostname": host, "vendor_class": vendor,
            "requested_options": DHCLIENT_REQUESTS, "old_lease_ip": OLD_LEASE,
            "sent": sent, "received": got, "log": lines,
            "leases": [dhclient_lease(bound[-1])]}


def run_dhcpcd(dhcpcd: str, tmp: Path) -> dict:
    host, vendor = "pbcli-dhcpcd", "pbdhcp-dhcpcd/9.4"
    client_mac(MAC["dhcpcd"])
    conf = tmp / "dhcpcd.conf"
    conf.write_text(DHCPCD_CONF.format(host=host, vendor=vendor, ent=VIVC_ENTERPRISE, vivc=VIVC_DATA))
    script = write_exec(tmp / "dhcpcd.sh", DHCPCD_SCRIPT.format(out=tmp))
    p = subprocess.run(in_ns(NS_CLI, dhcpcd, "-4", "-B", "-1", "-d", "-t", "20", "-f", str(conf),
                             "-c", str(script), "-s", INFORM_IP + "/24", IF_CLI),
                       capture_output=True, text=True, timeout=60)
    lines = (p.stdout + p.stderr).splitlines()
    sent = ["inform" for ln in lines if re.search(r"sending INFORM", ln)]
    got = ["ack" for ln in lines if re.search(r"received approval for", ln)]
    xids = [m.group(1) for ln in lines if (m := re.search(r"sending INFORM \(xid (0x[0-9a-f]+)\)", ln))]
    env = read_env(env_files(tmp, "dhcpcd.INFORM")[-1])
    sh("ip", "-n", NS_CLI, "addr", "flush", "dev", IF_CLI)
    return {"case": "dhcpcd --inform: inform, ack (vendor-identifying vendor class)",
            "client": "dhcpcd", "mac": MAC["dhcpcd"], "hostname": host, "vendor_class": vendor,
            "requested_options": ["Domain Name Server", "Domain Name", "NTP Servers", "Router"],
            "inform_ip": INFORM_IP, "transaction_ids": ["0x%08x" % int(x, 16) for x in xids],
            "vivc": {"id": VIVC_ENTERPRISE, "text": VIVC_DATA},
            "sent": sent, "received": got, "log": lines,
            "leases": [{"server_identifier": env.get("new_dhcp_server_identifier"),
                        "router": env["new_routers"].split() if "new_routers" in env else None,
                        "dns_servers": env["new_domain_name_servers"].split()
                        if "new_domain_name_servers" in env else None,
                        "domain_name": env.get("new_domain_name"),
                        "subnet_mask": env.get("new_subnet_mask")}]}


# --------------------------------------------------------------------------- capture check
def wire_requests(pcap: Path) -> tuple[dict[str, list[str]], int]:
    """Per client MAC (ECS text): the message types of the BOOTREQUESTs in the
    file; and the number of frames."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.utils import rdpcap
    names = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak", 7: "release",
             8: "inform"}
    out: dict[str, list[str]] = {}
    frames = rdpcap(str(pcap))
    for p in frames:
        if BOOTP not in p or p[BOOTP].op != 1:
            continue
        mac = p[BOOTP].chaddr[:p[BOOTP].hlen].hex("-").upper()
        mtype = next((o[1] for o in p[DHCP].options if isinstance(o, tuple) and o[0] == "message-type"), None)
        out.setdefault(mac, []).append(names.get(mtype, str(mtype)))
    return out, len(frames)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "pcaps"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("dhcpv4_real.py: run as root (network namespaces, veth, tcpdump)")
    tcpdump = find_tcpdump()
    dnsmasq = tool("dnsmasq", "dnsmasq-base")
    busybox = tool("busybox", "busybox")
    dhclient = tool("dhclient", "isc-dhcp-client")
    dhcpcd = tool("dhcpcd", "dhcpcd-base")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / "dhcpv4_real.pcap"
    tmp = Path(tempfile.mkdtemp(prefix="pbdhcp-"))
    tmp.chmod(0o755)
    (tmp / "env").mkdir()
    versions = {"dnsmasq": version(dnsmasq, "--version"), "busybox": version(busybox),
                "dhclient": version(dhclient, "--version"), "dhcpcd": version(dhcpcd, "--version"),
                "tcpdump": version(tcpdump, "--version")}
    setup_net()
    capture = server = None
    try:
        capture = subprocess.Popen(in_ns(NS_SRV, tcpdump, "-i", IF_SRV, "-nn", "-U", "--immediate-mode",
                                         "-B", "4096", "-s", "0", "-w", str(pcap),
                                         "udp and (port 67 or port 68)"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = capture.stderr.readline().decode(errors="replace")
        if "listening on" not in line:
            sys.exit("dhcpv4_real.py: tcpdump did not start: " + line)
        time.sleep(0.5)
        server = subprocess.Popen(in_ns(
            NS_SRV, dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=" + IF_SRV,
            "--bind-interfaces", "--except-interface=lo", "--no-ping", "--dhcp-authoritative",
            "--dhcp-range=%s,%s,255.255.255.0,%ds" % (RANGE[0], RANGE[1], LEASE_SECS),
            "--dhcp-host=%s,%s" % (MAC["udhcpc-decline"], TAKEN_IP),
            "--dhcp-option=option:router," + ROUTER, "--dhcp-option=option:dns-server," + ",".join(DNS),
            "--dhcp-option=option:ntp-server," + ",".join(NTP), "--dhcp-option=option:domain-name," + DOMAIN,
            "--dhcp-option-force=option:time-offset,%d" % TIME_OFFSET,
            "--dhcp-option-force=4," + ",".join(TIME_SERVERS),
            "--dhcp-boot=%s,%s,%s" % (BOOT_FILE, BOOT_SERVER, SERVER_IP),
            "--dhcp-leasefile=" + str(tmp / "dnsmasq.leases"), "--pid-file=" + str(tmp / "dnsmasq.pid"),
            "--log-dhcp", "--log-facility=" + str(tmp / "dnsmasq.log")),
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        clients = [run_udhcpc(busybox, tmp), run_dhclient(dhclient, tmp), run_dhcpcd(dhcpcd, tmp),
                   run_udhcpc_decline(busybox, tmp)]
        time.sleep(1.0)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        report = ""
        if capture is not None:
            time.sleep(0.5)
            capture.send_signal(signal.SIGINT)
            _, err = capture.communicate(timeout=30)
            report = err.decode(errors="replace")
        teardown_net()
        shutil.rmtree(tmp, ignore_errors=True)
    m = re.search(r"(\d+) packets? dropped by kernel", report)
    if m is None or int(m.group(1)):
        sys.exit("dhcpv4_real.py: tcpdump did not report 0 drops:\n" + report)
    wire, packets = wire_requests(pcap)
    for c in clients:
        mac = c["mac"].replace(":", "-").upper()
        if wire.get(mac) != c["sent"]:
            sys.exit("dhcpv4_real.py: %s: requests on the wire %s != client log %s"
                     % (c["client"], wire.get(mac), c["sent"]))
    if set(wire) != {c["mac"].replace(":", "-").upper() for c in clients}:
        sys.exit("dhcpv4_real.py: requests from unknown MACs: %s" % sorted(wire))
    size = pcap.stat().st_size
    if size > MAX_PCAP_BYTES:
        sys.exit("dhcpv4_real.py: capture is %d bytes, over %d" % (size, MAX_PCAP_BYTES))
    truth = {
        "pcap": pcap.name, "generator": "tests/golden/gen/dhcpv4_real.py", "linktype": "ethernet",
        "packets": packets, "versions": versions,
        "server": {"ip": SERVER_IP, "range": list(RANGE), "router": [ROUTER], "dns_servers": DNS,
                   "ntp_servers": NTP, "domain_name": DOMAIN, "lease_time_sec": LEASE_SECS},
        "clients": clients,
    }
    (out / "dhcpv4_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print("wrote %s (%d bytes) and its truth file: %d clients, requests %s"
          % (pcap, size, len(clients), {c["client"] + " " + c["mac"]: c["sent"] for c in clients}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
