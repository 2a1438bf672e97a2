"""Private network namespaces joined by a veth pair, for live-capture tests.

``Veth(tag)`` creates namespaces ``pbcap-<tag>-s`` (server side, device
``pv<tag>s``, 10.99.<net>.1/24) and ``pbcap-<tag>-c`` (client side,
``pv<tag>c``, 10.99.<net>.2/24). ``vlan=<id>`` adds a VLAN sub-interface on
both ends (10.99.<net+100>.1/.2). Everything is removed on ``close()``.
"""
from __future__ import annotations

import os
import shutil
import subprocess


def netns_available() -> str:
    """Empty when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "live capture tests need root (network namespaces, AF_PACKET)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = "pbcap-probe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode:
        return "cannot create a network namespace: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Veth:
    def __init__(self, tag: str, net: int, vlan: int | None = None):
        self.srv_ns = "pbcap-%s-s" % tag
        self.cli_ns = "pbcap-%s-c" % tag
        self.srv_dev = "pv%ss" % tag
        self.cli_dev = "pv%sc" % tag
        self.srv_ip = "10.99.%d.1" % net
        self.cli_ip = "10.99.%d.2" % net
        self.vlan = vlan
        for ns in (self.srv_ns, self.cli_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        try:
            _ip("netns", "add", self.srv_ns)
            _ip("netns", "add", self.cli_ns)
            _ip("link", "add", self.srv_dev, "netns", self.srv_ns, "type", "veth",
                "peer", "name", self.cli_dev, "netns", self.cli_ns)
            for ns, dev, addr in ((self.srv_ns, self.srv_dev, self.srv_ip), (self.cli_ns, self.cli_dev, self.cli_ip)):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
            if vlan is not None:
                self.vsrv_ip = "10.99.%d.1" % (net + 100)
                self.vcli_ip = "10.99.%d.2" % (net + 100)
                for ns, dev, addr in ((self.srv_ns, self.srv_dev, self.vsrv_ip),
                                      (self.cli_ns, self.cli_dev, self.vcli_ip)):
                    sub = "%s.%d" % (dev, vlan)
                    _ip("-n", ns, "link", "add", "link", dev, "name", sub, "type", "vlan", "id", str(vlan))
                    _ip("-n", ns, "addr", "add", addr + "/24", "dev", sub)
                    _ip("-n", ns, "link", "set", sub, "up")
        except BaseException:
            self.close()
            raise

    def srv(self, *argv: str) -> list[str]:
        """``argv`` run inside the server namespace."""
        return ["ip", "netns", "exec", self.srv_ns, *argv]

    def cli(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.cli_ns, *argv]

    def close(self) -> None:
        for ns in (self.srv_ns, self.cli_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
