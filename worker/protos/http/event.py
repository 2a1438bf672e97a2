"""HTTP transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/http/http.go: newTransaction`` and ``event.go``).

Messages come in as bytes (``HttpMessage``); strings are made here. Nothing
here mutates a message: redaction and body decoding work on copies.
"""
from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
import zlib
from urllib.parse import quote_from_bytes, quote_plus, urlsplit

from worker.ecs import transaction_event, tuple_item
from worker.protos.http.config import HttpConfig
from worker.protos.http.parser import HttpMessage

_AUTH_LINE = re.compile(rb"(?im)^((?:proxy-)?authorization:)([^\r\n]*)")
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


def _s(b: bytes) -> str:
    if type(b) is bytes:
        return _sb(b)
    return b.decode("utf-8", "replace")


def _sb(b: bytes) -> str:
    # compiled: a direct UTF-8 decode (b is typed bytes), no method look-up
    return b.decode("utf-8", "replace")


# status phrase -> its lower-cased text (few distinct ones); bounded
_PHRASES: dict = {}


def to_event(req: HttpMessage | None, resp: HttpMessage | None, cfg: HttpConfig, tcptuple) -> dict:
    """One event for a transaction; either side may be None (unmatched).

    Runs once per transaction: the common case (no body decoding, no header
    export, plain ASCII target) takes no detour through generic helpers.
    Keys are inserted in the order Packetbeat writes them."""
    status = "OK"
    notes: list[str] = []           # the request's notes, then the response's
    http: dict = {}
    fl = cfg.event_flags
    decode = fl[0]
    if req is not None:
        body = _side_body(req, resp is None, "Unmatched request", decode, fl[5], notes)
        if resp is None:
            status = "Error"
        secret_keys = fl[1]
        fast = None
        if not secret_keys and not (req.content_length > 0 and req.save_body
                                    and b"urlencoded" in req.content_type):
            fast = _fast_target(req.uri)
        if fast is not None:
            path = fast[0]
            params = fast[1]
        else:
            path, params = extract_parameters(req.uri, req, body, secret_keys)
        rh = req.headers
        hi = _host_info(rh.get(b"host"), tuple_item(tcptuple, 3))
        host = hi[0]
        port = hi[1]
        dst_domain = ""
        related_ip: list[str] = []
        related_hosts: list[str] = []
        if host:
            if hi[2]:
                related_ip.append(host)
            else:
                dst_domain = host
                related_hosts.append(host)
        if hi[3]:
            notes.append("Host header port number mismatch")
        real_ip = real_ip_of(req, cfg) if fl[2] else ""
        if real_ip:
            related_ip.append(real_ip)

        method = _s(req.method)
        request: dict = {"method": method, "bytes": req.size}
        referrer = rh.get(b"referer")
        if referrer:
            request["referrer"] = _s(referrer)
            rhost = urlsplit(_s(referrer)).hostname if b"//" in referrer else None
            if rhost:
                related_hosts.append(rhost)
        _put_body(request, req, body)
        headers, raw = _headers_and_raw(req, cfg)
        request["headers"] = headers
        if req.version:
            http["version"] = _s(req.version)
        http["request"] = request
        if fast is not None and hi[4] is not None:
            url = _fast_url(hi, fast)
        else:
            url = make_url(host, port, path, params)
        ua = rh.get(b"user-agent")
        raw_request = _s(raw + body if req.send_body else raw) if fl[3] else None
        auth = rh.get(b"authorization")
        user = basic_auth_user(auth) if auth else ""
    if resp is not None:
        body = _side_body(resp, req is None, "Unmatched response", decode, fl[5], notes)
        if req is None or resp.status_code >= 400:
            status = "Error"
        response: dict = {"status_code": resp.status_code, "bytes": resp.size}
        if resp.status_phrase:
            phrase = _PHRASES.get(resp.status_phrase)
            if phrase is None:
                phrase = _s(resp.status_phrase).lower()
                if len(_PHRASES) >= 1024:
                    _PHRASES.clear()
                _PHRASES[resp.status_phrase] = phrase
            response["status_phrase"] = phrase
        _put_body(response, resp, body)
        headers, raw = _headers_and_raw(resp, cfg)
        response["headers"] = headers
        http["response"] = response
        if "version" not in http and resp.version:
            http["version"] = _s(resp.version)
        raw_response = _s(raw + body if resp.send_body else raw) if fl[4] else None

    ev = transaction_event(
        "http", tcptuple,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status,
        notes,
    )
    if req is not None:
        if dst_domain:
            ev["destination"]["domain"] = dst_domain
            ev["server"]["domain"] = dst_domain
        if real_ip:
            ev["network"]["forwarded_ip"] = real_ip
        related = ev["related"]
        if related_ip:
            rips = related["ip"]
            for ip in related_ip:
                if ip not in rips:
                    rips.append(ip)
        if related_hosts:
            if len(related_hosts) == 1:
                related["hosts"] = related_hosts         # a list of this event's own
            else:
                related["hosts"] = list(dict.fromkeys(related_hosts))
        if user:
            related["user"] = [user]
        ev["url"] = url
        if ua:
            ev["user_agent"] = {"original": _s(ua)}
        if raw_request is not None:
            ev["request"] = raw_request
        ev["method"] = method
        ev["query"] = method + " " + path
        if user:
            ev["user"] = {"name": user}
    if resp is not None and raw_response is not None:
        ev["response"] = raw_response
    ev["http"] = http
    return ev


