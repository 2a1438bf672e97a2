"""Bidirectional flow records (Packetbeat's ``packetbeat.flows``), free of I/O.

Theory of operation
-------------------
The capture shards by the direction-independent 5-tuple, so both directions
of a flow reach the worker that owns it; that worker's engine calls
:meth:`FlowTable.add` once per decoded packet with the ``decode()`` tuple.

- Key: transport, the two endpoints (address, port), the Ethernet MAC pair
  (Ethernet frames only), the VLAN ids (outer first) and, for ICMP echo, the
  ICMP identifier: what Packetbeat 8.x puts in its flow ID
  (``packetbeat/flows/flowid.go``). ``flow.id`` is that ID serialised the
  same way; for TCP it ends with a connection number, counted per shard here
  (Packetbeat counts TCP connections process-wide). The key is written in a canonical
  orientation (lower ``(address, port)`` first), so both directions find the
  same record with one dict lookup.
- Counters: per direction, packets and bytes, where a packet's bytes are the
  whole frame as captured (Packetbeat adds gopacket's ``CaptureInfo.Length``,
  the frame length; the records we receive hold the captured frame, which is
  the same unless a snap length cut the packet).
- Orientation of the event: the sender of the flow's first packet is
  ``source``; ``source.packets/bytes`` count what it sent.
- Time comes from packets. :meth:`tick` (called by the engine once per batch
  with the newest packet time, or by a live worker with its clock) ends flows
  idle for longer than ``timeout`` (``flow.final: true``) and, when ``period``
  > 0, reports every open flow each ``period`` (``flow.final: false``).
  :meth:`flush_all` (end of stream) reports every open flow as final.
- Events follow Packetbeat 8.x ``createEvent`` (``flows/worker.go``):
  ``type: flow``, ``flow.{id,final,vlan}``, ``event.{kind,category,type,
  action,dataset,start,end,duration}``, ``source/destination.{mac,ip,port,
  packets,bytes}``, ``network.{type,transport,community_id,bytes,packets}``.
"""
from __future__ import annotations

import base64
import struct
from typing import Callable

from shared.addr import ip_text
from shared.decode import vlan_ids
from worker import ecs as _ecs
from worker.ecs import community_id, iso_time

_NS = 1_000_000_000
_ETHERNET = 1

# Packetbeat's FlowIDFlag bits (flowid.go)
_F_ETH, _F_OUTER_VLAN, _F_VLAN, _F_OUTER_IP4, _F_IP4 = 1, 2, 4, 8, 16
_F_OUTER_IP6, _F_IP6, _F_ICMP4, _F_ICMP6, _F_UDP, _F_TCP = 32, 64, 128, 256, 512, 1024
_UNSET = 0xFF
_LE16 = struct.Struct("<H")
_ICMP_ID = struct.Struct("!BBxxH")            # type, code, (checksum), identifier
_ICMP4_ECHO = frozenset((0, 8))
_ICMP6_ECHO = frozenset((128, 129))
_TRANSPORT_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}
_L2_LEN = {1: 14, 113: 16, 276: 20}           # untagged header length of the links that carry VLAN tags

# a flow record is a list (attribute access on a list index is the cheapest update)
_FIRST, _LAST, _DIR, _PK0, _BY0, _PK1, _BY1, _ICMP_TC, _CONN = range(9)
_F_CONN = 2048


