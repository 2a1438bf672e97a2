"""The TLS analyser on hand-built records: the record parser fed whole, byte by
byte and at random split points gives the same messages; handshake messages
split across records and records across segments; size caps; non-TLS bytes;
gaps; the plugin's events (versions, resumption, certificates, fingerprints,
alerts, direction, timeouts) and its options."""
from __future__ import annotations

import datetime
import hashlib
import random

import pytest

from shared.confutil import ConfigError
from tests.unit.protos import tlsbuild as B
from worker.plugin import Packet, TcpTuple
from worker.protos.tls import TlsPlugin, certs, fingerprints
from worker.protos.tls import handshake as hs
from worker.protos.tls.config import TlsConfig
from worker.protos.tls.parser import (
    ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, ParseError, TlsParser,
)

TUPLE = TcpTuple("192.168.0.1", 6512, "192.168.0.2", 443, 7)

CH_EXTS = (B.sni("example.org") + B.ext(0xFF01, b"\x00") + B.u16s(10, [0x0A0A, 29, 23, 24])
           + B.ext(11, b"\x01\x00") + B.ext(35, b"") + B.u16s(13, [0x0403, 0x0804, 0x0401])
           + B.alpn(b"h2", b"http/1.1") + B.ext(23, b"") + B.ext(0x1A1A, b""))
CIPHERS = [0x2A2A, 0xC02B, 0xC02F, 0xC030, 0x009C, 0x002F]
CH = B.client_hello(CIPHERS, CH_EXTS)
SH = B.server_hello(0xC02F, B.ext(0xFF01, b"\x00") + B.ext(11, b"\x01\x00") + B.alpn(b"h2") + B.ext(35, b""))

FIXTURES = [
    # (wire bytes, [(kind, hs_type, level, code)])
    (B.record(22, CH, b"\x03\x01"), [(HANDSHAKE, 1, 0, -1)]),
    (B.record(22, SH + B.handshake(14, b"")) + B.CCS + B.record(22, b"\xAA" * 40),
     [(HANDSHAKE, 2, 0, -1), (HANDSHAKE, 14, 0, -1), (CHANGE_CIPHER_SPEC, -1, 0, -1), (HANDSHAKE, 0xAA, 0, -1)]),
    # one handshake message over three records, an alert and application data between
    (B.record(22, CH[:50]) + B.record(21, b"\x02\x28") + B.record(22, CH[50:51]) + B.record(23, b"x" * 30)
     + B.record(22, CH[51:]), [(ALERT, -1, 2, 40), (APPLICATION_DATA, -1, 0, -1), (HANDSHAKE, 1, 0, -1)]),
    (B.record(21, b"\x01\x00") + B.record(21, b"\x01\x02\x03") + B.record(24, b"hb"),
     [(ALERT, -1, 1, 0), (ALERT, -1, 0, -1), (24, -1, 0, -1)]),
]


def feed(chunks, parser=None):
    p = parser or TlsParser()
    out = []
    for i, c in enumerate(chunks):
        out.extend(p.feed(memoryview(c), i))
    return [(m.kind, m.hs_type, m.level, m.code) for m in out], [(m.kind, m.body, m.size) for m in out]


@pytest.mark.parametrize("data,want", FIXTURES)
def test_whole_bytewise_and_random_splits(data, want):
    got, whole = feed([data])
    assert got == want
    assert feed([data[i:i + 1] for i in range(len(data))]) == (want, whole)
    rnd = random.Random(len(data))
    for _ in range(30):
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(1, 6))))
        chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        assert feed(chunks) == (want, whole)
    for (kind, body, size), (_, hs_type, _, _) in zip(whole, want):
        if kind == HANDSHAKE and hs_type == 1:
            assert body == CH[4:] and size == len(CH) - 4


def test_message_timestamp_is_where_it_began():
    data = B.record(22, CH)
    p = TlsParser()
    assert p.feed(memoryview(data[:10]), 100) == []
    msgs = p.feed(memoryview(data[10:] + B.CCS), 200)
    assert [(m.kind, m.ts) for m in msgs] == [(HANDSHAKE, 100), (CHANGE_CIPHER_SPEC, 200)]


