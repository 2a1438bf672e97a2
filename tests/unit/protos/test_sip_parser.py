"""SIP parser, event builder and plugin: hand-written messages (RFC 3261
examples, compact forms, folding, SDP), fed whole, byte by byte and split at
random points; UDP datagram framing; gaps, resynchronisation, size limits."""
from __future__ import annotations

import random

import pytest

from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.sip import SipPlugin
from worker.protos.sip.config import SipConfig
from worker.protos.sip.event import parse_name_addr, parse_uri, to_event
from worker.protos.sip.parser import (MAX_HEAD, NOTE_INCOMPLETE, NOTE_LOSS_REQUEST, NOTE_LOSS_RESPONSE,
                                      NOTE_SHORT_DATAGRAM, ParseError, SipStreamParser, parse_datagram)
from shared.confutil import ConfigError

SDP = (b"v=0\r\n"
       b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
       b"s=Session SDP\r\n"
       b"c=IN IP4 192.0.2.101\r\n"
       b"t=0 0\r\n"
       b"m=audio 49172 RTP/AVP 0\r\n"
       b"c=IN IP4 198.51.100.9\r\n"
       b"a=rtpmap:0 PCMU/8000\r\n")

INVITE = (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
          b"Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
          b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK1\r\n"
          b"Max-Forwards: 70\r\n"
          b"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
          b"To: Bob <sip:bob@biloxi.example.com>\r\n"
          b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
          b"CSeq: 1 INVITE\r\n"
          b"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
          b"Subject: a folded\r\n"
          b"  subject line\r\n"
          b"Content-Type: application/sdp\r\n"
          b"Content-Length: %d\r\n\r\n" % len(SDP)) + SDP

RINGING = (b"SIP/2.0 180 Ringing\r\n"
           b"v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n"
           b"f: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
           b"t: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
           b"i: 3848276298220188511@atlanta.example.com\r\n"
           b"CSeq: 1 INVITE\r\n"
           b"m: <sip:bob@192.0.2.4>\r\n"
           b"l: 0\r\n\r\n")

BYE = (b"BYE sip:alice@client.atlanta.example.com SIP/2.0\r\n"
       b"Via: SIP/2.0/TCP 192.0.2.4;branch=z9hG4bKnashds7\r\n"
       b"From: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
       b"To: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
       b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
       b"CSeq: 1 BYE\r\n"
       b"Content-Length: 0\r\n\r\n")

NOT_FOUND = (b"SIP/2.0 404 Not Found\r\n"
             b"Via: SIP/2.0/TCP 192.0.2.4;branch=z9hG4bKnashds7\r\n"
             b"From: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
             b"To: <sip:alice@atlanta.example.com>;tag=77\r\n"
             b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
             b"CSeq: 1 BYE\r\n"
             b"Content-Length: 0\r\n\r\n")

STREAM = INVITE + b"\r\n\r\n" + RINGING + BYE + NOT_FOUND      # with a keep-alive between two


def key(m):
    return (m.is_request, m.method, m.uri, m.code, m.phrase, m.version, m.headers, m.body, m.raw, m.size, m.notes)


def feed_all(chunks, parser=None):
    p = parser or SipStreamParser()
    out = []
    for i, c in enumerate(chunks):
        out += p.feed(c, i)
    return p, out


def splits(data, rnd, n):
    cuts = sorted(rnd.sample(range(1, len(data)), n))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


# ------------------------------------------------------------------ stream framing

@pytest.mark.parametrize("fixture", [INVITE, RINGING, BYE, NOT_FOUND, STREAM])
def test_whole_bytewise_random_same(fixture):
    _, whole = feed_all([fixture])
    _, byte = feed_all([fixture[i:i + 1] for i in range(len(fixture))])
    assert [key(m) for m in whole] == [key(m) for m in byte]
    rnd = random.Random(len(fixture))
    for _ in range(30):
        _, part = feed_all(splits(fixture, rnd, rnd.randint(1, 12)))
        assert [key(m) for m in part] == [key(m) for m in whole]


