"""L2-L4 decoder: one raw frame -> one small tuple (the capture and worker hot path).

Theory of operation
-------------------
``decode(linktype, raw)`` walks the link layer (Ethernet II with any depth of
802.1Q / 802.1ad / QinQ tags, Linux SLL and SLL2, BSD NULL and LOOP, raw IP),
then IPv4 (options via IHL) or IPv6 (hop-by-hop, routing, destination options,
AH; fragment header), then TCP / UDP / ICMP / ICMPv6, and returns::

    (transport, src, dst, sport, dport, flags, seq, ack, off, end, l3off)

- ``transport``: 6, 17, 1, 58, or ``FRAGMENT`` (-1) for a piece of a
  fragmented IP datagram (IPv4 MF set or offset != 0; IPv6 Fragment header).
  For a fragment ``raw[off:end]`` is the fragment data and ports are 0.
- ``src``/``dst``: address bytes (4 or 16), slices of ``raw``.
- ``raw[off:end]``: the L4 payload (TCP/UDP application bytes; ICMP header and
  body). ``end`` honours the IP total / payload length (so Ethernet trailer
  padding is stripped), the UDP length, and the captured length.
- ``l3off``: offset of the IP header in ``raw``.

Anything else (non-IP, other IP protocols, malformed or truncated headers)
gives ``None``; the caller counts those. ``decode`` never raises.

Length rules follow gopacket (which Packetbeat uses): an IPv4 total length of 0
(TCP segmentation offload) or an IPv6 payload length of 0 means "the rest of
the frame"; a UDP length of 0 means the same, a UDP length of 1..7 is invalid.

Cost: a handful of ``unpack_from`` calls on module-level ``Struct``s and one
result tuple per packet; no objects, no ``ipaddress``, no scapy.
"""
from __future__ import annotations

from struct import Struct, error as _StructError

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
DLT_RAW_12 = 12      # DLT_RAW on most BSDs / libpcap (LINKTYPE_RAW in files)
DLT_RAW_14 = 14      # DLT_RAW on OpenBSD

FRAGMENT = -1

TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))

_AF_INET = 2
_AF_INET6 = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, Darwin

_RAW_LINKTYPES = frozenset((LINKTYPE_RAW, DLT_RAW_12, DLT_RAW_14, LINKTYPE_IPV4, LINKTYPE_IPV6))

_U32LE = Struct("<I")
_U32BE = Struct("!I")
_TCP = Struct("!HHIIBB")          # sport dport seq ack data-offset flags
_UDP = Struct("!HHH")             # sport dport length
_ETH_IP4 = Struct("!12xHBxHxxHxB2x4s4s")  # EtherType + the _IP4 fields
_IP4 = Struct("!BxHxxHxB2x4s4s")  # ver/ihl, total length, frag field, protocol, src, dst
_IP6_PLEN_NH = Struct("!HB")      # payload length, next header (at +4)
_IP6_ADDRS = Struct("16s16s")     # src, dst (at +8)

# IPv6 extension headers that use the generic (len+1)*8 length encoding.
_IP6_EXT_GENERIC = frozenset((0, 43, 60))
_IP6_FRAG = 44
_IP6_AH = 51


def _eth_ip4_fast(raw: bytes, n: int):
    """The fast path of ``decode`` read byte by byte: untagged Ethernet, IPv4
    without options, unfragmented TCP/UDP; ``_MISS`` for anything else (the
    general path decides). Only the compiled build calls it (see ``_COMPILED``):
    there each ``raw[i]`` is a C array read, in CPython each costs more than
    one ``Struct.unpack_from`` of the whole header."""
    if raw[12] != 0x08 or raw[13] != 0x00 or raw[14] != 0x45:
        return _MISS
    total = raw[16] << 8 | raw[17]
    if (raw[20] & 0x3F) or raw[21] or total < 28:
        return _MISS
    proto = raw[23]
    end = 14 + total
    if end > n:
        end = n
    if proto == TCP:
        if end < 54:
            return None
        doff = 34 + ((raw[46] >> 4) << 2)
        if doff < 54 or doff > end:
            return None
        seq = raw[38] << 24 | raw[39] << 16 | raw[40] << 8 | raw[41]
        ack = raw[42] << 24 | raw[43] << 16 | raw[44] << 8 | raw[45]
        return (TCP, raw[26:30], raw[30:34], raw[34] << 8 | raw[35], raw[36] << 8 | raw[37],
                raw[47], seq, ack, doff, end, 14)
    if proto == UDP:
        ulen = raw[38] << 8 | raw[39]
        if ulen:
            if ulen < 8:
                return None
            if 34 + ulen < end:
                end = 34 + ulen
        return (UDP, raw[26:30], raw[30:34], raw[34] << 8 | raw[35], raw[36] << 8 | raw[37],
                0, 0, 0, 42, end, 14)
    return _MISS


