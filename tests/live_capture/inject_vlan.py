"""Send one hand-built HTTP exchange as 802.1Q-tagged Ethernet frames out of a device.

Usage: python inject_vlan.py DEVICE DST_MAC VLAN_ID CLIENT_IP SERVER_IP PORT
(run inside the client namespace). Both directions are sent from here, so
the receiving end sees a complete tagged TCP conversation; its kernel strips
the tag into the packet metadata before any packet socket sees the frame.
"""
from __future__ import annotations

import socket
import struct
import sys


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(dst_mac: bytes, src_mac: bytes, vid: int, src: str, dst: str, sport: int, dport: int,
          seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + struct.pack("!HH", 0x8100, vid) + b"\x08\x00" + ip + tcp


def main() -> None:
    dev, dst_mac, vid, cli, srv, port = sys.argv[1:7]
    vid, port = int(vid), int(port)
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    smac = bytes.fromhex(open("/sys/class/net/%s/address" % dev).read().strip().replace(":", ""))
    req = b"GET /tagged HTTP/1.1\r\nHost: vlan\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    c, s = 1000, 5000
    SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
    up = lambda seq, ack, fl, p=b"": frame(dmac, smac, vid, cli, srv, 40001, port, seq, ack, fl, p)
    down = lambda seq, ack, fl, p=b"": frame(dmac, smac, vid, srv, cli, port, 40001, seq, ack, fl, p)
    frames = [up(c, 0, SYN), down(s, c + 1, SYN | ACK), up(c + 1, s + 1, ACK),
              up(c + 1, s + 1, PSH | ACK, req), down(s + 1, c + 1 + len(req), PSH | ACK, resp),
              up(c + 1 + len(req), s + 1 + len(resp), FIN | ACK),
              down(s + 1 + len(resp), c + 2 + len(req), FIN | ACK),
              up(c + 2 + len(req), s + 2 + len(resp), ACK)]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((dev, 0))
    for f in frames:
        sock.send(f)


if __name__ == "__main__":
    main()
