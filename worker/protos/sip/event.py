"""SIP message -> event dict, with Packetbeat 8's field names
(``packetbeat/protos/sip/plugin.go: buildEvent`` and ``event.go``).

One event per message. Packetbeat's fields, as it fills them:

- root ``type: sip``, ``status`` ``Error`` for a status code >= 400 else ``OK``;
- ``event``: kind ``event``, category ``[network]`` (+ ``authentication`` when
  the message has an ``Authorization`` header), type ``[info, protocol]``,
  dataset ``sip``, action ``sip-<method>`` (a response: ``sip-<CSeq
  method>``), outcome (none below 200, ``success`` for 2xx, ``failure`` from
  300), reason (the reason phrase), sequence (the CSeq number), start = end =
  the message's time, duration 0, original (``keep_original``);
- ``source``/``destination`` (and ``client``/``server``, the same) = the
  endpoints the message travelled between; ``network.iana_number``,
  ``application``, ``protocol`` ``sip``, ``community_id``; ``related.ip``
  (SDP owner address, source, destination), ``related.user`` and
  ``related.hosts`` from the URIs, the Authorization user and the SDP;
  ``user.name`` from the Authorization header;
- ``sip``: type, version, method, uri.*, code, status, from.*, to.*,
  contact.*, via.original, call_id, cseq.code/method, user_agent.original,
  accept, allow, supported, content_type, content_length, max_forwards,
  private.uri.* (``P-Associated-URI``), auth.* (``parse_authorization``),
  sdp.* (``parse_body``). Zero numbers and empty strings are left out.

Where Packetbeat 8 is plainly wrong this analyser writes what the message
says, and docs/protocols/sip.md lists each case: ``sip.contact.*`` come from
the Contact header (Packetbeat reads the To header for them); a password in a
URI's user part is dropped (Packetbeat keeps ``user:password``); URI
parameters and headers (``;...``, ``?...``) are not part of the host; the
``P-Associated-URI`` value is read as a name-addr (``<...>``);
``network.transport`` / ``iana_number`` are the message's own transport
(Packetbeat writes its ``transport_protocol`` option, ``udp`` by default, and
``17`` always); ``Allow`` / ``Supported`` on several lines are joined
(Packetbeat keeps the last line); an SDP body is recognised whatever the case
and parameters of its Content-Type and with LF-only lines.
"""
from __future__ import annotations

import socket

from worker.ecs import transaction_event
from worker.protos.sip.config import SipConfig
from worker.protos.sip.parser import SipMessage

_IANA = {6: "6", 17: "17"}
MAX_AUTH = 8192         # bytes of an Authorization value read (its parameters are short)


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _int(b: bytes | None) -> int:
    if b is None:
        return 0
    b = b.strip()
    return int(b) if b.isdigit() and len(b) <= 10 else 0


def _split_outside(value: bytes, sep: int, first: bool = False) -> list[bytes]:
    """``value`` split at ``sep`` bytes that are outside quotes and <...>
    (``first``: only the first element is wanted)."""
    out: list[bytes] = []
    start = 0
    quoted = False
    angle = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == 0x5C:          # backslash escape inside a quoted string
                i += 1
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x3C:
            angle += 1
        elif c == 0x3E and angle:
            angle -= 1
        elif c == sep and not angle:
            out.append(value[start:i])
            if first:
                return out
            start = i + 1
        i += 1
    out.append(value[start:])
    return out


