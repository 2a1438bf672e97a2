"""The handshake of one TCP connection: what each side said, until both sides
have finished (Packetbeat's ``tlsConnectionData``: one "transaction" per
connection).

A side has finished its handshake when it sends ChangeCipherSpec (TLS 1.0-1.2,
and TLS 1.3 in middlebox-compatibility mode, except the one that follows or
answers a HelloRetryRequest) or its first application-data record (TLS 1.3 without ChangeCipherSpec: encrypted handshake records travel
as application data); after that its bytes are encrypted and no longer
parsed. The connection is *established* when both sides have finished. A TLS 1.3
client has finished at its first encrypted record that is not an alert (its
ChangeCipherSpec is a dummy, and a client that rejects the server's
certificate may send ChangeCipherSpec and an encrypted alert): a 19-byte
record (an alert's size under every TLS 1.3 AEAD with a 16-byte tag) ends
the handshake as failed, with a note.

Which direction is the client is read from the messages (the side that sends
a ClientHello, or the other side of a ServerHello), not from the ports.
"""
from __future__ import annotations

from worker.protos.tls import handshake as hs
from worker.protos.tls.parser import (
    ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, TlsMessage, TlsParser,
)

HELLO_REQUEST = 0
CLIENT_HELLO = 1
SERVER_HELLO = 2
NEW_SESSION_TICKET = 4
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
CLIENT_KEY_EXCHANGE = 16
CERTIFICATE_STATUS = 22

ENCRYPTED_ALERT_SIZE = 19       # TLS 1.3: alert (2) + inner content type (1) + AEAD tag (16)
NOTE_ENCRYPTED_ALERT = "encrypted alert from the client during the TLS 1.3 handshake: the handshake failed"


class Side:
    """What one direction said during the handshake."""
    __slots__ = ("hello", "hello2", "hrr", "certs", "cert_requested", "key_exchanged", "alerts",
                 "done", "ocsp", "ske_group", "ticket_lifetime", "saw_ccs")

    def __init__(self) -> None:
        self.hello: hs.Hello | None = None       # first ClientHello / the ServerHello
        self.hello2: hs.Hello | None = None      # the ClientHello answering a HelloRetryRequest
        self.hrr: hs.Hello | None = None         # a HelloRetryRequest
        self.certs: list[bytes] = []
        self.cert_requested = False
        self.key_exchanged = False
        self.alerts: list[tuple[int, int]] = []  # (level, code) of clear-text alerts
        self.done = False
        self.saw_ccs = False
        self.ocsp: str | None = None
        self.ske_group: int | None = None
        self.ticket_lifetime: int | None = None

    def has_info(self) -> bool:
        return self.hello is not None or bool(self.alerts) or bool(self.certs)


class TlsConnection:
    __slots__ = ("parsers", "sides", "start_ts", "end_ts", "fatal_ts", "sent", "client_dir", "notes",
                 "malformed", "resyncs")

    def __init__(self, max_handshake_size: int) -> None:
        self.parsers = (TlsParser(max_handshake_size), TlsParser(max_handshake_size))
        self.sides = (Side(), Side())
        self.start_ts: int | None = None
        self.end_ts: int | None = None
        self.fatal_ts: int | None = None
        self.sent = False
        self.client_dir = -1          # unknown until a hello says
        self.notes: list[str] = []
        self.malformed = 0            # handshake bodies that did not parse
        self.resyncs = 0              # buffers dropped after bytes that are not TLS records

    @property
    def established(self) -> bool:
        return self.sides[0].done and self.sides[1].done

    def has_info(self) -> bool:
        return self.sides[0].has_info() or self.sides[1].has_info()

    def client_direction(self) -> int:
        return self.client_dir if self.client_dir >= 0 else 0

    def add(self, direction: int, msg: TlsMessage) -> bool:
        """Take one message of ``direction``; True when the handshake just ended
        (both sides finished)."""
        side = self.sides[direction]
        if side.done:
            return False
        if self.start_ts is None:
            self.start_ts = msg.ts
        kind = msg.kind
        if kind == HANDSHAKE:
            if msg.notes:
                self.notes.extend(msg.notes)
            if not msg.oversize:
                try:
                    self._handshake(direction, side, msg)
                except hs.HelloError as e:
                    self.malformed += 1
                    self.notes.append("malformed handshake message type %d: %s" % (msg.hs_type, e))
        elif kind == CHANGE_CIPHER_SPEC or kind == APPLICATION_DATA:
            if kind == CHANGE_CIPHER_SPEC and self._retrying():
                return False          # TLS 1.3 compatibility CCS around a HelloRetryRequest
            if direction == self.client_dir and self._tls13():
                # TLS 1.3 client: its ChangeCipherSpec is a compatibility dummy; its
                # first encrypted record is its Finished (or Certificate), unless it
                # is an alert: 2 bytes + content type + a 16-byte AEAD tag
                if kind == CHANGE_CIPHER_SPEC:
                    side.saw_ccs = True
                    return False
                if msg.size == ENCRYPTED_ALERT_SIZE:
                    if self.fatal_ts is None:
                        self.fatal_ts = msg.ts
                        self.notes.append(NOTE_ENCRYPTED_ALERT)
                    return False
            side.done = True
            self.parsers[direction].encrypted = True
            side.saw_ccs = side.saw_ccs or kind == CHANGE_CIPHER_SPEC
            if self.established:
                self.end_ts = msg.ts
                return True
        elif kind == ALERT:
            if msg.code >= 0:
                side.alerts.append((msg.level, msg.code))
                if msg.level == 2 and self.fatal_ts is None:
                    self.fatal_ts = msg.ts
        return False

    def _tls13(self) -> bool:
        """The server chose TLS 1.3 (its ServerHello's supported_versions)."""
        if self.client_dir < 0:
            return False
        sh = self.sides[1 - self.client_dir].hello
        if sh is None or sh.is_client:
            return False
        return hs.supported_versions(sh) == [0x0304]

    def _retrying(self) -> bool:
        """A HelloRetryRequest was sent and the real ServerHello not yet."""
        for side in self.sides:
            if side.hrr is not None and side.hello is None:
                return True
        return False

    def _handshake(self, direction: int, side: Side, msg: TlsMessage) -> None:
        t = msg.hs_type
        body = msg.body
        if t == CLIENT_HELLO:
            hello = hs.parse_client_hello(body)
            if self.client_dir < 0:
                self.client_dir = direction
            if side.hello is None:
                side.hello = hello
            elif side.hello2 is None:
                side.hello2 = hello
        elif t == SERVER_HELLO:
            hello = hs.parse_server_hello(body)
            if self.client_dir < 0:
                self.client_dir = 1 - direction
            if hello.hrr:
                side.hrr = hello
            elif side.hello is None:
                side.hello = hello
        elif t == CERTIFICATE:
            if not side.certs:
                side.certs = hs.parse_certificates(body)
        elif t == SERVER_KEY_EXCHANGE:
            side.key_exchanged = True
            side.ske_group = hs.ske_curve(body)
        elif t == CERTIFICATE_REQUEST:
            side.cert_requested = True
        elif t == CLIENT_KEY_EXCHANGE:
            side.key_exchanged = True
        elif t == NEW_SESSION_TICKET:
            side.ticket_lifetime = hs.ticket_lifetime(body)
        elif t == CERTIFICATE_STATUS:
            side.ocsp = hs.ocsp_status(body)
