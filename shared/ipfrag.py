"""IP fragment reassembly (capture side, before the shard hash; rare, bounded).

Theory of operation
-------------------
The capture process calls ``Reassembler.add(linktype, raw, l3off, ts)`` for
every frame that ``shared.decode.decode`` classified as ``FRAGMENT``. Pieces
are keyed by ``(src, dst, protocol / next header, identification)``
(RFC 791; RFC 8200 section 4.5). When the last hole is filled, ``add`` returns
one frame that ``decode`` reads like any unfragmented packet:

- the link-layer bytes ``raw[:l3off]`` and the IP header of the fragment with
  offset 0 (for IPv6, the unfragmentable part: IPv6 header plus the extension
  headers before the Fragment header);
- IPv4: flags MF and fragment offset cleared (DF kept), total length and header
  checksum recomputed;
- IPv6: the Fragment header removed, the preceding Next Header field set to the
  fragment's next header, payload length recomputed;
- then the reassembled data.

Overlaps: the piece that arrived first wins for every byte (counted in
``overlaps``; an exact repeat is counted in ``duplicates``). Bogus pieces
(offset past the maximum size, a non-final piece whose length is not a multiple
of 8, a piece past an already-seen end, a second different end, a frame cut
short by the snaplen) are counted in ``bad`` and dropped; a bad end or overrun
drops the whole datagram because it can never be completed correctly.

Bounds: at most ``max_datagrams`` datagrams in flight (the oldest is evicted,
``overflow``), ``max_fragments`` pieces per datagram and ``max_bytes`` per
reassembled IP packet. ``expire(now)`` drops datagrams whose first piece is
older than ``timeout_ns`` (``timeouts``). Time is the packets' time (integer ns).
"""
from __future__ import annotations

from collections import Counter
from struct import Struct

_IP4_HDR = Struct("!BxHHHBBH4s4s")   # ver/ihl, total, id, frag, ttl, proto, csum, src, dst
_IP6_FRAG = Struct("!BxHI")          # next header, offset/flags, identification
_U16 = Struct("!H")

_IP6_EXT_GENERIC = frozenset((0, 43, 60))
_IP6_AH = 51
_IP6_FRAGMENT = 44


