"""DNS decoder and TCP stream parser: hand-written bytes for the wire details
(compression, pointer loops, name limits, partial records, framing), and
messages written by dnspython for every record type the analyser decodes;
every TCP fixture fed whole, byte by byte and split at random points gives
the same messages."""
from __future__ import annotations

import random
import struct

import pytest

from worker.plugin import ParseError as BaseParseError
from worker.protos.dns.event import message_text, opt_fields, rdata_fields
from worker.protos.dns.parser import (INCOMPLETE, NON_DNS, ZERO_LENGTH, DnsStreamParser, ParseError,
                                      decode_message)

dns = pytest.importorskip("dns.message", reason="dnspython writes the typed fixtures")
import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.rrset  # noqa: E402

TS = 1_700_000_000_000_000_000


def hdr(mid=0x1234, bits=0x0100, qd=1, an=0, ns=0, ar=0) -> bytes:
    return struct.pack("!6H", mid, bits, qd, an, ns, ar)


def qname(*labels: bytes) -> bytes:
    return b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\x00"


def rr(name: bytes, rtype: int, rdata: bytes, rclass: int = 1, ttl: int = 60) -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


Q_WWW = qname(b"www", b"example", b"com") + struct.pack("!HH", 1, 1)
PTR_QNAME = b"\xc0\x0c"         # pointer to the question name at offset 12


def decode(b: bytes):
    return decode_message(b, TS, len(b))


# ------------------------------------------------------------------ hand-written wire

def test_query_header_and_question():
    m = decode(hdr() + Q_WWW)
    assert m.id == 0x1234 and m.is_request and m.opcode == 0 and m.rcode == 0
    assert m.questions == [("www.example.com.", 1, 1)]
    assert m.answers == m.authorities == m.additionals == [] and m.opt is None
    assert m.ts == TS and m.size == 12 + len(Q_WWW)


def test_response_with_compressed_names():
    cname = rr(PTR_QNAME, 5, qname(b"edge") [:-1] + b"\xc0\x10")   # edge.example.com. via pointer
    a = rr(b"\xc0\x2d", 1, bytes([192, 0, 2, 1]))                     # name points into the CNAME rdata
    msg = hdr(bits=0x8180, an=2) + Q_WWW + cname + a
    m = decode(msg)
    assert not m.is_request
    assert m.answers[0] == ("www.example.com.", 5, 1, 60, "edge.example.com.")
    assert m.answers[1] == ("edge.example.com.", 1, 1, 60, "192.0.2.1")


def test_pointer_loop_is_an_error():
    loop = rr(b"\xc0\x2d", 1, b"\x01\x02\x03\x04")
    assert len(hdr() + Q_WWW) == 33
    msg = hdr(bits=0x8180, an=1) + Q_WWW + b"\xc0\x21" + loop[2:]     # 0x21 = 33: points at itself
    with pytest.raises(ParseError) as ei:
        decode(msg)
    assert "pointer" in str(ei.value) and ei.value.note == NON_DNS


def test_two_pointers_chasing_each_other():
    # name at 33 -> 35 -> 33 ...
    msg = hdr(bits=0x8180, an=1) + Q_WWW + b"\xc0\x23\xc0\x21" + struct.pack("!HHIH", 1, 1, 1, 4) + bytes(4)
    with pytest.raises(ParseError):
        decode(msg)


def test_name_too_long_and_bad_label_types():
    long_name = qname(*[b"a" * 63] * 4)                    # 4 * 64 + 1 = 257 octets
    with pytest.raises(ParseError, match="255"):
        decode(hdr() + long_name + struct.pack("!HH", 1, 1))
    for bad in (b"\x40", b"\x80"):
        with pytest.raises(ParseError, match="label type"):
            decode(hdr() + bad + b"abc\x00" + struct.pack("!HH", 1, 1))


def test_escaped_label_bytes():
    m = decode(hdr() + qname(b"a.b", b"sp ace", b"\x00\xff") + struct.pack("!HH", 16, 1))
    assert m.questions[0][0] == "a\\.b.sp\\ ace.\\000\\255."


def test_header_only_or_short_message_is_not_dns():
    for b in (b"", b"\x00" * 11, hdr(qd=0), hdr(qd=1)):
        with pytest.raises(ParseError):
            decode(b)


