"""AMQP 0-9-1 parser (https://www.rabbitmq.com/resources/specs/amqp0-9-1.pdf,
RabbitMQ's errata and extensions: exchange.bind/unbind, basic.nack,
confirm.select, connection.blocked/unblocked/update-secret).

Theory of operation
-------------------
One :class:`AmqpParser` reads one direction of a TCP connection. ``feed``
appends bytes and returns every complete message; the rest stays buffered.

Framing: an optional protocol header ``AMQP\\x00\\x00\\x09\\x01`` (8 bytes, at
the start of the client's stream, or the server's answer to a version it does
not speak; a header naming another version, e.g. AMQP 1.0, makes the parser
skip the rest of that direction), then frames: ``type:1 channel:2 size:4 payload:size 0xCE``.
Types: 1 method, 2 content header, 3 content body, 8 heartbeat. Anything else,
or a frame end octet other than 0xCE, is a :class:`ParseError`.

- A method frame is ``class-id:2 method-id:2 arguments``; it is decoded at
  once into the fields Packetbeat 8 reports (``amqp_methods.go``), with
  Packetbeat's names (``queue``, ``no-wait``, ``reply-code``, ...).
- Content-carrying methods (basic.publish, basic.deliver, basic.return,
  basic.get-ok) are followed on their channel by a content header frame
  (``class-id:2 weight:2 body-size:8 property-flags property-list``) and body
  frames until body-size bytes were seen. Frames of other channels may come in
  between: content is assembled per channel, and the message comes out when
  its body is complete (at once when body-size is 0).
- Body frames are streamed, not buffered: only the first ``max_body_length``
  bytes of a body are kept, so a large message costs no memory, and a gap
  inside a body is crossed (``on_gap``). Method and header frames are
  buffered whole, at most ``max_frame_size`` bytes.

Correlation key: the channel. Synchronous methods of a channel are answered
in order by the peer, on the same channel (``trans.py``); each message
carries its ``channel``, ``kind`` (request, async request, response,
content) and ``answers`` (the request method a response answers).

Only :class:`ParseError` is raised; a method whose arguments are truncated
comes out with what could be read and a note.
"""
from __future__ import annotations

import struct

from worker.plugin import ParseError as _BaseParseError
from worker.protos.glue import SegmentParser

FRAME_END = 0xCE
T_METHOD, T_HEADER, T_BODY, T_HEARTBEAT = 1, 2, 3, 8
PROTOCOL_HEADER = b"AMQP"
# protocol id and version octets after "AMQP": 0-9-1, and 0-9 as RabbitMQ still accepts it
_VERSIONS_0_9 = (b"\x00\x00\x09\x01", b"\x01\x01\x00\x09")

# message kinds
REQUEST = 0      # synchronous: the peer answers on the same channel
ASYNC = 1        # no answer expected (basic.ack/nack/reject, ..., or no-wait set)
RESPONSE = 2     # answers a synchronous request
CONTENT = 3      # basic.publish / deliver / return / get-ok, with header and body

MAX_TABLE_DEPTH = 16
MAX_CONTENT_CHANNELS = 4096    # channels with content being assembled at once


NOTE_BAD_ARGS = "Failed to parse method arguments"
NOTE_BAD_TABLE = "Failed to parse additional arguments"
NOTE_BAD_PROPS = "Failed to parse message properties"


