"""Memcache plugin: TCP and UDP callbacks glued to the parser, correlator and
event builder (Packetbeat's ``plugin_tcp.go`` / ``plugin_udp.go``).

UDP datagrams start with an 8-byte frame header (request id, sequence
number, datagram count, reserved); a message spread over several datagrams
is reassembled before it is parsed. UDP transactions time out by packet
time (``udptransactiontimeout``) through :meth:`MemcachePlugin.expire`.
"""
from __future__ import annotations

import struct

from worker.protos.glue import config_of
from worker.plugin import UDP, Emit, IpPortTuple, Packet, TcpTuple
from worker.protos.memcache.config import MAX_MESSAGE_SIZE, MemcacheConfig
from worker.protos.memcache.event import to_event
from worker.protos.memcache.parser import MemcacheMessage, MemcacheParser, ParseError, parse_datagram
from worker.protos.memcache.trans import (TcpCorrelator, UdpMessage, UdpTransaction, UdpTransactions,
                                          check_complete, expects_response, try_merge,
                                          udp_half_notes)

_UDP_HEADER = struct.Struct("!HHHH")
_NS = 1_000_000_000

NOTE_UDP_COUNT = "datagram count changed within a UDP message: incomplete transaction"
NOTE_UDP_PARSE = "unparsable UDP message from the other side: no response"


class MemcacheConnection:
    """Per-TCP-connection state: one parser per direction and the correlator."""
    __slots__ = ("parsers", "correlator")

    def __init__(self, cfg: MemcacheConfig):
        keep = cfg.value_keep
        self.parsers = (
            MemcacheParser(keep, cfg.maxvalues, cfg.parseunknown, MAX_MESSAGE_SIZE, True),
            MemcacheParser(keep, cfg.maxvalues, cfg.parseunknown, MAX_MESSAGE_SIZE, True),
        )
        self.correlator = TcpCorrelator(cfg.maxvalues)


class MemcachePlugin:
    """Satisfies :class:`worker.plugin.TcpPlugin` and :class:`worker.plugin.UdpPlugin`."""
    config_class = MemcacheConfig
    transports = ("tcp", "udp")

    def __init__(self, config: MemcacheConfig | dict | None, emit: Emit):
        config = config_of(MemcacheConfig, config, "memcache")
        self.cfg = config
        self.emit = emit
        self._udp = UdpTransactions(int(round(config.udptransactiontimeout * _NS)))
        self.parse_errors = 0        # TCP streams dropped, UDP messages not parsed
        self.gap_drops = 0           # TCP streams given up after a gap outside a value

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    # ------------------------------------------------------------------ TCP
    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        # As Packetbeat: what is still open is published when the TCP layer
        # forgets the connection (flush).
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None:
            return None, False
        parser = state.parsers[direction]
        if parser.on_gap(nbytes):
            self._handle(state, tcptuple, parser.drain())
            return state, False
        self.gap_drops += 1
        self.flush(tcptuple, state, 0)
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        if state is None:
            return
        emit = self.emit
        for req, resp in state.correlator.flush():
            emit(to_event(req, resp, tcptuple))

    def _handle(self, conn: MemcacheConnection, tcptuple: TcpTuple, msgs: list[MemcacheMessage]) -> None:
        _handle(self, conn, tcptuple, msgs)

    # ------------------------------------------------------------------ UDP
    def parse_udp(self, pkt: Packet) -> None:
        _parse_udp(self, pkt)

    def _udp_multi(self, t: UdpTransaction, side: int, um: UdpMessage, msgs: list, tup, key: tuple,
                   ts: int) -> None:
        """Several requests in one datagram (e.g. GetKQ... + Noop), or an
        answer to them: paired as on TCP (opaque, opcode, key; quiet requests
        skipped by a later answer had none)."""
        udp = self._udp
        if t.corr is None:
            if t.request is not None or t.response is not None:
                # a new exchange on this id: publish what was there
                udp.remove(t)
                self._publish_udp(t, True)
                t, _ = udp.get(key, tup, ts)
                t.messages[side] = um
            t.corr = TcpCorrelator(self.cfg.maxvalues)
            t.req_side = side
            t.tuple = tup
        corr = t.corr
        emit = self.emit
        for m in msgs:
            for req, resp in corr.add(m):
                emit(to_event(req, resp, t.tuple, UDP))
        if not corr.requests and not corr.responses:
            udp.remove(t)

    def expire(self, now: int) -> None:
        for t in self._udp.expire(now):
            self._publish_udp(t, True)

    def flush_all(self, now: int) -> None:
        for t in self._udp.flush():
            self._publish_udp(t, True)

    def _publish_udp(self, t: UdpTransaction, cut_short: bool) -> None:
        """Emit ``t``; ``cut_short``: it ends before its exchange completed
        (timeout, end of capture, replaced), so a missing half gets a note."""
        if t.corr is not None:
            for req, resp in t.corr.flush():
                self.emit(to_event(req, resp, t.tuple, UDP))
            return
        req, resp = t.request, t.response
        if req is None and resp is None:
            return
        if cut_short:
            udp_half_notes(t)
        tup = t.tuple
        if req is None:
            # only the answer was seen: orient the event client -> server
            tup = IpPortTuple(UDP, tup.dst_ip, tup.dst_port, tup.src_ip, tup.src_port) \
                if tup.src_port in self.cfg.ports and tup.dst_port not in self.cfg.ports else tup
        self.emit(to_event(req, resp, tup, UDP))


