"""DNS plugin: UDP and TCP callbacks glued to the decoder, the correlator and
the event builder (Packetbeat's ``dns.go``, ``dns_udp.go``, ``dns_tcp.go``).

One correlator serves both transports. Over TCP each connection keeps a
stream parser per direction, the last query not yet answered (to note a
response that cannot be decoded on it, as Packetbeat's
``publishResponseError``), and the keys of its open queries, published as
unanswered when the TCP layer forgets the connection.
"""
from __future__ import annotations

from worker.protos.glue import config_of
from worker.plugin import DIR_REVERSE, Emit, Packet, TcpTuple
from worker.protos.dns.config import DnsConfig
from worker.protos.dns.event import to_event
from worker.protos.dns.parser import INCOMPLETE, QR, DnsMessage, DnsStreamParser, ParseError, decode_message
from worker.protos.dns.publicsuffix import PublicSuffixList
from worker.protos.dns.trans import NO_RESPONSE, Correlator, Transaction

MAX_CONN_PENDING = 4096     # open query keys remembered per TCP connection


class DnsConnection:
    __slots__ = ("parsers", "prev_request", "pending")

    def __init__(self) -> None:
        self.parsers = (DnsStreamParser(), DnsStreamParser())
        self.prev_request: tuple | None = None      # key of the last query not yet answered
        self.pending: dict[tuple, None] = {}         # keys of this connection's open queries


class DnsPlugin:
    """Satisfies :class:`worker.plugin.UdpPlugin` and :class:`worker.plugin.TcpPlugin`."""
    config_class = DnsConfig
    transports = ("udp", "tcp")

    def __init__(self, config: DnsConfig | dict | None, emit: Emit,
                 suffixes: PublicSuffixList | None = None):
        config = config_of(DnsConfig, config, "dns")
        self.cfg = config
        self.emit = emit
        self.psl = suffixes if suffixes is not None else PublicSuffixList.load()
        self.correlator = Correlator(int(round(float(config.transaction_timeout) * 1e9)))
        self.parse_errors = 0       # messages that could not be decoded (UDP and TCP)

    # ----------------------------------------------------------------- common

    def ports(self) -> list[int]:
        return list(self.cfg.ports)

    def _publish(self, trans: Transaction) -> None:
        self.emit(to_event(trans, self.cfg, self.psl))

    def _message(self, tuple_, msg: DnsMessage) -> tuple | None:
        """Correlate one message; return the key of the query it opened."""
        return _message(self, tuple_, msg)

    # -------------------------------------------------------------------- UDP

    def parse_udp(self, pkt: Packet) -> None:
        """One datagram, one message. Bytes that are not DNS raise
        :class:`ParseError` (the UDP layer counts it); nothing is published
        for them, as Packetbeat."""
        _parse_udp(self, pkt)

    def expire(self, now: int) -> None:
        for trans in self.correlator.expire(now):
            self._publish(trans)

    def flush_all(self, now: int) -> None:
        for trans in self.correlator.drain():
            self._publish(trans)

    # -------------------------------------------------------------------- TCP

    def connection_timeout(self) -> float:
        return float(self.cfg.transaction_timeout)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        conn = state if state is not None else DnsConnection()
        try:
            msgs = conn.parsers[direction].feed(pkt.payload, pkt.ts)
        except ParseError as exc:
            # as Packetbeat: forget this direction's bytes and start afresh
            self.parse_errors += 1
            self._tcp_messages(conn, pkt.tuple, exc.messages)
            if direction == DIR_REVERSE:
                self._response_error(conn, exc.note)
            return conn
        if msgs:
            self._tcp_messages(conn, pkt.tuple, msgs)
        return conn

    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        if state is None:
            return None
        parser = state.parsers[direction]
        if parser.pending():
            parser.reset()
            if direction == DIR_REVERSE:
                self._response_error(state, INCOMPLETE)
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None:
            return None, False
        parser = state.parsers[direction]
        if not parser.pending():
            return state, False         # the gap fell between messages: framing holds
        # part of a message is lost; what follows cannot be framed
        parser.reset()
        if direction == DIR_REVERSE:
            self._response_error(state, INCOMPLETE)
        # Queries still open stay in the correlator: an answer may yet be
        # read, else they expire (the TCP layer now drops this state).
        return None, True

    def flush(self, tcptuple: TcpTuple, state, ts: int) -> None:
        """The connection is forgotten: its open queries will not be answered."""
        if state is None:
            return
        take = self.correlator.take
        for key in state.pending:
            trans = take(key)
            if trans is not None:
                trans.notes.append(NO_RESPONSE)
                self.correlator.unmatched_requests += 1
                self._publish(trans)
        state.pending.clear()
        state.prev_request = None

    def _tcp_messages(self, conn: DnsConnection, tuple_, msgs: list[DnsMessage]) -> None:
        for msg in msgs:
            key = _message(self, tuple_, msg)
            if key is not None:
                conn.prev_request = key
                pending = conn.pending
                pending[key] = None
                if len(pending) > MAX_CONN_PENDING:
                    del pending[next(iter(pending))]
            else:
                conn.prev_request = None
                t, sip, sport, dip, dport = tuple_
                conn.pending.pop((t, dip, dport, sip, sport, msg.id), None)

    def _response_error(self, conn: DnsConnection, note: str) -> None:
        """The response to the connection's last query could not be read:
        publish that query with the reason."""
        key = conn.prev_request
        conn.prev_request = None
        if key is None:
            return
        trans = self.correlator.take(key)
        if trans is None:
            return
        conn.pending.pop(key, None)
        trans.notes.append("Response: " + note)
        self._publish(trans)


def _parse_udp(plugin: DnsPlugin, pkt: Packet) -> None:
    payload = pkt.payload
    # the UDP layer's payload is a view of a whole bytes object: that object, not a copy
    obj = payload.obj if type(payload) is memoryview else None
    data = obj if type(obj) is bytes and len(obj) == len(payload) else bytes(payload)
    try:
        msg = decode_message(data, pkt.ts, len(data))
    except ParseError:
        plugin.parse_errors += 1
        raise
    _message(plugin, pkt.tuple, msg)


def _message(plugin: DnsPlugin, tuple_, msg: DnsMessage) -> tuple | None:
    """Correlate one message; return the key of the query it opened."""
    corr = plugin.correlator
    emit = plugin.emit
    cfg = plugin.cfg
    psl = plugin.psl
    if not msg.bits & QR:
        for done in corr.request(tuple_, msg):
            emit(to_event(done, cfg, psl))
        t, sip, sport, dip, dport = tuple_     # unpacked: cheaper than (*tuple_, id) compiled
        return (t, sip, sport, dip, dport, msg.id)
    emit(to_event(corr.response(tuple_, msg), cfg, psl))
    return None