def _params(text: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for p in text.split(b";"):
        k, eq, v = p.partition(b"=")
        if eq:
            out[k.strip().lower()] = v.strip()
    return out


def parse_uri(uri: bytes) -> tuple[bytes, bytes, bytes, int, dict]:
    """(scheme, user, host, port, uri parameters) of a SIP/SIPS/TEL URI, as
    Packetbeat's ``parseURI`` splits it; the password of ``user:password``
    is dropped."""
    uri = uri.strip()
    colon = uri.find(b":")
    if colon < 0:
        return b"", b"", b"", 0, {}
    scheme = uri[:colon]
    rest = uri[colon + 1:]
    params: dict = {}
    semi = rest.find(b";")
    if semi >= 0:
        params = _params(rest[semi + 1:].split(b"?", 1)[0])
        rest = rest[:semi]
    q = rest.find(b"?")
    if q >= 0:
        rest = rest[:q]
    user = b""
    at = rest.rfind(b"@")
    if at >= 0:
        user = rest[:at].split(b":", 1)[0]
        rest = rest[at + 1:]
    port = 0
    if rest.startswith(b"["):
        close = rest.find(b"]")
        if close >= 0:
            host, tail = rest[:close + 1], rest[close + 1:]
            if tail.startswith(b":"):
                port = _int(tail[1:])
        else:
            host = rest
    else:
        host, sep, p = rest.rpartition(b":")
        if sep:
            port = _int(p)
        else:
            host = rest
    return scheme, user, host.strip(), port, params


def parse_name_addr(value: bytes) -> tuple[bytes, bytes, dict]:
    """(display name, URI, header parameters) of a From/To/Contact value
    (``"Alice" <sip:alice@host>;tag=1`` or ``sip:alice@host;tag=1``)."""
    value = value.strip()
    lt = value.find(b"<")
    if lt >= 0:
        display = value[:lt].strip(b"'\"\t ")
        gt = value.find(b">", lt)
        if gt < 0:
            return display, value[lt + 1:], {}
        return display, value[lt + 1:gt], _params(value[gt + 1:])
    semi = value.find(b";")
    if semi < 0:
        return b"", value, {}
    return b"", value[:semi], _params(value[semi + 1:])


class _Related:
    """``related.user`` / ``hosts`` / ``ip`` of one event, in the order Packetbeat adds them."""
    __slots__ = ("user", "hosts", "ip")

    def __init__(self) -> None:
        self.user: list[str] = []
        self.hosts: list[str] = []
        self.ip: list[str] = []


def _username_ok(u: bytes) -> bool:
    return bool(u) and u != b" " and u != b"-"


_CACHE_MAX = 4096
# URI bytes -> (uri object, user, host, URI parameters); name-addr value ->
# (object, user, host). The values of a dialog (From, To, Contact, the
# Request-URI) repeat in every message: parsed once, copied per event.
_URIS: dict = {}
_NAME_ADDRS: dict = {}


def _uri_parts(uri: bytes) -> tuple:
    hit = _URIS.get(uri)
    if hit is not None:
        return hit
    scheme, user, host, port, params = parse_uri(uri)
    u: dict = {}
    if uri:
        u["original"] = _s(uri)
    if scheme:
        u["scheme"] = _s(scheme)
    user_s = None
    if _username_ok(user):
        user_s = u["username"] = _s(user)
    host_s = None
    if host:
        host_s = u["host"] = _s(host)
    if port:
        u["port"] = port
    if len(_URIS) >= _CACHE_MAX:
        _URIS.clear()
    hit = _URIS[uri] = (u, user_s, host_s, params)
    return hit


def _uri_fields(obj: dict, uri: bytes, rel: _Related) -> dict:
    """Fill ``obj["uri"]`` from ``uri``; returns the URI parameters."""
    u, user, host, params = _uri_parts(uri)
    if user is not None:
        if user not in rel.user:
            rel.user.append(user)
    if host is not None:
        if host not in rel.hosts:
            rel.hosts.append(host)
    if u:
        obj["uri"] = dict(u)
    return params


def _name_addr_parts(value: bytes, contact: bool) -> tuple:
    key = (value, contact)
    hit = _NAME_ADDRS.get(key)
    if hit is not None:
        return hit
    display, uri, hparams = parse_name_addr(value)
    obj: dict = {}
    if display:
        obj["display_info"] = _s(display)
    u, user, host, uparams = _uri_parts(uri)
    if u:
        obj["uri"] = u
    if contact:
        transport = uparams.get(b"transport")
        if transport:
            obj["transport"] = _s(transport.lower())
        line = uparams.get(b"line")
        if line:
            obj["line"] = _s(line)
        expires = _int(hparams.get(b"expires"))
        if expires:
            obj["expires"] = expires
        q = hparams.get(b"q")
        if q:
            try:
                qv = float(q)
            except ValueError:
                qv = 0.0
            if qv and qv == qv and qv not in (float("inf"), float("-inf")):
                obj["q"] = qv
    else:
        tag = hparams.get(b"tag")
        if tag:
            obj["tag"] = _s(tag)
    if len(_NAME_ADDRS) >= _CACHE_MAX:
        _NAME_ADDRS.clear()
    hit = _NAME_ADDRS[key] = (obj, user, host)
    return hit


def _name_addr(value: bytes, rel: _Related, contact: bool = False) -> dict:
    obj, user, host = _name_addr_parts(value, contact)
    if user is not None:
        if user not in rel.user:
            rel.user.append(user)
    if host is not None:
        if host not in rel.hosts:
            rel.hosts.append(host)
    out = dict(obj)
    if "uri" in out:
        out["uri"] = dict(out["uri"])
    return out


def _auth(value: bytes, rel: _Related, ev: dict) -> dict:
    """``sip.auth`` of an Authorization value: scheme, realm, uri; the user
    goes to ``user.name``. The response, nonce, cnonce... are never kept."""
    value = value[:MAX_AUTH].strip()
    sp = value.find(b" ")
    if sp < 0:
        return {}
    out: dict = {"scheme": _s(value[:sp])}
    for param in _split_outside(value[sp + 1:], 0x2C):
        k, eq, v = param.partition(b"=")
        if not eq:
            continue
        k = k.strip().lower()
        v = v.strip(b"'\" \t")
        if k == b"realm":
            if v:
                out["realm"] = _s(v)
        elif k == b"username":
            if v and v != b"-":
                name = _s(v)
                ev["user"] = {"name": name}
                if name not in rel.user:
                    rel.user.append(name)
        elif k == b"uri":
            scheme, _user, host, port, _p = parse_uri(v)
            u: dict = {}
            if v:
                u["original"] = _s(v)
            if scheme:
                u["scheme"] = _s(scheme)
            if host:
                u["host"] = _s(host)
            if port:
                u["port"] = port
            if u:
                out["uri"] = u
    return out


def _is_ip(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return False
    return True


def _sdp(body: bytes, rel: _Related) -> dict:
    """``sip.sdp`` of an SDP body (RFC 4566): v=, o=, s= and the
    session-level c= line, and the body itself, as Packetbeat reads them."""
    sdp: dict = {"body": {"original": _s(body)}}
    owner: dict = {}
    in_media = False
    for line in body.split(b"\n"):
        k, eq, v = line.partition(b"=")
        if not eq:
            continue
        k = k.strip().lower()
        v = v.strip()
        if k == b"v":
            sdp["version"] = _s(v)
        elif k == b"o":
            if v.startswith(b'"'):
                q = v.find(b'"', 1)
                if q < 0:
                    continue
                user = v[1:q]
                parts = v[q + 1:].strip().split(b" ", 2)
                if len(parts) != 3:
                    continue
            else:
                parts = v.split(b" ", 3)
                if len(parts) != 4:
                    continue
                user = parts[0]
                parts = parts[1:]
            owner = {}
            if user and user != b"-":
                owner["username"] = _s(user)
            if parts[0]:
                owner["session_id"] = _s(parts[0])
            if parts[1]:
                owner["version"] = _s(parts[1])
            ip = parts[2].split(b" ")[-1]
            if ip:
                owner["ip"] = _s(ip)
        elif k == b"s":
            if v and v != b"-":
                sdp["session"] = {"name": _s(v)}
        elif k == b"c":
            if in_media:
                continue
            addr = v.split(b" ")[-1]
            conn = {"info": _s(v)}
            if addr:
                conn["address"] = _s(addr)
            sdp["connection"] = conn
        elif k == b"m":
            in_media = True
    if owner:
        sdp["owner"] = owner
        if "username" in owner:
            if owner["username"] not in rel.user:
                rel.user.append(owner["username"])
        if "ip" in owner and _is_ip(owner["ip"]):
            rel.ip.append(owner["ip"])
    conn = sdp.get("connection")
    if conn and "address" in conn:
        if conn["address"] not in rel.hosts:
            rel.hosts.append(conn["address"])
    return sdp


def _list(values) -> list[str]:
    out: list[str] = []
    for value in values:
        for item in value.lower().split(b","):
            item = item.strip()
            if item:
                out.append(item.decode("utf-8", "replace"))
    return out


def _first_item(value: bytes) -> bytes:
    """The first element of a comma-separated list of name-addrs."""
    return _split_outside(value, 0x2C, True)[0] if b"," in value else value


def _is_sdp(ctype: bytes | None, msg: SipMessage) -> bool:
    if not ctype or not msg.body:
        return False
    if ctype.split(b";", 1)[0].strip().lower() != b"application/sdp":
        return False
    return b"content-encoding" not in msg.headers


# the dialog's header values (see to_event) -> (their fields of ``sip``, the
# names of the fields holding a dict or list, related users, related hosts).
# Bounded (cleared when full).
_DIALOG_PARTS: dict = {}


def _dialog_part(key: tuple) -> tuple:
    """The part of ``sip`` made from the dialog's header values ``key`` (in to_event's order)."""
    allow_v, supported_v, call_id_v, ctype, max_forwards_v, ua_v, pau_v, accept_v, from_v, to_v, contact_v = key
    rel = _Related()
    sip: dict = {}
    if allow_v:
        allow = _list(list(allow_v))
        if allow:
            sip["allow"] = allow
    if call_id_v:
        sip["call_id"] = call_id_v.decode("utf-8", "replace")
    if ctype:
        sip["content_type"] = ctype.lower().decode("utf-8", "replace")
    if max_forwards_v is not None:
        n = _int(max_forwards_v)
        if n:
            sip["max_forwards"] = n
    if supported_v:
        supported = _list(list(supported_v))
        if supported:
            sip["supported"] = supported
    if ua_v:
        sip["user_agent"] = {"original": ua_v.decode("utf-8", "replace")}
    if pau_v is not None:
        priv: dict = {}
        _uri_fields(priv, parse_name_addr(_first_item(pau_v))[1], rel)
        if priv:
            sip["private"] = priv
    if accept_v:
        sip["accept"] = accept_v.lower().decode("utf-8", "replace")
    if from_v:
        sip["from"] = _name_addr(from_v, rel, False)
    if to_v:
        sip["to"] = _name_addr(to_v, rel, False)
    if contact_v:
        sip["contact"] = _name_addr(_first_item(contact_v), rel, True)
    nested = tuple([name for name, value in sip.items() if type(value) is dict or type(value) is list])
    if len(_DIALOG_PARTS) >= _CACHE_MAX:
        _DIALOG_PARTS.clear()
    part = _DIALOG_PARTS[key] = (sip, nested, tuple(rel.user), tuple(rel.hosts))
    return part


# CSeq value -> (number, method, sip.cseq object or None): a request and its
# responses share it. Bounded (cleared when full).
_CSEQS: dict = {}


def _cseq(value: bytes) -> tuple:
    seq = 0
    cseq_method = ""
    obj = None
    parts = value.split(b" ")
    if len(parts) == 2:
        seq = _int(parts[0])
        cseq_method = parts[1].decode("utf-8", "replace").upper()
        if seq:
            if cseq_method:
                obj = {"code": seq, "method": cseq_method}
            else:
                obj = {"code": seq}
        elif cseq_method:
            obj = {"method": cseq_method}
    if len(_CSEQS) >= _CACHE_MAX:
        _CSEQS.clear()
    hit = _CSEQS[value] = (seq, cseq_method, obj)
    return hit


def _copy_value(value):
    """A fresh copy of a cached ``sip`` field: a list of texts, or a dict
    whose values are texts, numbers or one more level of dict."""
    if type(value) is list:
        return list(value)
    out = dict(value)
    for k, v in out.items():
        if type(v) is dict:
            out[k] = dict(v)
    return out


def to_event(msg: SipMessage, cfg: SipConfig, tuple_, transport: int) -> dict:
    """The event of one SIP message. ``tuple_`` is the IpPortTuple of the
    packet direction (source = sender)."""
    code = msg.code
    is_request = msg.is_request
    phrase = msg.phrase
    ev = transaction_event("sip", tuple_, msg.ts, msg.ts, 0, 0, "Error" if code >= 400 else "OK",
                           msg.notes, transport)
    rel = _Related()
    users = rel.user
    hosts = rel.hosts
    headers = msg.headers

    # headers (the last value of a single-valued header, as Packetbeat keeps it).
    # The dialog's headers (From, To, Contact, Call-ID, User-Agent, Allow...)
    # repeat in every message one side sends: their part of ``sip`` is made
    # once per combination of values and copied per event (_dialog_part).
    get = headers.get
    v = get(b"allow")
    allow_v = tuple(v) if v else None
    v = get(b"supported")
    supported_v = tuple(v) if v else None
    v = get(b"call-id")
    call_id_v = v[-1] if v else None
    v = get(b"content-type")
    ctype = v[-1] if v else None
    v = get(b"max-forwards")
    max_forwards_v = v[-1] if v else None
    v = get(b"user-agent")
    ua_v = v[-1] if v else None
    v = get(b"p-associated-uri")
    pau_v = v[0] if v else None
    v = get(b"accept")
    accept_v = v[0] if v else None
    v = get(b"from")
    from_v = v[-1] if v else None
    v = get(b"to")
    to_v = v[-1] if v else None
    v = get(b"contact")
    contact_v = v[0] if v else None
    key = (allow_v, supported_v, call_id_v, ctype, max_forwards_v, ua_v, pau_v, accept_v,
           from_v, to_v, contact_v)
    part = _DIALOG_PARTS.get(key)
    if part is None:
        part = _dialog_part(key)
    sip = dict(part[0])     # one copy of the dialog's fields, then this message's

    # start line
    if is_request:
        method = msg.method.decode("utf-8", "replace")
        sip["type"] = "request"
        sip["method"] = method.upper()
        _uri_fields(sip, msg.uri, rel)
    else:
        sip["type"] = "response"
        if code:
            sip["code"] = code
        if phrase:
            sip["status"] = phrase.decode("utf-8", "replace")
    sip["version"] = msg.version.decode("ascii", "replace")

    for name in part[1]:
        sip[name] = _copy_value(sip[name])
    for user in part[2]:
        if user not in users:
            users.append(user)
    for host in part[3]:
        if host not in hosts:
            hosts.append(host)
    v = headers.get(b"content-length")
    if v:
        n = _int(v[-1])
        if n:
            sip["content_length"] = n
    v = headers.get(b"via")
    if v:
        if len(v) == 1:
            b = v[0]
            sip["via"] = {"original": [b.decode("utf-8", "replace")]}
        else:
            seen: list[str] = []
            for b in v:
                t = b.decode("utf-8", "replace")
                if t not in seen:
                    seen.append(t)
            sip["via"] = {"original": seen}
    v = headers.get(b"cseq")
    cseq_method = ""
    seq = 0
    if v:
        b = v[-1]
        cs = _CSEQS.get(b)
        if cs is None:
            cs = _cseq(b)
        seq, cseq_method, obj = cs
        if obj is not None:
            sip["cseq"] = dict(obj)
    auth = headers.get(b"authorization")
    if auth is not None and cfg.parse_authorization:
        a = _auth(auth[0], rel, ev)
        if a:
            sip["auth"] = a
    if cfg.parse_body and _is_sdp(ctype, msg):
        sip["sdp"] = _sdp(msg.body, rel)

    # event.*
    event = ev["event"]
    event["type"] = ["info", "protocol"]
    event["category"] = ["network", "authentication"] if auth is not None else ["network"]
    if is_request:
        event["action"] = "sip-" + method.lower()
    else:
        event["action"] = "sip-" + cseq_method.lower()
        if code >= 300:
            event["outcome"] = "failure"
        elif code >= 200:
            event["outcome"] = "success"
        if phrase:
            event["reason"] = sip["status"]
    if seq:
        event["sequence"] = seq
    if cfg.keep_original:
        event["original"] = msg.raw.decode("utf-8", "replace")

    network = ev["network"]
    network["iana_number"] = _IANA.get(transport) or str(transport)
    network["application"] = "sip"

    # related: the SDP owner address first, as Packetbeat adds it before the endpoints
    ips = rel.ip
    if ips:
        for ip in ev["related"]["ip"]:
            if ip not in ips:
                ips.append(ip)
        related: dict = {"ip": ips}
    else:
        related = ev["related"]
    if users:
        related["user"] = users
    if hosts:
        related["hosts"] = hosts
    ev["related"] = related

    if is_request:
        if cfg.send_request:
            ev["request"] = msg.raw.decode("utf-8", "replace")
    elif cfg.send_response:
        ev["response"] = msg.raw.decode("utf-8", "replace")
    ev["sip"] = sip
    return ev
