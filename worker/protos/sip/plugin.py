"""SIP plugin: UDP and TCP callbacks glued to the parser, the transaction
counters and the event builder (Packetbeat 8's ``sip/plugin.go``: ParseUDP,
Parse, GapInStream, ReceivedFin, Expired).

Every message is published as soon as it is complete, from the side that
sent it (source = sender), as Packetbeat does. Over TCP each connection has
a stream parser per direction (:class:`TcpAnalyser` drives them); a message
that a gap cut short is published with a loss note, and after lost head bytes
the parser finds the next start line (SIP can resynchronise, unlike RESP).
"""
from __future__ import annotations

from worker.plugin import TCP, UDP, DIR_ORIGINAL, Emit, Packet, TcpTuple
from worker.protos.glue import TcpAnalyser
from worker.protos.sip.config import SipConfig
from worker.protos.sip.event import to_event
from worker.protos.sip.parser import MAX_MESSAGE_SIZE, ParseError, SipMessage, SipStreamParser, parse_datagram
from worker.protos.sip.trans import Transactions

_NS = 1_000_000_000


class SipConnection:
    """Per-TCP-connection state: one stream parser per direction."""
    __slots__ = ("parsers",)

    def __init__(self, max_message_size: int):
        self.parsers = (SipStreamParser(max_message_size), SipStreamParser(max_message_size))


class SipPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.UdpPlugin` and :class:`worker.plugin.TcpPlugin`."""
    config_class = SipConfig
    name = "sip"
    transports = ("udp", "tcp")
    parse_error = ParseError

    def __init__(self, config: SipConfig | dict | None, emit: Emit,
                 max_message_size: int = MAX_MESSAGE_SIZE):
        super().__init__(config, emit)
        self.max_message_size = max_message_size
        self._trans = Transactions(int(round(float(self.cfg.transaction_timeout) * _NS)))
        # counters (reported as sip.<name>)
        self.messages = 0               # messages published
        self.udp_parse_errors = 0       # datagrams on a SIP port that were not SIP
        self.resyncs = 0                # TCP: lines skipped where a message should begin
        self.lost_bytes = 0             # TCP: bytes skipped to find a start line again
        self.unanswered_requests = 0    # no final response within transaction_timeout
        self.unmatched_responses = 0    # final response to no request seen
        self.retransmissions = 0        # request seen again while its transaction was open

    # ------------------------------------------------------------------ common
    def _publish(self, tuple_, msgs: list[SipMessage], transport: int) -> None:
        cfg = self.cfg
        emit = self.emit
        trans = self._trans
        for msg in msgs:
            trans.message(msg)
            emit(to_event(msg, cfg, tuple_, transport))
        self.messages += len(msgs)

    def _fold(self) -> None:
        t = self._trans
        self.unanswered_requests = t.unanswered
        self.unmatched_responses = t.unmatched
        self.retransmissions = t.retransmissions

    # ------------------------------------------------------------------ UDP
    def parse_udp(self, pkt: Packet) -> None:
        """One datagram: its messages (usually one). Bytes that are not SIP
        raise :class:`ParseError` (the UDP layer counts it); nothing is
        published for them, as Packetbeat."""
        try:
            msgs = parse_datagram(pkt.payload, pkt.ts)
        except ParseError:
            self.udp_parse_errors += 1
            raise
        if msgs:
            self._publish(pkt.tuple, msgs, UDP)

    def expire(self, now: int) -> None:
        self._trans.expire(now)
        self._fold()

    def flush_all(self, now: int) -> None:
        self._trans.flush()
        self._fold()

    # ------------------------------------------------------------------ TCP hooks
    def new_connection(self, tcptuple: TcpTuple) -> SipConnection:
        return SipConnection(self.max_message_size)

    def handle(self, conn: SipConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        tuple_ = tcptuple.ip_port()
        if direction != DIR_ORIGINAL:
            tuple_ = tuple_.reverse()
        self._publish(tuple_, msgs, TCP)

    def close(self, conn: SipConnection, tcptuple: TcpTuple, ts: int) -> None:
        # the messages were published as they completed; only the parsers'
        # counters are left to collect
        for parser in conn.parsers:
            self.resyncs += parser.bad_starts
            self.lost_bytes += parser.lost_bytes
            parser.bad_starts = parser.lost_bytes = 0

    def note_loss(self, conn, direction: int) -> None:
        # never called: SipStreamParser.on_gap always goes on (a message cut
        # by the gap carries its own note)
        return None