def test_two_messages_in_one_record_and_one_message_over_records():
    two = B.record(22, B.handshake(14, b"") + B.handshake(13, b"\x01\x01\x00\x00"))
    assert feed([two])[0] == [(HANDSHAKE, 14, 0, -1), (HANDSHAKE, 13, 0, -1)]
    cert = B.certificate([b"x" * 20000])        # one message over two records (record cap 16 KiB)
    recs = B.record(22, cert[:16000]) + B.record(22, cert[16000:])
    got, msgs = feed([recs])
    assert got == [(HANDSHAKE, 11, 0, -1)] and msgs[0][1] == cert[4:]


def test_oversized_handshake_message_is_skipped_with_a_note():
    big = B.handshake(11, b"z" * 70000)
    data = b"".join(B.record(22, big[i:i + 16384]) for i in range(0, len(big), 16384))
    data += B.record(22, B.handshake(14, b""))
    got, _ = feed([data])
    assert got == [(HANDSHAKE, 11, 0, -1), (HANDSHAKE, 14, 0, -1)]
    msgs = TlsParser().feed(memoryview(data), 1)
    assert msgs[0].oversize and "exceeds" in msgs[0].notes[0] and msgs[0].body == b""
    assert feed([data[i:i + 1000] for i in range(0, len(data), 1000)])[0] == got
    # the skipped bytes are never buffered
    p = TlsParser()
    p.feed(memoryview(data[:40000]), 1)
    assert len(p.hs) < 20000 and len(p.buf) < 20000


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x02\x00\x00\x01a",
                                  b"\x16\x03\x03\xff\xff", b"\x19\x03\x01\x00\x01a", b"\x80\x2e\x01\x03\x01"])
def test_not_tls_raises_parse_error(data):
    with pytest.raises(ParseError):
        TlsParser().feed(memoryview(data), 1)


def test_parse_error_keeps_messages_before_bad_bytes():
    with pytest.raises(ParseError) as e:
        TlsParser().feed(memoryview(B.record(21, b"\x02\x28") + b"HTTP/1.1 200 OK\r\n"), 1)
    assert [(m.kind, m.code) for m in e.value.messages] == [(ALERT, 40)]


def test_gap_inside_application_data_is_harmless():
    p = TlsParser()
    p.feed(memoryview(B.record(23, b"a" * 1000)[:100]), 1)
    assert p.on_gap(500)
    assert not p.on_gap(600)
    p2 = TlsParser()
    p2.feed(memoryview(B.record(22, CH)[:20]), 1)
    assert not p2.on_gap(10)


# --------------------------------------------------------------------------- hellos, fingerprints

def test_hello_and_extension_map():
    h = hs.parse_client_hello(CH[4:])
    assert h.version == (3, 3) and h.ciphers == CIPHERS and h.compression == [0]
    m = hs.extension_map(h)
    assert m["server_name_indication"] == ["example.org"]
    assert m["supported_groups"] == ["x25519", "secp256r1", "secp384r1"]       # GREASE left out
    assert m["application_layer_protocol_negotiation"] == ["h2", "http/1.1"]
    assert m["signature_algorithms"] == ["ecdsa_secp256r1_sha256", "rsa_pss_sha256", "rsa_pkcs1_sha256"]
    assert m["ec_points_formats"] == ["uncompressed"] and m["session_ticket"] == ""
    assert m["_unparsed_"] == ["renegotiation_info", "23"]
    with pytest.raises(hs.HelloError):
        hs.parse_client_hello(CH[4:30])
    with pytest.raises(hs.HelloError):
        hs.parse_client_hello(b"\x02\x00" + CH[6:])