def test_stream_messages():
    p, msgs = feed_all([STREAM])
    assert [(m.is_request, m.method or m.code) for m in msgs] == [
        (True, b"INVITE"), (False, 180), (True, b"BYE"), (False, 404)]
    inv, ring, bye, nf = msgs
    assert inv.body == SDP and inv.raw == INVITE and inv.size == len(INVITE)
    assert inv.headers[b"via"] == [b"SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9",
                                   b"SIP/2.0/TCP proxy.example.com;branch=z9hG4bK1"]
    assert inv.headers[b"subject"] == [b"a folded subject line"]
    # compact forms are expanded
    assert ring.header(b"call-id") == b"3848276298220188511@atlanta.example.com"
    assert ring.header(b"to").endswith(b"tag=8321234356") and ring.header(b"content-length") == b"0"
    assert ring.phrase == b"Ringing" and ring.version == b"2.0"
    assert nf.code == 404 and nf.phrase == b"Not Found"
    assert p.buffered == 0 and p.bad_starts == 0


def test_message_timestamps_are_their_first_segment():
    p = SipStreamParser()
    assert p.feed(INVITE[:100], 10) == []
    msgs = p.feed(INVITE[100:] + RINGING[:50], 20)
    assert [m.ts for m in msgs] == [10]
    msgs = p.feed(RINGING[50:] + BYE, 30)
    assert [m.ts for m in msgs] == [20, 30]


def test_missing_content_length_on_tcp_means_no_body():
    msg = b"OPTIONS sip:x@y SIP/2.0\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n"
    _, msgs = feed_all([msg + msg])
    assert len(msgs) == 2 and msgs[0].body == b""


def test_garbage_first_then_resync():
    p, msgs = feed_all([b"\x16\x03\x01 garbage line\r\nmore\r\n" + BYE])
    assert [m.method for m in msgs] == [b"BYE"]
    assert p.bad_starts == 1 and p.lost_bytes > 0


def test_bad_content_length_is_parse_error_keeps_previous():
    bad = BYE.replace(b"Content-Length: 0", b"Content-Length: x1")
    p = SipStreamParser()
    with pytest.raises(ParseError) as ei:
        p.feed(RINGING + bad, 1)
    assert [m.code for m in ei.value.messages] == [180]
    p.reset()
    assert [m.method for m in p.feed(BYE, 2)] == [b"BYE"]


def test_size_limits():
    p = SipStreamParser()
    with pytest.raises(ParseError):
        p.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X-Long: " + b"a" * (MAX_HEAD + 10), 1)
    p = SipStreamParser(max_message_size=1000)
    with pytest.raises(ParseError):
        p.feed(BYE.replace(b"Content-Length: 0", b"Content-Length: 5000"), 1)
    p = SipStreamParser()
    with pytest.raises(ParseError):
        p.feed(b"I" * (MAX_HEAD + 10), 1)


# ------------------------------------------------------------------ gaps

def test_gap_inside_body_completes_short_message_with_note():
    p = SipStreamParser()
    cut = len(INVITE) - len(SDP) + 20
    assert p.feed(INVITE[:cut], 1) == []
    assert p.on_gap(30) is True
    assert p.drain() == []
    msgs = p.feed(INVITE[cut + 30:] + BYE, 2)
    assert [m.method for m in msgs] == [b"INVITE", b"BYE"]
    inv = msgs[0]
    assert inv.notes == [NOTE_LOSS_REQUEST] and len(inv.body) == len(SDP) - 30 and inv.size == len(INVITE)
    assert msgs[1].notes == []


def test_gap_over_end_of_body_resyncs_on_next_start_line():
    p = SipStreamParser()
    cut = len(INVITE) - 10
    p.feed(INVITE[:cut], 1)
    assert p.on_gap(10 + 25) is True           # the rest of the INVITE and 25 bytes of the 180
    (inv,) = p.drain()
    assert inv.method == b"INVITE" and inv.notes == [NOTE_LOSS_REQUEST]
    msgs = p.feed(RINGING[25:] + BYE, 2)
    assert [m.method for m in msgs] == [b"BYE"] and msgs[0].notes == []
    assert len(RINGING) - 25 - 2 <= p.lost_bytes <= len(RINGING) - 25     # less a CRLF taken for a keep-alive