_MISS = object()


def _probe():
    pass


# True when this module runs compiled (setup.py): functions are then Cython's, not CPython's.
_COMPILED = type(_probe).__name__ != "function"


def decode(linktype: int, raw: bytes) -> tuple | None:
    """Decode one frame to the L4 tuple described in the module docstring."""
    try:
        n = len(raw)
        if _COMPILED and linktype == LINKTYPE_ETHERNET and n >= 54 and type(raw) is bytes:
            res = _eth_ip4_fast(raw, n)
            if res is not _MISS:
                return res
        elif linktype == LINKTYPE_ETHERNET and n >= 42:
            # Fast path: untagged Ethernet, IPv4 without options, unfragmented TCP/UDP.
            et, vihl, total, frag, proto, src, dst = _ETH_IP4.unpack_from(raw, 0)
            if et == ETH_IPV4 and vihl == 0x45 and not frag & 0x3FFF and total >= 28:
                end = 14 + total
                if end > n:
                    end = n
                if proto == TCP:
                    if end < 54:
                        return None
                    sport, dport, seq, ack, doff, flags = _TCP.unpack_from(raw, 34)
                    doff = 34 + ((doff >> 4) << 2)
                    if doff < 54 or doff > end:
                        return None
                    return (TCP, src, dst, sport, dport, flags, seq, ack, doff, end, 14)
                if proto == UDP:
                    sport, dport, ulen = _UDP.unpack_from(raw, 34)
                    if ulen:
                        if ulen < 8:
                            return None
                        if 34 + ulen < end:
                            end = 34 + ulen
                    return (UDP, src, dst, sport, dport, 0, 0, 0, 42, end, 14)
        if linktype == LINKTYPE_ETHERNET:
            if n < 14:
                return None
            et = raw[12] << 8 | raw[13]
            off = 14
            while et in _VLAN_TYPES:
                et = raw[off + 2] << 8 | raw[off + 3]
                off += 4
        elif linktype == LINKTYPE_LINUX_SLL:
            if n < 16:
                return None
            et = raw[14] << 8 | raw[15]
            off = 16
            while et in _VLAN_TYPES:
                et = raw[off + 2] << 8 | raw[off + 3]
                off += 4
        elif linktype == LINKTYPE_LINUX_SLL2:
            if n < 20:
                return None
            et = raw[0] << 8 | raw[1]
            off = 20
            while et in _VLAN_TYPES:
                et = raw[off + 2] << 8 | raw[off + 3]
                off += 4
        elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
            if n < 4:
                return None
            if linktype == LINKTYPE_LOOP:
                fam = _U32BE.unpack_from(raw, 0)[0]
            else:
                # host byte order of the writer: accept both
                fam = _U32LE.unpack_from(raw, 0)[0]
                if fam > 0xFFFF:
                    fam = _U32BE.unpack_from(raw, 0)[0]
            if fam == _AF_INET:
                et = ETH_IPV4
            elif fam in _AF_INET6:
                et = ETH_IPV6
            else:
                return None
            off = 4
        elif linktype in _RAW_LINKTYPES:
            if n < 1:
                return None
            ver = raw[0] >> 4
            if ver == 4 and linktype != LINKTYPE_IPV6:
                et = ETH_IPV4
            elif ver == 6 and linktype != LINKTYPE_IPV4:
                et = ETH_IPV6
            else:
                return None
            off = 0
        else:
            return None
        if et == ETH_IPV4:
            # IPv4 inline (the common case: no extra call)
            if n < off + 20:
                return None
            vihl, total, frag, proto, src, dst = _IP4.unpack_from(raw, off)
            ihl = (vihl & 15) << 2
            if vihl >> 4 != 4 or ihl < 20:
                return None
            if total == 0:               # TSO: length not filled in
                end = n
            else:
                if total < ihl:
                    return None
                end = off + total
                if end > n:
                    end = n
            p = off + ihl
            if p > end:
                return None
            if frag & 0x3FFF:
                return (FRAGMENT, src, dst, 0, 0, 0, 0, 0, p, end, off)
            if proto == TCP:
                if p + 20 > end:
                    return None
                sport, dport, seq, ack, doff, flags = _TCP.unpack_from(raw, p)
                doff = (doff >> 4) << 2
                if doff < 20 or p + doff > end:
                    return None
                return (TCP, src, dst, sport, dport, flags, seq, ack, p + doff, end, off)
            if proto == UDP:
                if p + 8 > end:
                    return None
                sport, dport, ulen = _UDP.unpack_from(raw, p)
                if ulen:
                    if ulen < 8:
                        return None
                    if p + ulen < end:
                        end = p + ulen
                return (UDP, src, dst, sport, dport, 0, 0, 0, p + 8, end, off)
            if proto == ICMP:
                if p + 4 > end:
                    return None
                return (ICMP, src, dst, 0, 0, 0, 0, 0, p, end, off)
            return None
        if et == ETH_IPV6:
            return _ip6(raw, off, n)
        return None
    except (IndexError, _StructError):
        # a VLAN tag chain or a length field that runs past the captured bytes
        return None