def flow_id(transport: int, src: bytes, sport: int, dst: bytes, dport: int,
            macs: tuple[bytes, bytes] | None, vlans: tuple[int, ...], icmp_id: int | None,
            conn_id: int = 0) -> str:
    """Packetbeat's serialised flow ID (flags, layer offsets, counts, then the ids), base64.

    Pairs are stored in the order Packetbeat's ``sortAddrWrite`` picks: the
    first pair written (MACs, else addresses) decides, lower bytes first, and
    every later pair follows that decision. ``src``/``dst`` is the orientation
    of the packet that created the flow.
    """
    buf = bytearray()
    off = dict(eth=_UNSET, ovlan=_UNSET, vlan=_UNSET, oip4=_UNSET, ip4=_UNSET, oip6=_UNSET, ip6=_UNSET,
               icmp4=_UNSET, icmp6=_UNSET, udp=_UNSET, tcp=_UNSET, cid=_UNSET)
    flags = 0
    direction = None                       # None unset, False forward, True reversed

    def pair(a: bytes, b: bytes) -> bytes:
        nonlocal direction
        if direction is None:
            if a == b:
                return a + b
            direction = a > b
        return b + a if direction else a + b

    if macs is not None:
        off["eth"] = len(buf)
        buf += pair(macs[0], macs[1])
        flags |= _F_ETH
    for i, vid in enumerate(vlans[-2:]):
        if i == 0:
            off["vlan"] = len(buf)
            flags |= _F_VLAN
        else:                                # a second tag: the first one becomes the outer one
            off["ovlan"], off["vlan"] = off["vlan"], len(buf)
            flags |= _F_OUTER_VLAN
        buf += _LE16.pack(vid)
    if len(src) == 4:
        off["ip4"] = len(buf)
        flags |= _F_IP4
    else:
        off["ip6"] = len(buf)
        flags |= _F_IP6
    buf += pair(src, dst)
    if transport == 1 and icmp_id is not None:
        off["icmp4"] = len(buf)
        flags |= _F_ICMP4
        buf += _LE16.pack(icmp_id)
    elif transport == 58 and icmp_id is not None:
        off["icmp6"] = len(buf)
        flags |= _F_ICMP6
        buf += _LE16.pack(icmp_id)
    elif transport in (6, 17):
        off["tcp" if transport == 6 else "udp"] = len(buf)
        flags |= _F_TCP if transport == 6 else _F_UDP
        buf += pair(_LE16.pack(sport), _LE16.pack(dport))
    if conn_id:
        off["cid"] = len(buf)
        flags |= _F_CONN
        buf += conn_id.to_bytes(8, "little")
    cnt_eth = 1 if macs is not None else 0
    head = bytes((flags & 0xFF, flags >> 8, off["eth"], off["ovlan"], off["vlan"], off["oip4"], off["ip4"],
                  off["oip6"], off["ip6"], off["icmp4"], off["icmp6"], off["udp"], off["tcp"], off["cid"],
                  cnt_eth, len(vlans[-2:]), 1))
    return base64.b64encode(head + bytes(buf)).decode().rstrip("=")


def _mac_text(m: bytes) -> str:
    return ":".join("%02x" % b for b in m)


