"""DHCPv4 decoder and event builder on hand-made messages: Packetbeat's own two
fixtures give Packetbeat's expected events field for field; every message
type (those a client in the real capture cannot send too: FORCERENEW, the
lease-query family), every decoded option with its length rules, RFC 3396
concatenation, padding, relays, and every way a datagram is refused."""
from __future__ import annotations

import random
import struct
import time

import pytest

from tests.unit.protos.dhcpv4_fixtures import PB_ACK, PB_REQUEST, ip, message, opt
from worker.plugin import IpPortTuple
from worker.protos.dhcpv4.event import flags_text, format_mac, options_map, to_event
from worker.protos.dhcpv4.parser import MAX_MESSAGE_SIZE, ParseError, decode_message

T0 = 1_600_000_000_123_456_789
REQ_T = IpPortTuple(17, "0.0.0.0", 68, "255.255.255.255", 67)
ACK_T = IpPortTuple(17, "192.168.0.1", 67, "192.168.0.10", 68)


def event(data: bytes, tuple_=REQ_T, ts=T0) -> dict:
    return to_event(decode_message(data, ts), tuple_)


def options(raw: bytes) -> dict | None:
    return event(message(options=raw))["dhcpv4"].get("option")


# ---------------------------------------------------------------- Packetbeat's fixtures
def test_packetbeat_request_fixture():
    ev = event(PB_REQUEST)
    assert ev["type"] == "dhcpv4" and ev["status"] == "OK"
    assert ev["source"] == {"ip": "0.0.0.0", "port": 68, "bytes": 272}
    assert ev["destination"] == {"ip": "255.255.255.255", "port": 67}
    assert ev["client"] == {"ip": "0.0.0.0", "port": 68, "bytes": 272}
    assert ev["server"] == {"ip": "255.255.255.255", "port": 67}
    assert ev["event"] == {"kind": "event", "category": ["network"], "type": ["connection", "protocol"],
                           "dataset": "dhcpv4", "start": "2020-09-13T12:26:40.123456789Z"}
    assert ev["network"] == {"type": "ipv4", "direction": "unknown", "transport": "udp", "protocol": "dhcpv4",
                             "bytes": 272, "community_id": "1:t9O1j0qj71O4wJM7gnaHtgmfev8="}
    assert ev["related"] == {"ip": ["0.0.0.0", "255.255.255.255"]}
    assert ev["dhcpv4"] == {
        "client_mac": "00-0B-82-01-FC-42", "flags": "unicast", "hardware_type": "Ethernet", "hops": 0,
        "op_code": "bootrequest", "seconds": 0, "transaction_id": "0x00003d1e",
        "option": {"message_type": "request",
                   "parameter_request_list": ["Subnet Mask", "Router", "Domain Name Server", "NTP Servers"],
                   "requested_ip_address": "192.168.0.10", "server_identifier": "192.168.0.1"},
    }
    assert "error" not in ev and "method" not in ev


def test_packetbeat_ack_fixture():
    ev = event(PB_ACK, ACK_T)
    assert ev["source"] == {"ip": "192.168.0.1", "port": 67, "bytes": 329}
    assert ev["destination"] == {"ip": "192.168.0.10", "port": 68}
    # a BOOTREPLY: the client is the destination, the server the source
    assert ev["client"] == {"ip": "192.168.0.10", "port": 68}
    assert ev["server"] == {"ip": "192.168.0.1", "port": 67, "bytes": 329}
    assert ev["network"]["bytes"] == 329
    assert ev["network"]["community_id"] == "1:VbRSZnvQqvLiQRhYHLrdVI17sLQ="
    assert ev["related"] == {"ip": ["192.168.0.1", "192.168.0.10"]}
    assert ev["dhcpv4"] == {
        "assigned_ip": "192.168.0.10", "client_mac": "00-0B-82-01-FC-42", "flags": "unicast",
        "hardware_type": "Ethernet", "hops": 0, "op_code": "bootreply", "seconds": 0,
        "transaction_id": "0x00003d1e",
        "option": {"ip_address_lease_time_sec": 3600, "message_type": "ack", "rebinding_time_sec": 3150,
                   "renewal_time_sec": 1800, "server_identifier": "192.168.0.1",
                   "subnet_mask": "255.255.255.0", "utc_time_offset_sec": 7200,
                   "vendor_identifying_options": [{"data": "deadbeef0000", "id": 12}],
                   "router": ["192.168.1.1", "192.168.1.2"]},
    }