def _ip6(raw: bytes, l3: int, n: int) -> tuple | None:
    if n < l3 + 40 or raw[l3] >> 4 != 6:
        return None
    plen, nh = _IP6_PLEN_NH.unpack_from(raw, l3 + 4)
    p = l3 + 40
    if plen == 0:                        # jumbogram / TSO: rest of the frame
        end = n
    else:
        end = p + plen
        if end > n:
            end = n
    src, dst = _IP6_ADDRS.unpack_from(raw, l3 + 8)
    while True:
        if nh == TCP:
            if p + 20 > end:
                return None
            sport, dport, seq, ack, doff, flags = _TCP.unpack_from(raw, p)
            doff = (doff >> 4) << 2
            if doff < 20 or p + doff > end:
                return None
            return (TCP, src, dst, sport, dport, flags, seq, ack, p + doff, end, l3)
        if nh == UDP:
            if p + 8 > end:
                return None
            sport, dport, ulen = _UDP.unpack_from(raw, p)
            if ulen:
                if ulen < 8:
                    return None
                if p + ulen < end:
                    end = p + ulen
            return (UDP, src, dst, sport, dport, 0, 0, 0, p + 8, end, l3)
        if nh == ICMPV6:
            if p + 4 > end:
                return None
            return (ICMPV6, src, dst, 0, 0, 0, 0, 0, p, end, l3)
        if nh in _IP6_EXT_GENERIC:
            if p + 8 > end:
                return None
            nh = raw[p]
            p += (raw[p + 1] + 1) << 3
        elif nh == _IP6_FRAG:
            if p + 8 > end:
                return None
            return (FRAGMENT, src, dst, 0, 0, 0, 0, 0, p + 8, end, l3)
        elif nh == _IP6_AH:
            if p + 8 > end:
                return None
            nh = raw[p]
            p += (raw[p + 1] + 2) << 2
        else:                            # 59 no next header, ESP, other protocols
            return None


def vlan_ids(linktype: int, raw: bytes) -> list[int]:
    """VLAN IDs of the 802.1Q/802.1ad tags of a frame, outer first (not hot)."""
    where = _VLAN_START.get(linktype)
    ids: list[int] = []
    if where is None or len(raw) < where[1]:
        return ids
    etpos, off = where
    et = raw[etpos] << 8 | raw[etpos + 1]
    while et in _VLAN_TYPES and off + 4 <= len(raw):
        ids.append((raw[off] << 8 | raw[off + 1]) & 0x0FFF)
        et = raw[off + 2] << 8 | raw[off + 3]
        off += 4
    return ids


# linktype -> (offset of the EtherType, offset of the first tag)
_VLAN_START = {
    LINKTYPE_ETHERNET: (12, 14),
    LINKTYPE_LINUX_SLL: (14, 16),
    LINKTYPE_LINUX_SLL2: (0, 20),
}
