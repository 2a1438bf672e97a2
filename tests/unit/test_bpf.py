"""The capture filter: generated text (Packetbeat's form) and libpcap compilation."""
from __future__ import annotations

import os
import socket
import time

import pytest

from coordinator.capture.bpf import DLT_EN10MB, DLT_RAW, EMPTY_TCP, BpfError, compile_filter, disassemble, generate_filter
from coordinator.capture.live import interface_filter
from coordinator.config import validate_tree
from worker.protos.registry import load_registry

BPF_RET_K = 0x06


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_generated_from_protocol_transports(registry):
    protos = [{"type": "http", "ports": [8080, 80]}, {"type": "dns", "ports": [53]},
              {"type": "redis", "ports": [6379]}]
    assert generate_filter(protos, registry) == "tcp port 80 or tcp port 8080 or port 53 or tcp port 6379"


def test_icmp_and_vlans(registry):
    protos = [{"type": "http", "ports": [80]}, {"type": "icmp"}]
    assert generate_filter(protos, registry) == "tcp port 80 or icmp or icmp6"
    assert generate_filter(protos, registry, with_vlans=True) == \
        "tcp port 80 or icmp or icmp6 or (vlan and (tcp port 80 or icmp or icmp6))"


def test_default_ports_and_flows(registry):
    f = generate_filter([{"type": "mysql"}], registry)
    assert f == "tcp port 3306 or tcp port 3307"             # the analyser's default ports
    # flows need every packet: Packetbeat captures unfiltered then
    assert generate_filter([{"type": "mysql"}], registry, flows_enabled=True) == ""


def test_verbatim_filter_wins(registry):
    settings = validate_tree({"packetbeat": {"interfaces": {"device": "lo", "bpf_filter": "udp port 9"},
                                             "protocols": [{"type": "http", "ports": [80]}]},
                              "output": {"console": {"enabled": True}}}, registry)
    assert interface_filter(settings, settings.interfaces[0], registry) == "udp port 9"
    iface = dict(settings.interfaces[0], bpf_filter="")
    assert interface_filter(settings, iface, registry) == "not (%s) and (tcp port 80)" % EMPTY_TCP
    iface["with_vlans"] = True                  # a cooked socket ("any") never sees tags
    assert interface_filter(settings, iface, registry, cooked=True) == "not (%s) and (tcp port 80)" % EMPTY_TCP
    assert interface_filter(settings, iface, registry).endswith("(tcp port 80 or (vlan and (tcp port 80)))")


def test_compile_returns_sock_filter_program():
    code = compile_filter("tcp port 80", DLT_EN10MB, 1500)
    insns = disassemble(code)
    assert len(code) == 8 * len(insns) and len(insns) > 5
    rets = [k for c, _, _, k in insns if c == BPF_RET_K]
    assert sorted(rets) == [0, 1500]                       # accept with the snap length, or reject
    assert insns[0] == (0x28, 0, 0, 12)                     # ldh [12]: the EtherType
    raw = disassemble(compile_filter("tcp port 80", DLT_RAW))
    assert raw[0][0] == 0x30 and raw[0][3] == 0             # ldb [0]: the IP version nibble
    assert disassemble(compile_filter("")) == [(BPF_RET_K, 0, 0, 65535)]


def test_invalid_filter_is_a_clear_error():
    with pytest.raises(BpfError, match=r"invalid BPF filter 'tcp prot 80': .*syntax error"):
        compile_filter("tcp prot 80")
    with pytest.raises(BpfError, match="invalid BPF filter 'port 99999'"):
        compile_filter("port 99999")


def test_attached_filter_passes_only_matching_traffic():
    if os.geteuid() != 0:
        pytest.skip("attaching a filter to a packet socket needs root")
    from coordinator.capture.afpacket import AfPacketSource
    src = AfPacketSource("lo", buffer_size_mb=2, filter_code=compile_filter("udp port 47811"))
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for port in (47810, 47811, 47812, 47811):
            s.sendto(b"x%d" % port, ("127.0.0.1", port))
        s.close()
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            got += src.read_block(100)
    finally:
        src.close()
    assert [raw[-6:] for _, _, raw in got] == [b"x47811", b"x47811"]


def test_generated_filter_leaves_out_empty_tcp_segments(registry):
    """The kernel keeps SYN/FIN and data segments of a real connection and
    leaves out bare ACKs (which the capture would skip anyway)."""
    if os.geteuid() != 0:
        pytest.skip("attaching a filter to a packet socket needs root")
    from coordinator.capture.afpacket import AfPacketSource
    from shared.decode import decode
    expr = generate_filter([{"type": "http", "ports": [47812]}], registry, skip_empty_tcp=True)
    src = AfPacketSource("lo", buffer_size_mb=2, filter_code=compile_filter(expr))
    lsn = socket.socket()
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("127.0.0.1", 47812))
    lsn.listen(1)
    try:
        cli = socket.create_connection(("127.0.0.1", 47812))
        srv, _ = lsn.accept()
        for _ in range(3):
            cli.sendall(b"GET / HTTP/1.1\r\n\r\n")
            srv.recv(100)
            srv.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            cli.recv(100)
        cli.close()
        srv.close()
        time.sleep(0.3)
        got = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            got += src.read_block(100)
    finally:
        lsn.close()
        src.close()
    decs = [decode(lt, raw) for _, lt, raw in got]
    assert all(d[0] == 6 for d in decs)
    data = [d for d in decs if d[9] > d[8]]
    assert len(data) == 6                                     # 3 requests, 3 responses
    assert sum(1 for d in decs if d[5] & 0x02) == 2          # SYN, SYN-ACK
    assert sum(1 for d in decs if d[5] & 0x01) == 2          # both FINs
    assert all(d[9] > d[8] or d[5] & 0x07 for d in decs)     # no bare ACK reached the ring