class ParseError(_BaseParseError):
    """The bytes are not AMQP 0-9-1 frames. ``messages`` holds the messages
    completed before the error (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class _Short(Exception):
    """Arguments end before a field does (internal)."""


class AmqpMessage:
    """One message (a plain class rather than a dataclass: compiled, it is an
    extension type whose construction costs no Python ``__init__``)."""
    __slots__ = ("ts", "direction", "channel", "class_id", "method_id", "method", "kind", "answers",
                 "size", "notes", "fields", "request", "hidden", "body", "body_size", "body_seen",
                 "has_header")

    def __init__(self, ts, direction, channel=0, class_id=0, method_id=0, method="", kind=REQUEST,
                 answers=(), size=0, notes=None, fields=None, request="", hidden=False, body=b"",
                 body_size=0, body_seen=0, has_header=False):
        self.ts = ts                                # ns, packet where the (method) frame began
        self.direction = direction                  # 0 client -> server, 1 server -> client
        self.channel = channel
        self.class_id = class_id
        self.method_id = method_id
        self.method = method                        # "queue.declare", "basic.publish", ...
        self.kind = kind
        self.answers = answers                      # RESPONSE: (class, method) of the request it answers
        self.size = size                            # method frame bytes on the wire
        self.notes = notes if notes is not None else list()
        self.fields = fields if fields is not None else dict()  # amqp.* as Packetbeat names them
        self.request = request                      # Packetbeat's request detail (queue name, ...)
        self.hidden = hidden                        # hide_connection_information: not published
        self.body = body                            # CONTENT: first max_body_length bytes of the body
        self.body_size = body_size                  # CONTENT: body size the header announced
        self.body_seen = body_seen                  # CONTENT: body bytes seen (lost ones included)
        self.has_header = has_header                # CONTENT: header frame seen

    def __repr__(self) -> str:
        return "AmqpMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def _message(ts, direction, channel, class_id, method_id, method, kind, size) -> AmqpMessage:
    """A method frame's message, as ``AmqpMessage(...)`` makes it (compiled:
    without a Python ``__init__`` call)."""
    m = AmqpMessage.__new__(AmqpMessage)
    m.ts = ts
    m.direction = direction
    m.channel = channel
    m.class_id = class_id
    m.method_id = method_id
    m.method = method
    m.kind = kind
    m.answers = ()
    m.size = size
    m.notes = []
    m.fields = {}
    m.request = ""
    m.hidden = False
    m.body = b""
    m.body_size = 0
    m.body_seen = 0
    m.has_header = False
    return m


# --- argument readers -------------------------------------------------------

# The readers below take the frame's argument bytes as a bytearray (a slice of
# the direction's buffer); compiled (parser.pxd) they index it as C integers.

def _shortstr(d: bytearray, o: int) -> tuple[str, int]:
    if o >= len(d):
        raise _Short()
    e = o + 1 + d[o]
    if e > len(d):
        raise _Short()
    return d[o + 1:e].decode("utf-8", "replace"), e


def _longstr(d: bytearray, o: int) -> tuple[str, int]:
    e = o + 4 + _u32(d, o)
    if e > len(d):
        raise _Short()
    return d[o + 4:e].decode("utf-8", "replace"), e


def _u8(d: bytearray, o: int) -> int:
    if o < 0 or o >= len(d):
        raise _Short()
    return d[o]


def _u16(d: bytearray, o: int) -> int:
    if o < 0 or o + 2 > len(d):
        raise _Short()
    b0 = d[o]
    b1 = d[o + 1]
    return (b0 << 8) | b1


def _u32(d: bytearray, o: int) -> int:
    if o < 0 or o + 4 > len(d):
        raise _Short()
    b0 = d[o]
    b1 = d[o + 1]
    b2 = d[o + 2]
    b3 = d[o + 3]
    return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3


def _u64(d: bytearray, o: int) -> int:
    if o < 0 or o + 8 > len(d):
        raise _Short()
    hi = _u32(d, o)
    lo = _u32(d, o + 4)
    return (hi << 32) | lo


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def amqp_time(sec: int) -> str:
    """A timestamp in Packetbeat's layout ``January _2 15:04:05 2006`` (UTC)."""
    import time
    try:
        t = time.gmtime(sec)
    except (OverflowError, OSError, ValueError):
        return str(sec)
    return "%s %2d %02d:%02d:%02d %d" % (_MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min,
                                         t.tm_sec, t.tm_year)


def _decimal(scale: int, value: int) -> str:
    s = str(value)
    if 0 < scale <= len(s):
        return s[:len(s) - scale] + "." + s[len(s) - scale:]
    return s


_FIXED = {
    0x62: (struct.Struct(">b"), 1),   # b short-short-int
    0x42: (struct.Struct(">B"), 1),   # B short-short-uint
    0x55: (struct.Struct(">h"), 2),   # U short-int
    0x73: (struct.Struct(">h"), 2),   # s short-int, as RabbitMQ and its clients use it (0-9-1 errata)
    0x75: (struct.Struct(">H"), 2),   # u short-uint
    0x49: (struct.Struct(">i"), 4),   # I long-int
    0x69: (struct.Struct(">I"), 4),   # i long-uint
    0x4C: (struct.Struct(">q"), 8),   # L long-long-int
    0x6C: (struct.Struct(">q"), 8),   # l long-long (signed in RabbitMQ's errata)
    0x66: (struct.Struct(">f"), 4),   # f float
    0x64: (struct.Struct(">d"), 8),   # d double
}