def _ip4_checksum(hdr: bytes | bytearray) -> int:
    """RFC 1071 one's complement sum of an IPv4 header (checksum field zeroed)."""
    total = sum(Struct("!%dH" % (len(hdr) // 2)).unpack(hdr))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Datagram:
    """One datagram being reassembled (only ever a handful at a time)."""
    __slots__ = ("first_ts", "pieces", "end", "got", "head", "l3")

    def __init__(self, ts: int):
        self.first_ts = ts
        self.pieces: list[tuple[int, bytes]] = []   # (offset, data) in arrival order
        self.end = -1          # total data length once the last piece has been seen
        self.got = 0           # bytes received (overlaps may count twice)
        self.head = b""        # raw[:l3off] + IP header (v4) or unfragmentable part (v6)
        self.l3 = 0            # l3off of the piece that gave head


class Reassembler:
    """Bounded IPv4/IPv6 fragment reassembly table (see the module docstring)."""

    def __init__(self, max_datagrams: int = 1024, timeout_ns: int = 30_000_000_000,
                 max_bytes: int = 65535 + 40, max_fragments: int = 256):
        if max_datagrams < 1 or max_fragments < 1 or timeout_ns <= 0 or max_bytes < 68:
            raise ValueError("Reassembler bounds must be positive (max_bytes >= 68)")
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self.max_bytes = max_bytes
        self.max_fragments = max_fragments
        self.completed_ts = 0   # capture time of the first piece of the datagram add() last returned
        self._table: dict[tuple, _Datagram] = {}
        self.counters: Counter = Counter()

    def __len__(self) -> int:
        return len(self._table)

    def add(self, linktype: int, raw: bytes, l3off: int, ts: int) -> bytes | None:
        """Add one fragment frame; return the whole frame once complete, else None."""
        self.counters["fragments"] += 1
        n = len(raw)
        if l3off < 0 or l3off >= n:
            self.counters["bad"] += 1
            return None
        ver = raw[l3off] >> 4
        if ver == 4:
            parsed = self._parse4(raw, l3off, n)
        elif ver == 6:
            parsed = self._parse6(raw, l3off, n)
        else:
            parsed = None
        if parsed is None:
            self.counters["bad"] += 1
            return None
        key, head, hdrlen, offset, more, data = parsed
        stop = offset + len(data)
        if (hdrlen + stop > self.max_bytes or stop > 0xFFFF
                or (more and (not data or len(data) & 7))):
            self.counters["bad"] += 1
            return None
        table = self._table
        dg = table.get(key)
        if dg is not None and ts - dg.first_ts > self.timeout_ns:
            del table[key]
            self.counters["timeouts"] += 1
            dg = None
        if dg is None:
            if len(table) >= self.max_datagrams:
                del table[next(iter(table))]
                self.counters["overflow"] += 1
            dg = table[key] = _Datagram(ts)
        if not more:
            if dg.end >= 0 and dg.end != stop:
                return self._drop(key)      # two different ends
            dg.end = stop
            for o, d in dg.pieces:
                if o + len(d) > stop:
                    return self._drop(key)  # earlier data past this end
        if dg.end >= 0 and stop > dg.end:
            return self._drop(key)          # data past the end
        if offset == 0 and not dg.head:
            dg.head = head
            dg.l3 = l3off
        for o, d in dg.pieces:
            if o < stop and offset < o + len(d):
                if o == offset and d == data:
                    self.counters["duplicates"] += 1
                    return None
                self.counters["overlaps"] += 1
                break
        if len(dg.pieces) >= self.max_fragments:
            return self._drop(key)
        dg.pieces.append((offset, data))
        dg.got += len(data)
        if dg.end < 0 or dg.got < dg.end or not dg.head:
            return None
        payload = self._assemble(dg)
        if payload is None:
            return None
        del table[key]
        frame = self._rebuild(dg.head, dg.l3, payload)
        if frame is None:
            self.counters["bad"] += 1
            return None
        self.counters["reassembled"] += 1
        # the datagram began when its first piece arrived: that is its time
        self.completed_ts = dg.first_ts
        return frame

    def expire(self, now: int) -> None:
        """Drop incomplete datagrams whose first piece is older than the timeout."""
        table = self._table
        if not table:
            return
        limit = now - self.timeout_ns
        old = [k for k, dg in table.items() if dg.first_ts < limit]
        for k in old:
            del table[k]
        self.counters["timeouts"] += len(old)

    # -- internals --------------------------------------------------------

    def _drop(self, key: tuple) -> None:
        del self._table[key]
        self.counters["bad"] += 1
        return None

    @staticmethod
    def _parse4(raw: bytes, l3: int, n: int):
        if n < l3 + 20:
            return None
        vihl, total, ident, frag, _ttl, proto, _csum, src, dst = _IP4_HDR.unpack_from(raw, l3)
        ihl = (vihl & 15) << 2
        if ihl < 20 or total < ihl or l3 + total > n:
            return None                       # bad header or cut by the snaplen
        offset = (frag & 0x1FFF) << 3
        more = bool(frag & 0x2000)
        return ((src, dst, proto, ident), raw[:l3 + ihl], ihl, offset, more,
                raw[l3 + ihl:l3 + total])

    @staticmethod
    def _parse6(raw: bytes, l3: int, n: int):
        if n < l3 + 40:
            return None
        plen = _U16.unpack_from(raw, l3 + 4)[0]
        end = l3 + 40 + plen
        if plen == 0 or end > n:
            return None                       # jumbogram or cut by the snaplen
        nh_pos = l3 + 6                       # where the Next Header byte before p lives
        nh = raw[nh_pos]
        p = l3 + 40
        while nh != _IP6_FRAGMENT:
            if p + 8 > end:
                return None
            if nh in _IP6_EXT_GENERIC:
                step = (raw[p + 1] + 1) << 3
            elif nh == _IP6_AH:
                step = (raw[p + 1] + 2) << 2
            else:
                return None
            nh_pos = p
            nh = raw[p]
            p += step
        if p + 8 > end:
            return None
        fnh, frag, ident = _IP6_FRAG.unpack_from(raw, p)
        head = bytearray(raw[:p])
        head[nh_pos] = fnh
        return ((raw[l3 + 8:l3 + 24], raw[l3 + 24:l3 + 40], fnh, ident), bytes(head),
                p - l3, frag & 0xFFF8, bool(frag & 1), raw[p + 8:end])

    def _assemble(self, dg: _Datagram) -> bytes | None:
        """The data if the pieces cover [0, end) with no hole, else None."""
        covered = 0
        for o, d in sorted(dg.pieces, key=lambda od: od[0]):
            if o > covered:
                return None
            if o + len(d) > covered:
                covered = o + len(d)
        if covered < dg.end:
            return None
        out = bytearray(dg.end)
        for o, d in reversed(dg.pieces):     # earliest arrival written last: first wins
            out[o:o + len(d)] = d
        return bytes(out)

    @staticmethod
    def _rebuild(head: bytes, l3: int, payload: bytes) -> bytes | None:
        """head (link layer + IP header or unfragmentable part) + payload, with
        the IP length fields fixed; None if the result overflows them."""
        hdr = bytearray(head[l3:])
        if hdr[0] >> 4 == 4:
            total = len(hdr) + len(payload)
            if total > 0xFFFF:
                return None
            hdr[2:4] = _U16.pack(total)
            hdr[6:8] = _U16.pack(_U16.unpack_from(hdr, 6)[0] & 0x4000)   # keep DF only
            hdr[10:12] = b"\0\0"
            hdr[10:12] = _U16.pack(_ip4_checksum(hdr))
        else:
            plen = len(hdr) - 40 + len(payload)
            if plen > 0xFFFF:
                return None
            hdr[4:6] = _U16.pack(plen)
        return head[:l3] + bytes(hdr) + payload