# ---------------------------------------------------------------- message types
@pytest.mark.parametrize("code,name", [
    (1, "discover"), (2, "offer"), (3, "request"), (4, "decline"), (5, "ack"), (6, "nak"), (7, "release"),
    (8, "inform"), (9, "forcerenew"), (10, "leasequery"), (11, "leaseunassigned"), (12, "leaseunknown"),
    (13, "leaseactive"), (14, "bulkleasequery"), (15, "leasequerydone"), (16, "activeleasequery"),
    (17, "leasequerystatus"), (18, "tls"), (19, "unknown (19)"), (200, "unknown (200)"),
])
def test_every_message_type(code, name):
    op = 2 if name in ("offer", "ack", "nak", "forcerenew", "leaseunassigned", "leaseunknown",
                       "leaseactive", "leasequerydone", "leasequerystatus") else 1
    ev = event(message(op=op, options=opt(53, bytes([code]))))
    assert ev["dhcpv4"]["option"] == {"message_type": name}
    assert ev["dhcpv4"]["op_code"] == ("bootreply" if op == 2 else "bootrequest")


@pytest.mark.parametrize("raw", [b"", opt(53, b"\x00"), opt(53, b"\x01\x02")])
def test_message_type_absent_zero_or_wrong_length(raw):
    assert options(raw) is None


def test_leasequery_from_a_relay():
    # RFC 4388: a relay/access concentrator asks about an address; giaddr set, hops counted
    q = message(op=1, xid=0xCAFEBABE, mac=b"", hops=1, ciaddr="10.0.0.77", giaddr="10.0.0.254",
                options=opt(53, bytes([10])) + opt(55, bytes([51, 82])))
    ev = event(q, IpPortTuple(17, "10.0.0.254", 67, "10.0.0.1", 67))
    d = ev["dhcpv4"]
    assert d["op_code"] == "bootrequest" and d["hops"] == 1 and d["transaction_id"] == "0xcafebabe"
    assert d["client_mac"] == "" and d["client_ip"] == "10.0.0.77" and d["relay_ip"] == "10.0.0.254"
    assert d["option"] == {"message_type": "leasequery",
                           "parameter_request_list": ["IP Addresses Lease Time", "Relay Agent Information"]}
    assert ev["related"]["ip"] == ["10.0.0.254", "10.0.0.1", "10.0.0.77"]
    a = message(op=2, xid=0xCAFEBABE, hops=1, ciaddr="10.0.0.77", giaddr="10.0.0.254",
                options=opt(53, bytes([13])) + opt(51, struct.pack("!I", 600)) + opt(54, ip("10.0.0.1")))
    ev = event(a, IpPortTuple(17, "10.0.0.1", 67, "10.0.0.254", 67))
    assert ev["dhcpv4"]["option"] == {"message_type": "leaseactive", "ip_address_lease_time_sec": 600,
                                      "server_identifier": "10.0.0.1"}
    assert ev["client"] == {"ip": "10.0.0.254", "port": 67} and ev["server"]["ip"] == "10.0.0.1"


def test_forcerenew_from_the_server():
    ev = event(message(op=2, options=opt(53, b"\x09") + opt(54, ip("10.0.0.1"))),
               IpPortTuple(17, "10.0.0.1", 67, "10.0.0.5", 68))
    assert ev["dhcpv4"]["option"]["message_type"] == "forcerenew"
    assert ev["client"]["ip"] == "10.0.0.5" and ev["server"]["ip"] == "10.0.0.1"


# ---------------------------------------------------------------- header fields
def test_header_fields():
    ev = event(message(op=2, htype=6, hops=3, xid=0xFFFFFFFF, secs=65535, flags=0x8000,
                       ciaddr="10.1.1.1", yiaddr="10.1.1.2", siaddr="10.1.1.3", giaddr="10.1.1.4",
                       sname=b"boot-srv", file=b"/tftp/pxe.0", options=opt(53, b"\x05")),
               IpPortTuple(17, "10.1.1.3", 67, "10.1.1.4", 67))
    d = ev["dhcpv4"]
    assert d["hardware_type"] == "IEEE 802" and d["hops"] == 3 and d["seconds"] == 65535
    assert d["transaction_id"] == "0xffffffff" and d["flags"] == "broadcast"
    assert (d["client_ip"], d["assigned_ip"], d["relay_ip"]) == ("10.1.1.1", "10.1.1.2", "10.1.1.4")
    assert "server_ip" not in d          # siaddr: declared by Packetbeat, never written
    assert d["server_name"] == "boot-srv" and d["boot_file_name"] == "/tftp/pxe.0"
    assert ev["related"]["ip"] == ["10.1.1.3", "10.1.1.4", "10.1.1.1", "10.1.1.2"]


