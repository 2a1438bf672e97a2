"""DHCPv4 message decoder (sans-I/O): one UDP datagram in, one message out.

Spec: RFC 2131 (message format, section 2), RFC 2132 (options), RFC 3396
(an option given several times is one option: its pieces are concatenated),
RFC 4388 / RFC 6926 (lease-query message types 10-17).

Framing: a DHCP message is exactly one UDP datagram (ports 67/68); there is
no stream and nothing is buffered between datagrams. The fixed BOOTP header
is 236 bytes, then the magic cookie 99.130.83.99, then options as
code/length/value up to the End option (255); Pad (0) has no length. After
End only Pad or End bytes may follow. As Packetbeat (which decodes with
``insomniacslk/dhcp``), a message is refused when it is shorter than the
header and cookie, has a wrong cookie, an option running past the end of the
datagram, no End option, or anything but padding after End.

Correlation key: none. Packetbeat 8 publishes one event per message (a
DISCOVER, its OFFER, the REQUEST and the ACK are four events) and does not
pair them: the requests and replies of one exchange travel on different
address pairs (0.0.0.0:68 -> 255.255.255.255:67, then server:67 -> client:68
or broadcast), so they are not one flow. The transaction id (``xid``) is
reported on every event (``dhcpv4.transaction_id``) for the user to group by.

Values are kept as bytes; ``event.py`` turns them into text.
"""
from __future__ import annotations

from worker.plugin import ParseError as _BaseParseError

MAGIC_COOKIE = b"\x63\x82\x53\x63"
_ZERO4 = b"\x00\x00\x00\x00"
HEADER_LEN = 236                    # op .. file, RFC 2131 figure 1
MIN_LEN = HEADER_LEN + 4            # + magic cookie
MAX_MESSAGE_SIZE = 65535            # a UDP datagram cannot be larger
OPT_PAD = 0
OPT_END = 255

BOOTREQUEST = 1
BOOTREPLY = 2


class ParseError(_BaseParseError):
    """The datagram is not a DHCPv4 message."""


_FIELDS = ("ts", "size", "op", "htype", "hlen", "hops", "xid", "secs", "flags", "ciaddr",
           "yiaddr", "siaddr", "giaddr", "chaddr", "sname", "file", "options", "notes")


class DhcpMessage:
    """One decoded message (a plain class with slots: a C class when compiled, see parser.pxd).

    ``options_key`` is not part of the message's value (not compared, not
    shown): the option area's bytes as received, which ``options`` was
    decoded from, when :func:`decode_message` made the message (``None``
    otherwise). ``event.py`` keys its cache of option objects on it."""
    __slots__ = _FIELDS + ("options_key",)

    def __init__(self, ts: int, size: int, op: int, htype: int, hlen: int, hops: int, xid: int,
                 secs: int, flags: int, ciaddr: bytes, yiaddr: bytes, siaddr: bytes, giaddr: bytes,
                 chaddr: bytes, sname: bytes, file: bytes, options: dict, notes: list | None = None):
        self.ts = ts                    # capture time, ns
        self.size = size                # datagram payload bytes
        self.op = op
        self.htype = htype
        self.hlen = hlen
        self.hops = hops
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr            # 4 bytes each
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        self.chaddr = chaddr            # the first min(hlen, 16) bytes of the 16-byte field
        self.sname = sname              # up to the first NUL
        self.file = file                # up to the first NUL
        self.options = options          # code -> data, pieces of a repeated option concatenated
        self.notes = notes if notes is not None else []
        self.options_key = None

    def __repr__(self) -> str:
        return "DhcpMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in _FIELDS)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in _FIELDS)

    @property
    def is_request(self) -> bool:
        return self.op != BOOTREPLY


_CACHE_MAX = 1024          # option areas remembered (cleared when full)
_CACHE_AREA_MAX = 1024     # larger option areas are not remembered
# option area bytes -> its decoded options (values are immutable bytes: each
# message gets its own copy of the dict)
_OPTIONS_CACHE: dict = {}


