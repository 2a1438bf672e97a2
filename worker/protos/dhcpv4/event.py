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

import struct

from worker.ecs import ipv4_text, transaction_event
from worker.protos.dhcpv4.names import HW_TYPES, MESSAGE_TYPES, OPCODES, OPTION_TEXT
from worker.protos.dhcpv4.parser import BOOTREPLY, DhcpMessage

_ZERO4 = b"\x00\x00\x00\x00"
_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_U16 = struct.Struct("!H")
_ntoa = ipv4_text          # socket.inet_ntoa's text, without the C library's printf


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


_MACS: dict = {}


def format_mac(b: bytes) -> str:
    """ECS notation (RFC 7042): upper-case octets joined by hyphens (remembered per address)."""
    t = _MACS.get(b)
    if t is None:
        t = b.hex("-").upper() if b else ""
        if len(_MACS) >= 4096:
            _MACS.clear()
        _MACS[b] = t
    return t


def flags_text(flags: int) -> str:
    # the library tests 0xfe (not 0x7fff) for the reserved bits: kept, for
    # the same text as Packetbeat
    text = "broadcast" if flags & 0x8000 else "unicast"
    if flags & 0xFE:
        text += " (reserved bits not zeroed)"
    return text


_FLAGS = {0: "unicast", 0x8000: "broadcast"}


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


# how each decoded option is read: code -> (field, kind)
K_IP, K_IPS, K_STR, K_STR_NUL, K_SECS, K_U16, K_MTYPE, K_PRL, K_VIVC, K_I32, K_TIMESRV = range(11)
_OPTIONS = {
    53: ("message_type", K_MTYPE), 55: ("parameter_request_list", K_PRL),
    50: ("requested_ip_address", K_IP), 54: ("server_identifier", K_IP), 28: ("broadcast_address", K_IP),
    1: ("subnet_mask", K_IP), 57: ("max_dhcp_message_size", K_U16), 60: ("class_identifier", K_STR),
    15: ("domain_name", K_STR), 56: ("message", K_STR), 6: ("dns_servers", K_IPS), 3: ("router", K_IPS),
    42: ("ntp_servers", K_IPS), 4: ("time_servers", K_TIMESRV), 124: ("vendor_identifying_options", K_VIVC),
    2: ("utc_time_offset_sec", K_I32), 12: ("hostname", K_STR_NUL), 67: ("boot_file_name", K_STR_NUL),
    51: ("ip_address_lease_time_sec", K_SECS), 58: ("renewal_time_sec", K_SECS),
    59: ("rebinding_time_sec", K_SECS),
}


def options_map(opts: dict[int, bytes]) -> dict | None:
    """``dhcpv4.option``: None when empty (or when Packetbeat would fail on it).

    Length rules are the library's: an address is exactly 4 bytes, a list of
    addresses a non-empty multiple of 4, a duration exactly 4 bytes and not 0,
    the message size exactly 2, the message type exactly 1 and not 0; texts
    are taken when not empty. Other options are not reported."""
    out: dict = {}
    spec_of = _OPTIONS.get
    for code, v in opts.items():
        spec = spec_of(code)
        if spec is None:
            continue
        name, kind = spec
        n = len(v)
        if kind == K_IP:
            if n == 4:
                out[name] = _ntoa(v)
        elif kind == K_IPS:
            if n == 4:
                out[name] = [_ntoa(v)]
            elif n and not n & 3:
                out[name] = [_ntoa(v[i:i + 4]) for i in range(0, n, 4)]
        elif kind == K_STR:
            if n:
                out[name] = _text(v)
        elif kind == K_SECS:
            if n == 4:
                secs = _U32.unpack(v)[0]
                if secs:
                    out[name] = secs
        elif kind == K_MTYPE:
            if n == 1 and v[0]:
                out[name] = MESSAGE_TYPES.get(v[0]) or "unknown (%d)" % v[0]
        elif kind == K_PRL:
            if n:
                out[name] = [OPTION_TEXT[c] for c in v]
        elif kind == K_STR_NUL:
            v = v.rstrip(b"\x00")
            if v:
                out[name] = _text(v)
        elif kind == K_U16:
            if n == 2:
                out[name] = _U16.unpack(v)[0]
        elif kind == K_I32:
            if n >= 4:              # Packetbeat reads the first 4 bytes
                out[name] = _I32.unpack_from(v)[0]
        elif kind == K_VIVC:
            vivc = _vivc(v)
            if vivc:
                out[name] = vivc
        elif n:                     # K_TIMESRV
            ips = _ips(v)
            if ips is None:
                return None         # Packetbeat: "error parsing IP options for time servers"
            out[name] = ips
    return out or None


_CACHE_MAX = 1024
# option area bytes (DhcpMessage.options_key) -> (its dhcpv4.option object or
# None, the names of its list values): made once per distinct area, copied per event
_MAPS: dict = {}


def _option_object(msg: DhcpMessage) -> dict | None:
    """``options_map(msg.options)``, from the cache when the message has an option key."""
    key = msg.options_key
    if key is None:
        return options_map(msg.options)
    hit = _MAPS.get(key)
    if hit is None:
        opts = options_map(msg.options)
        lists = () if opts is None else tuple([name for name, value in opts.items() if type(value) is list])
        if len(_MAPS) >= _CACHE_MAX:
            _MAPS.clear()
        hit = _MAPS[key] = (opts, lists)
    opts, lists = hit
    if opts is None:
        return None
    out = dict(opts)
    for k in lists:
        v = opts[k]
        # lists of texts; the vendor-identifying records are dicts
        out[k] = [dict(x) for x in v] if type(v[0]) is dict else list(v)
    return out


def _add_ip(d: dict, related: list, name: str, raw: bytes) -> None:
    ip = _ntoa(raw)
    d[name] = ip
    if ip not in related:
        related.append(ip)


def to_event(msg: DhcpMessage, tuple_) -> dict:
    """The event of one message; ``tuple_`` is the datagram's IpPortTuple."""
    ev = transaction_event("dhcpv4", tuple_, msg.ts, None, bytes_in=msg.size, transport=17)
    op = msg.op
    if op == BOOTREPLY:
        ev["client"], ev["server"] = dict(ev["destination"]), dict(ev["source"])
    flags = msg.flags
    xid = msg.xid
    d: dict = {
        "op_code": OPCODES.get(op) or "unknown (%d)" % op,
        "hardware_type": HW_TYPES.get(msg.htype, "unknown"),
        "hops": msg.hops,
        "transaction_id": f"0x{xid:08x}",
        "seconds": msg.secs,
        "flags": _FLAGS[flags] if flags in _FLAGS else flags_text(flags),
        "client_mac": format_mac(msg.chaddr),
    }
    if msg.ciaddr != _ZERO4:
        _add_ip(d, ev["related"]["ip"], "client_ip", msg.ciaddr)
    if msg.yiaddr != _ZERO4:
        _add_ip(d, ev["related"]["ip"], "assigned_ip", msg.yiaddr)
    if msg.giaddr != _ZERO4:
        _add_ip(d, ev["related"]["ip"], "relay_ip", msg.giaddr)
    if msg.sname:
        d["server_name"] = _text(msg.sname)
    if msg.file:
        d["boot_file_name"] = _text(msg.file)
    if msg.options:
        opts = _option_object(msg)
        if opts:
            d["option"] = opts
    ev["dhcpv4"] = d
    return ev
