"""Real TLS handshakes on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/tls_real.py [--out DIR]

Certificates are made here with ``cryptography`` (a test CA, an RSA server
certificate sent with its CA, an EC P-256 server certificate, an EC P-384
client certificate). Two servers run on loopback:

- port 8443 (a default TLS port): Python's ``ssl`` server (RSA certificate,
  ALPN h2/http/1.1, session tickets, TLS 1.0 to 1.3 with
  ``DEFAULT@SECLEVEL=0`` so that 1.0/1.1 are allowed), driven by Python ``ssl``
  clients: TLS 1.3, 1.2, 1.1, 1.0 with SNI and ALPN, a session offered again
  with tickets off (Python's server declines it: a full handshake), ticket
  resumption (1.2) and PSK resumption (1.3), and a
  handshake failure (the client offers only a cipher the server refuses: the
  server answers with a handshake_failure alert);
- port 14430 (a non-default port): ``openssl s_server`` (EC certificate),
  driven by ``openssl s_client``: TLS 1.2 with a client certificate the server
  requires, ``-sess_out``/``-sess_in`` resumption in TLS 1.2 (ticket, and
  session id with ``-no_ticket``) and 1.3, a TLS 1.3 client that refuses the
  server's certificate (``-verify_return_error`` without the CA), and a
  HelloRetryRequest (the client's first key share is P-384, the server only
  takes X25519).

SSL 3.0 cannot be produced: OpenSSL 3 is built without it.

The truth file is written from the client side: what each client asked for
and what its TLS stack reported after the handshake (version, cipher, ALPN,
whether the session was reused, the server certificate it received, the
key-exchange group ``s_client`` printed, or the error it got).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams

MAX_PCAP_BYTES = 300_000
PY_PORT = 8443          # a default TLS port (loopback only)
OSSL_PORT = 14430       # a non-default one
HOST = "127.0.0.1"
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2036, 1, 1, tzinfo=datetime.timezone.utc)


# --------------------------------------------------------------------------- certificates

def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "packetbeat-py")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _cert(subject, key, issuer, issuer_key, serial, sans=(), ca=False):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(serial).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> dict:
    import ipaddress
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("packetbeat-py test CA")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, 1000, ca=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert = _cert(_name("tls-rsa.example", "golden tests"), rsa_key, ca_name, ca_key, 1001,
                     [x509.DNSName("tls-rsa.example"), x509.DNSName("localhost"),
                      x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = _cert(_name("tls-ec.example", "golden tests"), ec_key, ca_name, ca_key, 1002,
                    [x509.DNSName("tls-ec.example")])
    cl_key = ec.generate_private_key(ec.SECP384R1())
    cl_cert = _cert(_name("tls-client.example", "clients"), cl_key, ca_name, ca_key, 1003,
                    [x509.RFC822Name("client@tls-client.example")])

    def pem(c):
        return c.public_bytes(serialization.Encoding.PEM)

    def keypem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    files = {"ca.pem": pem(ca), "rsa.pem": pem(rsa_cert) + pem(ca), "rsa.key": keypem(rsa_key),
             "ec.pem": pem(ec_cert), "ec.key": keypem(ec_key), "client.pem": pem(cl_cert),
             "client.key": keypem(cl_key)}
    for n, data in files.items():
        (d / n).write_bytes(data)
    return {"ca": ca, "rsa": rsa_cert, "ec": ec_cert, "client": cl_cert}


def cert_info(c: x509.Certificate) -> dict:
    der = c.public_bytes(serialization.Encoding.DER)
    return {"subject_cn": c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            "issuer_cn": c.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            "serial": str(c.serial_number), "sha1": hashlib.sha1(der).hexdigest().upper()}


# --------------------------------------------------------------------------- python ssl server

class PyServer:
    """Python's ssl server: answers each line with the line reversed."""

    def __init__(self, d: Path) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:!aNULL:!AES256-SHA:@SECLEVEL=0")
        ctx.load_cert_chain(d / "rsa.pem", d / "rsa.key")
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.ctx = ctx
        self.sock = socket.create_server((HOST, PY_PORT), reuse_port=False)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                line = s.recv(4096)
                if line:
                    s.sendall(line[::-1])
                s.recv(4096)           # until the client closes
        except (ssl.SSLError, OSError):
            pass

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def py_client(case: str, *, sni: str | None, alpn: list[str] | None, minv=None, maxv=None,
              ciphers: str | None = None, no_ticket: bool = False, session=None, ctx=None):
    """One Python ssl client connection; returns (truth record, session)."""
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if minv:
            ctx.minimum_version = minv
        if maxv:
            ctx.maximum_version = maxv
        ctx.set_ciphers(ciphers or "DEFAULT@SECLEVEL=0")
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if no_ticket:
            ctx.options |= ssl.OP_NO_TICKET
    raw = socket.create_connection((HOST, PY_PORT), timeout=5)
    rec = {"case": case, "client": "python-ssl", "server_port": PY_PORT, "client_port": raw.getsockname()[1],
           "sni": sni, "alpn_offered": alpn}
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except ssl.SSLError as e:
        raw.close()
        rec.update({"established": False, "error": e.reason or str(e)})
        return rec, None, ctx
    s.sendall(b"hello\n")
    s.recv(4096)                       # the answer (and TLS 1.3 tickets before it)
    name, _, _ = s.cipher()
    ids = {c["name"]: c["id"] & 0xFFFF for c in ctx.get_ciphers()}
    der = s.getpeercert(binary_form=True)
    rec.update({"established": True, "version": s.version(), "cipher_openssl": name, "cipher_id": ids.get(name),
                "alpn": s.selected_alpn_protocol(), "resumed": s.session_reused,
                "server_cert": cert_info(x509.load_der_x509_certificate(der))})
    sess = s.session
    s.close()
    return rec, sess, ctx