def _value(d: bytes, o: int, end: int, depth: int):
    """One typed field value at ``o`` (its type octet); (value, next offset)."""
    if o >= end:
        raise _Short()
    t = d[o]
    o += 1
    fx = _FIXED.get(t)
    if fx is not None:
        st, n = fx
        if o + n > end:
            raise _Short()
        v = st.unpack_from(d, o)[0]
        if t == 0x66 or t == 0x64:
            v = float(v)
            if v != v or v in (float("inf"), float("-inf")):
                v = str(v)          # not JSON
        return v, o + n
    if t == 0x74:                    # t boolean
        if o >= end:
            raise _Short()
        return d[o] == 1, o + 1
    if t == 0x53:                    # S long string
        if o + 4 > end:
            raise _Short()
        e = o + 4 + _u32(d, o)
        if e > end:
            raise _Short()
        return d[o + 4:e].decode("utf-8", "replace"), e
    if t == 0x44:                    # D decimal: scale octet, long-uint value
        if o + 5 > end:
            raise _Short()
        return _decimal(d[o], _u32(d, o + 1)), o + 5
    if t == 0x54:                    # T timestamp (seconds)
        if o + 8 > end:
            raise _Short()
        return amqp_time(_u64(d, o)), o + 8
    if t == 0x46:                    # F nested table
        out: dict = {}
        return out, _table_into(out, d, o, end, depth + 1)
    if t == 0x41:                    # A array: {"0": v, "1": v, ...} as Packetbeat
        if depth >= MAX_TABLE_DEPTH or o + 4 > end:
            raise _Short()
        e = o + 4 + _u32(d, o)
        if e > end:
            raise _Short()
        arr: dict = {}
        o += 4
        i = 0
        while o < e:
            arr[str(i)], o = _value(d, o, e, depth + 1)
            i += 1
        return arr, e
    if t == 0x56:                    # V void
        return None, o
    if t == 0x78:                    # x byte array (RabbitMQ): "[1, 2, 3]"
        if o + 4 > end:
            raise _Short()
        e = o + 4 + _u32(d, o)
        if e > end:
            raise _Short()
        return "[" + ", ".join([str(c) for c in d[o + 4:e]]) + "]", e
    raise _Short()


def _table_into(out: dict, d: bytes, o: int, end: int, depth: int = 0) -> int:
    """Read the field table at ``o`` (its 4-byte size) into ``out``; the offset after it."""
    if depth >= MAX_TABLE_DEPTH or o + 4 > end:
        raise _Short()
    e = o + 4 + _u32(d, o)
    if e > end:
        raise _Short()
    o += 4
    while o < e:
        n = d[o]
        ko = o + 1 + n
        if ko > e:
            raise _Short()
        key = d[o + 1:ko].decode("utf-8", "replace")
        out[key], o = _value(d, ko, e, depth)
    return e


def _bits(d: bytearray, o: int) -> int:
    if o < 0 or o >= len(d):
        raise _Short()
    return d[o]


def _arguments(m: AmqpMessage, d: bytes, o: int, parse: bool) -> None:
    """The optional ``arguments`` table that ends declare/bind/consume methods."""
    if not parse or o + 4 > len(d):
        return
    args: dict = {}
    try:
        _table_into(args, d, o, len(d))
    except _Short:
        m.notes.append(NOTE_BAD_TABLE)
        return
    if args:
        m.fields["arguments"] = args


# --- method decoders: fill m.fields / m.request; raise _Short on truncation ---

def _connection_start(m, d, pa):
    f = m.fields
    f["version-major"] = _u8(d, 0)
    f["version-minor"] = _u8(d, 1)
    props: dict = {}
    o = _table_into(props, d, 2, len(d))
    f["mechanisms"], o = _longstr(d, o)
    f["locales"], o = _longstr(d, o)
    if props:
        f["server-properties"] = props


def _connection_start_ok(m, d, pa):
    props: dict = {}
    o = _table_into(props, d, 0, len(d))
    f = m.fields
    f["mechanism"], o = _shortstr(d, o)
    _, o = _longstr(d, o)                     # the SASL response (credentials): never kept
    f["locale"], o = _shortstr(d, o)
    if props:
        f["client-properties"] = props


def _connection_tune_ok(m, d, pa):
    f = m.fields
    f["channel-max"] = _u16(d, 0)
    f["frame-max"] = _u32(d, 2)
    f["heartbeat"] = _u16(d, 6)


def _connection_open(m, d, pa):
    m.fields["virtual-host"], _ = _shortstr(d, 0)


def _close(m, d, pa):
    f = m.fields
    f["reply-code"] = _u16(d, 0)
    f["reply-text"], o = _shortstr(d, 2)
    f["class-id"] = _u16(d, o)
    f["method-id"] = _u16(d, o + 2)


def _reason(m, d, pa):
    m.fields["reason"], _ = _shortstr(d, 0)


def _update_secret(m, d, pa):
    _, o = _longstr(d, 0)                     # the new secret: never kept
    m.fields["reason"], _ = _shortstr(d, o)


def _channel_flow_ok(m, d, pa):
    m.fields["active"] = bool(_bits(d, 0) & 1)


def _queue_declare(m, d, pa):
    name, o = _shortstr(d, 2)
    m.request = name
    b = _bits(d, o)
    f = m.fields
    f["queue"] = name
    f["passive"] = bool(b & 1)
    f["durable"] = bool(b & 2)
    f["exclusive"] = bool(b & 4)
    f["auto-delete"] = bool(b & 8)
    f["no-wait"] = bool(b & 16)
    _arguments(m, d, o + 1, pa)


def _queue_declare_ok(m, d, pa):
    name, o = _shortstr(d, 0)
    f = m.fields
    f["queue"] = name
    f["message-count"] = _u32(d, o)
    f["consumer-count"] = _u32(d, o + 4)