def test_gap_in_headers_drops_that_message_only():
    p = SipStreamParser()
    p.feed(RINGING[:40], 1)
    assert p.on_gap(20) is True and p.drain() == []
    msgs = p.feed(RINGING[60:] + NOT_FOUND, 2)
    assert [m.code for m in msgs] == [404]


def test_response_loss_note():
    body = b"x" * 100
    resp = b"SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\nContent-Length: 100\r\n\r\n" + body
    p = SipStreamParser()
    p.feed(resp[:-60], 1)
    p.on_gap(60)
    (m,) = p.drain()
    assert m.notes == [NOTE_LOSS_RESPONSE] and m.code == 200


def test_flush_gives_message_with_headers_read():
    p = SipStreamParser()
    p.feed(INVITE[:-5], 1)
    (m,) = p.flush()
    assert m.method == b"INVITE" and m.notes == [NOTE_INCOMPLETE] and m.body == SDP[:-5]
    p.feed(BYE[:30], 2)
    assert p.flush() == [] and p.lost_bytes == 30


# ------------------------------------------------------------------ UDP framing

def test_datagram_without_content_length_body_is_rest():
    dg = b"MESSAGE sip:a@b SIP/2.0\r\nc: text/plain\r\n\r\nhello"
    (m,) = parse_datagram(dg, 5)
    assert m.body == b"hello" and m.raw == dg and m.ts == 5 and m.notes == []


def test_datagram_short_body_noted():
    dg = b"MESSAGE sip:a@b SIP/2.0\r\nl: 50\r\n\r\nhello"
    (m,) = parse_datagram(dg, 5)
    assert m.body == b"hello" and m.notes == [NOTE_SHORT_DATAGRAM]


def test_datagram_keepalive_and_garbage():
    assert parse_datagram(b"\r\n\r\n", 1) == []
    with pytest.raises(ParseError):
        parse_datagram(b"\x00\x01 not sip\r\n\r\n", 1)
    msgs = parse_datagram(BYE + b"junk junk\r\n", 1)
    assert [m.method for m in msgs] == [b"BYE"] and msgs[0].notes


def test_datagram_two_messages():
    msgs = parse_datagram(RINGING + BYE, 1)
    assert [m.code or m.method for m in msgs] == [180, b"BYE"]


# ------------------------------------------------------------------ URIs, name-addr

@pytest.mark.parametrize("uri,expect", [
    (b"sip:bob@biloxi.example.com", (b"sip", b"bob", b"biloxi.example.com", 0)),
    (b"sips:bob:secret@host:5061;transport=tls", (b"sips", b"bob", b"host", 5061)),
    (b"sip:[2001:db8::1]:5070;lr", (b"sip", b"", b"[2001:db8::1]", 5070)),
    (b"sip:host.example?subject=x", (b"sip", b"", b"host.example", 0)),
    (b"tel:+1-201-555-0123", (b"tel", b"", b"+1-201-555-0123", 0)),
    (b"*", (b"", b"", b"", 0)),
])
def test_parse_uri(uri, expect):
    assert parse_uri(uri)[:4] == expect


def test_parse_name_addr():
    assert parse_name_addr(b'"A, B" <sip:a@b;x=1>;tag=9 ;q=0.5') == (b"A, B", b"sip:a@b;x=1", {b"tag": b"9", b"q": b"0.5"})
    assert parse_name_addr(b"sip:a@b;tag=1") == (b"", b"sip:a@b", {b"tag": b"1"})
    assert parse_name_addr(b"sip:a@b") == (b"", b"sip:a@b", {})


# ------------------------------------------------------------------ events

UT = IpPortTuple(UDP, "192.0.2.101", 5060, "192.0.2.4", 5060)


def ev_of(raw, **cfg):
    (m,) = parse_datagram(raw, 1_700_000_000_000_000_000)
    return to_event(m, SipConfig(**cfg), UT, UDP)