def test_counts_larger_than_the_records_present():
    # ancount 5 but the message ends after one record: accepted (truncated answers)
    a = rr(PTR_QNAME, 1, bytes([10, 0, 0, 1]))
    m = decode(hdr(bits=0x8380, an=5, ns=2, ar=1) + Q_WWW + a)
    assert len(m.answers) == 1 and m.bits & 0x0200


def test_record_cut_inside_is_an_error():
    a = rr(PTR_QNAME, 1, bytes([10, 0, 0, 1]))
    with pytest.raises(ParseError):
        decode(hdr(bits=0x8180, an=1) + Q_WWW + a[:-1])       # rdata overflows
    with pytest.raises(ParseError):
        decode(hdr(bits=0x8180, an=1) + Q_WWW + a[:6])        # header cut
    with pytest.raises(ParseError):
        decode(hdr(bits=0x8180, an=1) + Q_WWW + rr(PTR_QNAME, 1, b"\x01\x02\x03"))   # A of 3 bytes
    with pytest.raises(ParseError):
        decode(hdr(bits=0x8180, an=1) + Q_WWW + rr(PTR_QNAME, 5, qname(b"x") + b"\x00"))  # leftover


def test_question_count_lies_past_the_end():
    with pytest.raises(ParseError):
        decode(hdr(qd=2) + Q_WWW)


def test_question_without_type_or_class():
    m = decode(hdr() + qname(b"x"))
    assert m.questions == [("x.", 0, 0)]


def test_empty_rdata_records():
    m = decode(hdr(bits=0x8180, an=3) + Q_WWW + rr(PTR_QNAME, 1, b"") + rr(PTR_QNAME, 15, b"") + rr(PTR_QNAME, 257, b""))
    assert [a[4] for a in m.answers] == [None, (0, ""), b""]
    assert rdata_fields(m.answers[0]) == {}                   # an A without address is not listed


def test_partial_fields_as_the_library_accepts():
    mx = rr(PTR_QNAME, 15, b"\x00\x0a")                      # preference only
    srv = rr(PTR_QNAME, 33, b"\x00\x01\x00\x02")              # priority and weight only
    m = decode(hdr(bits=0x8180, an=2) + Q_WWW + mx + srv)
    assert m.answers[0][4] == (10, "") and m.answers[1][4] == (1, 2, 0, "")
    with pytest.raises(ParseError):
        decode(hdr(bits=0x8180, an=1) + Q_WWW + rr(PTR_QNAME, 15, b"\x00"))    # preference cut


def test_opt_record_and_extended_rcode():
    opt = b"\x00" + struct.pack("!HHIH", 41, 4096, (1 << 24) | 0x8000, 8) + struct.pack("!HH", 3, 4) + b"abcd"
    m = decode(hdr(bits=0x8183, ar=1) + Q_WWW + opt)            # header rcode 3, extended 1
    assert m.opt is not None and m.rcode == (1 << 4) | 3
    assert m.opt[4] == (4096, 1, 0, True, [(3, b"abcd")])
    assert opt_fields(m.opt[4]) == {"do": True, "version": "0", "udp_size": 4096, "ext_rcode": "BADSIG",
                                    "nsid": "61626364"}
    with pytest.raises(ParseError):                             # option overflowing the record
        bad = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 8) + struct.pack("!HH", 3, 9) + b"abcd"
        decode(hdr(bits=0x8180, ar=1) + Q_WWW + bad)


def test_type_bitmap_rules():
    nsec = lambda bm: rr(PTR_QNAME, 47, b"\x00" + bm)  # noqa: E731 - next name is the root
    m = decode(hdr(bits=0x8180, an=1) + Q_WWW + nsec(b"\x00\x01\x40" + b"\x01\x01\x80"))
    assert m.answers[0][4] == (".", [1, 256])
    for bad in (b"\x00\x00", b"\x00\x21" + bytes(33), b"\x01\x01\x80\x00\x01\x40", b"\x00\x05\x40"):
        with pytest.raises(ParseError):
            decode(hdr(bits=0x8180, an=1) + Q_WWW + nsec(bad))


# ------------------------------------------------------------------ every type, written by dnspython

def response_with(*rrsets, authority=(), additional=(), **edns) -> bytes:
    q = dns.message.make_query("x.example.", "A", **edns)
    r = dns.message.make_response(q)
    r.answer.extend(rrsets)
    r.authority.extend(authority)
    r.additional.extend(additional)
    return r.to_wire()