def test_ja3_and_ja3s():
    h = hs.parse_client_hello(CH[4:])
    s = "771,49195-49199-49200-156-47,0-65281-10-11-35-13-16-23,29-23-24,0"
    assert fingerprints.ja3_string(h) == s
    assert fingerprints.ja3(h) == hashlib.md5(s.encode()).hexdigest()
    sh = hs.parse_server_hello(SH[4:])
    assert fingerprints.ja3s_string(sh) == "771,49199,65281-11-16-35"


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_ja4_and_ja4s():
    exts = (B.sni("a.example") + B.alpn(b"h2", b"http/1.1") + B.u16s(43, [0x3A3A, 0x0304, 0x0303], prefix=1)
            + B.u16s(10, [29]) + B.u16s(13, [0x0403, 0x0804]) + B.ext(0x2A2A, b""))
    h = hs.parse_client_hello(B.client_hello([0x5A5A, 0x1302, 0x1301, 0xC02B], exts)[4:])
    want_b = _sha12("1301,1302,c02b")
    want_c = _sha12("000a,000d,002b_0403,0804")
    assert fingerprints.ja4(h) == "t13d0305h2_%s_%s" % (want_b, want_c)
    # no SNI, no ALPN, no signature algorithms, TLS 1.2
    h = hs.parse_client_hello(B.client_hello([0x002F], B.u16s(10, [23]))[4:])
    assert fingerprints.ja4(h) == "t12i010100_%s_%s" % (_sha12("002f"), _sha12("000a"))
    # an ALPN value that is not alphanumeric: the hex form's first and last characters
    h = hs.parse_client_hello(B.client_hello([0x002F], B.alpn(b"\xab\x01"))[4:])
    assert fingerprints.ja4(h).startswith("t12i0101a1_")
    sh = hs.parse_server_hello(B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x1d\x00\x00"))[4:])
    assert fingerprints.ja4s(sh) == "t130200_1301_%s" % _sha12("002b,0033")


# --------------------------------------------------------------------------- plugin

def run(packets, config=None):
    """packets: [(direction, bytes, ts)] -> events."""
    evs = []
    p = TlsPlugin(config or {}, evs.append)
    st = None
    for d, data, ts in packets:
        st = p.parse(Packet(ts, None, memoryview(data)), TUPLE, d, st)
    return p, st, evs


def _cert(cn: str, issuer_cn: str = "Test CA", sans=None, extra=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org, Inc."), *extra,
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    iss = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
    b = (x509.CertificateBuilder().subject_name(subj).issuer_name(iss).public_key(key.public_key())
         .serial_number(123456789).not_valid_before(datetime.datetime(2024, 1, 2, 3, 4, 5))
         .not_valid_after(datetime.datetime(2034, 1, 2, 3, 4, 5)))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


def test_full_tls12_handshake_event():
    from cryptography import x509
    import ipaddress
    leaf = _cert("www.example.org", sans=[x509.DNSName("www.example.org"),
                                          x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
                                          x509.RFC822Name("a@example.org")])
    ca = _cert("Test CA", "Root")
    server = B.record(22, SH + B.certificate([leaf, ca]) + B.ske_ecdhe(23) + B.handshake(14, b""))
    client = B.record(22, B.handshake(16, b"\x41" + b"k" * 65)) + B.CCS + B.record(22, b"\x00" * 40)
    p, st, evs = run([(0, B.record(22, CH, b"\x03\x01"), 1_000_000_000), (1, server, 1_001_000_000),
                      (0, client, 1_002_000_000), (1, B.CCS + B.record(22, b"\x01" * 40), 1_003_000_000),
                      (0, B.record(23, b"secret"), 1_004_000_000)])
    assert len(evs) == 1 and p.handshakes == 1 and p.established == 1
    ev = evs[0]
    tls = ev["tls"]
    assert ev["status"] == "OK" and tls["established"] is True and tls["resumed"] is False
    assert ev["event"]["duration"] == 3_000_000
    assert tls["version"] == "1.2" and tls["version_protocol"] == "tls"
    assert tls["cipher"] == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" and tls["curve"] == "secp256r1"
    assert tls["next_protocol"] == "h2"
    assert tls["client"]["server_name"] == "example.org" == ev["server"]["domain"] == ev["destination"]["domain"]
    assert tls["client"]["supported_ciphers"][0] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert len(tls["client"]["supported_ciphers"]) == 5
    srv = tls["server"]
    assert srv["hash"] == {"sha1": hashlib.sha1(leaf).hexdigest().upper()}
    assert srv["subject"] == "CN=www.example.org,O=Org\\, Inc.,C=FR" and srv["issuer"] == "CN=Test CA"
    assert srv["not_before"] == "2024-01-02T03:04:05.000Z" and srv["not_after"] == "2034-01-02T03:04:05.000Z"
    x = srv["x509"]
    assert x["subject"] == {"country": "FR", "organization": "Org, Inc.", "common_name": "www.example.org",
                            "distinguished_name": "CN=www.example.org,O=Org\\, Inc.,C=FR"}
    assert x["alternative_names"] == ["www.example.org", "a@example.org", "10.1.2.3"]
    assert x["signature_algorithm"] == "ECDSA-SHA384" and x["public_key_algorithm"] == "ECDSA"
    assert x["public_key_size"] == 256 and x["serial_number"] == "123456789" and x["version_number"] == 3
    d = tls["detailed"]
    assert d["server_certificate_chain"][0]["subject"]["common_name"] == "Test CA"
    assert d["client_hello"]["version"] == "3.3" and d["server_hello"]["selected_compression_method"] == "NULL"
    assert d["version"] == "TLS 1.2" and d["client_certificate_requested"] is False
    assert "server_certificate" not in d
    # after the event, nothing more is parsed
    p.parse(Packet(2_000_000_000, None, memoryview(b"garbage")), TUPLE, 0, st)
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    assert len(evs) == 1 and p.parse_errors == 0


def test_resumption_by_session_id_and_ticket():
    sid = bytes(range(32))
    ch = B.client_hello([0xC02F], B.ext(35, b""), session_id=sid)
    sh = B.server_hello(0xC02F, B.ext(0xFF01, b"\x00"), session_id=sid)
    _, _, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh) + B.CCS, 2), (0, B.CCS, 3)])
    assert evs[0]["tls"]["resumed"] is True and evs[0]["tls"]["detailed"]["resumption_method"] == "id"
    ch = B.client_hello([0xC02F], B.ext(35, b"T" * 100), session_id=sid)
    sh = B.server_hello(0xC02F, B.ext(35, b""), session_id=sid)
    _, _, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh + B.handshake(4, b"\x00\x00\x1c\x20\x00\x00"))
                                                + B.CCS, 2), (0, B.CCS, 3)])
    assert evs[0]["tls"]["detailed"]["resumption_method"] == "ticket"
    assert evs[0]["tls"]["detailed"]["new_session_ticket"] == {"lifetime_hint": 7200}
    # a full handshake (key exchange) with an echoed session id is not resumed
    _, _, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh + B.ske_ecdhe(29)) + B.CCS, 2), (0, B.CCS, 3)])
    assert evs[0]["tls"]["resumed"] is False and evs[0]["tls"]["curve"] == "x25519"


