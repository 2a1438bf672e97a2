#!/usr/bin/env python3
"""Fast generator of a large, valid HTTP/1.1 capture for the benchmarks.

    gen_http_pcap.py OUT --packets N [--connections C] [--seed S] [--small]

Writes a classic pcap (Ethernet, IPv4, TCP, microsecond timestamps) of about
N packets (never more; as close as whole transactions allow): C keep-alive
connections open at a time, their packets interleaved, each one
SYN / SYN-ACK / ACK, then several request/response transactions (GET and POST,
responses with Content-Length or chunked, segmented at the MSS, empty ACKs),
then FIN / ACK / FIN / ACK. Sequence and acknowledgement numbers, IP lengths
and all checksums are correct. When a connection closes another opens, until
the packet budget is spent. Every transaction started is completed, so an
analyser must report exactly the printed number of transactions.

``--small``: the other end of the traffic mix, many small request/response
pairs: long keep-alive connections (20-199 transactions each), short GETs
(one segment, three header lines), small responses (a few header lines and a
body of 0-400 bytes, one segment; 1 in 10 a ``304 Not Modified`` without a
body), the server's ACK of every request and the client's ACK of every
response: four packets per transaction, two of them ACK-only.

Pure ``struct`` (no scapy): hundreds of thousands of packets in a few seconds.
Output is a function of the arguments only (same seed, same bytes).

Prints ``packets: P``, ``transactions: T`` and ``connections: K`` lines.
"""
from __future__ import annotations

import argparse
import random
import struct
import sys
from dataclasses import dataclass
from typing import Iterator

MSS = 1460
T0_US = 1_700_000_000_000_000
CLOSE_COST = 4
HANDSHAKE_COST = 3

_PCAP_HDR = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
_HDRS = struct.Struct("!6s6sH" "BBHHHBBH4s4s" "HHIIBBHHH").pack   # Ethernet + IPv4 + TCP
_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10

_PATHS = [b"/", b"/index.html", b"/api/v1/items", b"/api/v1/users", b"/static/app.js", b"/static/site.css",
          b"/images/logo.png", b"/search", b"/api/v1/orders", b"/health"]


def _words(data: bytes) -> int:
    """Sum of ``data``'s big-endian 16-bit words, modulo 0xFFFF (2**16 == 1 mod 0xFFFF).

    The Internet checksum (RFC 1071) is the one's complement of that sum, so
    ``0xFFFF - s`` (or 0 when ``s`` is 0).
    """
    if len(data) & 1:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF


@dataclass
class Stats:
    packets: int = 0
    transactions: int = 0
    connections: int = 0
    bytes: int = 0


class _Conn:
    """Addresses and precomputed header parts of one TCP connection."""

    __slots__ = ("cip", "sip", "cport", "sport", "heads", "tsum", "isum", "ip_id", "seq")

    def __init__(self, cid: int, rng: random.Random) -> None:
        k = 1 + cid % 0xFFFF00
        self.cip = bytes((10, (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF))
        srv = cid % 4
        self.sip = bytes((10, 255, 0, 1 + srv))
        self.cport = 20000 + (cid * 7) % 40000
        self.sport = 80 if srv < 3 else 8080
        cmac, smac = b"\x02\x00" + self.cip, b"\x02\x01" + self.sip
        # Per direction: (dst mac, src mac, src ip, dst ip, src port, dst port).
        self.heads = ((smac, cmac, self.cip, self.sip, self.cport, self.sport),
                      (cmac, smac, self.sip, self.cip, self.sport, self.cport))
        addrs = _words(self.cip + self.sip)
        # Checksum words that never change: pseudo-header addresses and protocol, ports, window.
        self.tsum = addrs + 6 + self.cport + self.sport + 65535
        # IPv4 header words that never change: version/IHL/TOS, flags (DF), TTL/protocol, addresses.
        self.isum = addrs + 0x4500 + 0x4000 + 0x4006
        self.ip_id = [rng.getrandbits(16), rng.getrandbits(16)]
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]

    def frame(self, from_client: bool, flags: int, payload: bytes = b"") -> bytes:
        """One Ethernet frame; advances this side's sequence number by the data (and SYN/FIN)."""
        side = 0 if from_client else 1
        seq = self.seq[side]
        ack = self.seq[1 - side] if flags & _ACK else 0
        plen = len(payload)
        tcp_len = 20 + plen
        s = self.tsum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) + (0x5000 | flags)
        if plen:
            s += int.from_bytes(payload + b"\0" if plen & 1 else payload, "big")
        s %= 0xFFFF
        ip_id = self.ip_id[side]
        self.ip_id[side] = (ip_id + 1) & 0xFFFF
        i = (self.isum + 20 + tcp_len + ip_id) % 0xFFFF
        dmac, smac, src, dst, sp, dp = self.heads[side]
        self.seq[side] = (seq + plen + (1 if flags & (_SYN | _FIN) else 0)) & 0xFFFFFFFF
        return _HDRS(dmac, smac, 0x0800, 0x45, 0, 20 + tcp_len, ip_id, 0x4000, 64, 6,
                     0xFFFF - i if i else 0, src, dst, sp, dp, seq, ack, 0x50, flags, 65535,
                     0xFFFF - s if s else 0, 0) + payload


