"""DNS message decoder (RFC 1035 sections 4.1-4.2, EDNS(0) RFC 6891, DNSSEC
records RFC 4034/5155), sans-I/O.

Theory of operation
-------------------
:func:`decode_message` turns the bytes of one DNS message into a
:class:`DnsMessage`: the header, the questions and the three record
sections, every record's RDATA decoded by type. It accepts and refuses what
Packetbeat's decoder (the ``miekg/dns`` library) accepts and refuses, so the
same messages become transactions:

- a message must hold more than its 12-byte header (a question or a record);
- a section may end early when the message ends exactly at a record
  boundary (truncated responses, lying counts); a record cut inside its
  header or RDATA, or whose RDATA does not decode to exactly RDLENGTH
  bytes, makes the whole message undecodable;
- bytes after the last counted record are ignored.

Names are decoded to presentation text (``www.example.com.``; the root is
``.``; special bytes escaped as ``\\.`` or ``\\DDD``), so unlike other
protocols a message holds ``str`` names; everything else stays bytes or
ints until ``event.py``. Compression pointers are followed anywhere inside
the message (inside RDATA: anywhere before the end of that RDATA), at most
126 per name, which ends pointer loops; a name longer than 255 octets on the
wire is an error. Per message, a name is decoded once per offset.

Framing: over UDP one datagram is one message. Over TCP (RFC 1035 4.2.2)
each message is preceded by a 2-byte length; :class:`DnsStreamParser` reads
one direction of a connection, several messages per segment or one message
over many segments, and stamps each message with the time of the segment
holding its first byte. At most one partial message (65,537 bytes) is ever
buffered.

Correlation key: transport, client and server address and port, and the
message ID (``trans.py``).

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import base64
import socket
import struct

from worker.plugin import ParseError as _BaseParseError
from worker.protos.dns.names import _PLAIN_LABEL, label_text

# Packetbeat's texts for what can go wrong (``errors.go``).
NON_DNS = "Message's data could not be decoded as DNS"
ZERO_LENGTH = "Message's length was set to zero"
INCOMPLETE = "Message's data is incomplete"

HEADER_SIZE = 12
MAX_POINTERS = 126          # compression pointers per name (miekg's limit)
MAX_NAME_BUDGET = 255       # wire octets of a name, root byte included

# Header flag bits.
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA = 1, 2, 5, 6, 12, 15, 16, 28
T_SRV, T_OPT, T_DS, T_RRSIG, T_NSEC, T_DNSKEY, T_NSEC3, T_NSEC3PARAM = 33, 41, 43, 46, 47, 48, 50, 51

_HDR = struct.Struct("!6H")
_RRH = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_QTC = struct.Struct("!HH")
# 1 at the bytes a name label holds unescaped (read_name's fast path)
_PLAIN_TABLE = bytes(1 if b in _PLAIN_LABEL else 0 for b in range(256))
# wire labels (length bytes included, no terminator) of names made of plain
# labels -> their text with a dot after each label; names repeat (bounded: cleared at 65536)
_LABELS_TEXT: dict = {}
_RRSIG_FIXED = struct.Struct("!HBBIIIH")
_MAPPED = b"\x00" * 10 + b"\xff\xff"


class ParseError(_BaseParseError):
    """The bytes are not a DNS message. ``note`` is Packetbeat's text for the
    problem; ``messages`` holds the messages of a TCP stream that were
    complete before it (they are valid)."""

    def __init__(self, msg: str, note: str = NON_DNS, messages: list | None = None):
        super().__init__(msg)
        self.note = note
        self.messages = messages if messages is not None else []


# A record is a plain tuple (name, type, class, ttl, data); ``data`` by type:
#   A, AAAA                  address text (None: empty RDATA)
#   NS, CNAME, PTR           name text
#   MX                       (preference, exchange)
#   SOA                      (mname, rname, serial, refresh, retry, expire, minimum)
#   SRV                      (priority, weight, port, target)
#   TXT                      list of character strings (bytes)
#   DNSKEY                   (flags, protocol, algorithm, public key bytes)
#   DS                       (key tag, algorithm, digest type, digest bytes)
#   RRSIG                    (type covered, algorithm, labels, original ttl,
#                             expiration, inception, key tag, signer, signature bytes)
#   NSEC                     (next name, [types])
#   NSEC3                    (hash, flags, iterations, salt, next hashed owner bytes, [types])
#   NSEC3PARAM               (hash, flags, iterations, salt)
#   OPT                      (udp size, extended rcode bits, version, do, [(code, bytes)])
#   anything else            RDATA bytes (names of RFC 1035-era types expanded)
RR = tuple


class DnsMessage:
    """One decoded message (a plain class with slots rather than a dataclass:
    compiled, it is an extension type built without a Python ``__init__``)."""
    __slots__ = ("ts", "size", "id", "bits", "rcode", "questions", "answers", "authorities",
                 "additionals", "opt", "notes")

    def __init__(self, ts: int, size: int, id: int, bits: int, rcode: int, questions: list, answers: list,
                 authorities: list, additionals: list, opt: RR | None, notes: list[str] | None = None):
        self.ts = ts                    # ns, the packet holding the message's first byte
        self.size = size                # bytes on the wire (TCP: with the 2-byte length)
        self.id = id
        self.bits = bits                # the header's flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE)
        self.rcode = rcode              # RCODE with the EDNS extended bits
        self.questions = questions      # (name, qtype, qclass)
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.opt = opt                  # the OPT pseudo-record (the last one), if any
        self.notes = notes if notes is not None else []

    @property
    def is_request(self) -> bool:
        return not self.bits & QR

    @property
    def opcode(self) -> int:
        return (self.bits >> 11) & 0xF

    def __repr__(self) -> str:
        return "DnsMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in DnsMessage.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in DnsMessage.__slots__)

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


# ------------------------------------------------------------------- names

def read_name(buf: bytes, off: int, end: int, cache: dict) -> tuple[str, int]:
    """The name at ``off`` (no byte at or past ``end`` may be used) and the
    offset after it. ``cache`` maps offsets to (text, wire length) of names
    already decoded in this message.

    Fast path (almost every name): plain labels ending in the root byte or in
    one pointer to a name already decoded, nothing to escape. The labels are
    then turned into text in one piece (length bytes replaced by dots, one
    decode); anything else, errors included, takes the label-by-label path."""
    hit = cache.get(off)
    if hit is not None and hit[2] <= end:
        return hit[0], hit[3]
    start = off
    n = 0
    while off < end:
        c = buf[off]
        if c == 0 or c >= 0x40:
            break
        off += 1 + c
        n += 1
    else:
        return _read_name(buf, start, end, cache)
    budget = off - start
    if c == 0:
        after = off + 1
        suffix = ""
        limit = after
    elif c >= 0xC0 and off + 1 < end:
        pos = ((c & 0x3F) << 8) | buf[off + 1]
        hit = cache.get(pos)
        if hit is None:
            # a pointer into the middle of an earlier name: that suffix, if plain
            hit = _root_name(buf, pos, end, cache)
        if hit is None or hit[2] > end:
            return _read_name(buf, start, end, cache)
        budget += hit[1]
        suffix = hit[0]
        after = off + 2
        limit = end
    else:
        return _read_name(buf, start, end, cache)
    if budget >= MAX_NAME_BUDGET:
        return _read_name(buf, start, end, cache)
    if n:
        text = _labels_text(buf, start, off, n)
        if text is None:
            return _read_name(buf, start, end, cache)
        if suffix and suffix != ".":
            text += suffix
    else:
        text = suffix or "."
    cache[start] = (text, budget, limit, after)
    return text, after


def _labels_text(buf: bytes, start: int, off: int, n: int):
    """The text of the ``n`` plain labels from ``start`` to ``off`` (a dot
    after each), or None when a label byte must be escaped."""
    wire = buf[start:off]
    text = _LABELS_TEXT.get(wire)
    if text is not None:
        return text
    # every label byte must print as itself (else the label-by-label path escapes it)
    pos = start
    while pos < off:
        stop = pos + 1 + buf[pos]
        pos += 1
        while pos < stop:
            if not _PLAIN_TABLE[buf[pos]]:
                return None
            pos += 1
    # the labels and the byte after them, length bytes and that byte made dots
    raw = bytearray(buf[start + 1:off + 1])
    pos = buf[start]
    for _ in range(n):
        c = raw[pos]
        raw[pos] = 46
        pos += 1 + c
    text = raw.decode("ascii")
    if len(_LABELS_TEXT) >= 65536:
        _LABELS_TEXT.clear()
    _LABELS_TEXT[wire] = text
    return text


def _root_name(buf: bytes, off: int, end: int, cache: dict):
    """The cache entry of the name at ``off`` when it is plain labels ending
    in the root byte before ``end`` (no pointer, nothing to escape, shorter
    than 255 octets), stored in ``cache``; else None (nothing stored). Such
    an entry is exactly what the label-by-label path computes from ``off``
    (no pointer followed), so a later hit on it changes no result or error."""
    start = off
    n = 0
    while off < end:
        c = buf[off]
        if c == 0:
            break
        if c >= 0x40:
            return None
        off += 1 + c
        n += 1
    else:
        return None
    budget = off - start
    if budget >= MAX_NAME_BUDGET:
        return None
    if n:
        text = _labels_text(buf, start, off, n)
        if text is None:
            return None
    else:
        text = "."
    hit = (text, budget, off + 1, off + 1)
    cache[start] = hit
    return hit


def _read_name(buf: bytes, off: int, end: int, cache: dict) -> tuple[str, int]:
    """:func:`read_name`, label by label (escapes, pointer chains, errors)."""
    start = off
    labels: list[str] = []
    budget = 0                  # label octets + separators so far
    after = -1                  # offset after the name where it is written
    pointers = 0
    suffix = ""
    while True:
        if off >= end:
            raise ParseError("name runs past the end of the message at %d" % off)
        c = buf[off]
        if c == 0:
            off += 1
            break
        kind = c & 0xC0
        if kind == 0:
            stop = off + 1 + c
            if stop > end:
                raise ParseError("label runs past the end of the message at %d" % off)
            budget += c + 1
            if budget >= MAX_NAME_BUDGET:
                raise ParseError("name longer than 255 octets at %d" % start)
            labels.append(label_text(buf[off + 1:stop]))
            off = stop
        elif kind == 0xC0:
            if off + 1 >= end:
                raise ParseError("compression pointer cut at %d" % off)
            if after < 0:
                after = off + 2
            pointers += 1
            if pointers > MAX_POINTERS:
                raise ParseError("too many compression pointers (loop) in the name at %d" % start)
            off = ((c & 0x3F) << 8) | buf[off + 1]
            hit = cache.get(off)
            if hit is not None and hit[2] <= end:
                budget += hit[1]
                if budget >= MAX_NAME_BUDGET:
                    raise ParseError("name longer than 255 octets at %d" % start)
                suffix = hit[0]
                break
        else:
            raise ParseError("reserved label type 0x%02x at %d" % (kind, off))
    if after < 0:
        after = off
    if labels:
        text = ".".join(labels) + "." + (suffix if suffix != "." else "")
    else:
        text = suffix or "."
    # (text, wire budget, highest offset needed, offset after the name)
    cache[start] = (text, budget, after if not pointers else end, after)
    return text, after


def _name_wire(buf: bytes, off: int, end: int) -> tuple[bytes, int]:
    """The uncompressed wire form of the name at ``off`` and the offset after it."""
    out = bytearray()
    after = -1
    pointers = 0
    while True:
        if off >= end:
            raise ParseError("name runs past the end of the record at %d" % off)
        c = buf[off]
        if c == 0:
            out.append(0)
            return bytes(out), (after if after >= 0 else off + 1)
        if c & 0xC0 == 0:
            if off + 1 + c > end or len(out) + c + 1 >= MAX_NAME_BUDGET:
                raise ParseError("bad label at %d" % off)
            out += buf[off:off + 1 + c]
            off += 1 + c
        elif c & 0xC0 == 0xC0 and off + 1 < end:
            if after < 0:
                after = off + 2
            pointers += 1
            if pointers > MAX_POINTERS:
                raise ParseError("too many compression pointers at %d" % off)
            off = ((c & 0x3F) << 8) | buf[off + 1]
        else:
            raise ParseError("bad label at %d" % off)


# ------------------------------------------------------------------- RDATA

_IPV6_TEXT: dict = {}       # 16 address bytes -> text (_ipv6_text); cleared at 65536 entries


def _ipv6_text(b: bytes) -> str:
    """The text of an AAAA address as Packetbeat prints it (memoised: popular
    answers come back again and again)."""
    text = _IPV6_TEXT.get(b)
    if text is None:
        text = _ipv6_text_of(b)
        if len(_IPV6_TEXT) >= 65536:
            _IPV6_TEXT.clear()
        _IPV6_TEXT[b] = text
    return text


def _ipv6_text_of(b: bytes) -> str:
    if b[:12] == _MAPPED:               # Go prints IPv4-mapped addresses dotted
        return socket.inet_ntop(socket.AF_INET, b[12:])
    if b[:12] == b"\x00" * 12 and b[12:14] != b"\x00\x00":
        # glibc prints IPv4-compatible addresses dotted, Go in hex groups
        return "::%x:%x" % (_U16.unpack_from(b, 12)[0], _U16.unpack_from(b, 14)[0])
    return socket.inet_ntop(socket.AF_INET6, b)


def _type_bitmap(buf: bytes, off: int, end: int) -> list[int]:
    types: list[int] = []
    last = -1
    while off < end:
        if off + 2 > end:
            raise ParseError("type bitmap cut at %d" % off)
        window, length = buf[off], buf[off + 1]
        off += 2
        if window <= last:
            raise ParseError("type bitmap windows out of order")
        if length == 0 or length > 32 or off + length > end:
            raise ParseError("bad type bitmap window length %d" % length)
        base = window * 256
        for j in range(length):
            b = buf[off + j]
            if b:
                for bit in range(8):
                    if b & (0x80 >> bit):
                        types.append(base + j * 8 + bit)
        off += length
        last = window
    return types


def _opt_options(buf: bytes, off: int, end: int) -> list[tuple[int, bytes]]:
    options = []
    while off < end:
        if off + 4 > end:
            raise ParseError("EDNS option cut at %d" % off)
        code, length = _QTC.unpack_from(buf, off)
        off += 4
        if off + length > end:
            raise ParseError("EDNS option %d overflows the record" % code)
        options.append((code, buf[off:off + length]))
        off += length
    return options


def _u8(buf, off, end):
    if off >= end:
        raise ParseError("record data cut at %d" % off)
    return buf[off]


def _u16(buf, off, end):
    if off + 2 > end:
        raise ParseError("record data cut at %d" % off)
    return (buf[off] << 8) | buf[off + 1]


def _u32(buf, off, end):
    if off + 4 > end:
        raise ParseError("record data cut at %d" % off)
    return _U32.unpack_from(buf, off)[0]


def _rdata(buf: bytes, rtype: int, off: int, end: int, cache: dict):
    """Decode RDATA ``buf[off:end]`` (non-empty) of type ``rtype``.

    As in miekg/dns, a record may stop after any complete field but the first
    (the remaining fields are zero), and must not leave bytes unread."""
    if rtype == T_A:
        if end - off != 4:
            raise ParseError("A record of %d bytes" % (end - off))
        return "%d.%d.%d.%d" % (buf[off], buf[off + 1], buf[off + 2], buf[off + 3])
    if rtype == T_AAAA:
        if end - off != 16:
            raise ParseError("AAAA record of %d bytes" % (end - off))
        return _ipv6_text(buf[off:end])
    if rtype == T_CNAME or rtype == T_NS or rtype == T_PTR:
        name, off = read_name(buf, off, end, cache)
        data = name
    elif rtype == T_MX:
        pref = _u16(buf, off, end)
        off += 2
        name = ""
        if off < end:
            name, off = read_name(buf, off, end, cache)
        data = (pref, name)
    elif rtype == T_TXT:
        strings = []
        while off < end:
            n = buf[off]
            if off + 1 + n > end:
                raise ParseError("TXT string overflows the record")
            strings.append(buf[off + 1:off + 1 + n])
            off += 1 + n
        return strings
    elif rtype == T_SOA:
        mname, off = read_name(buf, off, end, cache)
        rname = ""
        nums = [0, 0, 0, 0, 0]
        if off < end:
            rname, off = read_name(buf, off, end, cache)
            for i in range(5):
                if off >= end:
                    break
                nums[i] = _u32(buf, off, end)
                off += 4
        data = (mname, rname, *nums)
    elif rtype == T_SRV:
        nums = [0, 0, 0]
        target = ""
        for i in range(3):
            nums[i] = _u16(buf, off, end)
            off += 2
            if off >= end:
                break
        if off < end:
            target, off = read_name(buf, off, end, cache)
        data = (nums[0], nums[1], nums[2], target)
    elif rtype == T_DNSKEY:
        flags = _u16(buf, off, end)
        proto = alg = 0
        off += 2
        if off < end:
            proto = buf[off]
            off += 1
        if off < end:
            alg = buf[off]
            off += 1
        return (flags, proto, alg, buf[off:end])
    elif rtype == T_DS:
        tag = _u16(buf, off, end)
        alg = dtype = 0
        off += 2
        if off < end:
            alg = buf[off]
            off += 1
        if off < end:
            dtype = buf[off]
            off += 1
        return (tag, alg, dtype, buf[off:end])
    elif rtype == T_RRSIG:
        if end - off >= _RRSIG_FIXED.size:
            fixed = _RRSIG_FIXED.unpack_from(buf, off)
            off += _RRSIG_FIXED.size
        else:
            fixed = _partial(buf, off, end, (2, 1, 1, 4, 4, 4, 2))
            off = end
        signer = ""
        if off < end:
            signer, off = read_name(buf, off, end, cache)
        return (*fixed, signer, buf[off:end])
    elif rtype == T_NSEC:
        name, off = read_name(buf, off, end, cache)
        return (name, _type_bitmap(buf, off, end))
    elif rtype == T_NSEC3 or rtype == T_NSEC3PARAM:
        hsh = _u8(buf, off, end)
        flags = iters = 0
        salt = nxt = b""
        types: list[int] = []
        off += 1
        if off < end:
            flags = buf[off]
            off += 1
        if off < end:
            iters = _u16(buf, off, end)
            off += 2
        if off < end:
            slen = buf[off]
            off += 1
            if off + slen > end:
                raise ParseError("NSEC3 salt overflows the record")
            salt = buf[off:off + slen]
            off += slen
        if rtype == T_NSEC3PARAM:
            data = (hsh, flags, iters, salt)
        else:
            if off < end:
                hlen = buf[off]
                off += 1
                if off + hlen > end:
                    raise ParseError("NSEC3 hash overflows the record")
                nxt = buf[off:off + hlen]
                off += hlen
            if off < end:
                types = _type_bitmap(buf, off, end)
                off = end
            data = (hsh, flags, iters, salt, nxt, types)
    elif rtype in _NAME_FIELDS:
        return _expand_names(buf, off, end, _NAME_FIELDS[rtype])
    else:
        return buf[off:end]
    if off != end:
        raise ParseError("record of type %d has %d bytes left over" % (rtype, end - off))
    return data


def _partial(buf, off, end, widths):
    vals = []
    for w in widths:
        if off >= end:
            vals.append(0)
            continue
        if off + w > end:
            raise ParseError("record data cut at %d" % off)
        vals.append(int.from_bytes(buf[off:off + w], "big"))
        off += w
    return tuple(vals)


# Types Packetbeat prints as raw RDATA whose names may be compressed on the
# wire (RFC 3597 section 4): RDATA is shown with the names expanded, as the
# library re-encodes them. Layout: "n" a name, an int a fixed-size field.
_NAME_FIELDS = {3: "n", 4: "n", 7: "n", 8: "n", 9: "n", 39: "n", 14: "nn", 17: "nn",
                18: (2, "n"), 21: (2, "n"), 36: (2, "n"), 26: (2, "n", "n")}


def _expand_names(buf: bytes, off: int, end: int, layout) -> bytes:
    out = bytearray()
    for part in layout:
        if off >= end:
            break
        if part == "n":
            wire, off = _name_wire(buf, off, end)
            out += wire
        else:
            if off + part > end:
                raise ParseError("record data cut at %d" % off)
            out += buf[off:off + part]
            off += part
    if off != end:
        raise ParseError("record has %d bytes left over" % (end - off))
    return bytes(out)


_EMPTY = {T_A: None, T_AAAA: None, T_CNAME: "", T_NS: "", T_PTR: "", T_MX: (0, ""),
          T_TXT: [], T_SOA: ("", "", 0, 0, 0, 0, 0), T_SRV: (0, 0, 0, ""),
          T_DNSKEY: (0, 0, 0, b""), T_DS: (0, 0, 0, b""),
          T_RRSIG: (0, 0, 0, 0, 0, 0, 0, "", b""), T_NSEC: ("", []),
          T_NSEC3: (0, 0, 0, b"", b"", []), T_NSEC3PARAM: (0, 0, 0, b"")}


# ------------------------------------------------------------------- message

def decode_message(buf: bytes, ts: int, size: int) -> DnsMessage:
    """Decode one whole DNS message (``buf`` holds exactly its bytes)."""
    n = len(buf)
    if n < HEADER_SIZE:
        raise ParseError("message of %d bytes is shorter than a header" % n)
    # header and record header fields read byte by byte: typed C arithmetic
    # when compiled (parser.pxd), no struct call or tuple per record
    mid = (buf[0] << 8) | buf[1]
    bits = (buf[2] << 8) | buf[3]
    qdcount = (buf[4] << 8) | buf[5]
    off = HEADER_SIZE
    cache: dict = {}
    questions = []
    if off < n:
        for _ in range(qdcount):
            name, off = read_name(buf, off, n, cache)
            qtype = qclass = 0
            if off < n:
                if off + 2 > n:
                    raise ParseError("record data cut at %d" % off)
                qtype = (buf[off] << 8) | buf[off + 1]
                off += 2
                if off < n:
                    if off + 2 > n:
                        raise ParseError("record data cut at %d" % off)
                    qclass = (buf[off] << 8) | buf[off + 1]
                    off += 2
            questions.append((name, qtype, qclass))
    answers: list = []
    authorities: list = []
    additionals: list = []
    opt = None
    for si in range(3):
        if si == 0:
            section = answers
            count = (buf[6] << 8) | buf[7]
        elif si == 1:
            section = authorities
            count = (buf[8] << 8) | buf[9]
        else:
            section = additionals
            count = (buf[10] << 8) | buf[11]
        for _ in range(count):
            if off >= n:
                break
            name, off = read_name(buf, off, n, cache)
            if off + 10 > n:
                raise ParseError("record header cut at %d" % off)
            rtype = (buf[off] << 8) | buf[off + 1]
            rclass = (buf[off + 2] << 8) | buf[off + 3]
            ttl = buf[off + 4]
            ttl = (ttl << 8) | buf[off + 5]
            ttl = (ttl << 8) | buf[off + 6]
            ttl = (ttl << 8) | buf[off + 7]
            rdlen = (buf[off + 8] << 8) | buf[off + 9]
            off += 10
            end = off + rdlen
            if end > n:
                raise ParseError("record data overflows the message at %d" % off)
            if rtype == T_OPT:
                options = _opt_options(buf, off, end) if rdlen else []
                rr = (name, rtype, rclass, ttl,
                      (rclass, ttl >> 24, (ttl >> 16) & 0xFF, bool(ttl & 0x8000), options))
                if si == 2:
                    opt = rr
            elif rdlen == 0:
                rr = (name, rtype, rclass, ttl, _EMPTY.get(rtype, b""))
            else:
                rr = (name, rtype, rclass, ttl, _rdata(buf, rtype, off, end, cache))
            section.append(rr)
            off = end
    if not questions and not answers and not authorities and not additionals:
        raise ParseError("message holds a header only")
    rcode = bits & 0xF
    if opt is not None:
        rcode |= opt[4][1] << 4
    msg = DnsMessage.__new__(DnsMessage)
    msg.ts = ts
    msg.size = size
    msg.id = mid
    msg.bits = bits
    msg.rcode = rcode
    msg.questions = questions
    msg.answers = answers
    msg.authorities = authorities
    msg.additionals = additionals
    msg.opt = opt
    msg.notes = []
    return msg


class DnsStreamParser:
    """One direction of a DNS-over-TCP connection (2-byte length framing)."""
    __slots__ = ("buf", "ts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ts = 0

    def feed(self, data, ts: int) -> list[DnsMessage]:
        """Append a segment; return every message it completes. A zero length
        or an undecodable message raises :class:`ParseError` (carrying the
        messages completed before it) and empties the buffer."""
        buf = self.buf
        if not buf:
            self.ts = ts
        buf += data
        out: list[DnsMessage] = []
        pos = 0
        total = len(buf)
        while total - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if length == 0:
                self.reset()
                raise ParseError("zero message length", ZERO_LENGTH, out)
            stop = pos + 2 + length
            if stop > total:
                break
            try:
                msg = decode_message(bytes(buf[pos + 2:stop]), self.ts, length + 2)
            except ParseError as exc:
                self.reset()
                exc.messages = out
                raise
            out.append(msg)
            pos = stop
            self.ts = ts            # whatever follows began in this segment
        if pos:
            del buf[:pos]
        return out

    def pending(self) -> bool:
        """Part of a message is buffered."""
        return bool(self.buf)

    def reset(self) -> None:
        self.buf = bytearray()