def test_tls13_version_psk_and_key_share():
    ch = B.client_hello([0x1301], B.u16s(43, [0x0304, 0x0303], prefix=1) + B.ext(41, b"psk"), session_id=b"s" * 32)
    sh = B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x17\x00\x01\x04") + B.ext(41, b"\x00\x00"),
                        session_id=b"s" * 32)
    _, _, evs = run([(0, B.record(22, ch, b"\x03\x01"), 1), (1, B.record(22, sh) + B.CCS + B.record(23, b"e" * 50), 2),
                     (0, B.CCS + B.record(23, b"f" * 50), 3)])
    tls = evs[0]["tls"]
    assert tls["version"] == "1.3" and tls["detailed"]["version"] == "TLS 1.3"
    assert tls["cipher"] == "TLS_AES_128_GCM_SHA256" and tls["curve"] == "secp256r1"
    assert tls["resumed"] is True and tls["detailed"]["resumption_method"] == "id"    # as Packetbeat
    assert tls["server"]["ja4s"].startswith("t1303")


def test_tls13_without_change_cipher_spec_ends_at_application_data():
    ch = B.client_hello([0x1301], B.u16s(43, [0x0304], prefix=1))
    sh = B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x1d\x00\x01\x04"))
    _, _, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh) + B.record(23, b"e" * 50), 2),
                     (0, B.record(23, b"f" * 50), 5)])
    assert evs[0]["tls"]["established"] is True and evs[0]["event"]["duration"] == 4
    assert evs[0]["tls"]["resumed"] is False and evs[0]["tls"]["curve"] == "x25519"


def test_hello_retry_request_does_not_end_the_handshake():
    ch = B.client_hello([0x1301], B.u16s(43, [0x0304], prefix=1))
    hrr = B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x1d"), random=hs.HRR_RANDOM)
    sh = B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x1d\x00\x01\x04"))
    _, _, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, hrr) + B.CCS, 2),
                     (0, B.CCS + B.record(22, ch), 3), (1, B.record(22, sh) + B.record(23, b"e" * 9), 4),
                     (0, B.record(23, b"f"), 5)])
    assert len(evs) == 1
    tls = evs[0]["tls"]
    assert tls["established"] is True and tls["detailed"]["hello_retry_request"] is True
    assert tls["version"] == "1.3" and evs[0]["event"]["duration"] == 4


