"""Common ECS fields of a transaction event, as Packetbeat 8.x writes them.

Every protocol's ``event.py`` starts from :func:`transaction_event` and adds
its own root fields (``method``, ``query``, ...) and protocol object. Zero
numbers and empty strings are left out, as 8.x does (``pb/event.go``).
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct
import time

_TRANSPORT_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}


def iso_time(ts_ns: int, digits: int = 9) -> str:
    """RFC 3339 UTC text of an integer-ns timestamp (``digits`` fraction digits)."""
    sec, frac = divmod(ts_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if digits <= 0:
        return base + "Z"
    return "%s.%sZ" % (base, ("%09d" % frac)[:digits])


def community_id(transport: int, src_ip: str, sport: int, dst_ip: str, dport: int, seed: int = 0) -> str:
    """Community ID v1 flow hash (https://github.com/corelight/community-id-spec)."""
    try:
        s = ipaddress.ip_address(src_ip).packed
        d = ipaddress.ip_address(dst_ip).packed
    except ValueError:
        return ""
    if transport in (1, 58):
        sport, dport = _icmp_ports(transport, sport, dport)
    if (s, sport) > (d, dport):
        s, d, sport, dport = d, s, dport, sport
    blob = struct.pack("!H", seed) + s + d + struct.pack("!BxHH", transport, sport & 0xFFFF, dport & 0xFFFF)
    return "1:" + base64.b64encode(hashlib.sha1(blob).digest()).decode()


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
) -> dict:
    src_ip, sport, dst_ip, dport = _endpoints(tuple_)
    first_ts = start if start is not None else end
    source = {"ip": src_ip}
    dest = {"ip": dst_ip}
    if sport:
        source["port"] = sport
    if dport:
        dest["port"] = dport
    if bytes_in:
        source["bytes"] = bytes_in
    if bytes_out:
        dest["bytes"] = bytes_out
    event = {
        "kind": "event",
        "category": ["network"],
        "type": ["connection", "protocol"],
        "dataset": proto,
    }
    if start is not None:
        event["start"] = iso_time(start)
    if end is not None:
        event["end"] = iso_time(end)
    if start is not None and end is not None:
        event["duration"] = end - start
    tname = _TRANSPORT_NAMES.get(transport, str(transport))
    network = {
        "type": _ip_type(src_ip),
        "transport": tname,
        "protocol": proto,
        "direction": "unknown",
    }
    if bytes_in + bytes_out:
        network["bytes"] = bytes_in + bytes_out
    cid = community_id(transport, src_ip, sport, dst_ip, dport)
    if cid:
        network["community_id"] = cid
    ev = {
        "@timestamp": iso_time(first_ts if first_ts is not None else 0, 3),
        "type": proto,
        "status": status,
        "event": event,
        "source": source,
        "destination": dest,
        "client": dict(source),
        "server": dict(dest),
        "network": network,
        "related": {"ip": [src_ip] if src_ip == dst_ip else [src_ip, dst_ip]},
    }
    if notes:
        ev["error"] = {"message": notes[0] if len(notes) == 1 else list(notes)}
    return ev


def _endpoints(t):
    # IpPortTuple (transport, src_ip, src_port, dst_ip, dst_port) or
    # TcpTuple (src_ip, src_port, dst_ip, dst_port, conn_id)
    if isinstance(t[0], int):
        return t[1], t[2], t[3], t[4]
    return t[0], t[1], t[2], t[3]