def _segments(data: bytes) -> list[bytes]:
    return [data[i:i + MSS] for i in range(0, len(data), MSS)] or [b""]


class _Txn:
    """The bytes of one transaction and the packets it will take."""

    __slots__ = ("request", "response", "ack_request", "cost")

    def __init__(self, rng: random.Random, pool: bytes, n: int, small: bool = False) -> None:
        """``small``: a GET whose response fits one segment (3 packets), to fill the budget's end."""
        path = _PATHS[rng.randrange(len(_PATHS))]
        target = b"%s?id=%d&page=%d" % (path, n, rng.randrange(1, 50))
        if not small and rng.random() < 0.2:
            body = b'{"id":%d,"name":"item-%d","qty":%d}' % (n, n, rng.randrange(1, 9))
            self.request = (b"POST %s HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: gen_http_pcap/1.0\r\n"
                            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                            % (target, len(body), body))
            status = b"201 Created"
        else:
            self.request = (b"GET %s HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: gen_http_pcap/1.0\r\n"
                            b"Accept: */*\r\n\r\n" % target)
            status = b"404 Not Found" if rng.random() < 0.05 else b"200 OK"
        size = rng.randrange(200) if small else int(rng.expovariate(1 / 2500)) % 40000
        off = rng.randrange(len(pool) - size)
        body = pool[off:off + size]
        if not small and rng.random() < 0.2 and size:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4096]), body[i:i + 4096])
                              for i in range(0, size, 4096))
            self.response = (b"HTTP/1.1 %s\r\nServer: bench\r\nContent-Type: text/plain\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % (status, chunks))
        else:
            self.response = (b"HTTP/1.1 %s\r\nServer: bench\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, size, body))
        self.ack_request = not small and rng.random() < 0.5
        n_resp = len(_segments(self.response))
        # request segments + optional server ACK + response segments + a client ACK
        # after every second response segment and after the last one.
        self.cost = (len(_segments(self.request)) + self.ack_request + n_resp
                     + n_resp // 2 + (n_resp % 2))


_SMALL_PATHS = [b"/api/v1/items/%d", b"/api/v1/users/%d", b"/health", b"/api/v1/cart/%d", b"/v2/ping",
                b"/api/v1/stock/%d", b"/session/%d", b"/metrics"]


class _SmallTxn:
    """``--small``: a short GET and a small one-segment answer; both sides' ACKs (4 packets)."""

    __slots__ = ("request", "response", "ack_request", "cost")

    def __init__(self, rng: random.Random, pool: bytes, n: int, small: bool = False) -> None:
        path = _SMALL_PATHS[rng.randrange(len(_SMALL_PATHS))]
        if b"%d" in path:
            path = path % (n % 100000)
        self.request = b"GET %s HTTP/1.1\r\nHost: api.example\r\nAccept: */*\r\n\r\n" % path
        if rng.random() < 0.1:
            self.response = b"HTTP/1.1 304 Not Modified\r\nETag: \"%x\"\r\n\r\n" % n
        else:
            size = rng.randrange(400)
            off = rng.randrange(len(pool) - size)
            self.response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (size, pool[off:off + size]))
        self.ack_request = True
        self.cost = 4


def _client_acks(n_resp: int) -> set[int]:
    return {i for i in range(n_resp) if i % 2 == 1 or i == n_resp - 1}


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.committed = 0            # packets emitted or promised to a started step

    def take(self, n: int) -> bool:
        if self.committed + n > self.limit:
            return False
        self.committed += n
        return True


def _connection(conn: _Conn, rng: random.Random, pool: bytes, budget: _Budget, stats: Stats,
                max_txns: int, txn_class=_Txn) -> Iterator[bytes]:
    """Packets of one connection, in order. Its handshake and close are already budgeted."""
    yield conn.frame(True, _SYN)
    yield conn.frame(False, _SYN | _ACK)
    yield conn.frame(True, _ACK)
    for _ in range(max_txns):
        n = stats.transactions + stats.connections * 131
        txn = txn_class(rng, pool, n)
        if not budget.take(txn.cost):
            txn = txn_class(rng, pool, n, small=True)
            if not budget.take(txn.cost):
                break
        for seg in _segments(txn.request):
            yield conn.frame(True, _PSH | _ACK, seg)
        if txn.ack_request:
            yield conn.frame(False, _ACK)
        segs = _segments(txn.response)
        acks = _client_acks(len(segs))
        for i, seg in enumerate(segs):
            yield conn.frame(False, _PSH | _ACK if i == len(segs) - 1 else _ACK, seg)
            if i in acks:
                yield conn.frame(True, _ACK)
        stats.transactions += 1
    client_closes = rng.random() < 0.7
    yield conn.frame(client_closes, _FIN | _ACK)
    yield conn.frame(not client_closes, _ACK)
    yield conn.frame(not client_closes, _FIN | _ACK)
    yield conn.frame(client_closes, _ACK)


def generate(out, packets: int, connections: int = 100, seed: int = 1, small: bool = False) -> Stats:
    """Write the capture to ``out`` (a path); returns what was written. ``small``: the
    small request/response mix (module docstring)."""
    rng = random.Random(seed)
    pool = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 \n") for _ in range(1 << 16)) * 2
    budget = _Budget(packets)
    stats = Stats()
    active: list[Iterator[bytes]] = []
    # Smallest connection: handshake + one GET with a one-segment response and its ACK + close.
    min_conn = HANDSHAKE_COST + (4 if small else 3) + CLOSE_COST
    ts = T0_US
    rec = _REC.pack
    rnd = rng.random
    buf = bytearray()
    with open(out, "wb") as fh:
        fh.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        written = 24
        while True:
            while len(active) < connections and budget.committed + min_conn <= packets:
                budget.take(HANDSHAKE_COST + CLOSE_COST)
                conn = _Conn(stats.connections, rng)
                stats.connections += 1
                if small:
                    active.append(_connection(conn, rng, pool, budget, stats, rng.randrange(20, 200), _SmallTxn))
                else:
                    active.append(_connection(conn, rng, pool, budget, stats, rng.randrange(1, 12)))
            if not active:
                break
            i = int(rnd() * len(active))
            frame = next(active[i], None)
            if frame is None:
                active[i] = active[-1]
                active.pop()
                continue
            ts += 1 + int(rnd() * 39)
            n = len(frame)
            buf += rec(ts // 1_000_000, ts % 1_000_000, n, n)
            buf += frame
            written += 16 + n
            stats.packets += 1
            if len(buf) > 1 << 20:
                fh.write(buf)
                buf.clear()
        fh.write(buf)
    stats.bytes = written
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate a large HTTP/1.1 pcap for the benchmarks.")
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, required=True, help="packet budget (the file has at most this many)")
    ap.add_argument("--connections", type=int, default=100, help="connections open at the same time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true",
                    help="many small request/response pairs on long keep-alive connections (module docstring)")
    args = ap.parse_args(argv)
    least = HANDSHAKE_COST + (4 if args.small else 3) + CLOSE_COST
    if args.packets < least:
        ap.error(f"--packets must be at least {least}")
    if args.connections < 1:
        ap.error("--connections must be at least 1")
    st = generate(args.out, args.packets, args.connections, args.seed, args.small)
    print(f"wrote {args.out} ({st.bytes} bytes)")
    print(f"connections: {st.connections}")
    print(f"packets: {st.packets}")
    print(f"transactions: {st.transactions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
