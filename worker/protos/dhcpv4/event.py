"""DHCPv4 message -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/dhcpv4/dhcpv4.go: parseDHCPv4`` and ``options.go``).

One event per message. ``source``/``destination`` are the datagram's own
endpoints (``source.bytes`` = the DHCP payload size); ``client``/``server``
are the same endpoints, swapped for a BOOTREPLY so that the client is always
the DHCP client. ``dhcpv4.*`` holds the header, ``dhcpv4.option.*`` the
options Packetbeat decodes; an option whose length does not fit its type is
left out (a time-server option that is not a list of addresses makes
Packetbeat drop the whole ``option`` object: so does this). ``related.ip``
also lists the non-zero ``client_ip``, ``assigned_ip`` and ``relay_ip``.
"""
from __future__ import annotations

import socket
import struct

from worker.ecs import transaction_event
from worker.protos.dhcpv4.names import HW_TYPES, MESSAGE_TYPES, OPCODES, OPTION_TEXT
from worker.protos.dhcpv4.parser import BOOTREPLY, DhcpMessage

_ZERO4 = b"\x00\x00\x00\x00"
_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_U16 = struct.Struct("!H")
_ntoa = socket.inet_ntoa


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def format_mac(b: bytes) -> str:
    """ECS notation (RFC 7042): upper-case octets joined by hyphens."""
    return b.hex("-").upper() if b else ""


def flags_text(flags: int) -> str:
    # the library tests 0xfe (not 0x7fff) for the reserved bits: kept, for
    # the same text as Packetbeat
    text = "broadcast" if flags & 0x8000 else "unicast"
    if flags & 0xFE:
        text += " (reserved bits not zeroed)"
    return text


def _ip(v: bytes | None) -> str | None:
    return _ntoa(v) if v is not None and len(v) == 4 else None


def _ips(v: bytes | None) -> list[str] | None:
    if not v or len(v) & 3:
        return None
    return [_ntoa(v[i:i + 4]) for i in range(0, len(v), 4)]


def _vivc(v: bytes | None) -> list[dict] | None:
    """RFC 3925 option 124: (enterprise number, data) records; None if malformed."""
    if not v:
        return None
    out = []
    pos, n = 0, len(v)
    while n - pos >= 5:
        ent = _U32.unpack_from(v, pos)[0]
        size = v[pos + 4]
        pos += 5
        if pos + size > n:
            return None
        out.append({"id": ent, "data": v[pos:pos + size].hex()})
        pos += size
    if pos != n:
        return None
    return out or None


def options_map(opts: dict[int, bytes]) -> dict | None:
    """``dhcpv4.option``: None when empty (or when Packetbeat would fail on it)."""
    out: dict = {}
    get = opts.get
    v = get(53)
    if v is not None and len(v) == 1 and v[0]:
        out["message_type"] = MESSAGE_TYPES.get(v[0]) or "unknown (%d)" % v[0]
    v = get(55)
    if v:
        out["parameter_request_list"] = [OPTION_TEXT[c] for c in v]
    for code, name in ((50, "requested_ip_address"), (54, "server_identifier"),
                       (28, "broadcast_address")):
        ip = _ip(get(code))
        if ip is not None:
            out[name] = ip
    v = get(57)
    if v is not None and len(v) == 2:
        out["max_dhcp_message_size"] = _U16.unpack(v)[0]
    v = get(60)
    if v:
        out["class_identifier"] = _text(v)
    v = get(15)
    if v:
        out["domain_name"] = _text(v)
    ips = _ips(get(6))
    if ips:
        out["dns_servers"] = ips
    vivc = _vivc(get(124))
    if vivc:
        out["vendor_identifying_options"] = vivc
    ip = _ip(get(1))
    if ip is not None:
        out["subnet_mask"] = ip
    v = get(2)
    if v is not None and len(v) >= 4:
        out["utc_time_offset_sec"] = _I32.unpack_from(v)[0]
    ips = _ips(get(3))
    if ips:
        out["router"] = ips
    v = get(4)
    if v:
        ips = _ips(v)
        if ips is None:
            return None        # Packetbeat: "error parsing IP options for time servers"
        out["time_servers"] = ips
    ips = _ips(get(42))
    if ips:
        out["ntp_servers"] = ips
    v = get(12)
    if v:
        v = v.rstrip(b"\x00")
        if v:
            out["hostname"] = _text(v)
    v = get(56)
    if v:
        out["message"] = _text(v)
    for code, name in ((51, "ip_address_lease_time_sec"), (58, "renewal_time_sec"),
                       (59, "rebinding_time_sec")):
        v = get(code)
        if v is not None and len(v) == 4:
            secs = _U32.unpack(v)[0]
            if secs:
                out[name] = secs
    v = get(67)
    if v:
        v = v.rstrip(b"\x00")
        if v:
            out["boot_file_name"] = _text(v)
    return out or None


def to_event(msg: DhcpMessage, tuple_) -> dict:
    """The event of one message; ``tuple_`` is the datagram's IpPortTuple."""
    ev = transaction_event("dhcpv4", tuple_, msg.ts, None, bytes_in=msg.size, transport=17)
    if msg.op == BOOTREPLY:
        src, dst = ev["source"], ev["destination"]
        ev["client"] = dict(dst)
        ev["server"] = dict(src)
    related = ev["related"]["ip"]
    op = msg.op
    htype = msg.htype
    d: dict = {
        "op_code": OPCODES.get(op) or "unknown (%d)" % op,
        "hardware_type": HW_TYPES.get(htype, "unknown"),
        "hops": msg.hops,
        "transaction_id": "0x%08x" % msg.xid,
        "seconds": msg.secs,
        "flags": flags_text(msg.flags),
        "client_mac": format_mac(msg.chaddr),
    }
    for name, raw in (("client_ip", msg.ciaddr), ("assigned_ip", msg.yiaddr), ("relay_ip", msg.giaddr)):
        if raw != _ZERO4:
            ip = _ntoa(raw)
            d[name] = ip
            if ip not in related:
                related.append(ip)
    if msg.sname:
        d["server_name"] = _text(msg.sname)
    if msg.file:
        d["boot_file_name"] = _text(msg.file)
    opts = options_map(msg.options)
    if opts:
        d["option"] = opts
    ev["dhcpv4"] = d
    return ev
