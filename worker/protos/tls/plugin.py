"""TLS plugin: TCP callbacks around the record parser, the per-connection
handshake state and the event builder (Packetbeat's ``tls.go``: Parse,
ReceivedFin, GapInStream).

One event per TCP connection, published when the handshake ends (both sides
finished), else when the connection closes (both FINs or a RST), at a gap, the
connection's idle timeout or the end of the capture (``status: Error``,
``tls.established: false``) - and only when something of TLS was seen (a
hello, an alert or a certificate), so a stream that is not TLS on a TLS port
publishes nothing. After the event the connection's bytes are encrypted
application data, or follow a gap: they are not parsed.
"""
from __future__ import annotations

from worker.plugin import Emit, Packet, TcpTuple
from worker.protos.glue import LOSS_NOTES, TcpAnalyser
from worker.protos.tls.config import TlsConfig
from worker.protos.tls.event import to_event
from worker.protos.tls.parser import MAX_HANDSHAKE_SIZE, ParseError
from worker.protos.tls.trans import TlsConnection

# a connection that keeps sending bytes that are not TLS records, and no TLS,
# is given up after this many resynchronisations (a non-TLS protocol on a TLS
# port); a STARTTLS conversation (a few clear-text lines, then the handshake
# at a segment boundary) stays well below it
MAX_RESYNCS = 32


class TlsPlugin(TcpAnalyser):
    """Satisfies :class:`worker.plugin.TcpPlugin`."""
    config_class = TlsConfig
    name = "tls"
    transports = ("tcp",)
    parse_error = ParseError

    def __init__(self, config: TlsConfig | dict | None, emit: Emit,
                 max_handshake_size: int = MAX_HANDSHAKE_SIZE):
        super().__init__(config, emit)
        self.max_handshake_size = max_handshake_size
        # counters, reported as tls.<name> by the worker
        self.handshakes = 0           # events published
        self.established = 0          # ... of which established
        self.malformed_messages = 0   # handshake bodies that did not parse
        self.not_tls = 0              # connections given up: not TLS

    # --- hooks -------------------------------------------------------------
    def new_connection(self, tcptuple: TcpTuple) -> TlsConnection:
        return TlsConnection(self.max_handshake_size)

    def parse(self, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
        return _parse(self, pkt, tcptuple, direction, state)

    def handle(self, conn: TlsConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
        _handle(self, conn, tcptuple, direction, msgs)

    def close(self, conn: TlsConnection, tcptuple: TcpTuple, ts: int) -> None:
        self._publish(conn, tcptuple, [])

    # --- TcpPlugin -------------------------------------------------------
    def received_fin(self, tcptuple: TcpTuple, direction: int, state):
        # Packetbeat publishes at the first FIN; here the connection's close
        # (both FINs, RST, idle timeout, end of capture) does, so that what the
        # other side still sends (an alert, data held behind a lost segment)
        # is in the event.
        return state

    def gap_in_stream(self, tcptuple: TcpTuple, direction: int, nbytes: int, state):
        if state is None:
            return None, False
        if state.sent or state.sides[direction].done:
            return state, False          # inside encrypted data: nothing lost that is parsed
        if state.parsers[direction].on_gap(nbytes):
            return state, False
        self.gap_drops += 1
        client = state.client_direction()
        self._publish(state, tcptuple, [LOSS_NOTES[0 if direction == client else 1]])
        # the state stays, published: what follows the gap is not parsed (a
        # fresh state would take the rest of the handshake for a second one)
        return state, False

    def _publish(self, conn: TlsConnection, tcptuple: TcpTuple, notes: list[str]) -> None:
        if conn.sent:
            return
        conn.sent = True
        self.malformed_messages += conn.malformed
        if not conn.has_info():
            return
        self.handshakes += 1
        self.established += conn.established
        self.emit(to_event(conn, self.cfg, tcptuple, notes))


# The per-segment work as module functions (compiled: C-level calls with the
# connection, its parsers and the messages typed, plugin.pxd).

def _parse(plugin: TlsPlugin, pkt: Packet, tcptuple: TcpTuple, direction: int, state):
    conn = state if state is not None else TlsConnection(plugin.max_handshake_size)
    if conn.sent or conn.sides[direction].done:
        return conn                 # encrypted from here on
    parser = conn.parsers[direction]
    # feed_or_resync, inline
    resynced = False
    try:
        msgs = parser.feed(pkt.payload, pkt.ts)
    except ParseError as e:
        parser.reset()
        msgs = getattr(e, "messages", None) or []
        resynced = True
    if resynced:
        plugin.parse_errors += 1
        conn.resyncs += 1
        if conn.resyncs >= MAX_RESYNCS and not conn.has_info():
            plugin.not_tls += 1
            conn.sent = True        # given up: nothing to publish, nothing more parsed
            return conn
    if msgs:
        _handle(plugin, conn, tcptuple, direction, msgs)
    return conn


def _handle(plugin: TlsPlugin, conn: TlsConnection, tcptuple: TcpTuple, direction: int, msgs: list) -> None:
    for msg in msgs:
        if conn.add(direction, msg):
            plugin._publish(conn, tcptuple, [])
            return