def decode_message(payload, ts: int = 0) -> DhcpMessage:
    """Decode one datagram payload (bytes-like). Raises :class:`ParseError`."""
    data = bytes(payload)
    n = len(data)
    if n < MIN_LEN:
        raise ParseError("DHCP message too short: %d bytes" % n)
    if n > MAX_MESSAGE_SIZE:
        raise ParseError("DHCP message too long: %d bytes" % n)
    if data[236] != 0x63 or data[237] != 0x82 or data[238] != 0x53 or data[239] != 0x63:   # MAGIC_COOKIE
        raise ParseError("bad magic cookie %s" % data[HEADER_LEN:MIN_LEN].hex())
    # the fixed fields read in place (compiled: C reads of the bytes, no struct tuple)
    hlen = data[2]
    chaddr = data[28:28 + (hlen if hlen < 16 else 16)]
    # sname and file: up to the first NUL (mostly at once: the fields are empty)
    if data[44] == 0:
        sname = b""
    else:
        i = data.find(0, 44, 108)
        sname = data[44:i if i >= 0 else 108]
    if data[108] == 0:
        file_ = b""
    else:
        i = data.find(0, 108, 236)
        file_ = data[108:i if i >= 0 else 236]
    # fields set directly: compiled, C struct stores without the constructor's
    # 17-argument call (the same message as DhcpMessage(ts, n, op, ...))
    msg = DhcpMessage.__new__(DhcpMessage)
    msg.ts = ts
    msg.size = n
    msg.op = data[0]
    msg.htype = data[1]
    msg.hlen = hlen
    msg.hops = data[3]
    msg.xid = (data[4] << 24) | (data[5] << 16) | (data[6] << 8) | data[7]
    msg.secs = (data[8] << 8) | data[9]
    msg.flags = (data[10] << 8) | data[11]
    # an unset address (the usual case) is the shared zero constant, not a new slice
    msg.ciaddr = data[12:16] if data[12] or data[13] or data[14] or data[15] else _ZERO4
    msg.yiaddr = data[16:20] if data[16] or data[17] or data[18] or data[19] else _ZERO4
    msg.siaddr = data[20:24] if data[20] or data[21] or data[22] or data[23] else _ZERO4
    msg.giaddr = data[24:28] if data[24] or data[25] or data[26] or data[27] else _ZERO4
    msg.chaddr = chaddr
    msg.sname = sname
    msg.file = file_
    msg.notes = []
    # the option area: parsed once per distinct area (a server answers every
    # client with the same options; a client repeats its own), copied per message
    if n - MIN_LEN <= _CACHE_AREA_MAX:
        key = data[MIN_LEN:]
        opts = _OPTIONS_CACHE.get(key)
        if opts is None:
            opts = parse_options(data, MIN_LEN)
            if len(_OPTIONS_CACHE) >= _CACHE_MAX:
                _OPTIONS_CACHE.clear()
            _OPTIONS_CACHE[key] = opts
        msg.options = dict(opts)
        msg.options_key = key
    else:
        msg.options = parse_options(data, MIN_LEN)
        msg.options_key = None
    return msg


def parse_options(data: bytes, pos: int) -> dict[int, bytes]:
    """Options from ``pos`` to the End option; RFC 3396 concatenation."""
    opts: dict = {}
    n = len(data)
    repeated = False
    while pos < n:
        code = data[pos]
        if code == OPT_PAD:
            pos += 1
            continue
        if code == OPT_END:
            # only padding may follow
            if data[pos + 1:].strip(b"\x00\xff"):
                raise ParseError("data after the End option")
            if repeated:
                for code, value in opts.items():
                    if type(value) is bytearray:
                        opts[code] = bytes(value)
            return opts
        if pos + 1 >= n:
            raise ParseError("option %d has no length" % code)
        start = pos + 2
        pos = start + data[pos + 1]
        if pos > n:
            raise ParseError("option %d runs past the end of the message" % code)
        prev = opts.get(code)
        if prev is None:
            opts[code] = data[start:pos]
        elif type(prev) is bytearray:
            prev += data[start:pos]         # amortised: a flood of pieces stays linear
        else:
            opts[code] = bytearray(prev) + data[start:pos]
            repeated = True
    raise ParseError("no End option")