# --------------------------------------------------------------- headers

def _headers_and_raw(msg: HttpMessage, cfg: HttpConfig) -> tuple[dict, bytes]:
    """The exported header map and the raw header text, redacted as
    configured. ``content-length`` (and ``content-type`` when present) are
    always exported, as Packetbeat does."""
    out: dict = {"content-length": msg.content_length}
    if msg.content_type:
        out["content-type"] = _s(msg.content_type)
    raw = msg.raw_headers
    fl = cfg.event_flags
    redact_auth = fl[6] and msg.is_request
    if redact_auth:
        raw = _AUTH_LINE.sub(_stars, raw)
    if fl[7]:
        cookie = b"cookie" if msg.is_request else b"set-cookie"
        names = cfg.header_names
        for name, value in msg.headers.items():
            if name in (b"content-length", b"content-type"):
                continue
            sname = _s(name)
            if not cfg.all_headers and sname not in names:
                continue
            if name in cfg.redacted_headers:
                value = b"REDACTED"
            if redact_auth and name in (b"authorization", b"proxy-authorization") and value:
                value = b"*"
            if cfg.split_cookie and name == cookie:
                out[sname] = split_cookies(_s(value))
            else:
                out[sname] = _s(value)
    return out, raw


def _stars(m) -> bytes:
    """An Authorization line with its value replaced by as many ``*``."""
    return m.group(1) + b"*" * len(m.group(2))


def split_cookies(value: str) -> dict[str, str]:
    """``a=1; b="2"`` -> {"a": "1", "b": "2"} (names lower-cased, quotes removed)."""
    cookies: dict[str, str] = {}
    for part in value.split(";"):
        name, eq, val = part.partition("=")
        if not eq:
            continue
        val = val.strip()
        if len(val) > 1 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        cookies[name.strip().lower()] = val
    return cookies