def test_alert_only_and_invalid_alert():
    p, st, evs = run([(0, B.record(21, b"\x02\x2d", b"\x03\x01"), 1)])
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    d = evs[0]["tls"]["detailed"]
    assert d["alerts"] == [{"severity": "fatal", "code": 45, "type": "certificate_expired", "source": "client"}]
    assert d["alert_types"] == ["certificate_expired"] and evs[0]["status"] == "Error"
    assert "version" not in evs[0]["tls"]
    p, st, evs = run([(0, B.record(21, b"\x01\x02\x03", b"\x03\x01"), 1)])
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    assert evs == []


def test_handshake_failure_ends_at_the_fatal_alert():
    p, st, evs = run([(0, B.record(22, CH), 10), (1, B.record(21, b"\x02\x28"), 15)])
    p.received_fin(TUPLE, 1, st)
    p.flush(TUPLE, st, 0)
    ev = evs[0]
    assert ev["status"] == "Error" and ev["tls"]["established"] is False
    assert ev["event"]["duration"] == 5 and ev["tls"]["detailed"]["alerts"][0]["source"] == "server"
    assert ev["tls"]["version"] == "1.2"           # from the ClientHello, as Packetbeat


def test_client_hello_in_reverse_direction_swaps_roles():
    _, _, evs = run([(1, B.record(22, CH), 1), (0, B.record(22, SH) + B.CCS, 2), (1, B.CCS, 3)])
    ev = evs[0]
    assert ev["client"]["ip"] == "192.168.0.2" and ev["client"]["port"] == 443
    assert ev["server"]["ip"] == "192.168.0.1" and ev["server"]["port"] == 6512
    assert ev["tls"]["established"] is True and ev["tls"]["client"]["server_name"] == "example.org"