def one(rtype: str, text: str, name: str = "x.example.") -> dict:
    wire = response_with(dns.rrset.from_text(name, 300, "IN", rtype, text))
    m = decode(wire)
    assert len(m.answers) == 1
    return rdata_fields(m.answers[0])


@pytest.mark.parametrize("rtype,text,want", [
    ("A", "192.0.2.7", {"data": "192.0.2.7"}),
    ("AAAA", "2001:db8::7", {"data": "2001:db8::7"}),
    ("AAAA", "::ffff:192.0.2.1", {"data": "192.0.2.1"}),
    ("AAAA", "::1.2.3.4", {"data": "::102:304"}),
    ("CNAME", "target.example.", {"data": "target.example"}),
    ("NS", "ns1.example.", {"data": "ns1.example"}),
    ("PTR", "host.example.", {"data": "host.example"}),
    ("MX", "10 mail.example.", {"preference": 10, "data": "mail.example"}),
    ("SOA", "ns.example. admin.example. 1 2 3 4 5",
     {"rname": "admin.example", "serial": 1, "refresh": 2, "retry": 3, "expire": 4, "minimum": 5,
      "data": "ns.example"}),
    ("SRV", "1 2 5060 sip.example.", {"priority": 1, "weight": 2, "port": 5060, "data": "sip.example"}),
    ("TXT", '"v=spf1 -all" "quote\\" back\\\\slash \\007"', {"data": 'v=spf1 -all quote\\" back\\\\slash \\007'}),
    ("CAA", '0 issue "ca.example"', {"data": "\\000\\005issueca.example"}),
    ("DNSKEY", "257 3 13 AAECAw==", {"flags": "257", "protocol": "3", "algorithm": "ECDSAP256SHA256",
                                      "data": "AAECAw=="}),
    ("DS", "4242 8 2 " + "ab01" * 16, {"key_tag": "4242", "algorithm": "RSASHA256", "digest_type": "SHA256",
                                       "data": "AB01" * 16}),
    ("RRSIG", "A 13 2 300 20300101000000 20240101000000 4242 example. AAECAw==",
     {"type_covered": "A", "algorithm": "ECDSAP256SHA256", "labels": "2", "original_ttl": "300",
      "expiration": "20300101000000", "inception": "20240101000000", "key_tag": "4242",
      "signer_name": "example", "data": "AAECAw=="}),
    ("NSEC", "next.example. A MX RRSIG NSEC", {"type_bits": "A MX RRSIG NSEC", "data": "next.example."}),
    ("NSEC3", "1 1 10 AABB 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG",
     {"hash": "SHA1", "flags": "1", "iterations": "10", "salt": "AABB", "type_bits": "A RRSIG",
      "data": "2T7B4G4VSA5SMI47K61MV5BV1A22BOJR"}),
    ("NSEC3PARAM", "1 0 0 -", {"hash": "SHA1", "flags": "0", "iterations": "0", "data": "-"}),
    ("SVCB", '1 svc.example. alpn="h2"', {"data": "\\000\\001\\003svc\\007example\\000\\000\\001\\000\\003\\002h2"}),
    ("HTTPS", "1 . port=443", {"data": "\\000\\001\\000\\000\\003\\000\\002\\001\\187"}),
])
def test_record_types(rtype, text, want):
    assert one(rtype, text) == want


def test_record_names_and_sections():
    wire = response_with(dns.rrset.from_text("x.example.", 60, "IN", "A", "192.0.2.1"),
                         authority=[dns.rrset.from_text("example.", 60, "IN", "NS", "ns.example.")],
                         additional=[dns.rrset.from_text("ns.example.", 60, "IN", "AAAA", "2001:db8::53")],
                         use_edns=0, want_dnssec=True)
    m = decode(wire)
    assert [a[0] for a in m.answers] == ["x.example."]
    assert m.authorities[0][:4] == ("example.", 2, 1, 60)
    assert len(m.additionals) == 2 and m.additionals[1][1] == 41 and m.opt is m.additionals[1]
    text = message_text(m)
    assert text.startswith("ID %d; QR response; OPCODE QUERY; FLAGS rd; RCODE NOERROR; "
                           "QUESTION class IN, type A, x.example; ANSWER 192.0.2.1; AUTHORITY ns.example; "
                           "ADDITIONAL 2001:db8::53; " % m.id)