def python_cases(out: list) -> None:
    T = ssl.TLSVersion
    out.append(py_client("tls13_sni_alpn", sni="tls13.example", alpn=["h2", "http/1.1"])[0])
    out.append(py_client("tls12_sni_alpn", sni="tls12.example", alpn=["http/1.1"], maxv=T.TLSv1_2)[0])
    out.append(py_client("tls11", sni="tls11.example", alpn=None, minv=T.TLSv1_1, maxv=T.TLSv1_1)[0])
    out.append(py_client("tls10", sni="tls10.example", alpn=None, minv=T.TLSv1, maxv=T.TLSv1)[0])
    # TLS 1.2, tickets off, the session offered again: Python's server does not resume it
    # (a full handshake with a session id the server does not echo)
    rec, sess, ctx = py_client("tls12_session_id_full", sni="resume-id.example", alpn=None, maxv=T.TLSv1_2,
                               no_ticket=True)
    out.append(rec)
    out.append(py_client("tls12_session_id_offered", sni="resume-id.example", alpn=None, session=sess,
                         ctx=ctx)[0])
    # TLS 1.2 ticket resumption
    rec, sess, ctx = py_client("tls12_ticket_full", sni="resume-ticket.example", alpn=None, maxv=T.TLSv1_2)
    out.append(rec)
    out.append(py_client("tls12_ticket_resumed", sni="resume-ticket.example", alpn=None, session=sess,
                         ctx=ctx)[0])
    # TLS 1.3 PSK (ticket) resumption
    rec, sess, ctx = py_client("tls13_psk_full", sni="resume13.example", alpn=["h2"])
    out.append(rec)
    out.append(py_client("tls13_psk_resumed", sni="resume13.example", alpn=["h2"], session=sess, ctx=ctx)[0])
    # handshake failure: the only cipher offered is one the server refuses
    out.append(py_client("tls12_no_shared_cipher", sni="fail.example", alpn=None, maxv=T.TLSv1_2,
                         ciphers="AES256-SHA@SECLEVEL=0")[0])


# --------------------------------------------------------------------------- openssl s_server / s_client

def _s_server(d: Path, *extra: str) -> subprocess.Popen:
    p = subprocess.Popen(["openssl", "s_server", "-accept", "%s:%d" % (HOST, OSSL_PORT), "-cert", str(d / "ec.pem"),
                          "-key", str(d / "ec.key"), "-rev", "-alpn", "h2,http/1.1", *extra],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # no probe connection (it would be in the capture): s_server says ACCEPT when it listens
    for _ in range(20):
        line = p.stdout.readline()
        if not line or line.startswith(b"ACCEPT"):
            break
    return p


def _s_client(case: str, d: Path, *args: str) -> dict:
    p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (HOST, OSSL_PORT), *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p.stdin.write(b"hello\n")
    p.stdin.flush()
    time.sleep(0.5)
    p.stdin.close()
    text = p.stdout.read().decode(errors="replace")
    p.wait(timeout=10)
    rec = {"case": case, "client": "openssl-s_client", "server_port": OSSL_PORT, "args": list(args)}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("New, ", "Reused, ")) and "Cipher is" in line:
            rec["resumed"] = line.startswith("Reused")
            rec["version"] = line.split(",")[1].strip()
            rec["cipher_openssl"] = line.split("Cipher is")[1].strip()
        elif line.startswith("ALPN protocol:"):
            rec["alpn"] = line.split(":", 1)[1].strip()
        elif line.startswith("No ALPN negotiated"):
            rec["alpn"] = None
        elif line.startswith("subject=") and "server_subject" not in rec:
            rec["server_subject"] = line[len("subject="):]
        elif line.startswith(("Server Temp Key:", "Peer Temp Key:")):
            rec["temp_key"] = line.split(":", 1)[1].strip()
        elif line.startswith("verify error:") and "verify_error" not in rec:
            rec["verify_error"] = line[len("verify error:"):]
        elif ":error:" in line and "SSL routines" in line and "error" not in rec:
            rec["error"] = line.split(":SSL routines:", 1)[1].split(":../", 1)[0]
    # s_client prints the session (cipher and all) even when the handshake failed: an SSL
    # error line says that it did
    rec["established"] = "cipher_openssl" in rec and rec["cipher_openssl"] != "(NONE)" and "error" not in rec
    if "cipher_openssl" in rec:
        ids = {c["name"]: c["id"] & 0xFFFF for c in ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).get_ciphers()}
        rec["cipher_id"] = ids.get(rec["cipher_openssl"])
    return rec