def basic_auth_user(value: bytes) -> str:
    """User name of an ``Authorization: Basic ...`` value, or ""."""
    if len(value) < 6 or value[:6].lower() != b"basic ":
        return ""
    token = value[6:].strip()
    try:
        raw = base64.b64decode(token + b"=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return ""
    user, colon, _ = raw.partition(b":")
    return _s(user) if colon else ""


def real_ip_of(msg: HttpMessage, cfg: HttpConfig) -> str:
    """First address of the configured real-IP header (``a, b, c`` -> ``a``)."""
    if not cfg.real_ip_name:
        return ""
    value = msg.headers.get(cfg.real_ip_name)
    if not value:
        return ""
    return _s(value.split(b",", 1)[0].strip(b" \t"))


# ------------------------------------------------------------------ body

def _put_body(side: dict, msg: HttpMessage, body: bytes) -> None:
    shown = msg.send_body and bool(body)
    nbytes = len(body) if shown else msg.content_length
    out: dict = {}
    if nbytes:
        out["bytes"] = nbytes
    if shown:
        out["content"] = _s(body)
    if out:
        side["body"] = out
    if msg.save_body and body:
        side["mime_type"] = sniff_mime(body)


def _side_body(msg: HttpMessage, alone: bool, unmatched: str, decode: bool, max_size: int, notes: list):
    """One side of a transaction: its notes (then ``unmatched`` when it is ``alone``)
    added to ``notes``, and its body as the event shows it: its codings undone when
    ``decode`` (http.decode_body) and the body is saved; a failure's note follows."""
    if msg.notes:
        notes.extend(msg.notes)
    if alone:
        notes.append(unmatched)
    body = msg.body
    if body and msg.save_body and decode and msg.encodings:
        body, note = decode_body(body, msg.encodings, max_size)
        if note:
            notes.append(note)
    return body


def decode_body(body: bytes, encodings: list[bytes], max_size: int) -> tuple[bytes, str]:
    """Undo content/transfer codings (applied left to right, undone right to
    left). Returns (body, note); on failure the note says why and the body is
    what could be decoded (empty if an outer coding failed)."""
    for idx in range(len(encodings) - 1, -1, -1):
        coding = encodings[idx]
        try:
            body = _decode_one(body, coding, max_size)
        except (zlib.error, ValueError) as e:
            if idx != 0:
                body = b""
            return body, "unable to decode body using %s encoding: %s" % (_s(coding), e)
    return body, ""


def _decode_one(body: bytes, coding: bytes, max_size: int) -> bytes:
    if coding in (b"gzip", b"x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, max_size)
    if coding == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, max_size)       # zlib wrapper (RFC 9110)
        except zlib.error:
            return _inflate(body, -zlib.MAX_WBITS, max_size)      # raw deflate, as many servers send
    raise ValueError("unsupported content encoding")


def _inflate(data: bytes, wbits: int, max_size: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, max_size)
    # a body cut at max_message_size is a valid prefix: keep what inflated
    return out


_SNIFF = (
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"OggS\x00", "application/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\x1f\x8b\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (b"\x00asm", "application/wasm"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
)
_HTML_TAGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
              b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--")
_BINARY = frozenset(list(range(0x00, 0x09)) + [0x0B, 0x0E, 0x0F] + list(range(0x10, 0x1B)) + list(range(0x1C, 0x20)))


def sniff_mime(body: bytes) -> str:
    """MIME type from the first bytes (a subset of the WHATWG sniffing table
    that Go's ``http.DetectContentType`` implements)."""
    head = body[:512]
    for magic, mime in _SNIFF:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:14] == b"WEBPVP":
        return "image/webp"
    text = head.lstrip(b"\t\n\x0c\r ")
    upper = text[:16].upper()
    for tag in _HTML_TAGS:
        if upper.startswith(tag) and len(text) > len(tag) and text[len(tag)] in b" >":
            return "text/html; charset=utf-8"
    if text.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if head.startswith((b"\xfe\xff", b"\xff\xfe")):
        return "text/plain; charset=utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "text/plain; charset=utf-8"
    if any(c in _BINARY for c in head):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


# ------------------------------------------------------- url and params

