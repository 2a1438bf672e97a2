"""Deterministic TCP conversations as raw frames, for fixture generators only.

Scapy builds each frame (it is allowed here, never in product code); this
module keeps the TCP bookkeeping (sequence and acknowledgement numbers, IP
ids, timestamps) so the generators can describe conversations at the level of
"the client sends these bytes, split here, with this segment lost".

Time is integer microseconds everywhere (classic pcap resolution). Every
value that scapy would otherwise pick (MACs, IP ids, checksums, routes) is
given explicitly, so the same script writes the same bytes on every run.

Frames from several conversations go into one ``Capture``; it sorts them by
timestamp (stable) when written, so conversations built one after another
still interleave on the wire as their clocks say.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.packet import Raw

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

_PCAP_HDR = struct.Struct("<IHHiIII")
_PCAP_REC = struct.Struct("<IIII")
_SNAPLEN = 262144

CLIENT = 0
SERVER = 1


class Capture:
    """Frames with their timestamps (µs), written as one classic pcap file."""

    def __init__(self, linktype: int = LINKTYPE_ETHERNET) -> None:
        self.linktype = linktype
        self._frames: list[tuple[int, int, bytes]] = []   # (ts_us, insertion order, frame)

    def add(self, ts_us: int, frame: bytes) -> None:
        self._frames.append((ts_us, len(self._frames), frame))

    def __len__(self) -> int:
        return len(self._frames)

    def to_bytes(self) -> bytes:
        out = [_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, _SNAPLEN, self.linktype)]
        for ts_us, _, frame in sorted(self._frames, key=lambda f: (f[0], f[1])):
            sec, usec = divmod(ts_us, 1_000_000)
            out.append(_PCAP_REC.pack(sec, usec, len(frame), len(frame)))
            out.append(frame)
        return b"".join(out)

    def write(self, path: Path) -> int:
        path.write_bytes(self.to_bytes())
        return len(self._frames)


@dataclass
class Endpoint:
    ip: str
    port: int
    mac: str = "02:00:00:00:00:01"


@dataclass
class TcpConv:
    """One TCP connection between ``client`` and ``server``.

    ``link`` is ``"eth"`` (Ethernet II), ``"vlan"`` (Ethernet + one 802.1Q
    tag ``vlan_id``) or ``"sll"`` (Linux cooked capture, for a capture whose
    linktype is LINUX_SLL). IPv6 is chosen by the address family of the IPs.
    """

    cap: Capture
    client: Endpoint
    server: Endpoint
    t: int                         # the conversation's clock, µs
    isn: tuple[int, int] = (1000, 5000)
    link: str = "eth"
    vlan_id: int = 0
    mss: int = 1460
    seq: list[int] = field(init=False)            # next sequence number, [CLIENT, SERVER]
    _ip_id: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.seq = [self.isn[0] & 0xFFFFFFFF, self.isn[1] & 0xFFFFFFFF]
        base = (self.client.port * 7 + self.server.port) & 0x7FFF
        self._ip_id = [base, base + 0x4000]
        self.ipv6 = ":" in self.client.ip

    # -- frame construction ------------------------------------------------
    def _ends(self, side: int) -> tuple[Endpoint, Endpoint]:
        return (self.client, self.server) if side == CLIENT else (self.server, self.client)

    def _l3(self, side: int, flags: str, seq: int, ack: int, payload: bytes, df: bool = True):
        src, dst = self._ends(side)
        tcp = TCP(sport=src.port, dport=dst.port, seq=seq, ack=ack if "A" in flags else 0,
                  flags=flags, window=65535 if flags != "S" and flags != "SA" else 64240)
        if flags in ("S", "SA"):
            tcp.options = [("MSS", self.mss)]
        body = tcp / Raw(payload) if payload else tcp
        if self.ipv6:
            return IPv6(src=src.ip, dst=dst.ip, hlim=64) / body
        ip_id = self._ip_id[side]
        self._ip_id[side] = (ip_id + 1) & 0xFFFF
        return IP(src=src.ip, dst=dst.ip, id=ip_id, ttl=64, flags="DF" if df else 0) / body

    def _frame(self, side: int, l3) -> bytes:
        src, dst = self._ends(side)
        if self.link == "sll":
            # pkttype 0 = to us (from the client), 4 = sent by us (the server).
            proto = 0x86DD if self.ipv6 else 0x0800
            hdr = CookedLinux(pkttype=0 if side == CLIENT else 4, lladdrtype=1, lladdrlen=6,
                              src=bytes.fromhex(src.mac.replace(":", "")) + b"\0\0", proto=proto)
            return bytes(hdr / l3)
        eth = Ether(src=src.mac, dst=dst.mac)
        if self.link == "vlan":
            return bytes(eth / Dot1Q(vlan=self.vlan_id, prio=0) / l3)
        return bytes(eth / l3)

    def _emit(self, side: int, flags: str, seq: int, payload: bytes = b"", ts: int | None = None) -> int:
        ts = self.t if ts is None else ts
        l3 = self._l3(side, flags, seq, self.seq[1 - side], payload)
        self.cap.add(ts, self._frame(side, l3))
        return ts

    # -- conversation steps --------------------------------------------------
    def wait(self, us: int) -> None:
        self.t += us

    def handshake(self, rtt: int = 120) -> None:
        c, s = self.seq
        self.cap.add(self.t, self._frame(CLIENT, self._l3(CLIENT, "S", c, 0, b"")))
        self.seq[CLIENT] = (c + 1) & 0xFFFFFFFF
        self.wait(rtt // 2)
        self._emit(SERVER, "SA", s)
        self.seq[SERVER] = (s + 1) & 0xFFFFFFFF
        self.wait(rtt // 2)
        self._emit(CLIENT, "A", self.seq[CLIENT])

    def ack(self, side: int, after: int = 40) -> int:
        """An empty ACK from ``side`` for everything the other side sent."""
        self.wait(after)
        return self._emit(side, "A", self.seq[side])

    def send(self, side: int, data: bytes, *, splits: list[int] | None = None,
             gap: int = 25, drop: frozenset[int] = frozenset(), retransmit: frozenset[int] = frozenset(),
             order: list[int] | None = None, after: int = 0) -> int:
        """Send ``data`` from ``side``; returns the timestamp of the first frame on the wire.

        ``splits``: byte offsets where a new segment starts (default: MSS-sized
        segments). ``drop``: indexes of segments that are sent (sequence space
        is used) but absent from the capture. ``retransmit``: indexes of
        segments that appear twice. ``order``: the order in which segment
        indexes appear (out-of-order delivery). Frames are ``gap`` µs apart.
        """
        self.wait(after)
        if splits is None:
            splits = list(range(self.mss, len(data), self.mss))
        bounds = [0, *splits, len(data)]
        segs = []
        seq = self.seq[side]
        for i in range(len(bounds) - 1):
            chunk = data[bounds[i]:bounds[i + 1]]
            segs.append((seq, chunk))
            seq = (seq + len(chunk)) & 0xFFFFFFFF
        first_ts = None
        for i in (order if order is not None else range(len(segs))):
            s, chunk = segs[i]
            if i in drop:
                self.wait(gap)
                continue
            copies = 2 if i in retransmit else 1
            for _ in range(copies):
                ts = self._emit(side, "PA", s, chunk)
                first_ts = ts if first_ts is None else first_ts
                self.wait(gap)
        self.seq[side] = seq
        return first_ts if first_ts is not None else self.t

    def send_fragmented(self, side: int, data: bytes, fragsize: int = 1480, after: int = 0) -> int:
        """One TCP segment carrying all of ``data`` in an IPv4 datagram split into fragments."""
        assert not self.ipv6, "IPv4 fragmentation only"
        self.wait(after)
        l3 = self._l3(side, "PA", self.seq[side], self.seq[1 - side], data, df=False)
        first = self.t
        for frag in fragment(l3, fragsize=fragsize):
            self.cap.add(self.t, self._frame(side, frag))
            self.wait(10)
        self.seq[side] = (self.seq[side] + len(data)) & 0xFFFFFFFF
        return first

    def fin(self, side: int, after: int = 40) -> int:
        """A FIN (with ACK) from ``side``."""
        self.wait(after)
        ts = self._emit(side, "FA", self.seq[side])
        self.seq[side] = (self.seq[side] + 1) & 0xFFFFFFFF
        return ts

    def close(self, initiator: int = CLIENT, rtt: int = 80) -> None:
        """Orderly close: FIN, FIN, last ACK."""
        self.fin(initiator, after=rtt // 2)
        self.fin(1 - initiator, after=rtt // 2)
        self.ack(initiator, after=rtt // 2)