def test_not_tls_stream_publishes_nothing_and_is_given_up():
    p, st, evs = run([(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", i) for i in range(40)])
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    p.flush(TUPLE, st, 50)
    assert evs == [] and p.not_tls == 1 and p.parse_errors == 32


def test_starttls_clear_text_then_handshake():
    lines = [(1, b"220 mail.example ESMTP\r\n", 1), (0, b"EHLO c.example\r\n", 2),
             (1, b"250-mail.example\r\n250 STARTTLS\r\n", 3), (0, b"STARTTLS\r\n", 4),
             (1, b"220 2.0.0 Ready to start TLS\r\n", 5)]
    p, st, evs = run(lines + [(0, B.record(22, CH), 6), (1, B.record(22, SH) + B.CCS, 7), (0, B.CCS, 8)])
    assert len(evs) == 1 and evs[0]["tls"]["established"] is True
    assert evs[0]["event"]["start"].endswith("00.000000006Z") and p.parse_errors == 5


def test_gap_during_handshake_publishes_with_a_note():
    p, st, evs = run([(0, B.record(22, CH), 1), (1, B.record(22, SH)[:30], 2)])
    st2, drop = p.gap_in_stream(TUPLE, 1, 100, st)
    assert not drop and st2 is st and p.gap_drops == 1
    p.parse(Packet(3, None, memoryview(B.record(22, B.handshake(14, b"")))), TUPLE, 1, st2)
    p.flush(TUPLE, st2, 4)
    assert len(evs) == 1
    assert evs[0]["error"]["message"] == "Packet loss while capturing the response"
    assert evs[0]["tls"]["established"] is False


def test_gap_after_the_handshake_is_ignored():
    p, st, evs = run([(0, B.record(22, CH), 1), (1, B.record(22, SH) + B.CCS, 2), (0, B.CCS, 3)])
    st2, drop = p.gap_in_stream(TUPLE, 0, 100, st)
    assert not drop and st2 is st and len(evs) == 1 and p.gap_drops == 0


def test_flush_publishes_an_open_handshake_once():
    p, st, evs = run([(0, B.record(22, CH), 1)])
    p.flush(TUPLE, st, 99)
    p.flush(TUPLE, st, 100)
    assert len(evs) == 1 and evs[0]["tls"]["established"] is False and "end" not in evs[0]["event"]


def test_malformed_hello_is_noted_not_raised():
    bad = B.record(22, B.handshake(1, b"\x03\x03" + b"r" * 32 + b"\x40"))   # session id of 64 bytes
    p, st, evs = run([(0, bad, 1), (1, B.record(21, b"\x02\x32"), 2)])
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    assert p.malformed_messages == 1
    assert "malformed handshake message type 1" in evs[0]["error"]["message"]


def test_options():
    leaf = _cert("opt.example")
    server = B.record(22, SH + B.certificate([leaf]))
    cfg = {"include_raw_certificates": True, "fingerprints": ["MD5", "sha-256"], "include_detailed_fields": False}
    p, st, evs = run([(0, B.record(22, CH), 1), (1, server, 2)], cfg)
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    srv = evs[0]["tls"]["server"]
    assert "detailed" not in evs[0]["tls"] and "x509" not in srv
    assert set(srv["hash"]) == {"md5", "sha256"}
    assert srv["certificate_chain"][0].startswith("-----BEGIN CERTIFICATE-----\n")
    p, st, evs = run([(0, B.record(22, CH), 1), (1, server, 2)], {"send_certificates": False})
    p.received_fin(TUPLE, 0, st)
    p.flush(TUPLE, st, 0)
    assert "x509" not in evs[0]["tls"]["server"] and evs[0]["tls"]["server"]["subject"] == "CN=opt.example,O=Org\\, Inc.,C=FR"


def test_config_defaults_and_validation():
    c = TlsConfig()
    assert c.ports == [443, 993, 995, 5223, 8443, 8883, 9243]
    assert c.send_certificates and not c.include_raw_certificates and c.include_detailed_fields
    assert c.fingerprints == ["sha1"]
    with pytest.raises(ConfigError):
        TlsConfig(fingerprints=["sha512"]).validate("tls")
    with pytest.raises(ConfigError):
        TlsConfig(ports=[0]).validate("tls")


def test_distinguished_name_as_go_prints_it():
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c"),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u1"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u2"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "#lead;semi "),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")])
    assert certs._dn(name) == "SERIALNUMBER=42,CN=\\#lead\\;semi\\ ,OU=u1+OU=u2,ST=CA,C=US,1.2.840.113549.1.9.1=a@b.c"
    m = certs._name_map(name)
    assert m["organizational_unit"] == "u1 u2" and m["state_or_province"] == "CA" and m["serial_number"] == "42"
    assert certs.describe(b"not a certificate") is None


def test_fingerprints_of_a_published_chrome_hello():
    """A ClientHello rebuilt from a published record of Chrome 143 (browserleaks.com:
    ``ja3_text``, ``ja4_r``, with GREASE values added back): the JA3 and JA4 there."""
    ciphers = [0x1A1A, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156, 157, 47, 53]
    sigs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    parts = {45: B.ext(45, b"\x01\x01"), 51: B.ext(51, b"\x00\x00"), 16: B.alpn(b"h2", b"http/1.1"),
             65037: B.ext(65037, b"ech"), 23: B.ext(23, b""), 17613: B.ext(17613, b"\x00\x03\x02h2"),
             0: B.sni("tls.browserleaks.com"), 11: B.ext(11, b"\x01\x00"),
             10: B.u16s(10, [0x2A2A, 4588, 29, 23, 24]), 43: B.u16s(43, [0x3A3A, 0x0304, 0x0303], prefix=1),
             65281: B.ext(65281, b"\x00"), 35: B.ext(35, b""), 18: B.ext(18, b""),
             5: B.ext(5, b"\x01\x00\x00\x00\x00"), 13: B.u16s(13, sigs), 27: B.ext(27, b"\x02\x00\x02")}
    order = [45, 51, 16, 65037, 23, 17613, 0, 11, 10, 43, 65281, 35, 18, 5, 13, 27]
    exts = B.ext(0x0A0A, b"") + b"".join(parts[c] for c in order) + B.ext(0x4A4A, b"\x00")
    h = hs.parse_client_hello(B.client_hello(ciphers, exts)[4:])
    assert fingerprints.ja3_string(h) == (
        "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
        "45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0")
    assert fingerprints.ja3(h) == "98487aa16281980e7d1120d399efb6a4"
    assert fingerprints.ja4(h) == "t13d1516h2_8daaf6152771_d8a2da3f94cd"


def test_ssl30_handshake():
    """SSL 3.0 (no extensions): OpenSSL 3 cannot produce it, so it is hand-built."""
    ch = B.client_hello([0x000A, 0x002F], exts=None, version=(3, 0))
    sh = B.server_hello(0x000A, exts=None, version=(3, 0))
    _, _, evs = run([(0, B.record(22, ch, b"\x03\x00"), 1),
                     (1, B.record(22, sh + B.handshake(14, b""), b"\x03\x00") + B.record(20, b"\x01", b"\x03\x00"), 2),
                     (0, B.record(22, B.handshake(16, b"k" * 48), b"\x03\x00") + B.record(20, b"\x01", b"\x03\x00"), 3)])
    tls = evs[0]["tls"]
    assert tls["version"] == "3.0" and tls["version_protocol"] == "ssl" and tls["detailed"]["version"] == "SSL 3.0"
    assert tls["established"] is True and tls["cipher"] == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert "extensions" not in tls["detailed"]["client_hello"]
    assert tls["client"]["ja3"] == hashlib.md5(b"768,10-47,,,").hexdigest()
    assert tls["client"]["ja4"].startswith("ts3i0200")


def test_first_fin_does_not_publish_what_follows_is_kept():
    p, st, evs = run([(0, B.record(22, CH), 1)])
    st = p.received_fin(TUPLE, 0, st)
    assert evs == []
    st = p.parse(Packet(5, None, memoryview(B.record(21, b"\x02\x46"))), TUPLE, 1, st)   # protocol_version
    p.flush(TUPLE, st, 6)
    assert len(evs) == 1 and evs[0]["tls"]["detailed"]["alert_types"] == ["protocol_version"]
    assert evs[0]["event"]["duration"] == 4


def test_tls13_client_encrypted_alert_is_a_failure():
    ch = B.client_hello([0x1301], B.u16s(43, [0x0304], prefix=1))
    sh = B.server_hello(0x1301, B.ext(43, b"\x03\x04") + B.ext(51, b"\x00\x1d\x00\x01\x04"))
    p, st, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh) + B.CCS + B.record(23, b"e" * 700), 2),
                      (0, B.CCS + B.record(23, b"a" * 19), 3)])
    p.flush(TUPLE, st, 9)
    ev = evs[0]
    assert ev["tls"]["established"] is False and ev["status"] == "Error" and ev["event"]["duration"] == 2
    assert "encrypted alert from the client" in ev["error"]["message"]
    # the client's Finished (49 bytes with SHA-256) ends it as established
    p, st, evs = run([(0, B.record(22, ch), 1), (1, B.record(22, sh) + B.CCS + B.record(23, b"e" * 700), 2),
                      (0, B.CCS + B.record(23, b"f" * 49), 3)])
    assert evs[0]["tls"]["established"] is True and evs[0]["event"]["duration"] == 2


