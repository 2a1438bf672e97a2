"""NFS plugin: ONC-RPC over TCP (record marking) and UDP glued to the
parser, the xid correlators and the event builder (Packetbeat's ``rpc.go``,
``request_handler.go``).

Only calls of the NFS program (100003) are published; calls of other
programs met on the NFS ports (MOUNT, NLM, NFSv4 callbacks...) are counted
(``other_programs``) with their replies. A call never answered is published
with status ``NO_REPLY`` when the transaction timeout passes (packet time),
when its connection ends or at the end of the capture; a reply whose call was
not seen is published alone ("Unmatched response").

Events are oriented caller -> callee: for a call the server sends on the
connection (an NFSv4.1 back-channel call) the endpoints are swapped, as
Packetbeat swaps them for a call in the reverse direction.
"""
from __future__ import annotations

import weakref

from worker.plugin import TCP, UDP, Emit, IpPortTuple, Packet, TcpTuple
from worker.protos.glue import NOTE_NO_RESPONSE, NOTE_TIMEOUT, KeyedCorrelator, TcpAnalyser, feed_segment
from worker.protos.nfs.config import NfsConfig
from worker.protos.nfs.event import to_event
from worker.protos.nfs.parser import MAX_MESSAGE_SIZE, NFS_PROGRAM, ParseError, RpcMessage, decode_message
from worker.protos.nfs.trans import UDP_MAX_PENDING, NfsConnection, PendingCall, published, udp_key

_NS = 1_000_000_000
TCP_SWEEP_EVERY_NS = _NS     # how often (packet time) open TCP connections are swept for expired calls


def _oriented(tcptuple: TcpTuple, call_dir: int):
    """Endpoints caller -> callee of a call sent in ``call_dir``."""
    if call_dir == 0:
        return tcptuple
    return IpPortTuple(TCP, tcptuple.dst_ip, tcptuple.dst_port, tcptuple.src_ip, tcptuple.src_port)


class NfsPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin` and :class:`worker.plugin.UdpPlugin`."""
    config_class = NfsConfig
    name = "nfs"
    transports = ("tcp", "udp")
    parse_error = ParseError

    def __init__(self, config: NfsConfig | dict | None, emit: Emit,
                 max_message_size: int = MAX_MESSAGE_SIZE):
        super().__init__(config, emit)
        self._timeout_ns = int(round(float(self.cfg.transaction_timeout) * _NS))
        self.max_message_size = max_message_size
        self._udp = KeyedCorrelator(self._timeout_ns, UDP_MAX_PENDING)
        # conn_id -> state of the open TCP connections, swept by expire(); weak:
        # a state the TCP layer drops without a flush leaves by itself
        self._tcp_open: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._next_sweep = 0
        # counters (reported as nfs.<name>)
        self.other_programs = 0       # calls of other RPC programs, not published
        self.malformed = 0            # NFS calls Packetbeat 8 drops as malformed, not published
        self.unmatched_requests = 0   # calls published without a reply (Packetbeat: nfs.unmatched_requests)
        self.unmatched_responses = 0  # replies published without their call
        self.dropped_bytes = 0        # bytes of records left incomplete when a connection ended
        self.lost_messages = 0        # records whose RPC header a gap took
        self.skipped_bytes = 0        # bytes passed over looking for a record start after bad bytes

    # ------------------------------------------------------------------ TCP
    def new_connection(self, tcptuple: TcpTuple) -> NfsConnection:
        conn = NfsConnection(self._timeout_ns, self.max_message_size)
        self._tcp_open[tcptuple.conn_id] = conn
        return conn

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def handle(self, conn: NfsConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        _handle(self, conn, tcptuple, direction, msgs)

    def close(self, conn: NfsConnection, tcptuple: TcpTuple, ts: int) -> None:
        self._tcp_open.pop(tcptuple.conn_id, None)
        for parser in conn.parsers:
            self.dropped_bytes += parser.dropped_bytes
            self.lost_messages += parser.lost_messages
            self.skipped_bytes += parser.skipped_bytes
            parser.dropped_bytes = parser.lost_messages = parser.skipped_bytes = 0
        for pending, _ in conn.correlator.flush():
            self._alone(pending, NOTE_NO_RESPONSE)

    # ------------------------------------------------------------------ UDP
    def parse_udp(self, pkt: Packet) -> None:
        """One datagram, one RPC message; bytes that are not ONC-RPC raise
        :class:`ParseError` (the UDP layer counts it)."""
        data = pkt.payload              # decoded in place: a message keeps copies of what it needs
        try:
            msg = decode_message(data, pkt.ts, len(data))
        except ParseError:
            self.parse_errors += 1
            raise
        tup = pkt.tuple
        udp = self._udp
        if msg.is_call:
            if not published(msg):
                self._count_ignored(msg)
            for old, _ in udp.add_request(udp_key(tup, msg.xid, True), PendingCall(msg, tup)):
                self._alone(old, NOTE_NO_RESPONSE)
            return
        pending = udp.take(udp_key(tup, msg.xid, False))
        if pending is None:
            self.unmatched_responses += 1
            self.emit(to_event(None, msg, tup.reverse(), UDP))
        elif published(pending.msg):
            self.emit(to_event(pending.msg, msg, pending.tuple, UDP))

    def expire(self, now: int) -> None:
        """Publish the calls older than the transaction timeout (UDP, and
        TCP connections that carried no payload since)."""
        for pending, _ in self._udp.expire(now):
            self._alone(pending, NOTE_TIMEOUT)
        if now >= self._next_sweep and self._tcp_open:
            self._next_sweep = now + TCP_SWEEP_EVERY_NS
            for conn in list(self._tcp_open.values()):
                if conn.correlator.pending:
                    for pending, _ in conn.correlator.expire(now):
                        self._alone(pending, NOTE_TIMEOUT)

    def flush_all(self, now: int) -> None:
        for pending, _ in self._udp.flush():
            self._alone(pending, NOTE_NO_RESPONSE)

    # ------------------------------------------------------------------ common
    def _alone(self, pending: PendingCall, note: str) -> None:
        """A call that will get no reply: published (NO_REPLY) when it is NFS."""
        msg = pending.msg
        if not published(msg):
            return
        self.unmatched_requests += 1
        tup = pending.tuple
        transport = tup[0] if isinstance(tup, IpPortTuple) else TCP
        if any(n.startswith("Unmatched") for n in msg.notes):
            note = None
        self.emit(to_event(msg, None, tup, transport, [note] if note else None))

    def _count_ignored(self, msg: RpcMessage) -> None:
        if msg.prog != NFS_PROGRAM:
            self.other_programs += 1
        else:
            self.malformed += 1


def _parse(plugin: NfsPlugin, pkt: Packet, tcptuple: TcpTuple, direction: int, state) -> NfsConnection:
    """TcpAnalyser.parse with the typed handler (glue.feed_segment feeds the
    parser), then the timeout of waiting calls (compiled: C-level, plugin.pxd)."""
    conn = state if state is not None else plugin.new_connection(tcptuple)
    msgs = feed_segment(plugin, conn.parsers[direction], pkt)
    if msgs:
        _handle(plugin, conn, tcptuple, direction, msgs)
    corr = conn.correlator
    if corr.pending:
        # the oldest waiting call decides whether anything expired
        if next(iter(corr.pending.values())).ts <= pkt.ts - corr.timeout_ns:
            for pending, _ in corr.expire(pkt.ts):
                plugin._alone(pending, NOTE_TIMEOUT)
    return conn


def _handle(plugin: NfsPlugin, conn: NfsConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
    """The messages of one TCP segment (compiled: typed, C-level calls, plugin.pxd)."""
    corr = conn.correlator
    emit = plugin.emit
    for msg in msgs:
        if msg.is_call:
            if not published(msg):
                plugin._count_ignored(msg)
            for old, _ in corr.add_request((direction, msg.xid),
                                           PendingCall(msg, _oriented(tcptuple, direction))):
                plugin._alone(old, NOTE_NO_RESPONSE)
            continue
        pending = corr.pending.pop((1 - direction, msg.xid), None)     # KeyedCorrelator.take
        if pending is None:
            plugin.unmatched_responses += 1
            emit(to_event(None, msg, _oriented(tcptuple, 1 - direction), TCP))
        elif published(pending.msg):
            emit(to_event(pending.msg, msg, pending.tuple, TCP))