def test_unknown_op_and_hardware_type():
    d = event(message(op=7, htype=250, options=opt(53, b"\x01")))["dhcpv4"]
    assert d["op_code"] == "unknown (7)" and d["hardware_type"] == "unknown"


@pytest.mark.parametrize("flags,text", [(0, "unicast"), (0x8000, "broadcast"), (0x0002, "unicast (reserved bits not zeroed)"),
                                        (0xFFFF, "broadcast (reserved bits not zeroed)"),
                                        (0x0100, "unicast"), (0x0001, "unicast")])
def test_flags(flags, text):
    # the reserved-bit test is the library's (mask 0xfe), kept for Packetbeat's text
    assert flags_text(flags) == text


def test_hardware_address_length():
    mac = bytes(range(1, 17))
    assert event(message(mac=mac, hlen=20))["dhcpv4"]["client_mac"] == mac.hex("-").upper()
    assert event(message(mac=mac, hlen=0))["dhcpv4"]["client_mac"] == ""
    assert event(message(mac=bytes.fromhex("aabbccddeeff"), hlen=6))["dhcpv4"]["client_mac"] == "AA-BB-CC-DD-EE-FF"
    assert format_mac(b"\x00\x0b") == "00-0B"


def test_sname_and_file_stop_at_nul_and_take_the_whole_field():
    d = event(message(sname=b"a\x00junk", file=b"x" * 128))["dhcpv4"]
    assert d["server_name"] == "a" and d["boot_file_name"] == "x" * 128
    d = event(message(sname=b"\xff\xfe"))["dhcpv4"]
    assert d["server_name"] == "\ufffd\ufffd"


# ---------------------------------------------------------------- options
def test_every_decoded_option():
    raw = (opt(53, b"\x05") + opt(55, bytes([1, 3, 6, 15, 119, 252, 121, 255])) + opt(50, ip("10.0.0.9"))
           + opt(54, ip("10.0.0.1")) + opt(28, ip("10.0.0.255")) + opt(57, struct.pack("!H", 1500))
           + opt(60, b"MSFT 5.0") + opt(15, b"example.org") + opt(6, ip("1.1.1.1") + ip("8.8.8.8"))
           + opt(124, struct.pack("!IB", 4491, 3) + b"abc" + struct.pack("!IB", 9, 0))
           + opt(1, ip("255.255.255.0")) + opt(2, struct.pack("!i", -18000)) + opt(3, ip("10.0.0.1"))
           + opt(4, ip("10.0.0.2")) + opt(42, ip("10.0.0.3") + ip("10.0.0.4")) + opt(12, b"host-1\x00\x00")
           + opt(51, struct.pack("!I", 0xFFFFFFFF)) + opt(56, b"no thanks") + opt(58, struct.pack("!I", 60))
           + opt(59, struct.pack("!I", 90)) + opt(67, b"boot.efi\x00"))
    assert options(raw) == {
        "message_type": "ack",
        "parameter_request_list": ["Subnet Mask", "Router", "Domain Name Server", "Domain Name",
                                   "DNS Domain Search List", "unknown (252)", "Classless Static Route", "End"],
        "requested_ip_address": "10.0.0.9", "server_identifier": "10.0.0.1", "broadcast_address": "10.0.0.255",
        "max_dhcp_message_size": 1500, "class_identifier": "MSFT 5.0", "domain_name": "example.org",
        "dns_servers": ["1.1.1.1", "8.8.8.8"],
        "vendor_identifying_options": [{"id": 4491, "data": "616263"}, {"id": 9, "data": ""}],
        "subnet_mask": "255.255.255.0", "utc_time_offset_sec": -18000, "router": ["10.0.0.1"],
        "time_servers": ["10.0.0.2"], "ntp_servers": ["10.0.0.3", "10.0.0.4"], "hostname": "host-1",
        "ip_address_lease_time_sec": 4294967295, "message": "no thanks", "renewal_time_sec": 60,
        "rebinding_time_sec": 90, "boot_file_name": "boot.efi",
    }


@pytest.mark.parametrize("raw", [
    opt(50, b"\x01\x02\x03"), opt(54, b"\x01\x02\x03\x04\x05"), opt(28, b""), opt(1, b"\xff\xff"),
    opt(57, b"\x05"), opt(57, b"\x05\xdc\x00"), opt(6, b"\x01\x02\x03"), opt(3, b"\x01\x02\x03\x04\x05"),
    opt(42, b""), opt(6, b""), opt(51, b"\x00\x00\x0e"), opt(51, b"\x00\x00\x00\x00"),
    opt(58, b"\x00\x00\x00\x00\x00"), opt(59, b""), opt(2, b"\x00\x01"), opt(60, b""), opt(15, b""),
    opt(12, b"\x00\x00"), opt(67, b"\x00"), opt(56, b""), opt(55, b""),
    opt(124, b"\x00\x00\x00\x01"), opt(124, struct.pack("!IB", 1, 5) + b"abc"),
    opt(124, struct.pack("!IB", 1, 1) + b"a" + b"\x00\x00"), opt(124, b""),
])
def test_option_of_a_wrong_length_is_left_out(raw):
    assert options(raw) is None


