"""Common ECS fields of a transaction event, as Packetbeat 8.x writes them.

Every protocol's ``event.py`` starts from :func:`transaction_event` and adds
its own root fields (``method``, ``query``, ...) and protocol object. Zero
numbers and empty strings are left out, as 8.x does (``pb/event.go``).

Hot path: :func:`transaction_event` runs once per published event. What
depends only on the flow (its Community ID, the address family) or only on
the second (the date text) is computed once and memoised; the event itself
is built as one dict literal per object, in the key order Packetbeat writes.
"""
from __future__ import annotations

import binascii
import bisect
import functools
import hashlib
import ipaddress
import socket
import struct
import time

_TRANSPORT_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}
_NS = 1_000_000_000
_CID_TAIL = struct.Struct("!BxHH")
# "%03d" of every millisecond count: the @timestamp fraction without a format call
_MS3 = tuple("%03d" % i for i in range(1000))


@functools.lru_cache(maxsize=1024)
def _second_text_cached(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


# the last second asked for and its text: consecutive events mostly fall in
# the same second (one strftime per second, and mostly not even a cache call)
_LAST_SECOND = [-1, ""]


def _second_text(sec: int) -> str:
    last = _LAST_SECOND
    if last[0] == sec:
        return last[1]
    text = _second_text_cached(sec)
    last[0] = sec
    last[1] = text
    return text


def iso_time(ts_ns: int, digits: int = 9) -> str:
    """RFC 3339 UTC text of an integer-ns timestamp (``digits`` fraction digits)."""
    sec, frac = divmod(ts_ns, _NS)
    base = _second_text(sec)
    if digits == 9:
        return "%s.%09dZ" % (base, frac)
    if digits == 3:
        return "%s.%03dZ" % (base, frac // 1_000_000)
    if digits <= 0:
        return base + "Z"
    return "%s.%sZ" % (base, ("%09d" % frac)[:digits])


def _packed(ip: str) -> bytes:
    """Address bytes of ``ip``; ValueError when it is not an address."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except (OSError, ValueError, TypeError):
        return ipaddress.ip_address(ip).packed       # e.g. a scoped IPv6 address; ValueError


@functools.lru_cache(maxsize=65536)
def community_id(transport: int, src_ip: str, sport: int, dst_ip: str, dport: int, seed: int = 0) -> str:
    """Community ID v1 flow hash (https://github.com/corelight/community-id-spec).

    Memoised: a connection's events all share one flow, so the SHA-1 and the
    address parsing run once per flow, not once per event."""
    try:
        s = _packed(src_ip)
        d = _packed(dst_ip)
    except ValueError:
        return ""
    if transport in (1, 58):
        sport, dport = _icmp_ports(transport, sport, dport)
    if (s, sport) > (d, dport):
        s, d, sport, dport = d, s, dport, sport
    return _cid(struct.pack("!H", seed) + s + d + _CID_TAIL.pack(transport, sport & 0xFFFF, dport & 0xFFFF))


def _cid(blob: bytes) -> str:
    """Community ID text of a flow's packed blob (seed, addresses, protocol, ports):
    "1:" + base64 of its SHA-1. Compiled, a blob of one SHA-1 block (at most 55 bytes:
    every flow's) is hashed and encoded in C (ecs.pxd ``_cid_c``)."""
    if _COMPILED and len(blob) <= 55:
        return _cid_c(blob)
    # binascii directly: base64.b64encode is a Python-level wrapper of it
    return "1:" + _b64(_sha1(blob).digest(), newline=False).decode()


# ICMP type -> its counterpart, so both directions hash alike (spec table).
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 144: 145, 145: 144}


def _icmp_ports(transport: int, itype: int, icode: int) -> tuple[int, int]:
    table = _ICMP4_PAIRS if transport == 1 else _ICMP6_PAIRS
    if itype in table:
        return itype, table[itype]
    return itype, icode


def _ip_type(ip: str) -> str:
    return "ipv6" if ":" in ip else "ipv4"


# Per flow: the network type, transport name and Community ID of its events.
# Atoms only (no dicts or lists), so the table adds nothing for the garbage
# collector to traverse; bounded: cleared when it reaches _FLOW_PARTS_MAX
# entries (a flow's parts are then computed once more).
_FLOW_PARTS: dict = {}
_FLOW_PARTS_MAX = 16384


def ipv4_text(b: bytes) -> str:
    """Dotted-quad text of 4 address bytes, as ``socket.inet_ntoa`` (which
    formats through the C library's printf, ~1.6k instructions a call);
    compiled, the four bytes are formatted as C integers (ecs.pxd)."""
    if len(b) != 4:
        return _inet_ntoa(b)           # its error for a wrong length
    a0 = b[0]
    a1 = b[1]
    a2 = b[2]
    a3 = b[3]
    return f"{a0}.{a1}.{a2}.{a3}"


_inet_ntoa = socket.inet_ntoa
_CID6 = struct.Struct("!xx16s16sBxHH")   # seed 0, IPv6 addresses, protocol, ports
_AF_INET6 = socket.AF_INET6
_AF_INET = socket.AF_INET
_inet_pton = socket.inet_pton
_inet_ntop = socket.inet_ntop
try:
    # CPython's own SHA-1: for the 37-byte blob of a flow about 2k instructions less than
    # OpenSSL's (hashlib.sha1), whose per-call set-up dominates; the same digest
    from _sha1 import sha1 as _sha1
except ImportError:        # a Python built without it
    _sha1 = hashlib.sha1
_b64 = binascii.b2a_base64
_bisect_right = bisect.bisect_right


def _ipv4_int(text: str) -> int:
    """The address of canonical dotted-quad text (four decimal parts of at most 255, no
    leading zeros: what ``ipv4_text`` writes and ``inet_pton`` takes back) as an integer,
    or -1 for any other text. Compiled, a C loop over the characters."""
    n = len(text)
    if n < 7 or n > 15:
        return -1
    value = 0
    part = 0
    digits = 0
    dots = 0
    for ch in text:
        if ch == ".":
            if digits == 0:
                return -1
            value = (value << 8) | part
            part = 0
            digits = 0
            dots += 1
        elif "0" <= ch <= "9":
            if digits == 1 and part == 0:
                return -1              # a leading zero
            part = part * 10 + (ord(ch) - 48)
            if part > 255:
                return -1
            digits += 1
        else:
            return -1
    if dots != 3 or digits == 0:
        return -1
    return (value << 8) | part


def _host4(n: int) -> bool:
    """Host side of an IPv4 address given as an integer (loopback 127/8, link-local
    169.254/16, link-local multicast 224.0.0/24, or one of this host's addresses), as
    _host_side."""
    a0 = n >> 24
    a1 = (n >> 16) & 0xFF
    if a0 == 127 or (a0 == 169 and a1 == 254) or (a0 == 224 and a1 == 0 and ((n >> 8) & 0xFF) == 0):
        return True
    local = _LOCAL_PACKED[0]
    return bool(local) and _U32.pack(n) in local


def _host6(b: bytes) -> bool:
    """Host side of 16 IPv6 address bytes, as _host_side of its ipaddress object: a
    v4-mapped address is its IPv4 one; else loopback ::1, link-local fe80::/10, link-local
    multicast ff02::/16, or one of this host's addresses."""
    if b[:12] == _V4_MAPPED:
        return _host4(int.from_bytes(b[12:], "big"))
    a0 = b[0]
    if (a0 == 0xFE and (b[1] & 0xC0) == 0x80) or (a0 == 0xFF and b[1] == 0x02) or b == _LOOPBACK6:
        return True
    local = _LOCAL_PACKED[0]
    return bool(local) and b in local


_V4_MAPPED = bytes(10) + b"\xff\xff"
_LOOPBACK6 = bytes(15) + b"\x01"
_U32 = struct.Struct("!I")


def _flow_parts_fast(transport: int, src_ip: str, sport: int, dst_ip: str, dport: int, cid_ports):
    """_flow_parts of a flow between two addresses of one family in their canonical text
    (dotted quads; inet_ntop's IPv6 text), in one pass over the addresses: the Community
    ID's blob hashed at once (ICMP types mapped as community_id does), the direction from
    the address bits (as _sides4 / _host_side) without the per-address caches. IPv4 when no
    internal_networks are configured or they are IPv4 ranges (_V4_BOUNDS); IPv6 only without
    internal_networks. None when the general path must judge (other text, mixed families,
    internal_networks that need ipaddress objects)."""
    if cid_ports is not None:
        sport, dport = cid_ports
    if transport == 1 or transport == 58:
        sport, dport = _icmp_ports(transport, sport, dport)
    if ":" in src_ip:
        return _flow_parts6(transport, src_ip, sport, dst_ip, dport)
    return _flow_parts4(transport, src_ip, sport, dst_ip, dport)


def _flow_parts4(transport: int, src_ip: str, sport: int, dst_ip: str, dport: int):
    """_flow_parts_fast of dotted-quad text; sport and dport are what the Community ID hashes."""
    if _DIRECTION_RULES[0] is not None and _V4_BOUNDS[0] is None:
        return None
    s = _ipv4_int(src_ip)
    if s < 0:
        return None
    d = _ipv4_int(dst_ip)
    if d < 0:
        return None
    # destination on this host's side: ingress; else the source: egress (_sides4)
    if _host4(d):
        direction = "ingress"
    elif _host4(s):
        direction = "egress"
    elif _V4_BOUNDS[0] is None:
        direction = "unknown"
    else:                              # perimeter: internal_networks as IPv4 ranges (_sides4)
        bounds = _V4_BOUNDS[0]
        si = _bisect_right(bounds, s) & 1
        di = _bisect_right(bounds, d) & 1
        if si:
            direction = "internal" if di else "outbound"
        else:
            direction = "inbound" if di else "external"
    if s > d or (s == d and sport > dport):
        cid = _cid4(transport, d, s, dport, sport)
    else:
        cid = _cid4(transport, s, d, sport, dport)
    return ("ipv4", _TRANSPORT_NAMES.get(transport) or str(transport), cid, direction)


def _cid4(transport: int, s: int, d: int, sport: int, dport: int) -> str:
    """Community ID of an IPv4 flow in hashing order (addresses as integers)."""
    if _COMPILED:
        return _cid4_c(transport, s, d, sport & 0xFFFF, dport & 0xFFFF)     # ecs.pxd
    return _cid(_CID4I.pack(s, d, transport, sport & 0xFFFF, dport & 0xFFFF))


_CID4I = struct.Struct("!xxIIBxHH")      # seed 0, IPv4 addresses as integers, protocol, ports


def _flow_parts6(transport: int, src_ip: str, sport: int, dst_ip: str, dport: int):
    """_flow_parts_fast of inet_ntop's IPv6 text; sport and dport are what the Community ID hashes."""
    if _DIRECTION_RULES[0] is not None or ":" not in dst_ip:
        return None
    try:
        s = _inet_pton(_AF_INET6, src_ip)
        d = _inet_pton(_AF_INET6, dst_ip)
    except (OSError, ValueError, TypeError):
        return None
    if _inet_ntop(_AF_INET6, s) != src_ip or _inet_ntop(_AF_INET6, d) != dst_ip:
        return None                    # not the canonical text: let ipaddress judge it
    if _host6(d):
        direction = "ingress"
    elif _host6(s):
        direction = "egress"
    else:
        direction = "unknown"          # no internal_networks: no perimeter rule
    if s > d or (s == d and sport > dport):
        blob = _CID6.pack(d, s, transport, dport & 0xFFFF, sport & 0xFFFF)
    else:
        blob = _CID6.pack(s, d, transport, sport & 0xFFFF, dport & 0xFFFF)
    return ("ipv6", _TRANSPORT_NAMES.get(transport) or str(transport), _cid(blob), direction)


def _flow_parts(key: tuple) -> tuple:
    transport, src_ip, sport, dst_ip, dport, cid_ports = key
    if type(src_ip) is str and type(dst_ip) is str:
        parts = _flow_parts_fast(transport, src_ip, sport, dst_ip, dport, cid_ports)
        if parts is not None:
            if len(_FLOW_PARTS) >= _FLOW_PARTS_MAX:
                _FLOW_PARTS.clear()
            _FLOW_PARTS[key] = parts
            return parts
    if cid_ports is None:
        cid = community_id(transport, src_ip, sport, dst_ip, dport)
    else:
        cid = community_id(transport, src_ip, cid_ports[0], dst_ip, cid_ports[1])
    if len(_FLOW_PARTS) >= _FLOW_PARTS_MAX:
        _FLOW_PARTS.clear()
    parts = _FLOW_PARTS[key] = ("ipv6" if ":" in src_ip else "ipv4",
                                _TRANSPORT_NAMES.get(transport) or str(transport), cid,
                                network_direction(src_ip, dst_ip))
    return parts


# network.direction as Packetbeat 8 computes it (pb.Fields.ComputeValues): host based first
# (destination loopback, link-local or one of this host's addresses: ingress; else the same of
# the source: egress), then, still unknown, perimeter based on
# packetbeat.interfaces.internal_networks (internal, outbound, inbound, external).
# [internal-network test or None, this host's addresses]; set by configure_direction (the worker,
# at start; file mode passes no host addresses, so a file gives the same events on any machine).
_DIRECTION_RULES: list = [None, frozenset()]


# The IPv4 addresses of each named network Packetbeat knows (worker/processors/conditions.py
# NAMED_NETWORKS), as inclusive integer ranges; "public" and the global unicast ones are
# complements (of the ranges in their own tests). tests/unit/test_network_direction.py checks
# them against the ipaddress-based tests on random and boundary addresses.
def _r4(cidr: str) -> tuple:
    net = ipaddress.IPv4Network(cidr)
    return (int(net.network_address), int(net.broadcast_address))


_NOT_PUBLIC4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "0.0.0.0/32",
                "169.254.0.0/16", "224.0.0.0/24", "255.255.255.255/32")
_NOT_UNICAST4 = ("0.0.0.0/32", "127.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16", "255.255.255.255/32")
_NAMED4 = {
    "loopback": (False, ("127.0.0.0/8",)),
    "private": (False, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    "public": (True, _NOT_PUBLIC4),
    "multicast": (False, ("224.0.0.0/4",)),
    "link_local_unicast": (False, ("169.254.0.0/16",)),
    "link_local_multicast": (False, ("224.0.0.0/24",)),
    "interface_local_multicast": (False, ()),
    "unspecified": (False, ("0.0.0.0/32",)),
    "global_unicast": (True, _NOT_UNICAST4),
    "unicast": (True, _NOT_UNICAST4),
}


def _merge4(ranges) -> list:
    out: list = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return out


def _v4_bounds(specs):
    """internal_networks as sorted boundaries [lo0, hi0 + 1, lo1, hi1 + 1, ...] of the IPv4
    integers inside them (an address n is inside when bisect_right(bounds, n) is odd), or None
    when a spec is not a named network of _NAMED4 nor a CIDR (the ipaddress path judges).
    IPv6 CIDRs hold no IPv4 address (conditions._in compares versions)."""
    ranges = []
    for s in specs:
        if not isinstance(s, str):
            return None
        named = _NAMED4.get(s)
        if named is not None:
            complement, cidrs = named
            rs = _merge4(_r4(c) for c in cidrs)
            if complement:
                comp = []
                nxt = 0
                for lo, hi in rs:
                    if lo > nxt:
                        comp.append((nxt, lo - 1))
                    nxt = hi + 1
                if nxt <= 0xFFFFFFFF:
                    comp.append((nxt, 0xFFFFFFFF))
                ranges.extend(comp)
            else:
                ranges.extend(tuple(r) for r in rs)
            continue
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            return None
        if net.version == 4:
            ranges.append((int(net.network_address), int(net.broadcast_address)))
    bounds = []
    for lo, hi in _merge4(ranges):
        bounds.append(lo)
        bounds.append(hi + 1)
    return tuple(bounds)


# [_v4_bounds of the configured internal_networks, or None: no IPv4 fast path]
_V4_BOUNDS: list = [None]


def configure_direction(internal_networks=None, local_ips=()) -> None:
    from worker.processors.conditions import network_matcher
    matcher = None
    bounds = None
    if internal_networks:
        matcher = network_matcher(list(internal_networks), "packetbeat.interfaces.internal_networks")
        bounds = _v4_bounds(list(internal_networks))
    _DIRECTION_RULES[0] = matcher
    _V4_BOUNDS[0] = bounds
    _DIRECTION_RULES[1] = frozenset(ipaddress.ip_address(a) for a in local_ips)
    _LOCAL_PACKED[0] = frozenset(a.packed for a in _DIRECTION_RULES[1])
    _FLOW_PARTS.clear()
    _FLOW_TMPL.clear()
    _IP_SIDES.clear()


def _host_side(ip, local) -> bool:
    if ip.is_loopback or ip.is_link_local:
        return True
    if ip.is_multicast and (ip in _LL_MULTICAST4 if ip.version == 4 else ip in _LL_MULTICAST6):
        return True
    return ip in local


_LL_MULTICAST4 = ipaddress.ip_network("224.0.0.0/24")
_LL_MULTICAST6 = ipaddress.ip_network("ff02::/16")


# address text -> (host side, inside internal_networks) or None (not an address); bounded
_IP_SIDES: dict = {}


# the packed form of this host's addresses (_DIRECTION_RULES[1]), for _sides4
_LOCAL_PACKED: list = [frozenset()]


def _sides4(ip_text: str):
    """_sides of a dotted-quad IPv4 address when no internal_networks are
    configured or they are IPv4 ranges (_V4_BOUNDS), from its four bytes (the
    ipaddress objects cost ~20x more), or None when the text is not such an
    address (the general path judges it)."""
    try:
        b = socket.inet_pton(socket.AF_INET, ip_text)
    except (OSError, ValueError, TypeError):
        return None
    if ipv4_text(b) != ip_text:
        return None                    # not the canonical text: let ipaddress judge it
    a0 = b[0]
    # loopback 127/8, link-local 169.254/16, link-local multicast 224.0.0/24
    host = (a0 == 127 or (a0 == 169 and b[1] == 254) or (a0 == 224 and b[1] == 0 and b[2] == 0)
            or b in _LOCAL_PACKED[0])
    bounds = _V4_BOUNDS[0]
    if bounds is None:
        return (host, False)
    return (host, (_bisect_right(bounds, (a0 << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) & 1) == 1)


def _sides(ip_text: str):
    sides = _IP_SIDES.get(ip_text, 0)
    if sides != 0:
        return sides
    if ((_DIRECTION_RULES[0] is None or _V4_BOUNDS[0] is not None)
            and "." in ip_text and ":" not in ip_text):
        sides = _sides4(ip_text)
        if sides is not None:
            if len(_IP_SIDES) >= 65536:
                _IP_SIDES.clear()
            _IP_SIDES[ip_text] = sides
            return sides
    try:
        ip = ipaddress.ip_address(ip_text)
    except ValueError:
        sides = None
    else:
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        matcher, local = _DIRECTION_RULES
        sides = (_host_side(ip, local), bool(matcher(ip)) if matcher is not None else False)
    if len(_IP_SIDES) >= 65536:
        _IP_SIDES.clear()
    _IP_SIDES[ip_text] = sides
    return sides


def network_direction(src_ip: str, dst_ip: str) -> str:
    src = _sides(src_ip)
    dst = _sides(dst_ip)
    if src is None or dst is None:
        return "unknown"
    if dst[0]:
        return "ingress"
    if src[0]:
        return "egress"
    if _DIRECTION_RULES[0] is None:
        return "unknown"
    if src[1]:
        return "internal" if dst[1] else "outbound"
    return "inbound" if dst[1] else "external"


def _frac3(frac) -> str:
    """``"%03d" % (frac // 1_000_000)`` for 0 <= frac < 10**9 (int: a table look-up)."""
    return _MS3[frac // 1_000_000] if type(frac) is int else "%03d" % (frac // 1_000_000)


def _frac9(frac) -> str:
    """``"%09d" % frac`` for 0 <= frac < 10**9; compiled, an int's nine digits are
    written by a C loop (ecs.pxd ``_digits9_c``), without the format machinery (sprintf)."""
    if type(frac) is int:
        v = frac
        if _COMPILED:
            return _digits9_c(v)      # ecs.pxd; v is a divmod remainder: 0 <= v < 10**9
        return f"{v:09d}"
    return "%09d" % frac


# Per (flow, protocol): the parts of its events that depend on nothing else, as
# dicts that each event copies (``dict.copy()`` of a small dict clones its table
# in one go: a fraction of building it key by key): source/destination with and
# without "bytes" (a placeholder that the event overwrites, so keys stay in
# Packetbeat's order), network with and without "bytes", the "event" object of
# each timing shape. Values are atoms only (no dict is ever handed out: events get
# copies), so these dicts stay untracked by the garbage collector. Bounded like
# _FLOW_PARTS.
_FLOW_TMPL: dict = {}


def _flow_templates(key: tuple, proto, parts: tuple, src_ip, sport, dst_ip, dport) -> tuple:
    if sport:
        src_b = {"ip": src_ip, "port": sport, "bytes": 0}
    else:
        src_b = {"ip": src_ip, "bytes": 0}
    if dport:
        dst_b = {"ip": dst_ip, "port": dport, "bytes": 0}
    else:
        dst_b = {"ip": dst_ip, "bytes": 0}
    net_b = {"type": parts[0], "transport": parts[1], "protocol": proto, "direction": parts[3], "bytes": 0}
    if parts[2]:
        net_b["community_id"] = parts[2]
    if len(_FLOW_TMPL) >= _FLOW_PARTS_MAX:
        _FLOW_TMPL.clear()
    tm = _FLOW_TMPL[key] = (src_b, dst_b, net_b, parts, _event_templates(proto))
    return tm


def _event_templates(proto) -> tuple:
    evt = _EVENT_TMPL.get(proto)
    if evt is None:
        # "category" and "type" are placeholders too: every event gets its own lists
        evt = _EVENT_TMPL[proto] = (
            {"kind": "event", "category": None, "type": None, "dataset": proto,
             "start": None, "end": None, "duration": None},
            {"kind": "event", "category": None, "type": None, "dataset": proto, "start": None},
            {"kind": "event", "category": None, "type": None, "dataset": proto, "end": None},
            {"kind": "event", "category": None, "type": None, "dataset": proto},
        )
    return evt


# protocol -> the "event" object templates of _flow_templates (start and end, start, end, neither)
_EVENT_TMPL: dict = {}


def transaction_event(
    proto: str,
    tuple_,                   # IpPortTuple or TcpTuple: src = client, dst = server
    start: int | None,        # ns of the first packet of the request (None: no request)
    end: int | None,          # ns of the first packet of the response (None: no response)
    bytes_in: int = 0,        # request bytes (client -> server)
    bytes_out: int = 0,       # response bytes
    status: str = "OK",
    notes: list[str] | None = None,
    transport: int = 6,
    cid_ports: tuple | None = None,   # (sport, dport) the Community ID hashes instead (ICMP type, code)
) -> dict:
    first = tuple_item(tuple_, 0)
    if isinstance(first, int):
        # IpPortTuple (transport, src_ip, src_port, dst_ip, dst_port)
        src_ip = tuple_item(tuple_, 1)
        sport = tuple_item(tuple_, 2)
        dst_ip = tuple_item(tuple_, 3)
        dport = tuple_item(tuple_, 4)
    else:
        # TcpTuple (src_ip, src_port, dst_ip, dst_port, conn_id)
        src_ip = first
        sport = tuple_item(tuple_, 1)
        dst_ip = tuple_item(tuple_, 2)
        dport = tuple_item(tuple_, 3)
    key = (transport, src_ip, sport, dst_ip, dport, cid_ports, proto)
    tm = _FLOW_TMPL.get(key)
    if tm is not None:
        parts = tm[3]
        evt = tm[4]
    else:
        pkey = key[:6]
        parts = _FLOW_PARTS.get(pkey)
        if parts is None:
            # the flow's first event (most DNS and ICMP flows have no other): its dicts are
            # built directly; templates are made when a second event comes
            parts = _flow_parts(pkey)
        else:
            tm = _flow_templates(key, proto, parts, src_ip, sport, dst_ip, dport)
        evt = _event_templates(proto)
    if bytes_in and tm is not None:
        source = tm[0]
        source = source.copy()
        source["bytes"] = bytes_in
    else:
        source = {"ip": src_ip, "port": sport} if sport else {"ip": src_ip}
        if bytes_in:
            source["bytes"] = bytes_in
    client = source.copy()
    if bytes_out and tm is not None:
        dest = tm[1]
        dest = dest.copy()
        dest["bytes"] = bytes_out
    else:
        dest = {"ip": dst_ip, "port": dport} if dport else {"ip": dst_ip}
        if bytes_out:
            dest["bytes"] = bytes_out
    server = dest.copy()
    total = bytes_in + bytes_out
    if total and tm is not None:
        network = tm[2]
        network = network.copy()
        network["bytes"] = total
    else:
        network = {"type": parts[0], "transport": parts[1], "protocol": proto, "direction": parts[3]}
        if total:
            network["bytes"] = total
        if parts[2]:
            network["community_id"] = parts[2]
    if start is not None:
        sec, frac = divmod(start, _NS)
        base = _second_text(sec)
        stamp = "%s.%sZ" % (base, _frac3(frac))
        if end is not None:
            # iso_time(end), inline; mostly in the same second as the start
            esec, efrac = divmod(end, _NS)
            ebase = base if esec == sec else _second_text(esec)
            event = evt[0]
            event = event.copy()
            event["start"] = "%s.%sZ" % (base, _frac9(frac))
            event["end"] = "%s.%sZ" % (ebase, _frac9(efrac))
            event["duration"] = end - start
        else:
            event = evt[1]
            event = event.copy()
            event["start"] = "%s.%sZ" % (base, _frac9(frac))
    elif end is not None:
        sec, frac = divmod(end, _NS)
        base = _second_text(sec)
        stamp = "%s.%sZ" % (base, _frac3(frac))
        event = evt[2]
        event = event.copy()
        event["end"] = "%s.%sZ" % (base, _frac9(frac))
    else:
        stamp = iso_time(0, 3)
        event = evt[3]
        event = event.copy()
    event["category"] = ["network"]
    event["type"] = ["connection", "protocol"]
    ev = {
        "@timestamp": stamp,
        "type": proto,
        "status": status,
        "event": event,
        "source": source,
        "destination": dest,
        "client": client,
        "server": server,
        "network": network,
        "related": {"ip": [src_ip] if src_ip == dst_ip else [src_ip, dst_ip]},
    }
    if notes:
        ev["error"] = {"message": notes[0] if len(notes) == 1 else list(notes)}
    return ev


def tuple_item(t, i: int):
    """``t[i]``. Compiled, a tuple's (or a NamedTuple's) item is read from its
    array (ecs.pxd): indexing a NamedTuple subclass from compiled code goes
    through its Python-level ``__getitem__`` slot (~800 instructions)."""
    if _COMPILED:
        return _tuple_item_c(t, i)
    return t[i]


def _probe():
    pass


# True when this module runs compiled (setup.py): functions are then Cython's, not CPython's.
_COMPILED = type(_probe).__name__ != "function"


def _endpoints(t):
    # IpPortTuple (transport, src_ip, src_port, dst_ip, dst_port) or
    # TcpTuple (src_ip, src_port, dst_ip, dst_port, conn_id)
    if isinstance(t[0], int):
        return t[1], t[2], t[3], t[4]
    return t[0], t[1], t[2], t[3]