def _queue_bind(m, d, pa):
    queue, o = _shortstr(d, 2)
    exchange, o = _shortstr(d, o)
    key, o = _shortstr(d, o)
    b = _bits(d, o)
    m.request = queue + " " + exchange
    f = m.fields
    f["queue"] = queue
    f["routing-key"] = key
    f["no-wait"] = bool(b & 1)
    if exchange:
        f["exchange"] = exchange
    _arguments(m, d, o + 1, pa)


def _queue_unbind(m, d, pa):
    queue, o = _shortstr(d, 2)
    exchange, o = _shortstr(d, o)
    key, o = _shortstr(d, o)
    m.request = queue + " " + exchange
    f = m.fields
    f["queue"] = queue
    f["routing-key"] = key
    if exchange:
        f["exchange"] = exchange
    _arguments(m, d, o, pa)


def _queue_purge(m, d, pa):
    queue, o = _shortstr(d, 2)
    b = _bits(d, o)
    m.request = queue
    m.fields["queue"] = queue
    m.fields["no-wait"] = bool(b & 1)


def _message_count(m, d, pa):
    m.fields["message-count"] = _u32(d, 0)


def _queue_delete(m, d, pa):
    queue, o = _shortstr(d, 2)
    b = _bits(d, o)
    m.request = queue
    f = m.fields
    f["queue"] = queue
    f["if-unused"] = bool(b & 1)
    f["if-empty"] = bool(b & 2)
    f["no-wait"] = bool(b & 4)


def _exchange_declare(m, d, pa):
    exchange, o = _shortstr(d, 2)
    etype, o = _shortstr(d, o)
    b = _bits(d, o)
    m.request = exchange
    f = m.fields
    f["exchange"] = exchange
    f["exchange-type"] = etype or "direct"
    f["passive"] = bool(b & 1)
    f["durable"] = bool(b & 2)
    f["no-wait"] = bool(b & 16)
    _arguments(m, d, o + 1, pa)


def _exchange_delete(m, d, pa):
    exchange, o = _shortstr(d, 2)
    b = _bits(d, o)
    m.request = exchange
    f = m.fields
    f["exchange"] = exchange
    f["if-unused"] = bool(b & 1)
    f["no-wait"] = bool(b & 2)


def _exchange_bind(m, d, pa):
    dest, o = _shortstr(d, 2)
    source, o = _shortstr(d, o)
    key, o = _shortstr(d, o)
    b = _bits(d, o)
    m.request = source + " " + dest
    f = m.fields
    f["destination"] = dest
    f["source"] = source
    f["routing-key"] = key
    f["no-wait"] = bool(b & 1)
    _arguments(m, d, o + 1, pa)


def _basic_qos(m, d, pa):
    f = m.fields
    f["prefetch-size"] = _u32(d, 0)
    f["prefetch-count"] = _u16(d, 4)
    f["global"] = bool(_bits(d, 6) & 1)


def _basic_consume(m, d, pa):
    queue, o = _shortstr(d, 2)
    tag, o = _shortstr(d, o)
    b = _bits(d, o)
    m.request = queue
    f = m.fields
    f["queue"] = queue
    f["consumer-tag"] = tag
    f["no-local"] = bool(b & 1)
    f["no-ack"] = bool(b & 2)
    f["exclusive"] = bool(b & 4)
    f["no-wait"] = bool(b & 8)
    _arguments(m, d, o + 1, pa)


def _consumer_tag(m, d, pa):
    m.fields["consumer-tag"], _ = _shortstr(d, 0)


def _basic_cancel(m, d, pa):
    tag, o = _shortstr(d, 0)
    m.request = tag
    m.fields["consumer-tag"] = tag
    m.fields["no-wait"] = bool(_bits(d, o) & 1)


def _basic_publish(m, d, pa):
    exchange, o = _shortstr(d, 2)
    key, o = _shortstr(d, o)
    b = _bits(d, o)
    f = m.fields
    f["routing-key"] = key
    f["mandatory"] = bool(b & 1)
    f["immediate"] = bool(b & 2)
    if exchange:
        f["exchange"] = exchange


def _basic_return(m, d, pa):
    f = m.fields
    f["reply-code"] = _u16(d, 0)
    f["reply-text"], o = _shortstr(d, 2)
    f["exchange"], o = _shortstr(d, o)
    f["routing-key"], o = _shortstr(d, o)


def _basic_deliver(m, d, pa):
    tag, o = _shortstr(d, 0)
    f = m.fields
    f["consumer-tag"] = tag
    f["delivery-tag"] = _u64(d, o)
    f["redelivered"] = bool(_bits(d, o + 8) & 1)
    exchange, o = _shortstr(d, o + 9)
    f["routing-key"], o = _shortstr(d, o)
    if exchange:
        f["exchange"] = exchange


def _basic_get(m, d, pa):
    queue, o = _shortstr(d, 2)
    m.request = queue
    m.fields["queue"] = queue
    m.fields["no-ack"] = bool(_bits(d, o) & 1)


