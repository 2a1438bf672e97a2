"""The TLS analyser's events against what real TLS clients reported.

``pcaps/tls_real.pcap`` was captured by ``gen/tls_real.py`` while Python's ssl
clients talked to Python's ssl server on port 8443 and ``openssl s_client``
to ``openssl s_server`` on port 14430 (TLS 1.0 to 1.3, SNI, ALPN, a client
certificate, resumption by session id, ticket and PSK, a HelloRetryRequest, a
handshake failure). Its truth file lists, per connection, what the client asked
for and what its TLS stack reported after the handshake. Every connection must
come out as exactly one event with the same version, cipher, SNI, ALPN (where
the handshake shows it: TLS 1.3 encrypts it), resumption, certificates and
outcome. JA3 and JA3S are checked against tshark's (an independent
implementation) when tshark is installed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import shutil
import subprocess

import pytest

from tests.helpers import run_packetbeat
from worker.protos.tls import algos

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
PCAP = PCAPS / "tls_real.pcap"
PORTS = [443, 8443, 14430]


def _truth() -> dict:
    return json.loads((PCAPS / "tls_real.truth.json").read_text())


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    proc, evs = run_packetbeat(tmp_path_factory.mktemp("tls"), PCAP,
                               protocols=[{"type": "tls", "ports": PORTS}])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return evs


def _pair(events: list[dict], truth: dict) -> list[tuple[dict, dict]]:
    """(truth connection, event): by client port where the client reported
    it, else in order of connection start on the server port."""
    conns = truth["connections"]
    by_port = {}
    for ev in events:
        assert ev["client"]["port"] not in by_port, "two events for one connection"
        by_port[ev["client"]["port"]] = ev
    pairs = []
    known = {c["client_port"] for c in conns if "client_port" in c}
    for c in conns:
        if "client_port" in c:
            pairs.append((c, by_port[c["client_port"]]))
    for sport in sorted({c["server_port"] for c in conns if "client_port" not in c}):
        rest = sorted((ev for ev in events if ev["server"]["port"] == sport and ev["client"]["port"] not in known),
                      key=lambda ev: ev["event"]["start"])
        todo = [c for c in conns if "client_port" not in c and c["server_port"] == sport]
        assert len(rest) == len(todo), (sport, len(rest), len(todo))
        pairs.extend(zip(todo, rest))
    return pairs


def test_one_event_per_connection(events):
    check_count(events, _truth())


def check_count(events: list[dict], truth: dict) -> None:
    assert all(ev["type"] == "tls" for ev in events)
    assert len(events) == len(truth["connections"])
    assert len(_pair(events, truth)) == len(truth["connections"])


def _version(text: str) -> str:
    return {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}[text]


def _sni(c: dict):
    if c["client"] == "python-ssl":
        return c["sni"]
    args = c["args"]
    return args[args.index("-servername") + 1] if "-servername" in args else None


def test_handshakes_match_the_clients(events):
    check_handshakes(events, _truth())


def check_handshakes(events: list[dict], truth: dict) -> None:
    """Every connection of the truth file against its event."""
    certs = truth["certificates"]
    for c, ev in _pair(events, truth):
        tls = ev["tls"]
        case = c["case"]
        assert tls["established"] is c["established"], case
        assert ev["status"] == ("OK" if c["established"] else "Error"), case
        sni = _sni(c)
        assert tls.get("client", {}).get("server_name") == sni, case
        assert ev["server"].get("domain") == sni and ev["destination"].get("domain") == sni, case
        assert ev["server"]["port"] == c["server_port"], case
        start = ev["event"]["start"]
        assert ev["@timestamp"][:23] == start[:23], case
        if not c["established"] and c["client"] == "python-ssl":
            # the server refused the hello: a fatal alert, no cipher, the handshake ends there
            assert c["error"] == "SSLV3_ALERT_HANDSHAKE_FAILURE"
            alerts = tls["detailed"]["alerts"]
            assert {"severity": "fatal", "code": 40, "type": "handshake_failure", "source": "server"} in alerts
            assert "cipher" not in tls and ev["event"]["duration"] > 0
            continue
        if not c["established"]:
            # the client refused the server's certificate (TLS 1.3): its alert ends the handshake
            assert "unable to get local issuer certificate" in c["verify_error"], c
            assert "certificate verify failed" in c["error"], c
            alerts = tls["detailed"]["alerts"]
            assert alerts == [{"severity": "fatal", "code": 48, "type": "unknown_ca", "source": "client"}], case
            assert tls["version"] == "1.3" and tls["cipher"] == "TLS_AES_256_GCM_SHA384", case
            assert ev["event"]["duration"] > 0, case
            continue
        assert ev["event"]["duration"] > 0, case
        assert tls["version"] == _version(c["version"]) and tls["version_protocol"] == "tls", case
        assert tls["detailed"]["version"] == "TLS " + _version(c["version"]), case
        assert tls["cipher"] == algos.cipher_name(c["cipher_id"]), case
        if c["version"] == "TLSv1.3":
            assert tls["cipher"] == c["cipher_openssl"], case     # same names in 1.3
        assert tls["resumed"] is c["resumed"], case
        if c["resumed"]:
            # Packetbeat's rule: "ticket" only when the ServerHello answers with the
            # session_ticket extension (a TLS 1.2 server issuing a new ticket)
            renewed = "session_ticket" in tls["detailed"]["server_hello"].get("extensions", {})
            assert tls["detailed"]["resumption_method"] == ("ticket" if renewed else "id"), case
            if "session_id" in case or c["version"] == "TLSv1.3":
                assert tls["detailed"]["resumption_method"] == "id", case
        else:
            assert "resumption_method" not in tls["detailed"], case
        # ALPN is in the clear up to TLS 1.2 (ServerHello), encrypted in 1.3
        if c["version"] != "TLSv1.3" and c.get("alpn"):
            assert tls["next_protocol"] == c["alpn"], case
        else:
            assert "next_protocol" not in tls, case
        if "temp_key" in c:
            assert tls["curve"] == c["temp_key"].split(",")[0].strip().lower(), case
        # certificates: in the clear up to TLS 1.2, when the handshake is not abbreviated
        full12 = c["version"] != "TLSv1.3" and not c["resumed"]
        server = tls.get("server", {})
        if full12:
            want = c["server_cert"] if "server_cert" in c else certs["ec"]
            if "server_subject" in c:
                assert c["server_subject"].endswith("CN = " + want["subject_cn"])
            x = server["x509"]
            assert x["subject"]["common_name"] == want["subject_cn"], case
            assert x["issuer"]["common_name"] == want["issuer_cn"], case
            assert x["serial_number"] == want["serial"], case
            assert x["version_number"] == 3 and x["signature_algorithm"] == "SHA256-RSA", case
            assert server["hash"]["sha1"] == want["sha1"], case
            assert server["subject"] == x["subject"]["distinguished_name"], case
            assert server["subject"].startswith("CN=%s," % want["subject_cn"]), case
            if c["server_port"] == 8443:
                assert x["public_key_algorithm"] == "RSA" and x["public_key_size"] == 2048, case
                assert x["alternative_names"] == ["tls-rsa.example", "localhost", "127.0.0.1"], case
                chain = tls["detailed"]["server_certificate_chain"]
                assert [m["subject"]["common_name"] for m in chain] == [certs["ca"]["subject_cn"]], case
            else:
                assert x["public_key_algorithm"] == "ECDSA" and x["public_key_size"] == 256, case
        else:
            assert "x509" not in server and "hash" not in server, case
        if "client_cert" in c:
            want = c["client_cert"]
            cx = tls["client"]["x509"]
            assert cx["subject"]["common_name"] == want["subject_cn"], case
            assert cx["alternative_names"] == ["client@tls-client.example"], case
            assert cx["public_key_algorithm"] == "ECDSA" and cx["public_key_size"] == 384, case
            assert tls["client"]["hash"]["sha1"] == want["sha1"], case
            assert tls["detailed"]["client_certificate_requested"] is True, case
        else:
            assert "x509" not in tls.get("client", {}), case
            assert tls["detailed"]["client_certificate_requested"] is False, case
        assert tls["detailed"].get("hello_retry_request", False) is ("hello_retry" in case), case
        ja4 = tls["client"]["ja4"]
        assert ja4.startswith("t%s%s" % (_version(c["version"]).replace("1.", "1"), "d" if sni else "i")), case


def _tshark_fingerprints(pcap) -> dict[int, tuple[str, str]]:
    """client port -> (JA3 of the first ClientHello, JA3S of the last ServerHello), by tshark."""
    cmd = ["tshark", "-r", str(pcap), "-n"]
    for p in PORTS:
        cmd += ["-d", "tcp.port==%d,tls" % p]
    cmd += ["-Y", "tls.handshake.type == 1 || tls.handshake.type == 2", "-T", "fields",
            "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3s"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    fps: dict[int, list] = {}
    for line in out.stdout.splitlines():
        sport, dport, ja3, ja3s = (line.split("\t") + ["", "", "", ""])[:4]
        sport, dport = int(sport), int(dport)
        client = sport if dport in PORTS else dport
        entry = fps.setdefault(client, ["", ""])
        if ja3 and not entry[0]:
            entry[0] = ja3.split(",")[0]
        if ja3s:
            entry[1] = ja3s.split(",")[-1]
    return {k: (v[0], v[1]) for k, v in fps.items()}


def test_ja3_ja3s_match_tshark(events):
    check_ja3_with_tshark(events, PCAP, _truth())


def check_ja3_with_tshark(events: list[dict], pcap, truth: dict) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian: apt-get install tshark): "
                    "JA3/JA3S not cross-checked against Wireshark's implementation")
    fps = _tshark_fingerprints(pcap)
    checked = 0
    for ev in events:
        port = ev["client"]["port"]
        ja3, ja3s = fps[port]
        assert ev["tls"]["client"]["ja3"] == ja3, port
        if ja3s:
            assert ev["tls"]["server"]["ja3s"] == ja3s, port
        checked += 1
    assert checked == len(truth["connections"])


def test_options_raw_certificates_and_fingerprints(tmp_path):
    """include_raw_certificates, fingerprints and include_detailed_fields: false."""
    proc, evs = run_packetbeat(tmp_path, PCAP, protocols=[{
        "type": "tls", "ports": PORTS, "include_raw_certificates": True,
        "fingerprints": ["md5", "sha256"], "include_detailed_fields": False}])
    assert proc.returncode == 0, proc.stderr[-3000:]
    certs = _truth()["certificates"]
    seen = 0
    for ev in evs:
        tls = ev["tls"]
        assert "detailed" not in tls
        server = tls.get("server", {})
        assert "x509" not in server
        chain = server.get("certificate_chain")
        if not chain:
            continue
        seen += 1
        ders = [base64.b64decode("".join(p.strip().splitlines()[1:-1])) for p in chain]
        assert hashlib.sha1(ders[0]).hexdigest().upper() in (certs["rsa"]["sha1"], certs["ec"]["sha1"])
        assert set(server["hash"]) == {"md5", "sha256"}
        assert server["hash"]["sha256"] == hashlib.sha256(ders[0]).hexdigest().upper()
        assert server["hash"]["md5"] == hashlib.md5(ders[0]).hexdigest().upper()
    assert seen >= 8


def test_send_certificates_off(tmp_path):
    proc, evs = run_packetbeat(tmp_path, PCAP, protocols=[{"type": "tls", "ports": PORTS,
                                                           "send_certificates": False}])
    assert proc.returncode == 0, proc.stderr[-3000:]
    with_subject = [ev for ev in evs if "subject" in ev["tls"].get("server", {})]
    assert with_subject
    for ev in evs:
        assert "x509" not in ev["tls"].get("server", {})
        assert "server_certificate_chain" not in ev["tls"]["detailed"]