def test_hello_shape_leaves_out_random_session_id_and_volatile_extensions():
    """Hello.shape is the event's hello-cache key: the same for hellos that
    render alike (random, session id, key share, PSK, padding, ECH, ticket
    bytes of one length), different as soon as something rendered differs."""
    def ch(ciphers=(0x1301, 0xC02F), name="a.example", share=b"\x01" * 32, pad=3, ticket=b"t" * 8,
           random=bytes(range(32)), session_id=b"", ech=b"e" * 5, psk=b"p" * 7):
        exts = (B.sni(name) + B.ext(hs.EXT_KEY_SHARE, share) + B.ext(hs.EXT_PADDING, b"\0" * pad)
                + B.ext(hs.EXT_SESSION_TICKET, ticket) + B.ext(hs.EXT_ECH, ech) + B.u16s(10, [29, 23])
                + B.ext(hs.EXT_PRE_SHARED_KEY, psk))
        return hs.parse_client_hello(B.client_hello(list(ciphers), exts, random=random, session_id=session_id)[4:])

    base = ch()
    assert base.shape is not None
    for same in (ch(share=b"\x02" * 40), ch(pad=90), ch(ticket=b"u" * 8), ch(random=bytes(32)),
                 ch(session_id=b"s" * 32), ch(ech=b"f" * 50), ch(psk=b"q" * 3)):
        assert same.shape == base.shape
    for other in (ch(ciphers=(0x1301,)), ch(name="b.example"), ch(ticket=b"t" * 9)):
        assert other.shape != base.shape
    # a server hello never shares a client hello's key; nor does a truncated extension block
    sh = hs.parse_server_hello(B.server_hello(0x1301, B.ext(hs.EXT_SUPPORTED_VERSIONS, b"\x03\x04"))[4:])
    assert sh.shape != base.shape
    body = B.client_hello([0x1301], B.sni("a.example"))[4:]
    cut = hs.parse_client_hello(body[:-2])
    assert cut.shape != hs.parse_client_hello(body).shape