def _basic_get_ok(m, d, pa):
    f = m.fields
    f["delivery-tag"] = _u64(d, 0)
    f["redelivered"] = bool(_bits(d, 8) & 1)
    exchange, o = _shortstr(d, 9)
    f["routing-key"], o = _shortstr(d, o)
    f["message-count"] = _u32(d, o)
    if exchange:
        f["exchange"] = exchange


def _basic_ack(m, d, pa):
    m.fields["delivery-tag"] = _u64(d, 0)
    m.fields["multiple"] = bool(_bits(d, 8) & 1)


def _basic_nack(m, d, pa):
    b = _bits(d, 8)
    f = m.fields
    f["delivery-tag"] = _u64(d, 0)
    f["multiple"] = bool(b & 1)
    f["requeue"] = bool(b & 2)


def _basic_reject(m, d, pa):
    tag = _u64(d, 0)
    # Packetbeat reports the requeue bit of basic.reject as "multiple"
    m.fields["delivery-tag"] = tag
    m.fields["multiple"] = bool(_bits(d, 8) & 1)
    m.request = str(tag)


def _requeue(m, d, pa):
    m.fields["requeue"] = bool(_bits(d, 0) & 1)


def _confirm_select(m, d, pa):
    m.fields["no-wait"] = bool(_bits(d, 0) & 1)


def _nothing(m, d, pa):
    return None


# (class, method) -> (name, kind, decoder, connection information?)
# The kind of a response is RESPONSE; it answers (class, method - 1) unless
# listed in _ANSWERS.
C_CONNECTION, C_CHANNEL, C_EXCHANGE, C_QUEUE, C_BASIC, C_CONFIRM, C_TX = 10, 20, 40, 50, 60, 85, 90
METHODS: dict[tuple[int, int], tuple[str, int, object, bool]] = {
    (10, 10): ("connection.start", REQUEST, _connection_start, True),
    (10, 11): ("connection.start-ok", RESPONSE, _connection_start_ok, True),
    (10, 20): ("connection.secure", REQUEST, _nothing, True),
    (10, 21): ("connection.secure-ok", RESPONSE, _nothing, True),
    (10, 30): ("connection.tune", REQUEST, _nothing, True),
    (10, 31): ("connection.tune-ok", RESPONSE, _connection_tune_ok, True),
    (10, 40): ("connection.open", REQUEST, _connection_open, True),
    (10, 41): ("connection.open-ok", RESPONSE, _nothing, True),
    (10, 50): ("connection.close", REQUEST, _close, False),
    (10, 51): ("connection.close-ok", RESPONSE, _nothing, False),
    (10, 60): ("connection.blocked", ASYNC, _reason, True),
    (10, 61): ("connection.unblocked", ASYNC, _nothing, True),
    (10, 70): ("connection.update-secret", REQUEST, _update_secret, True),
    (10, 71): ("connection.update-secret-ok", RESPONSE, _nothing, True),
    (20, 10): ("channel.open", REQUEST, _nothing, True),
    (20, 11): ("channel.open-ok", RESPONSE, _nothing, True),
    (20, 20): ("channel.flow", REQUEST, _nothing, True),
    (20, 21): ("channel.flow-ok", RESPONSE, _channel_flow_ok, True),
    (20, 40): ("channel.close", REQUEST, _close, False),
    (20, 41): ("channel.close-ok", RESPONSE, _nothing, False),
    (40, 10): ("exchange.declare", REQUEST, _exchange_declare, False),
    (40, 11): ("exchange.declare-ok", RESPONSE, _nothing, False),
    (40, 20): ("exchange.delete", REQUEST, _exchange_delete, False),
    (40, 21): ("exchange.delete-ok", RESPONSE, _nothing, False),
    (40, 30): ("exchange.bind", REQUEST, _exchange_bind, False),
    (40, 31): ("exchange.bind-ok", RESPONSE, _nothing, False),
    (40, 40): ("exchange.unbind", REQUEST, _exchange_bind, False),
    (40, 51): ("exchange.unbind-ok", RESPONSE, _nothing, False),
    (50, 10): ("queue.declare", REQUEST, _queue_declare, False),
    (50, 11): ("queue.declare-ok", RESPONSE, _queue_declare_ok, False),
    (50, 20): ("queue.bind", REQUEST, _queue_bind, False),
    (50, 21): ("queue.bind-ok", RESPONSE, _nothing, False),
    (50, 30): ("queue.purge", REQUEST, _queue_purge, False),
    (50, 31): ("queue.purge-ok", RESPONSE, _message_count, False),
    (50, 40): ("queue.delete", REQUEST, _queue_delete, False),
    (50, 41): ("queue.delete-ok", RESPONSE, _message_count, False),
    (50, 50): ("queue.unbind", REQUEST, _queue_unbind, False),
    (50, 51): ("queue.unbind-ok", RESPONSE, _nothing, False),
    (60, 10): ("basic.qos", REQUEST, _basic_qos, True),
    (60, 11): ("basic.qos-ok", RESPONSE, _nothing, True),
    (60, 20): ("basic.consume", REQUEST, _basic_consume, False),
    (60, 21): ("basic.consume-ok", RESPONSE, _consumer_tag, False),
    (60, 30): ("basic.cancel", REQUEST, _basic_cancel, False),
    (60, 31): ("basic.cancel-ok", RESPONSE, _consumer_tag, False),
    (60, 40): ("basic.publish", CONTENT, _basic_publish, False),
    (60, 50): ("basic.return", CONTENT, _basic_return, False),
    (60, 60): ("basic.deliver", CONTENT, _basic_deliver, False),
    (60, 70): ("basic.get", REQUEST, _basic_get, False),
    (60, 71): ("basic.get-ok", CONTENT, _basic_get_ok, False),
    (60, 72): ("basic.get-empty", RESPONSE, _nothing, False),
    (60, 80): ("basic.ack", ASYNC, _basic_ack, False),
    (60, 90): ("basic.reject", ASYNC, _basic_reject, False),
    (60, 100): ("basic.recover-async", ASYNC, _requeue, False),
    (60, 110): ("basic.recover", REQUEST, _requeue, False),
    (60, 111): ("basic.recover-ok", RESPONSE, _nothing, False),
    (60, 120): ("basic.nack", ASYNC, _basic_nack, False),
    (85, 10): ("confirm.select", REQUEST, _confirm_select, False),
    (85, 11): ("confirm.select-ok", RESPONSE, _nothing, False),
    (90, 10): ("tx.select", REQUEST, _nothing, False),
    (90, 11): ("tx.select-ok", RESPONSE, _nothing, False),
    (90, 20): ("tx.commit", REQUEST, _nothing, False),
    (90, 21): ("tx.commit-ok", RESPONSE, _nothing, False),
    (90, 30): ("tx.rollback", REQUEST, _nothing, False),
    (90, 31): ("tx.rollback-ok", RESPONSE, _nothing, False),
}
_ANSWERS = {(40, 51): (40, 40), (60, 72): (60, 70), (60, 71): (60, 70)}
_BY_CODE = {(c << 16) | mid: spec for (c, mid), spec in METHODS.items()}   # METHODS by class << 16 | method


