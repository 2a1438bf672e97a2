"""Flows through the whole pipeline (CLI, capture sharding over 2 workers, publisher, file output):
per-direction packets and bytes equal what tcpdump reads from the same capture."""
from __future__ import annotations

import collections
import re
import shutil
import subprocess

import pytest

from tests.helpers import PCAPS, run_packetbeat

# "... ethertype IPv4 (0x0800), length 74: 127.0.0.1.52100 > 127.0.0.1.8080: Flags [S] ..."
_LINE = re.compile(r"length (\d+): ([0-9a-f:.]+)\.(\d+) > ([0-9a-f:.]+)\.(\d+): ")   # IPv4 and IPv6


def tcpdump_counts(pcap):
    """Per conversation (transport, endpoints), in first-seen orientation: [packets, bytes] of each direction, and the frame count."""
    text = subprocess.run(["tcpdump", "-nn", "-e", "-r", str(pcap)], capture_output=True, text=True,
                          check=True).stdout
    convs: dict = {}
    frames = 0
    for line in text.splitlines():
        frames += 1
        m = _LINE.search(line)
        if m is None:
            continue
        size = int(m.group(1))
        s, d = (m.group(2), int(m.group(3))), (m.group(4), int(m.group(5)))
        key = ("udp" if ": UDP," in line else "tcp", frozenset((s, d)))
        c = convs.setdefault(key, {"first": s, "n": collections.Counter()})
        fwd = s == c["first"]
        c["n"]["pk", fwd] += 1
        c["n"]["by", fwd] += size
    return convs, frames


@pytest.mark.parametrize("pcap,protocols", [
    ("http_real.pcap", [{"type": "http", "ports": [8080]}]),
    ("dns_real.pcap", [{"type": "dns", "ports": [10053]}]),
])
def test_flow_counts_equal_tcpdump(tmp_path, pcap, protocols):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed: no independent count")
    path = PCAPS / pcap
    convs, frames = tcpdump_counts(path)
    assert convs
    proc, events = run_packetbeat(tmp_path, path, protocols=protocols,
                                  extra_cfg={"packetbeat.flows": {"timeout": "30s", "period": "-1s"}},
                                  workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flows = [e for e in events if e.get("type") == "flow"]
    assert sum(e["network"]["packets"] for e in flows) == frames
    with_ports = [e for e in flows if "port" in e["source"]]
    assert len(with_ports) == len(convs)
    for ev in with_ports:
        s = (ev["source"]["ip"], ev["source"]["port"])
        d = (ev["destination"]["ip"], ev["destination"]["port"])
        c = convs[(ev["network"]["transport"], frozenset((s, d)))]
        assert c["first"] == s
        assert ev["flow"]["final"] is True
        assert (ev["source"].get("packets", 0), ev["source"].get("bytes", 0)) == (c["n"]["pk", True],
                                                                                c["n"]["by", True])
        assert (ev["destination"].get("packets", 0), ev["destination"].get("bytes", 0)) == (
            c["n"]["pk", False], c["n"]["by", False])
        assert ev["network"]["community_id"].startswith("1:")
    # the analysers still see the same transactions with flows on (empty ACKs are now forwarded)
    (tmp_path / "noflows").mkdir()
    proc2, events2 = run_packetbeat(tmp_path / "noflows", path, protocols=protocols, workers=2)
    assert proc2.returncode == 0
    key = lambda e: (e["type"], e["@timestamp"], e["source"]["port"])   # noqa: E731
    assert sorted(map(key, (e for e in events if e["type"] != "flow"))) == sorted(map(key, events2))


@pytest.mark.parametrize("internal,expected", [
    (None, "internal"),                     # Packetbeat's default internal_networks: private
    (["loopback"], "external"),             # neither 10.1.0.11 nor 10.1.0.81 inside
    (["10.1.0.11/32"], None),               # one host inside: outbound from it, inbound to it, else external
])
def test_flow_direction_from_internal_networks(tmp_path, internal, expected):
    """packetbeat.interfaces.internal_networks gives flow events network.direction, as Packetbeat 8
    does, with the transactions' rules; the transactions of the same run agree. (The capture is
    between two 10.1.0.x hosts, neither of them this host: perimeter rules apply.)"""
    extra = {"packetbeat.flows": {"timeout": "30s", "period": "-1s"}}
    if internal is not None:
        extra["packetbeat.interfaces.internal_networks"] = internal
    proc, events = run_packetbeat(tmp_path, PCAPS / "http_sample.pcap", protocols=[{"type": "http", "ports": [8080]}],
                                  extra_cfg=extra, workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flows = [e for e in events if e.get("type") == "flow"]
    http = [e for e in events if e.get("type") == "http"]
    assert flows and http
    for ev in flows + http:
        want = expected
        if want is None:
            src, dst = ev["source"]["ip"], ev["destination"]["ip"]
            want = "outbound" if src == "10.1.0.11" else "inbound" if dst == "10.1.0.11" else "external"
        assert ev["network"].get("direction") == want, (ev["type"], ev["source"], ev["destination"])
    if expected is None:
        assert {e["network"]["direction"] for e in flows} >= {"outbound", "external"}