def test_event_request_fields():
    ev = ev_of(INVITE)
    sip = ev["sip"]
    assert ev["type"] == "sip" and ev["status"] == "OK"
    assert ev["event"]["action"] == "sip-invite" and "outcome" not in ev["event"]
    assert ev["event"]["sequence"] == 1 and ev["event"]["duration"] == 0
    assert ev["event"]["category"] == ["network"] and ev["event"]["type"] == ["info", "protocol"]
    assert ev["event"]["original"] == INVITE.decode()
    assert sip["method"] == "INVITE" and sip["type"] == "request" and sip["version"] == "2.0"
    assert sip["uri"] == {"original": "sip:bob@biloxi.example.com", "scheme": "sip", "username": "bob",
                          "host": "biloxi.example.com"}
    assert sip["from"]["display_info"] == "Alice" and sip["from"]["tag"] == "9fxced76sl"
    assert sip["to"] == {"display_info": "Bob", "uri": {"original": "sip:bob@biloxi.example.com", "scheme": "sip",
                                                         "username": "bob", "host": "biloxi.example.com"}}
    assert sip["contact"]["transport"] == "tcp"
    assert sip["contact"]["uri"]["host"] == "client.atlanta.example.com"
    assert len(sip["via"]["original"]) == 2
    assert sip["cseq"] == {"code": 1, "method": "INVITE"}
    assert sip["max_forwards"] == 70 and sip["content_length"] == len(SDP)
    sdp = sip["sdp"]
    assert sdp["owner"] == {"username": "alice", "session_id": "2890844526", "version": "2890844526",
                            "ip": "192.0.2.101"}
    assert sdp["session"] == {"name": "Session SDP"} and sdp["version"] == "0"
    # the session-level c= line, not the media one
    assert sdp["connection"] == {"info": "IN IP4 192.0.2.101", "address": "192.0.2.101"}
    assert sdp["body"]["original"] == SDP.decode()
    assert ev["related"]["ip"] == ["192.0.2.101", "192.0.2.4"]
    assert ev["related"]["user"] == ["bob", "alice"]
    assert ev["network"]["iana_number"] == "17" and ev["network"]["transport"] == "udp"


def test_event_response_fields():
    ev = ev_of(NOT_FOUND)
    assert ev["status"] == "Error" and ev["event"]["outcome"] == "failure"
    assert ev["event"]["action"] == "sip-bye" and ev["event"]["reason"] == "Not Found"
    assert ev["sip"]["code"] == 404 and ev["sip"]["status"] == "Not Found" and "method" not in ev["sip"]
    ev = ev_of(RINGING)
    assert ev["status"] == "OK" and "outcome" not in ev["event"]
    assert ev["sip"]["to"]["tag"] == "8321234356" and ev["sip"]["call_id"].startswith("3848")
    assert "content_length" not in ev["sip"]


def test_event_options_off():
    ev = ev_of(INVITE, parse_body=False, keep_original=False)
    assert "sdp" not in ev["sip"] and "original" not in ev["event"]
    assert ev["related"]["ip"] == ["192.0.2.101", "192.0.2.4"]


AUTH = (b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\n"
        b"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"Call-ID: 843817637684230@998sdasdh09\r\n"
        b"CSeq: 1826 REGISTER\r\n"
        b"Contact: <sip:bob@192.0.2.4;line=7a>;expires=7200;q=0.5, <sip:bob@other>\r\n"
        b"Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b\","
        b" uri=\"sip:registrar.biloxi.example.com:5060\", response=\"6629fae49393a05397450978507c4ef1\"\r\n"
        b"Allow: INVITE, ACK\r\n"
        b"allow: BYE\r\n"
        b"k: path, Outbound\r\n"
        b"Content-Length: 0\r\n\r\n")


