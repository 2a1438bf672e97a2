"""The whole pipeline (CLI, two workers) over hostile and damaged TLS traffic,
built on the fly with ``gen/flowbuild.py``: streams that are not TLS on port
443, a lost segment in the middle of a handshake, a ClientHello in one-byte
segments delivered out of order (IPv6 behind a VLAN tag), a handshake message
over the size cap, clear text before the handshake (STARTTLS). The run must
succeed, publish nothing for what is not TLS, and describe the rest."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from tests.helpers import run_packetbeat
from tests.unit.protos import tlsbuild as B

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))
from flowbuild import CLIENT, SERVER, Capture, Endpoint, TcpConv  # noqa: E402

CH = B.client_hello([0x1301, 0xC02F, 0x002F], B.sni("hostile.example") + B.alpn(b"h2") + B.u16s(10, [29, 23]))
SH = B.server_hello(0xC02F, B.alpn(b"h2") + B.ext(0xFF01, b"\x00"))
CKE = B.record(22, B.handshake(16, b"\x41" + b"k" * 65))


def _conv(cap, n, t, client_ip="10.0.0.1", server_ip="10.0.0.2", **kw):
    return TcpConv(cap, Endpoint(client_ip, 40000 + n), Endpoint(server_ip, 443), t, **kw)


def build(path: Path) -> None:
    cap = Capture()
    rnd = random.Random(7)
    # 1. HTTP in clear on 443
    c = _conv(cap, 1, 1_000_000)
    c.handshake()
    c.send(CLIENT, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c.send(SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000, after=300)
    c.close()
    # 2. random bytes both ways, 60 segments
    c = _conv(cap, 2, 2_000_000)
    c.handshake()
    for i in range(30):
        c.send(CLIENT, bytes(rnd.randrange(256) for _ in range(200)), after=50)
        c.send(SERVER, bytes(rnd.randrange(256) for _ in range(300)), after=50)
    c.close()
    # 3. the server's certificate flight loses a segment
    c = _conv(cap, 3, 3_000_000)
    c.handshake()
    c.send(CLIENT, B.record(22, CH))
    flight = B.record(22, SH) + B.record(22, B.certificate([b"\x30" * 3000]) + B.handshake(14, b""))
    c.send(SERVER, flight, splits=[1000, 2000], drop=frozenset({1}), after=400)
    c.close()
    # 4. IPv6 behind VLAN 7, the ClientHello in one-byte segments out of order, then a full handshake
    c = TcpConv(cap, Endpoint("fd00::1", 40004), Endpoint("fd00::2", 443), 4_000_000, link="vlan", vlan_id=7)
    c.handshake()
    data = B.record(22, CH)
    order = list(range(len(data)))
    order[10], order[11] = order[11], order[10]
    order[40], order[45] = order[45], order[40]
    c.send(CLIENT, data, splits=list(range(1, len(data))), order=order, gap=5)
    c.send(SERVER, B.record(22, SH + B.ske_ecdhe(29) + B.handshake(14, b"")), after=300)
    c.send(CLIENT, CKE + B.CCS + B.record(22, b"\x00" * 40), after=300)
    c.send(SERVER, B.CCS + B.record(22, b"\x01" * 40), after=300)
    c.send(CLIENT, B.record(23, b"secret" * 100), after=300)
    c.close()
    # 5. a Certificate message over the 64 KiB cap, then the rest of the handshake
    c = _conv(cap, 5, 5_000_000)
    c.handshake()
    c.send(CLIENT, B.record(22, CH))
    big = B.certificate([b"\x30" * 70000])
    recs = b"".join(B.record(22, big[i:i + 16384]) for i in range(0, len(big), 16384))
    c.send(SERVER, B.record(22, SH) + recs + B.record(22, B.handshake(14, b"")), after=300)
    c.send(CLIENT, CKE + B.CCS, after=300)
    c.send(SERVER, B.CCS, after=300)
    c.close()
    # 6. STARTTLS-like clear text, then the handshake
    c = _conv(cap, 6, 6_000_000)
    c.handshake()
    c.send(SERVER, b"220 ready\r\n")
    c.send(CLIENT, b"STARTTLS\r\n", after=100)
    c.send(SERVER, b"220 go ahead\r\n", after=100)
    c.send(CLIENT, B.record(22, CH), after=100)
    c.send(SERVER, B.record(22, SH + B.ske_ecdhe(23) + B.handshake(14, b"")), after=300)
    c.send(CLIENT, CKE + B.CCS, after=300)
    c.send(SERVER, B.CCS, after=300)
    c.close()
    cap.write(path)


def test_hostile_traffic(tmp_path):
    pcap = tmp_path / "tls_hostile.pcap"
    build(pcap)
    proc, events = run_packetbeat(tmp_path, pcap, protocols=[{"type": "tls", "ports": [443]}], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_port = {ev["client"]["port"]: ev for ev in events}
    assert len(events) == len(by_port) == 4, sorted(by_port)
    assert 40001 not in by_port and 40002 not in by_port          # not TLS: nothing
    lost = by_port[40003]
    assert lost["tls"]["established"] is False and lost["status"] == "Error"
    assert lost["error"]["message"] == "Packet loss while capturing the response"
    assert lost["tls"]["cipher"] == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    v6 = by_port[40004]
    assert v6["tls"]["established"] is True and v6["network"]["type"] == "ipv6"
    assert v6["tls"]["client"]["server_name"] == "hostile.example" and v6["tls"]["curve"] == "x25519"
    assert v6["tls"]["next_protocol"] == "h2" and v6["event"]["duration"] > 0
    big = by_port[40005]
    assert big["tls"]["established"] is True
    assert "exceeds the 65536-byte limit" in big["error"]["message"]
    assert "x509" not in big["tls"].get("server", {})
    st = by_port[40006]
    assert st["tls"]["established"] is True and st["tls"]["curve"] == "secp256r1"