class FlowTable:
    """Open flows of one shard. ``emit(event)`` receives every flow report."""

    def __init__(self, timeout: float, period: float, emit: Callable[[dict], None],
                 decorate: Callable[[dict], dict] | None = None, max_flows: int = 262_144):
        if timeout < 1:
            raise ValueError("flows timeout must be >= 1s (got %r)" % timeout)
        if 0 < period < 1:
            raise ValueError("flows period must be -1 or >= 1s (got %r)" % period)
        self.timeout_ns = int(timeout * _NS)
        self.period_ns = int(period * _NS) if period > 0 else 0
        self.emit = emit
        self.decorate = decorate
        self.flows: dict[tuple, list] = {}
        self._next_expiry = 0              # packet time of the next idle check
        self._next_report = 0              # packet time of the next periodic report
        self.counters = {"flows.created": 0, "flows.reported": 0, "flows.evicted": 0}
        # at most this many open flows: a new one reports the oldest created as final first
        self.max_flows = max(1, int(max_flows))
        self._conns = 0                    # TCP flows get a connection number, as in Packetbeat's ID

    # -- hot path ---------------------------------------------------------
    def add(self, ts: int, linktype: int, raw: bytes, dec: tuple) -> None:
        """Count one decoded packet (``dec`` as returned by ``shared.decode.decode``)."""
        # hot path: list indexes are literals (0 first ts, 1 last ts, 2 first direction,
        # 3/4 packets/bytes of direction 0, 5/6 of direction 1); see _FIRST.._CONN
        t, src, dst, sport, dport = dec[0], dec[1], dec[2], dec[3], dec[4]
        l3 = dec[10]
        if linktype == 1:
            l2 = raw[:12]                                   # destination MAC + source MAC
            vlans = () if l3 == 14 else tuple(vlan_ids(1, raw))
        else:
            l2 = b""
            vlans = tuple(vlan_ids(linktype, raw)) if l3 > _L2_LEN.get(linktype, l3) else ()
        if t == 1 or t == 58:
            itype = raw[dec[8]]
            icmp = raw[dec[8] + 4] << 8 | raw[dec[8] + 5] \
                if (itype in (_ICMP4_ECHO if t == 1 else _ICMP6_ECHO) and dec[9] - dec[8] >= 8) else -1
            sport = dport = icmp
        if src < dst or (src == dst and sport <= dport):
            key = (t, src, sport, dst, dport, l2, vlans)
            d = 0
        else:
            key = (t, dst, dport, src, sport, raw[6:12] + raw[:6] if l2 else l2, vlans)
            d = 1
        flows = self.flows
        f = flows.get(key)
        if f is None:
            if len(flows) >= self.max_flows:
                self._evict(ts)
            f = flows[key] = [ts, ts, d, 0, 0, 0, 0, None, 0]
            self._created(f, t, raw, dec)
        elif ts > f[1]:
            f[1] = ts
        if d == f[2]:
            f[3] += 1
            f[4] += len(raw)
        else:
            f[5] += 1
            f[6] += len(raw)

    def _evict(self, now: int) -> None:
        key = next(iter(self.flows))
        f = self.flows.pop(key)
        self.counters["flows.evicted"] += 1
        self._report(key, f, max(now, f[_LAST]), True)

    def _created(self, f: list, t: int, raw: bytes, dec: tuple) -> None:
        self.counters["flows.created"] += 1
        if t == 6:
            self._conns += 1
            f[_CONN] = self._conns
        elif t == 1 or t == 58:
            f[_ICMP_TC] = (raw[dec[8]], raw[dec[8] + 1])

    # -- time -------------------------------------------------------------
    def tick(self, now: int) -> None:
        """Time moved to ``now`` (ns): end idle flows, send periodic reports."""
        if not self._next_expiry:
            self._next_expiry = now + _NS
            if self.period_ns:
                self._next_report = (now // self.period_ns + 1) * self.period_ns
            return
        if now >= self._next_expiry:
            self._next_expiry = now + _NS
            limit = now - self.timeout_ns
            dead = [k for k, f in self.flows.items() if f[_LAST] < limit]
            for k in dead:
                self._report(k, self.flows.pop(k), now, True)
        if self.period_ns and now >= self._next_report:
            self._next_report = (now // self.period_ns + 1) * self.period_ns
            for k, f in self.flows.items():
                self._report(k, f, now, False)

    def flush_all(self, now: int) -> None:
        """End of stream: every open flow is reported as final."""
        flows, self.flows = self.flows, {}
        for k, f in flows.items():
            self._report(k, f, max(now, f[_LAST]), True)

    # -- events -----------------------------------------------------------
    def _report(self, key: tuple, f: list, now: int, final: bool) -> None:
        self.counters["flows.reported"] += 1
        ev = flow_event(key, f, now, final)
        self.emit(self.decorate(ev) if self.decorate is not None else ev)


def flow_event(key: tuple, f: list, now: int, final: bool) -> dict:
    """The Packetbeat 8.x flow event of record ``f`` (key in canonical orientation)."""
    t, a, aport, b, bport, l2, vlans = key
    if f[_DIR]:                                # first sender is the canonical "b" side
        a, aport, b, bport = b, bport, a, aport
        l2 = l2[6:12] + l2[:6] if l2 else l2
    src_ip, dst_ip = ip_text(a), ip_text(b)
    source: dict = {}
    dest: dict = {}
    macs = None
    if l2:
        macs = (l2[6:12], l2[:6])              # (source MAC, destination MAC)
        source["mac"] = _mac_text(macs[0])
        dest["mac"] = _mac_text(macs[1])
    source["ip"] = src_ip
    dest["ip"] = dst_ip
    network = {"type": "ipv4" if len(a) == 4 else "ipv6"}
    icmp_id = None
    if t == 6 or t == 17:
        source["port"] = aport
        dest["port"] = bport
        network["transport"] = _TRANSPORT_NAMES[t]
        cid = community_id(t, src_ip, aport, dst_ip, bport)
    else:
        icmp_id = aport if aport >= 0 else None
        # (0, 0) for a record of IP fragments (transport FRAGMENT): the capture
        # reassembles them, but an engine fed directly may see them
        itype, icode = f[_ICMP_TC] or (0, 0)
        cid = ""
        # 8.x names the transport (and hashes the Community ID) from the first
        # sender's ICMP type/code, and only when that is non-zero (an echo reply is 0/0)
        if itype or icode:
            network["transport"] = _TRANSPORT_NAMES[t]
            cid = community_id(t, src_ip, itype, dst_ip, icode)
    if f[_PK0]:
        source["packets"] = f[_PK0]
        source["bytes"] = f[_BY0]
    if f[_PK1]:
        dest["packets"] = f[_PK1]
        dest["bytes"] = f[_BY1]
    if cid:
        network["community_id"] = cid
    network["bytes"] = f[_BY0] + f[_BY1]
    network["packets"] = f[_PK0] + f[_PK1]
    if _ecs._DIRECTION_RULES[0] is not None:
        # with packetbeat.interfaces.internal_networks Packetbeat 8 gives flows a direction too:
        # the same rules as the transactions' (worker/ecs.py: network_direction)
        network["direction"] = _ecs.network_direction(src_ip, dst_ip)
    flow: dict = {"id": flow_id(t, a, aport, b, bport, macs, vlans, icmp_id, f[_CONN]), "final": final}
    if vlans:
        flow["vlan"] = vlans[0] if len(vlans) == 1 else list(vlans[-2:])
    start, end = f[_FIRST], f[_LAST]
    return {
        "@timestamp": iso_time(now, 3),
        "type": "flow",
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection", "end"] if final else ["connection"],
            "action": "network_flow",
            "dataset": "flow",
            "start": iso_time(start),
            "end": iso_time(end),
            "duration": end - start,
        },
        "flow": flow,
        "source": source,
        "destination": dest,
        "network": network,
    }
