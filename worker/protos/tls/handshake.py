"""Handshake message bodies: ClientHello, ServerHello (and HelloRetryRequest),
Certificate, ServerKeyExchange (the ECDHE curve), NewSessionTicket,
CertificateStatus (OCSP), and the hello extensions.

RFC 8446 §4 (TLS 1.3), RFC 5246 §7.4 (TLS 1.2), RFC 6066 (SNI, status_request,
max_fragment_length), RFC 7301 (ALPN), RFC 8422 (supported_groups,
ec_point_formats, ECDHE ServerKeyExchange), RFC 5077 (session tickets).

The extension map written to ``tls.detailed.*_hello.extensions`` follows
Packetbeat 8's ``extensions.go``: the extensions it knows by name and parses,
the others listed under ``_unparsed_`` (by name when it names them, else by
number); GREASE extensions are left out. The raw extensions are kept in order
for the fingerprints (JA3, JA3S, JA4, JA4S).

Every function raises :class:`HelloError` on a malformed body (never another
exception), which the plugin counts and notes.
"""
from __future__ import annotations

import hashlib
import struct

from worker.protos.tls import algos

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

# RFC 8446 §4.1.3: the ServerHello.random of a HelloRetryRequest
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()

EXT_SNI = 0
EXT_STATUS_REQUEST = 5
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
EXT_PADDING = 21
EXT_ECH = 0xFE0D


class HelloError(Exception):
    """A handshake message body that does not parse."""


class Hello:
    """A ClientHello or ServerHello as sent (raw values, GREASE included).

    A plain class with the dataclass's behaviour (keyword or positional
    fields, repr, equality): compiled (handshake.pxd) it is an extension type."""
    __slots__ = ("is_client", "version", "random", "session_id", "ciphers", "compression", "cipher",
                 "selected_compression", "extensions", "ext_ok", "hrr", "shape")

    def __init__(self, is_client, version, random, session_id, ciphers=None, compression=None, cipher=-1,
                 selected_compression=0, extensions=None, ext_ok=True, hrr=False):
        self.is_client = is_client
        self.version = version                      # legacy_version (major, minor)
        self.random = random
        self.session_id = session_id
        self.ciphers = ciphers if ciphers is not None else list()            # client: offered, in order
        self.compression = compression if compression is not None else list()  # client: offered
        self.cipher = cipher                        # server: selected
        self.selected_compression = selected_compression
        self.extensions = extensions if extensions is not None else list()   # [(code, bytes)] in order
        self.ext_ok = ext_ok                        # the extensions block parsed
        self.hrr = hrr                              # a HelloRetryRequest
        self.shape = None                           # set by the parser (_extensions); not part of equality

    def _astuple(self) -> tuple:
        return (self.is_client, self.version, self.random, self.session_id, self.ciphers, self.compression,
                self.cipher, self.selected_compression, self.extensions, self.ext_ok, self.hrr)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._astuple() == other._astuple()
        return NotImplemented

    def __repr__(self) -> str:
        return "Hello(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)

    def ext(self, code: int):
        for c, data in self.extensions:
            if c == code:
                return data
        return None

    def has_ext(self, code: int) -> bool:
        for c, _ in self.extensions:
            if c == code:
                return True
        return False


def _need(body, pos: int, n: int) -> None:
    if pos + n > len(body):
        raise HelloError("truncated at %d (+%d of %d)" % (pos, n, len(body)))


def _common(body: bytes, is_client: bool) -> tuple[Hello, int]:
    _need(body, 0, 35)
    major, minor = body[0], body[1]
    if major != 3:
        raise HelloError("not a TLS hello (version %d.%d)" % (major, minor))
    sid_len = body[34]
    if sid_len > 32:
        raise HelloError("session id length %d" % sid_len)
    _need(body, 35, sid_len)
    hello = Hello(is_client, (major, minor), bytes(body[2:34]), bytes(body[35:35 + sid_len]))
    return hello, 35 + sid_len