def _answers(class_id: int, method_id: int) -> tuple:
    """(class, method) of the request a response answers."""
    return _ANSWERS.get((class_id, method_id), (class_id, method_id - 1))
CLOSES = frozenset(((10, 50), (20, 40)))

# content header property flags (first octet, second octet), Packetbeat's names
_P_CONTENT_TYPE, _P_CONTENT_ENCODING, _P_HEADERS, _P_DELIVERY_MODE = 0x80, 0x40, 0x20, 0x10
_P_PRIORITY, _P_CORRELATION_ID, _P_REPLY_TO, _P_EXPIRATION = 0x08, 0x04, 0x02, 0x01
_P_MESSAGE_ID, _P_TIMESTAMP, _P_TYPE, _P_USER_ID, _P_APP_ID = 0x80, 0x40, 0x20, 0x10, 0x08


def decode_properties(f: dict, d: bytes, o: int) -> None:
    """Content header properties from ``d[o:]`` (property flags first) into ``f``."""
    p1 = _u8(d, o)
    p2 = _u8(d, o + 1)
    flags = (p1 << 8) | p2
    o += 2
    while flags & 1:                      # continuation flag words (none are defined)
        flags = _u16(d, o)
        o += 2
    if p1 & _P_CONTENT_TYPE:
        f["content-type"], o = _shortstr(d, o)
    if p1 & _P_CONTENT_ENCODING:
        f["content-encoding"], o = _shortstr(d, o)
    if p1 & _P_HEADERS:
        headers: dict = {}
        o = _table_into(headers, d, o, len(d))
        if headers:
            f["headers"] = headers
    if p1 & _P_DELIVERY_MODE:
        mode = _u8(d, o)
        if mode == 1:
            f["delivery-mode"] = "non-persistent"
        elif mode == 2:
            f["delivery-mode"] = "persistent"
        o += 1
    if p1 & _P_PRIORITY:
        f["priority"] = _u8(d, o)
        o += 1
    if p1 & _P_CORRELATION_ID:
        f["correlation-id"], o = _shortstr(d, o)
    if p1 & _P_REPLY_TO:
        f["reply-to"], o = _shortstr(d, o)
    if p1 & _P_EXPIRATION:
        f["expiration"], o = _shortstr(d, o)
    if p2 & _P_MESSAGE_ID:
        f["message-id"], o = _shortstr(d, o)
    if p2 & _P_TIMESTAMP:
        f["timestamp"] = amqp_time(_u64(d, o))
        o += 8
    if p2 & _P_TYPE:
        f["type"], o = _shortstr(d, o)
    if p2 & _P_USER_ID:
        f["user-id"], o = _shortstr(d, o)
    if p2 & _P_APP_ID:
        f["app-id"], o = _shortstr(d, o)