def test_malformed_time_servers_drop_every_option():
    # Packetbeat returns an error from optionsToMap: the event has no option object
    raw = opt(53, b"\x05") + opt(54, ip("10.0.0.1")) + opt(4, b"\x0a\x00\x00")
    assert options(raw) is None
    assert options(opt(53, b"\x05") + opt(4, b"")) == {"message_type": "ack"}


def test_time_offset_longer_than_four_bytes_reads_the_first_four():
    assert options(opt(2, struct.pack("!i", -1) + b"\x00")) == {"utc_time_offset_sec": -1}


def test_repeated_option_is_concatenated_rfc3396():
    raw = opt(6, ip("10.0.0.1") + b"\x0a\x00") + opt(53, b"\x01") + opt(6, b"\x00\x02") + opt(6, ip("10.0.0.3"))
    assert options(raw)["dns_servers"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    raw = opt(12, b"long") + opt(12, b"-host") + opt(12, b"")
    assert options(raw) == {"hostname": "long-host"}


def test_pads_between_options_and_after_end():
    raw = b"\x00\x00" + opt(53, b"\x08") + b"\x00" + opt(12, b"h")
    assert event(message(options=raw, trailer=b"\x00\xff\x00" * 20))["dhcpv4"]["option"] == {
        "message_type": "inform", "hostname": "h"}


def test_undecoded_options_are_skipped():
    raw = opt(61, b"\x01abcdef") + opt(82, opt(1, b"circuit") + opt(2, b"remote")) + opt(53, b"\x03") + opt(81, b"\x00\x00\x00x")
    assert options(raw) == {"message_type": "request"}


def test_text_options_keep_their_bytes():
    assert options(opt(60, b"a\x00b") + opt(15, b"\xc3\xa9t\xe9"))  == {"class_identifier": "a\x00b",
                                                                         "domain_name": "ét\ufffd"}


def test_options_map_empty():
    assert options_map({}) is None


# ---------------------------------------------------------------- refused datagrams
@pytest.mark.parametrize("data,why", [
    (b"", "too short"),
    (PB_REQUEST[:239], "too short"),
    (PB_REQUEST[:236] + b"\x63\x82\x53\x64" + PB_REQUEST[240:], "cookie"),
    (message(options=opt(53, b"\x01"), end=False), "End"),
    (message(end=False), "End"),
    (message(options=opt(53, b"\x01"), end=False) + b"\x0c\x05ab", "past the end"),
    (message(options=b"\x35", end=False), "no length"),
    (message(options=opt(53, b"\x01"), trailer=b"\x00\x00\x01"), "after the End"),
    (message(trailer=b"x" * (MAX_MESSAGE_SIZE - 240)), "too long"),
])
def test_refused(data, why):
    with pytest.raises(ParseError, match=why):
        decode_message(data)


def test_every_prefix_without_the_end_option_is_refused():
    full = message(options=opt(53, b"\x01") + opt(12, b"host") + opt(55, bytes([1, 3, 6])))
    end = full.rindex(b"\xff")
    for n in range(end):
        with pytest.raises(ParseError):
            decode_message(full[:n])
    assert decode_message(full[:end + 1]).options[12] == b"host"


def test_bytes_like_input_and_timestamps():
    m = decode_message(memoryview(bytearray(PB_REQUEST)), 42)
    assert m.ts == 42 and m.size == 272 and m.is_request and m.xid == 0x3D1E
    assert not decode_message(PB_ACK).is_request


def test_random_flips_raise_only_parse_error():
    rng = random.Random(20261207)
    base = bytearray(PB_ACK)
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(236, len(data))] = rng.randrange(256)
        try:
            ev = event(bytes(data), ACK_T)
        except ParseError:
            continue
        assert ev["dhcpv4"]["op_code"] == "bootreply"


def test_option_flood_is_linear():
    # 21 000 one-byte pieces of one option in a 63 kB datagram: concatenated
    # without quadratic copying
    raw = opt(12, b"a") * 21000
    t = time.perf_counter()
    m = decode_message(message(options=raw))
    assert m.options[12] == b"a" * 21000
    assert time.perf_counter() - t < 1.0