def volatile(code: int) -> bool:
    """Extensions whose bytes change on every connection of one client or
    server build but whose rendering does not (key shares, PSK identities,
    padding, the encrypted_client_hello payload browsers send on every
    connection): left out of :attr:`Hello.shape`; the session ticket counts by
    its length only."""
    return code == EXT_KEY_SHARE or code == EXT_PRE_SHARED_KEY or code == EXT_PADDING or code == EXT_ECH


_FLAGS = tuple(bytes((i,)) for i in range(8))


def _extensions(hello: Hello, body: bytes, start: int, pos: int) -> None:
    """The extension block at ``pos``: sets ``hello.extensions``, ``ext_ok``
    and ``shape``, the hello's bytes from ``start`` (past the random and the
    session id) without the extension block's length and with the volatile
    extensions' data and length cut out, behind the version and a byte of
    flags: what a hello renders to apart from its random and session id
    depends on these bytes only (the event's cache key)."""
    pieces = [b"", body[0:2]]
    run = start
    if pos + 2 > len(body):
        pos = len(body)              # no extensions (SSL 3.0, old TLS clients)
        hello.extensions = []
    else:
        total = (body[pos] << 8) | body[pos + 1]
        pieces.append(body[run:pos])        # the block's length varies with the volatile ones: left out
        pos += 2
        run = pos
        end = pos + total
        if end > len(body):
            end = len(body)
        exts = []
        while pos < end:
            if pos + 4 > len(body):
                hello.ext_ok = False
                break
            code = (body[pos] << 8) | body[pos + 1]
            n = (body[pos + 2] << 8) | body[pos + 3]
            pos += 4
            if volatile(code):
                pieces.append(body[run:pos - 2])        # through the code
                run = pos + n
            elif code == EXT_SESSION_TICKET:
                pieces.append(body[run:pos])            # through the length
                run = pos + n
            exts.append((code, body[pos:pos + n]))       # body is bytes: the slice is bytes
            pos += n
        hello.extensions = exts
    pieces.append(body[run:pos])
    pieces[0] = _FLAGS[(1 if hello.is_client else 0) | (2 if hello.ext_ok else 0) | (4 if hello.hrr else 0)]
    hello.shape = b"".join(pieces)


def parse_client_hello(body: bytes) -> Hello:
    hello, pos = _common(body, True)
    start = pos
    _need(body, pos, 2)
    (n,) = _U16.unpack_from(body, pos)
    pos += 2
    _need(body, pos, n)
    b = bytes(body)
    ciphers = []
    i = pos
    end = pos + (n & ~1)
    while i < end:
        ciphers.append((b[i] << 8) | b[i + 1])
        i += 2
    hello.ciphers = ciphers
    pos += n
    _need(body, pos, 1)
    n = body[pos]
    pos += 1
    _need(body, pos, n)
    hello.compression = list(body[pos:pos + n])
    pos += n
    _extensions(hello, body, start, pos)
    return hello


def parse_server_hello(body: bytes) -> Hello:
    hello, pos = _common(body, False)
    _need(body, pos, 3)
    (hello.cipher,) = _U16.unpack_from(body, pos)
    hello.selected_compression = body[pos + 2]
    hello.hrr = hello.random == HRR_RANDOM
    _extensions(hello, body, pos, pos + 3)
    return hello


def parse_certificates(body: bytes, tls13: bool = False) -> list[bytes]:
    """The DER certificates of a Certificate message (leaf first)."""
    pos = 0
    if tls13:
        _need(body, 0, 1)
        pos = 1 + body[0]            # certificate_request_context
    _need(body, pos, 3)
    total = int.from_bytes(body[pos:pos + 3], "big")
    pos += 3
    if pos + total != len(body):
        raise HelloError("certificate list length %d does not match the message" % total)
    out = []
    while pos + 3 <= len(body):
        n = int.from_bytes(body[pos:pos + 3], "big")
        pos += 3
        _need(body, pos, n)
        out.append(bytes(body[pos:pos + n]))
        pos += n
        if tls13:
            _need(body, pos, 2)
            (e,) = _U16.unpack_from(body, pos)
            pos += 2 + e
    return out