def _unescape(s: bytes, plus: bool) -> bytes | None:
    """Percent-decoding as Go's url.(Query|Path)Unescape; None when malformed."""
    if plus:
        s = s.replace(b"+", b" ")
    if b"%" not in s:
        return s
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == 0x25:
            if i + 2 >= n or s[i + 1] not in _HEXDIGITS or s[i + 2] not in _HEXDIGITS:
                return None
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _parse_query(q: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Go's url.ParseQuery: pairs in order, and whether any pair was bad
    (pairs with ';' or a malformed escape are skipped)."""
    pairs: list[tuple[bytes, bytes]] = []
    bad = False
    for part in q.split(b"&"):
        if not part:
            continue
        if b";" in part:
            bad = True
            continue
        k, _, v = part.partition(b"=")
        if b"%" in part or b"+" in part:
            k, v = _unescape(k, True), _unescape(v, True)
            if k is None or v is None:
                bad = True
                continue
        pairs.append((k, v))
    return pairs, bad


def _group(pairs, secret_keys) -> dict[bytes, list[bytes]]:
    values: dict[bytes, list[bytes]] = {}
    for k, v in pairs:
        if secret_keys and k.lower() in secret_keys:
            v = b"xxxxx"
        if k in values:
            values[k].append(v)
        else:
            values[k] = [v]
    return values


# Bytes quote_plus() leaves alone (urllib's always-safe set; safe="").
_PLAIN_PARAM = re.compile(rb"[A-Za-z0-9_.~-]*\Z")


def _quote_param(b: bytes) -> str:
    return b.decode("ascii") if _PLAIN_PARAM.match(b) else quote_plus(b, safe="")


def _encode(values: dict[bytes, list[bytes]]) -> str:
    quote = _quote_param
    return "&".join([quote(k) + "=" + quote(v) for k in sorted(values) for v in values[k]])


# A query of plain bytes only: no escapes, no '+', no ';' (what _encode
# would write as it is, once the pairs are sorted)
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9_.~=&-]*\Z")


def _plain_query(q: bytes) -> str | None:
    """``_encode(_group(_parse_query(q)[0], ()))`` for a query of plain bytes
    (none a value would escape), or None for any other query. A query already
    in that form (pairs with '=', keys strictly ascending) is returned as it is."""
    if _PLAIN_QUERY.match(q) is None:
        return None
    values: dict = {}
    canonical = True
    prev = None
    for part in q.split(b"&"):
        if not part:
            canonical = False
            continue
        k, eq, v = part.partition(b"=")
        if b"=" in v:
            return None                 # quote_plus would escape that '='
        if not eq or (prev is not None and k <= prev):
            canonical = False
        prev = k
        lst = values.get(k)
        if lst is None:
            values[k] = [v]
        else:
            lst.append(v)
    if canonical:
        return q.decode("ascii")
    return b"&".join([k + b"=" + v for k in sorted(values) for v in values[k]]).decode("ascii")


def _split_target(uri: bytes) -> tuple[bytes, bytes]:
    """(escaped path, raw query) of a request target."""
    target = uri.split(b"#", 1)[0] if b"#" in uri else uri
    if target.startswith(b"/") or target == b"*":
        path, _, query = target.partition(b"?")
        return path, query
    m = re.match(rb"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*", target)
    if m:
        path, _, query = target[m.end():].partition(b"?")
        return path, query
    return b"", b""       # authority form (CONNECT host:port) or opaque


def extract_parameters(uri: bytes, msg: HttpMessage, body: bytes, secret_keys) -> tuple[str, str]:
    """(path, params): the unescaped path, and the query-string parameters
    plus the fields of a url-encoded form body, with the values of secret
    keys replaced by ``xxxxx``, re-encoded with sorted keys."""
    raw_path, raw_query = _split_target(uri)
    path = _unescape(raw_path, False)
    if path is None:
        return "", ""
    is_form = msg.content_length > 0 and msg.save_body and b"urlencoded" in msg.content_type
    if not is_form and not secret_keys:
        if not raw_query:
            return _s(path), ""
        plain = _plain_query(raw_query)
        if plain is not None:
            return _s(path), plain
    if raw_query:
        pairs, _ = _parse_query(raw_query)
        values = _group(pairs, secret_keys)
    else:
        values = {}
    if is_form:
        form, bad = _parse_query(body)
        if bad:
            return _s(path), ""
        values.update(_group(form, secret_keys))
    return _s(path), _encode(values)


# (Host header value, server port) -> what an event takes from them (_host_info); bounded
_HOSTS: dict = {}
_HOSTS_MAX = 4096


def _host_info(host_value, dport) -> tuple:
    """(host, port, host is an address, Host port differs from the server's,
    URL templates or None, "http://host[:port]") of a request's Host header
    value (bytes or None) on a connection to ``dport``: the same on every
    request of a connection, mostly of all connections to a server, so memoised.
    The URL templates (when there is a host and a port) are ``make_url``'s dict
    for a plain path, with placeholders, one per (extension?, query?)."""
    key = (host_value, dport)
    hi = _HOSTS.get(key)
    if hi is not None:
        return hi
    host, port = extract_host_header(host_value.decode("utf-8", "replace")) if host_value else ("", 0)
    is_ip = bool(host) and _is_ip(host)
    mismatch = False
    if port == 0:
        port = dport
    elif port != dport:
        mismatch = True
    templates = None
    prefix = ""
    if host and port > 0:
        prefix = "http://" + _host_port(host, port)
        base = {"scheme": "http", "domain": host}
        if port != 80:
            base["port"] = port
        templates = []
        for ext in (False, True):
            for query in (False, True):
                t = dict(base)
                t["path"] = None
                if ext:
                    t["extension"] = None
                if query:
                    t["query"] = None
                t["full"] = None
                templates.append(t)
        templates = tuple(templates)
    if len(_HOSTS) >= _HOSTS_MAX:
        _HOSTS.clear()
    hi = _HOSTS[key] = (host, port, is_ip, mismatch, templates, prefix)
    return hi


def _fast_url(hi: tuple, fast: tuple) -> dict:
    """make_url(host, port, path, query) for a plain target (_fast_target) on
    a host with templates (_host_info): a template copied and filled in (the
    template of the target's shape holds the keys in make_url's order)."""
    path = fast[0]
    query = fast[1]
    ext = fast[2]
    full = hi[5] + path
    templates = hi[4]
    url = templates[(0 if ext is None else 2) + (1 if query else 0)]
    url = url.copy()
    url["path"] = path
    if ext is not None:
        url["extension"] = ext
    if query:
        url["query"] = query
        full = full + "?" + query
    url["full"] = full
    return url


def _query_char(c: int) -> bool:
    # a byte _PLAIN_QUERY accepts: [A-Za-z0-9_.~=&-]
    return ((0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (0x30 <= c <= 0x39) or c == 0x5F
            or c == 0x2E or c == 0x7E or c == 0x3D or c == 0x26 or c == 0x2D)


def _path_char(c: int) -> bool:
    # a byte _PLAIN_PATH accepts: [A-Za-z0-9_.~$&+,/:;=@-] (ASCII, no '%')
    return ((0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (0x30 <= c <= 0x39) or c == 0x5F
            or c == 0x2E or c == 0x7E or c == 0x24 or c == 0x26 or c == 0x2B or c == 0x2C
            or c == 0x2F or c == 0x3A or c == 0x3B or c == 0x3D or c == 0x40 or c == 0x2D)


def _key_greater(uri: bytes, a0: int, a1: int, b0: int, b1: int) -> bool:
    """uri[b0:b1] > uri[a0:a1] (bytes order) without slicing."""
    n = min(a1 - a0, b1 - b0)
    i = 0
    while i < n:
        x = uri[a0 + i]
        y = uri[b0 + i]
        if x != y:
            return y > x
        i += 1
    return b1 - b0 > a1 - a0


def _fast_target(uri: bytes):
    """(path, params, URL extension or None) of an origin-form target whose
    path is plain (only bytes that neither unescaping nor quoting change) and
    whose query is already in the form extract_parameters writes (plain bytes,
    every pair with one '=', keys strictly ascending) or absent; None for any
    other target (the general path). Equal to extract_parameters (no form body,
    no secret keys) and to make_url's path, extension and query for those."""
    n = len(uri)
    if n == 0 or uri[0] != 0x2F:
        return None
    i = 1
    slash = 0
    dot = -1
    while i < n:
        c = uri[i]
        if c == 0x3F or c == 0x23:     # '?' '#'
            break
        if not _path_char(c):
            return None
        if c == 0x2F:
            slash = i
        elif c == 0x2E:
            dot = i
        i += 1
    pend = i
    ext = None
    if dot > slash and dot != pend - 1:
        ext = uri[dot + 1:pend].decode("ascii")
    path = uri[:pend].decode("ascii")
    if i == n or uri[i] == 0x23:
        return path, "", ext
    q0 = i + 1
    i = q0
    part = q0               # start of the current pair
    eq = -1                 # its '=', or -1
    pk0 = -1                # the previous key
    pk1 = -1
    while True:
        c = uri[i] if i < n else 0x23
        if c == 0x26 or c == 0x23:     # '&', or the end of the query
            if i == part:
                if c == 0x23 and i == q0:
                    return path, "", ext       # "?" with nothing after it
                return None                    # an empty pair: not the written form
            if eq < 0:
                return None
            if pk0 >= 0 and not _key_greater(uri, pk0, pk1, part, eq):
                return None
            pk0 = part
            pk1 = eq
            if c == 0x23:
                break
            part = i + 1
            eq = -1
        elif c == 0x3D:
            if eq >= 0:
                return None
            eq = i
        elif not _query_char(c):
            return None
        i += 1
    return path, uri[q0:i].decode("ascii"), ext


def extract_host_header(header: str) -> tuple[str, int]:
    """``host[:port]`` -> (host, port or 0); IPv6 brackets removed."""
    if not header or _is_ip(header):
        return header, 0
    port = 0
    pos = header.rfind(":")
    if pos != -1:
        tail = header[pos + 1:]
        if tail.isdigit() and 0 < int(tail) < 65536:
            header, port = header[:pos], int(tail)
    if len(header) > 1 and header[0] == "[" and header[-1] == "]" and _is_ip(header[1:-1]):
        header = header[1:-1]
    return header, port


def _is_ip(s: str) -> bool:
    if not s or not (s[0].isdigit() or ":" in s):
        return False            # cheap: host names rarely start with a digit
    return _is_ip_text(s)


@functools.lru_cache(maxsize=4096)
def _is_ip_text(s: str) -> bool:
    # memoised: a Host header holding an address (``10.0.0.1:8080``) repeats
    # on every request, and ipaddress fails it with an exception each time
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


# Text quote_from_bytes(..., safe="$&+,/:;=@") leaves alone.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~$&+,/:;=@-]*\Z")


def _host_port(host: str, port: int) -> str:
    """The authority of an http URL: the host (an IPv6 address in brackets), then
    ``:port`` unless the port is 80."""
    if port != 80:
        return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    if ":" in host:
        return "[%s]" % host
    return host


def make_url(domain: str, port: int, path: str, query: str) -> dict:
    url: dict = {"scheme": "http"}
    if domain:
        url["domain"] = domain
    if port and port != 80:
        url["port"] = port
    if path:
        url["path"] = path
        last = path.rsplit("/", 1)[-1]
        if "." in last and not last.endswith("."):
            url["extension"] = last.rsplit(".", 1)[1]
    if query:
        url["query"] = query
    if domain and port > 0:
        host = _host_port(domain, port)
        if not path:
            p = ""
        elif _PLAIN_PATH.match(path):
            p = path                  # what quote_from_bytes would return
        else:
            p = quote_from_bytes(path.encode("utf-8", "surrogateescape"), safe="$&+,/:;=@")
        if p and not p.startswith("/"):
            p = "/" + p
        url["full"] = "http://%s%s%s" % (host, p, "?" + query if query else "")
    return url