class AmqpParser(SegmentParser):
    """Sans-I/O AMQP 0-9-1 frame parser for one direction (0: client -> server)."""

    __slots__ = ("direction", "max_body_length", "parse_headers", "parse_arguments", "hide",
                 "max_frame_size", "_buf", "_pos", "_ts", "_body_left", "_body_msg", "_body_end",
                 "_content", "unknown_methods", "stray_frames", "heartbeats", "foreign", "skipped_bytes")

    def __init__(self, direction: int, max_body_length: int = 1000, parse_headers: bool = True,
                 parse_arguments: bool = True, hide_connection_information: bool = True,
                 max_frame_size: int = 10 * 1024 * 1024):
        self.direction = direction
        self.max_body_length = max_body_length
        self.parse_headers = parse_headers
        self.parse_arguments = parse_arguments
        self.hide = hide_connection_information
        self.max_frame_size = max_frame_size
        self.unknown_methods = 0    # method frames of no known class/method (skipped)
        self.stray_frames = 0       # header/body frames with no content method before them
        self.heartbeats = 0
        self.foreign = False        # the stream announced another AMQP version: not read
        self.skipped_bytes = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything buffered (after a ParseError, or a gap)."""
        self._buf = bytearray()
        self._pos = 0
        self._ts = 0
        self._body_left = -1        # >= 0: inside a body frame, bytes of it still to come
        self._body_msg: AmqpMessage | None = None
        self._body_end = False      # the body frame's end octet is next
        self._content: dict[int, AmqpMessage] = {}   # channel -> content being assembled

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data, ts: int) -> list[AmqpMessage]:
        if not data:
            return []
        if self.foreign:
            self.skipped_bytes += len(data)
            return []
        buf = self._buf
        if self._pos >= len(buf):
            # nothing buffered: a new buffer holding the segment (cheaper than
            # shrinking the old one to nothing and growing it again)
            self._buf = buf = bytearray(data)
            self._pos = 0
            self._ts = ts
        else:
            buf += data
        out: list[AmqpMessage] = []
        try:
            self._parse(out, ts)
        except ParseError as e:
            e.messages = out
            raise
        pos = self._pos
        if pos and pos < len(buf):
            del buf[:pos]
            self._pos = 0
        # (all consumed: ``_pos`` stays at the end, the next segment gets a new buffer)
        return out

    def _parse(self, out: list, ts: int) -> None:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        try:
            while pos < n:
                if self._body_left >= 0:
                    pos = self._body_bytes(pos, n, out)
                    continue
                if self._body_end:
                    if buf[pos] != FRAME_END:
                        raise ParseError("body frame without its end octet")
                    pos += 1
                    self._body_end = False
                    msg = self._body_msg
                    self._body_msg = None
                    if msg is not None and msg.body_seen >= msg.body_size:
                        self._content_done(msg, out)
                    self._ts = ts
                    continue
                if n - pos < 7:
                    if buf[pos] == 0x41 and buf[pos:pos + 4] != PROTOCOL_HEADER[:n - pos]:
                        raise ParseError("not an AMQP frame")
                    break
                ftype = buf[pos]
                channel = (buf[pos + 1] << 8) | buf[pos + 2]
                size = _u32(buf, pos + 3)
                if ftype == T_BODY:
                    pos += 7
                    self._body_start(channel, size)
                    continue
                if ftype == 0x41:            # 'A': protocol header "AMQP" 0 0 9 1
                    if n - pos < 8:
                        if buf[pos:pos + 4] != PROTOCOL_HEADER:
                            raise ParseError("not an AMQP frame")
                        break
                    if buf[pos:pos + 4] != PROTOCOL_HEADER:
                        raise ParseError("not an AMQP frame")
                    if buf[pos + 4:pos + 8] not in _VERSIONS_0_9:
                        # AMQP 1.0 (or 0-8, 0-10): other framing; nothing of it is read
                        self.foreign = True
                        self.skipped_bytes += n - pos
                        pos = n
                        break
                    pos += 8
                    self._ts = ts
                    continue
                if ftype not in (T_METHOD, T_HEADER, T_HEARTBEAT):
                    raise ParseError("unknown frame type %d" % ftype)
                if size > self.max_frame_size:
                    raise ParseError("frame of %d bytes over the limit" % size)
                end = pos + 7 + size
                if end >= n:
                    break
                if buf[end] != FRAME_END:
                    raise ParseError("frame without its end octet")
                if ftype == T_METHOD:
                    self._method(buf, pos + 7, end, channel, size + 8, out)
                elif ftype == T_HEADER:
                    self._header(buf[pos + 7:end], channel, out)
                else:
                    self.heartbeats += 1
                pos = end + 1
                self._ts = ts
        finally:
            self._pos = pos

    # --- frames -----------------------------------------------------------
    def _method(self, buf: bytearray, start: int, end: int, channel: int, size: int, out: list) -> None:
        """The method frame whose payload is ``buf[start:end]``."""
        if end - start < 4:
            raise ParseError("method frame too short")
        class_id = (buf[start] << 8) | buf[start + 1]
        method_id = (buf[start + 2] << 8) | buf[start + 3]
        spec = _BY_CODE.get((class_id << 16) | method_id)
        if spec is None:
            self.unknown_methods += 1
            return
        name, kind, decode, conninfo = spec
        pending = self._content.pop(channel, None)
        if pending is not None:
            # a method while content was expected: the content ends here, incomplete
            pending.notes.append("Message content incomplete (header or body frames missing)")
            out.append(pending)
        m = _message(self._ts, self.direction, channel, class_id, method_id, name, kind, size)
        if conninfo and self.hide:
            # never published: only its identity matters (to recognise its answer)
            m.hidden = True
            if kind == RESPONSE:
                m.answers = _answers(class_id, method_id)
            out.append(m)
            return
        try:
            decode(m, buf[start + 4:end], self.parse_arguments)
        except (_Short, IndexError, struct.error):
            m.notes.append(NOTE_BAD_ARGS)
        if kind == RESPONSE:
            m.answers = _answers(class_id, method_id)
        elif kind == CONTENT:
            if class_id == 60 and method_id == 71:
                m.answers = (60, 70)
            if len(self._content) >= MAX_CONTENT_CHANNELS:
                raise ParseError("content in progress on too many channels")
            self._content[channel] = m
            return
        elif kind == REQUEST and m.fields.get("no-wait") is True:
            m.kind = ASYNC
        if self.hide:
            if (class_id, method_id) in CLOSES and m.fields.get("reply-code", 0) < 300:
                m.hidden = True
            elif kind == RESPONSE and m.answers in CLOSES:
                m.hidden = True     # a close-ok: left out unless its close is published
        out.append(m)

    def _header(self, payload: bytearray, channel: int, out: list) -> None:
        m = self._content.get(channel)
        if m is None or m.has_header:
            self.stray_frames += 1
            return
        if len(payload) < 14:
            raise ParseError("content header frame too short")
        body_size = _u64(payload, 4)
        m.has_header = True
        m.body_size = body_size
        if self.parse_headers:
            props: dict = {}
            try:
                decode_properties(props, payload, 12)
            except (_Short, IndexError, struct.error):
                m.notes.append(NOTE_BAD_PROPS)
            m.fields.update(props)
        if body_size == 0:
            del self._content[channel]
            self._content_done(m, out)

    def _body_start(self, channel: int, size: int) -> None:
        m = self._content.get(channel)
        if m is None or not m.has_header:
            self.stray_frames += 1
            m = None
        self._body_msg = m
        self._body_left = size
        if size == 0:
            self._body_left = -1
            self._body_end = True

    def _body_bytes(self, pos: int, n: int, out: list) -> int:
        take = min(n - pos, self._body_left)
        m = self._body_msg
        if m is not None:
            keep = self.max_body_length - len(m.body)
            if keep > 0:
                m.body += bytes(self._buf[pos:pos + min(keep, take)])
            m.body_seen += take
        self._body_left -= take
        if self._body_left == 0:
            self._body_left = -1
            self._body_end = True
            if m is not None and m.body_seen >= m.body_size:
                del self._content[m.channel]
        return pos + take

    def _content_done(self, m: AmqpMessage, out: list) -> None:
        out.append(m)

    # --- stream events --------------------------------------------------------
    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. Inside a body frame that holds them all, the
        message goes on (with a note) and parsing resumes after them; anywhere
        else the frame boundaries are lost."""
        if self._body_left >= 0 and self.buffered == 0 and nbytes <= self._body_left:
            m = self._body_msg
            if m is not None:
                note = ("Packet loss while capturing the request" if self.direction == 0
                        else "Packet loss while capturing the response")
                if note not in m.notes:
                    m.notes.append(note)
                m.body_seen += nbytes
            self._body_left -= nbytes
            if self._body_left == 0:
                self._body_left = -1
                self._body_end = True
                if m is not None and m.body_seen >= m.body_size:
                    del self._content[m.channel]
            return True
        self._buf = bytearray()
        self._pos = 0
        return False

    def drain(self) -> list[AmqpMessage]:
        return []

    def flush(self) -> list[AmqpMessage]:
        """The connection ends: content messages whose body did not all arrive
        come out with a note; the rest is forgotten."""
        out = []
        seen = set()
        m = self._body_msg
        for c in list(self._content.values()) + ([m] if m is not None else []):
            if id(c) in seen:
                continue
            seen.add(id(c))
            c.notes.append("Message content incomplete: %d of %d body bytes seen"
                           % (c.body_seen, c.body_size))
            out.append(c)
        self.reset()
        return out