def ske_curve(body: bytes) -> int | None:
    """The named group of an ECDHE ServerKeyExchange (curve_type 3), or None."""
    if len(body) >= 3 and body[0] == 3:
        return _U16.unpack_from(body, 1)[0]
    return None


def ticket_lifetime(body: bytes) -> int | None:
    """ticket_lifetime_hint (seconds) of a NewSessionTicket, or None."""
    if len(body) >= 4:
        return _U32.unpack_from(body, 0)[0]
    return None


_OCSP_STATUS = {0: "successful", 1: "malformedRequest", 2: "internalError", 3: "tryLater",
                5: "sigRequired", 6: "unauthorized"}


def ocsp_status(body: bytes) -> str | None:
    """Top-level OCSPResponseStatus of a CertificateStatus message (Packetbeat's
    fixed offset into the DER response), or None."""
    if len(body) > 10 and body[0] == 1:
        return _OCSP_STATUS.get(body[10], str(body[10]))
    return None


# --- extension values -------------------------------------------------------

def sni_names(data: bytes | None) -> list[str]:
    if not data or len(data) < 2:
        return []
    (n,) = _U16.unpack_from(data, 0)
    pos, limit = 2, min(2 + n, len(data))
    names = []
    while pos + 3 <= limit:
        typ = data[pos]
        (ln,) = _U16.unpack_from(data, pos + 1)
        if pos + 3 + ln > limit:
            break
        if typ == 0:
            names.append(data[pos + 3:pos + 3 + ln].decode("utf-8", "replace"))
        pos += 3 + ln
    return names


def alpn_list(data: bytes | None) -> list[bytes] | None:
    """ALPN protocol names (bytes), or None when the extension is malformed."""
    if data is None or len(data) < 2:
        return None
    (n,) = _U16.unpack_from(data, 0)
    if n + 2 != len(data):
        return None
    out = []
    pos = 2
    while pos < len(data):
        ln = data[pos]
        if pos + 1 + ln > len(data):
            return None
        out.append(bytes(data[pos + 1:pos + 1 + ln]))
        pos += 1 + ln
    return out


def u16_list(data: bytes | None, prefix: int = 2) -> list[int]:
    """A list of 16-bit values behind a ``prefix``-byte length (JA3's reading:
    stops at the stated length or the data's end)."""
    if not data or len(data) < prefix:
        return []
    n = int.from_bytes(data[:prefix], "big")
    end = min(prefix + n, len(data))
    return [_U16.unpack_from(data, p)[0] for p in range(prefix, end - 1, 2)]


def u8_list(data: bytes | None) -> list[int]:
    if not data:
        return []
    n = data[0]
    return list(data[1:1 + n])


def supported_versions(hello: Hello) -> list[int]:
    """Versions of supported_versions: the client's list, or the server's choice."""
    data = hello.ext(EXT_SUPPORTED_VERSIONS)
    if data is None:
        return []
    if not hello.is_client:
        return [_U16.unpack_from(data, 0)[0]] if len(data) >= 2 else []
    return u16_list(data, 1)


def key_share_group(hello: Hello) -> int | None:
    """The group of a ServerHello's (or HelloRetryRequest's) key_share."""
    data = hello.ext(EXT_KEY_SHARE)
    if data is None or len(data) < 2:
        return None
    return _U16.unpack_from(data, 0)[0]


# --- Packetbeat's parsed extension map ---------------------------------------

def _p_sni(d: bytes):
    if len(d) < 2:
        return None
    return sni_names(d)


def _p_max_fragment(d: bytes):
    if len(d) == 1:
        v = d[0]
        return "2^%d" % (8 + v) if 0 < v < 5 else "(unknown:%d)" % v
    return None


