"""DHCPv4 message bytes for the unit and fuzz tests: Packetbeat's two fixtures
(``packetbeat/protos/dhcpv4/dhcpv4_test.go``, from its ``dhcp.pcap``) written
out field by field, and a builder for hand-made messages."""
from __future__ import annotations

import socket
import struct

COOKIE = b"\x63\x82\x53\x63"


def opt(code: int, data: bytes) -> bytes:
    return bytes([code, len(data)]) + data


def ip(text: str) -> bytes:
    return socket.inet_aton(text)


def message(op: int = 1, xid: int = 0x3D1E, mac: bytes = bytes.fromhex("000b8201fc42"), options: bytes = b"",
            htype: int = 1, hlen: int | None = None, hops: int = 0, secs: int = 0, flags: int = 0,
            ciaddr: str = "0.0.0.0", yiaddr: str = "0.0.0.0", siaddr: str = "0.0.0.0",
            giaddr: str = "0.0.0.0", sname: bytes = b"", file: bytes = b"", end: bool = True,
            trailer: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH4s4s4s4s", op, htype, len(mac) if hlen is None else hlen, hops, xid, secs,
                       flags, ip(ciaddr), ip(yiaddr), ip(siaddr), ip(giaddr))
    body = mac.ljust(16, b"\x00")[:16] + sname.ljust(64, b"\x00")[:64] + file.ljust(128, b"\x00")[:128]
    return head + body + COOKIE + options + (b"\xff" if end else b"") + trailer


# Packetbeat's dhcpRequest: REQUEST from 0.0.0.0:68 to 255.255.255.255:67 (272 bytes)
PB_REQUEST = message(
    options=opt(53, b"\x03") + opt(61, bytes.fromhex("01000b8201fc42")) + opt(50, ip("192.168.0.10"))
    + opt(54, ip("192.168.0.1")) + opt(55, bytes([1, 3, 6, 42])),
    trailer=b"\x00")

# Packetbeat's dhcpACK: ACK from 192.168.0.1:67 to 192.168.0.10:68 (329 bytes), with the
# options its test adds (time offset, two routers, a vendor-identifying vendor class)
PB_ACK = message(
    op=2, yiaddr="192.168.0.10",
    options=opt(53, b"\x05") + opt(58, struct.pack("!I", 1800)) + opt(59, struct.pack("!I", 3150))
    + opt(51, struct.pack("!I", 3600)) + opt(54, ip("192.168.0.1")) + opt(1, ip("255.255.255.0"))
    + opt(2, struct.pack("!i", 7200)) + opt(3, ip("192.168.1.1") + ip("192.168.1.2"))
    + opt(124, struct.pack("!IB", 12, 6) + bytes.fromhex("deadbeef0000")),
    trailer=bytes(26))