def test_event_authorization_without_secret():
    ev = ev_of(AUTH)
    sip = ev["sip"]
    assert sip["auth"] == {"scheme": "Digest", "realm": "biloxi.example.com",
                           "uri": {"original": "sip:registrar.biloxi.example.com:5060", "scheme": "sip",
                                   "host": "registrar.biloxi.example.com", "port": 5060}}
    assert ev["user"] == {"name": "bob"}
    assert ev["event"]["category"] == ["network", "authentication"]
    assert "6629fae" not in str(sip) and "dcd98b" not in str(sip)
    assert sip["contact"]["expires"] == 7200 and sip["contact"]["q"] == 0.5 and sip["contact"]["line"] == "7a"
    assert sip["allow"] == ["invite", "ack", "bye"] and sip["supported"] == ["path", "outbound"]
    ev = ev_of(AUTH, parse_authorization=False)
    assert "auth" not in ev["sip"] and "user" not in ev
    assert ev["event"]["category"] == ["network", "authentication"]


def test_event_quoted_sdp_owner_and_dash_session():
    body = b'v=0\r\no="-" 1 2 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\n'
    msg = (b"SIP/2.0 200 OK\r\nCSeq: 2 INVITE\r\nContent-Type: Application/SDP; x=1\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    sdp = ev_of(msg)["sip"]["sdp"]
    assert sdp["owner"] == {"session_id": "1", "version": "2", "ip": "2001:db8::5"} and "session" not in sdp


# ------------------------------------------------------------------ plugin

TT = TcpTuple("192.0.2.101", 40000, "192.0.2.4", 5060, 1)


def test_plugin_tcp_directions_and_counters():
    out = []
    p = SipPlugin({"ports": [5060]}, out.append)
    st = p.parse(Packet(1, TT.ip_port(), memoryview(INVITE[:300])), TT, 0, None)
    st = p.parse(Packet(2, TT.ip_port(), memoryview(INVITE[300:] + BYE)), TT, 0, st)
    st = p.parse(Packet(3, TT.ip_port().reverse(), memoryview(RINGING)), TT, 1, st)
    assert [e["sip"].get("method") or e["sip"]["code"] for e in out] == ["INVITE", "BYE", 180]
    assert out[0]["source"]["port"] == 40000 and out[2]["source"]["port"] == 5060
    assert all(e["network"]["transport"] == "tcp" and e["network"]["iana_number"] == "6" for e in out)
    # a gap inside a body: published short, with the note; the stream goes on
    st = p.parse(Packet(4, TT.ip_port(), memoryview(INVITE[:-20])), TT, 0, st)
    st, drop = p.gap_in_stream(TT, 0, 20, st)
    assert not drop and out[-1]["error"]["message"] == NOTE_LOSS_REQUEST
    p.flush(TT, st, 5)
    p.expire(10**12)
    # the INVITE (a 180 only) and the BYE; the INVITE seen again is a retransmission
    assert p.messages == 4 and p.unanswered_requests == 2 and p.retransmissions == 1


def test_plugin_transactions():
    out = []
    p = SipPlugin({"ports": [5060], "transaction_timeout": "1s"}, out.append)
    up = IpPortTuple(UDP, "192.0.2.101", 5060, "192.0.2.4", 5060)
    p.parse_udp(Packet(1, up, memoryview(INVITE)))
    p.parse_udp(Packet(2, up, memoryview(INVITE)))                     # retransmission
    p.parse_udp(Packet(3, up.reverse(), memoryview(RINGING)))          # provisional: still open
    p.parse_udp(Packet(4, up.reverse(), memoryview(NOT_FOUND)))        # final, to no request seen
    p.expire(3 * 10**9)
    assert (p.retransmissions, p.unmatched_responses, p.unanswered_requests) == (1, 1, 1)
    with pytest.raises(ParseError):
        p.parse_udp(Packet(5, up, memoryview(b"\x00garbage\r\n\r\n")))
    assert p.udp_parse_errors == 1 and len(out) == 4


def test_config_validation():
    with pytest.raises(ConfigError):
        SipPlugin({"ports": [5060], "transport_protocol": "sctp"}, print)
    with pytest.raises(ConfigError):
        SipPlugin({"ports": [70000]}, print)
    assert SipPlugin({"transport_protocol": "tcp"}, print).cfg.ports == [5060]