def _p_empty(d: bytes):
    return "(expected empty: found %d bytes)" % len(d) if d else ""


def _p_ignore(d: bytes):
    return None


def _p_status(d: bytes):
    if not d:
        return {"response": True}
    if len(d) < 3:
        return None
    code = d[0]
    (lst,) = _U16.unpack_from(d, 1)
    # Packetbeat reads both counts at offset 1: request_extensions repeats the list length
    return {"type": "ocsp" if code == 1 else str(code), "responder_id_list_length": lst,
            "request_extensions": lst}


def _p_cert_type(d: bytes):
    pos, limit = 0, len(d)
    if limit > 1:
        pos = 1
        if d[0] + 1 < limit:
            limit = 1 + d[0]
    names = {0: "X.509", 1: "OpenPGP", 2: "RawPubKey"}
    return [names.get(v, "(unknown:%d)" % v) for v in d[pos:limit]]


def _p_groups(d: bytes):
    if len(d) < 2 or _U16.unpack_from(d, 0)[0] + 2 != len(d):
        return None
    return [algos.group_name(v) for v in u16_list(d) if not algos.is_grease(v)]


def _p_points(d: bytes):
    if not d or d[0] + 1 != len(d):
        return None
    return [algos.ec_point_format_name(v) for v in d[1:]]


def _p_srp(d: bytes):
    if not d or d[0] + 1 > len(d):
        return None
    return d[1:1 + d[0]].decode("utf-8", "replace")


def _p_sigs(d: bytes):
    if len(d) < 2 or _U16.unpack_from(d, 0)[0] + 2 != len(d):
        return None
    return [algos.sigscheme_name(v) for v in u16_list(d)]


def _p_alpn(d: bytes):
    lst = alpn_list(d)
    if lst is None:
        return None
    return [p.decode("utf-8", "replace") for p in lst]


def _p_ticket(d: bytes):
    return "(%d bytes)" % len(d) if d else ""


def _p_versions(d: bytes):
    if len(d) == 2:
        return algos.version_text(d[0], d[1])
    if len(d) >= 3:
        n = d[0]
        if 1 + n > len(d) or n & 1 or n == 0:
            return None
        out = []
        for i in range(n // 2):
            v = _U16.unpack_from(d, 1 + 2 * i)[0]
            if not algos.is_grease(v):
                out.append(algos.version_text(v >> 8, v & 0xFF))
        return out
    return None


EXTENSIONS = {
    0: ("server_name_indication", _p_sni),
    1: ("max_fragment_length", _p_max_fragment),
    2: ("client_certificate_url", _p_empty),
    3: ("trusted_ca_keys", _p_ignore),
    4: ("truncated_hmac", _p_empty),
    5: ("status_request", _p_status),
    6: ("user_mapping", _p_ignore),
    7: ("client_authz", _p_ignore),
    8: ("server_authz", _p_ignore),
    9: ("cert_type", _p_cert_type),
    10: ("supported_groups", _p_groups),
    11: ("ec_points_formats", _p_points),
    12: ("srp", _p_srp),
    13: ("signature_algorithms", _p_sigs),
    16: ("application_layer_protocol_negotiation", _p_alpn),
    35: ("session_ticket", _p_ticket),
    43: ("supported_versions", _p_versions),
    0xFF01: ("renegotiation_info", _p_ignore),
}


def extension_map(hello: Hello) -> dict | None:
    """``extensions`` of ``tls.detailed.client_hello`` / ``server_hello``."""
    if not hello.extensions or not hello.ext_ok:
        return None
    parsed: dict = {}
    unparsed: list[str] = []
    for code, data in hello.extensions:
        if algos.is_grease(code):
            continue
        spec = EXTENSIONS.get(code)
        if spec is None:
            unparsed.append(str(code))
            continue
        label, fn = spec
        value = fn(data)
        if value is None:
            unparsed.append(label)
        else:
            parsed[label] = value
    if unparsed:
        parsed["_unparsed_"] = unparsed
    return parsed