# ---------------------------------------------------------------- per packet (TCP)
# Module functions rather than methods: compiled (plugin.pxd), their locals are
# C-typed and the connection, parser, correlator and messages are extension types.

def _parse(plugin, pkt, tcptuple, direction: int, state):
    conn = state if state is not None else MemcacheConnection(plugin.cfg)
    parser = conn.parsers[direction]
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        # As Packetbeat: publish what is pending, then drop both streams
        # (the TCP layer counts the error and forgets the state).
        plugin.parse_errors += 1
        _handle(plugin, conn, tcptuple, e.messages)
        plugin.flush(tcptuple, conn, pkt.ts)
        raise
    if msgs:
        _handle(plugin, conn, tcptuple, msgs)
    return conn


def _handle(plugin, conn: MemcacheConnection, tcptuple: TcpTuple, msgs: list) -> None:
    corr = conn.correlator
    emit = plugin.emit
    for msg in msgs:
        for req, resp in corr.add(msg):
            emit(to_event(req, resp, tcptuple))


# ---------------------------------------------------------------- per datagram (UDP)

def _parse_udp(plugin, pkt: Packet) -> None:
    payload = pkt.payload
    if len(payload) < 8:
        plugin.parse_errors += 1
        raise ParseError("UDP datagram of %d bytes: no memcache frame header" % len(payload))
    request_id, seq, total, _reserved = _UDP_HEADER.unpack_from(payload, 0)
    tup = pkt.tuple
    udp = plugin._udp
    key = (tup.src_ip, tup.src_port, tup.dst_ip, tup.dst_port, request_id)
    side = 0
    if key not in udp.open:
        rkey = (tup.dst_ip, tup.dst_port, tup.src_ip, tup.src_port, request_id)
        if rkey in udp.open:
            key, side = rkey, 1
    t, evicted = udp.get(key, tup, pkt.ts)
    for old in evicted:
        plugin._publish_udp(old, True)
    um = t.messages[side]
    if um is None or um.complete:
        if um is not None and not (t.response is not None and not t.response.is_complete
                                   and t.resp_side == side) \
                and not (t.corr is not None and side != t.req_side):
            # this side already sent its message: a new exchange reuses the id
            udp.remove(t)
            plugin._publish_udp(t, True)
            t, _ = udp.get(key, tup, pkt.ts)
        # memcached numbers the datagrams of each response message (each
        # VALUE of a multi-get, END) separately: a new message may continue
        # an incomplete response
        um = t.messages[side] = UdpMessage(total, pkt.ts)
    elif um.total != total:
        udp.remove(t)
        for m in (t.request, t.response):
            if m is not None:
                m.notes.append(NOTE_UDP_COUNT)
        plugin._publish_udp(t, True)
        plugin.parse_errors += 1
        raise ParseError("datagram count changed within a UDP message")
    data = um.add(seq, bytes(payload[8:]))
    if data is None:
        return
    if not data:
        # memcached answers quiet/noreply commands over UDP with an empty
        # message: nothing to parse, the exchange stays open
        t.messages[side] = None
        return
    cfg = plugin.cfg
    try:
        msgs = parse_datagram(data, um.ts, cfg.value_keep, cfg.maxvalues, cfg.parseunknown, True)
    except ParseError:
        udp.remove(t)
        for m in (t.request, t.response):
            if m is not None:
                m.notes.append(NOTE_UDP_PARSE)
        plugin._publish_udp(t, True)
        plugin.parse_errors += 1
        raise
    msg = msgs[0]
    if t.corr is not None or (msg.is_request and len(msgs) > 1):
        plugin._udp_multi(t, side, um, msgs, tup, key, pkt.ts)
        return
    if msg.is_request:
        if t.request is not None:
            # a second request on one id: publish the first alone
            udp.remove(t)
            plugin._publish_udp(t, True)
            t, _ = udp.get(key, tup, pkt.ts)
            t.messages[side] = um
        t.request = msg
        t.tuple = tup
        if not expects_response(msg):
            udp.remove(t)
            plugin._publish_udp(t, False)
            return
    else:
        msg.is_complete = check_complete(msg)
        resp = t.response
        if resp is not None and not resp.is_complete and try_merge(resp, msg, cfg.maxvalues):
            msg = resp
        elif resp is not None:
            # a second answer on one id: publish what was there
            udp.remove(t)
            plugin._publish_udp(t, True)
            t, _ = udp.get(key, tup, pkt.ts)
            t.messages[side] = um
        t.response = msg
        t.resp_side = side
        for more in msgs[1:]:
            # several messages in one payload (VALUE ... END, STATs)
            if not try_merge(msg, more, cfg.maxvalues):
                break
    if t.request is not None and t.response is not None and t.response.is_complete:
        udp.remove(t)
        plugin._publish_udp(t, False)