def openssl_cases(d: Path, out: list, pki: dict) -> None:
    sess = d / "sess"
    srv = _s_server(d, "-Verify", "1", "-CAfile", str(d / "ca.pem"))
    try:
        rec = _s_client("tls12_client_cert", d, "-tls1_2", "-servername", "tls-ec.example", "-alpn", "h2",
                        "-cert", str(d / "client.pem"), "-key", str(d / "client.key"))
        rec["client_cert"] = cert_info(pki["client"])
        out.append(rec)
    finally:
        srv.terminate()
        srv.wait()
    srv = _s_server(d)
    try:
        out.append(_s_client("ossl_tls12_full", d, "-tls1_2", "-servername", "tls-ec.example",
                             "-sess_out", str(sess)))
        out.append(_s_client("ossl_tls12_resumed", d, "-tls1_2", "-servername", "tls-ec.example",
                             "-sess_in", str(sess)))
        sess.unlink()
        out.append(_s_client("ossl_tls12_session_id_full", d, "-tls1_2", "-no_ticket", "-servername",
                             "tls-ec.example", "-sess_out", str(sess)))
        out.append(_s_client("ossl_tls12_session_id_resumed", d, "-tls1_2", "-no_ticket", "-servername",
                             "tls-ec.example", "-sess_in", str(sess)))
        sess.unlink()
        out.append(_s_client("ossl_tls13_full", d, "-tls1_3", "-servername", "tls-ec.example", "-alpn",
                             "http/1.1", "-sess_out", str(sess)))
        out.append(_s_client("ossl_tls13_resumed", d, "-tls1_3", "-servername", "tls-ec.example", "-alpn",
                             "http/1.1", "-sess_in", str(sess)))
        # the client does not trust the server's CA: it refuses the certificate (alert unknown_ca)
        out.append(_s_client("ossl_tls13_untrusted_ca", d, "-tls1_3", "-servername", "tls-ec.example",
                             "-verify_return_error"))
    finally:
        srv.terminate()
        srv.wait()
    srv = _s_server(d, "-groups", "X25519")
    try:
        out.append(_s_client("ossl_tls13_hello_retry", d, "-tls1_3", "-servername", "tls-ec.example",
                             "-groups", "P-384:X25519"))
    finally:
        srv.terminate()
        srv.wait()


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    if shutil.which("openssl") is None:
        raise SystemExit("tls_real.py: the openssl command is not installed (apt-get install openssl)")
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    conns: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        d.chmod(0o777)                 # tcpdump may drop root privileges before writing
        pki = make_pki(d)
        tmp_pcap = d / "tls_real.pcap"
        server = PyServer(d)
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d or tcp port %d" % (PY_PORT, OSSL_PORT))
        try:
            python_cases(conns)
            openssl_cases(d, conns, pki)
        finally:
            report = stop_tcpdump(dump)
            server.close()
        streams, n = tcp_streams(tmp_pcap, PY_PORT)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit(f"tls_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        shutil.copyfile(tmp_pcap, args.out / "tls_real.pcap")
    truth = {
        "pcap": "tls_real.pcap",
        "generator": "tests/golden/gen/tls_real.py",
        "linktype": 1,
        "packets": n,
        "servers": {"%d" % PY_PORT: "Python %s ssl (%s) server" % (sys.version.split()[0], ssl.OPENSSL_VERSION),
                    "%d" % OSSL_PORT: "%s s_server" % openssl_version},
        "clients": "Python %s ssl (%s), %s s_client" % (sys.version.split()[0], ssl.OPENSSL_VERSION,
                                                         openssl_version),
        "certificates": {k: cert_info(v) for k, v in pki.items()},
        "connections": conns,
    }
    (args.out / "tls_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'tls_real.pcap'}: {n} packets, {len(conns)} connections, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