def test_edns_options_from_a_resolver_library():
    q = dns.message.make_query("x.example.", "A", use_edns=0, want_dnssec=True, options=[
        dns.edns.GenericOption(dns.edns.NSID, b"ns1"),
        dns.edns.ECSOption("192.0.2.0", 24),
        dns.edns.ECSOption("2001:db8::", 48),
        dns.edns.GenericOption(dns.edns.COOKIE, bytes(range(8))),
        dns.edns.GenericOption(12, bytes(4)),                 # padding: not shown
        dns.edns.GenericOption(65001, b"\x01\x02"),
    ])
    m = decode(q.to_wire())
    assert opt_fields(m.opt[4]) == {
        "do": True, "version": "0", "udp_size": 1232, "ext_rcode": "NOERROR", "nsid": "6e7331",
        "subnet": "[2001:db8::]/48/0", "cookie": "0001020304050607", "local": "65001:0x0102"}


# ------------------------------------------------------------------ TCP framing

def framed(*msgs: bytes) -> bytes:
    return b"".join(struct.pack("!H", len(m)) + m for m in msgs)


FIXTURES = [
    framed(hdr() + Q_WWW),
    framed(hdr(mid=1) + Q_WWW, hdr(mid=2) + Q_WWW, hdr(mid=3) + Q_WWW),
    framed(response_with(dns.rrset.from_text("x.example.", 5, "IN", "TXT", '"%s"' % ("y" * 250)),
                         dns.rrset.from_text("x.example.", 5, "IN", "MX", "1 m.example.")),
           hdr(mid=9) + Q_WWW),
]


def feed_pieces(pieces: list[bytes]) -> list:
    p = DnsStreamParser()
    out = []
    for i, piece in enumerate(pieces):
        out.extend(p.feed(memoryview(piece), TS + i))
    assert not p.pending()
    return out


def summary(msgs) -> list:
    return [(m.id, m.size, m.questions, m.answers, m.opt) for m in msgs]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_split_invariance(fixture):
    whole = feed_pieces([fixture])
    byte_by_byte = feed_pieces([fixture[i:i + 1] for i in range(len(fixture))])
    assert summary(whole) == summary(byte_by_byte)
    rnd = random.Random(len(fixture))
    for _ in range(30):
        cuts = sorted(rnd.sample(range(1, len(fixture)), min(len(fixture) - 1, rnd.randint(1, 6))))
        pieces = [fixture[a:b] for a, b in zip([0, *cuts], [*cuts, len(fixture)])]
        assert summary(feed_pieces(pieces)) == summary(whole)
    assert all(m.size == struct.unpack_from("!H", fixture, 0)[0] + 2 for m in whole[:1])


def test_message_time_is_the_segment_where_it_began():
    a, b = hdr(mid=1) + Q_WWW, hdr(mid=2) + Q_WWW
    data = framed(a, b)
    p = DnsStreamParser()
    cut = len(a) + 2 + 5                # b starts in the first segment, ends in the second
    m1 = p.feed(data[:cut], 100)
    m2 = p.feed(data[cut:], 200)
    assert [(m.id, m.ts) for m in m1 + m2] == [(1, 100), (2, 100)]
    m3 = p.feed(framed(a)[:3], 300) + p.feed(framed(a)[3:], 400)
    assert [(m.id, m.ts) for m in m3] == [(1, 300)]


def test_zero_length_and_garbage_frames():
    p = DnsStreamParser()
    good = framed(hdr(mid=5) + Q_WWW)
    with pytest.raises(ParseError) as ei:
        p.feed(good + b"\x00\x00", TS)
    assert ei.value.note == ZERO_LENGTH and [m.id for m in ei.value.messages] == [5]
    assert not p.pending()
    with pytest.raises(ParseError) as ei:
        p.feed(framed(b"\xff" * 20), TS)
    assert ei.value.note == NON_DNS and isinstance(ei.value, BaseParseError)
    assert [m.id for m in p.feed(good, TS)] == [5]     # usable again afterwards


def test_partial_message_is_pending():
    p = DnsStreamParser()
    assert p.feed(framed(hdr() + Q_WWW)[:10], TS) == [] and p.pending()
    p.reset()
    assert not p.pending() and INCOMPLETE == "Message's data is incomplete"
