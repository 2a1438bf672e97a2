"""DNS transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/dns/dns.go``: ``publishTransaction``,
``addDNSToMapStr``, ``optToMapStr``, ``rrToMapStr``, ``dnsToString``).

The ``dns`` object describes the response when there is one, else the query.
Names lose their trailing root dot (not NSEC's next domain name, as 8.x).
Record TTLs are strings, as Packetbeat writes them. ``method``, ``query`` and
``resource`` come from the query (the response when the query was not seen).
"""
from __future__ import annotations

import base64
import socket
import time

from worker.ecs import transaction_event
from worker.protos.dns import parser as p
from worker.protos.dns.config import DnsConfig
from worker.protos.dns.names import (CLASSES, TYPES, algorithm_text, class_text, hash_text, opcode_text, rcode_text,
                                     rdata_text, salt_text, trim_dot, txt_text, type_bits_text,
                                     type_text)
from worker.protos.dns.trans import Transaction

# the record types as module constants (no attribute lookup on ``p`` per record)
(T_A, T_AAAA, T_CNAME, T_DNSKEY, T_DS, T_MX, T_NS, T_NSEC, T_NSEC3, T_NSEC3PARAM, T_OPT, T_PTR, T_RRSIG,
 T_SOA, T_SRV, T_TXT) = (p.T_A, p.T_AAAA, p.T_CNAME, p.T_DNSKEY, p.T_DS, p.T_MX, p.T_NS, p.T_NSEC, p.T_NSEC3,
                         p.T_NSEC3PARAM, p.T_OPT, p.T_PTR, p.T_RRSIG, p.T_SOA, p.T_SRV, p.T_TXT)
_FLAG_NAMES = ((p.AA, "AA", "aa"), (p.TC, "TC", "tc"), (p.RD, "RD", "rd"), (p.RA, "RA", "ra"),
               (p.AD, "AD", "ad"), (p.CD, "CD", "cd"))


def to_event(trans: Transaction, cfg: DnsConfig, psl) -> dict:
    """One event for a transaction; ``psl`` is a
    :class:`~worker.protos.dns.publicsuffix.PublicSuffixList`."""
    req = trans.request
    resp = trans.response
    status = "OK" if req is not None and resp is not None and resp.rcode == 0 else "Error"
    tup = trans.tuple
    # unpacked, not indexed: a NamedTuple's item slot calls a Python-level __getitem__
    transport, _sip, _sport, _dip, _dport = tup
    ev = transaction_event(
        "dns", tup,
        req.ts if req is not None else None,
        resp.ts if resp is not None else None,
        req.size if req is not None else 0,
        resp.size if resp is not None else 0,
        status, trans.notes, transport)
    first = req if req is not None else resp
    ev["method"] = _OPCODE_TEXT[(first.bits >> 11) & 0xF]
    if first.questions:
        qname, query = _query(first.questions[0])
        ev["query"] = query
        ev["resource"] = qname
    dns = {"type": "answer" if resp is not None else "query"}
    ips = _add_message(dns, resp if resp is not None else req, cfg, psl)
    ev["dns"] = dns
    if ips:
        related = ev["related"]["ip"]
        for ip in ips:
            if ip not in related:
                related.append(ip)
    if cfg.send_request and req is not None:
        ev["request"] = message_text(req)
    if cfg.send_response and resp is not None:
        ev["response"] = message_text(resp)
    return ev


_OPCODE_TEXT = [opcode_text(_code) for _code in range(16)]
_RCODE_TEXT: dict = {}      # rcode (12 bits with EDNS) -> text, at most 4096 entries
_QUERY_MEMO: dict = {}      # question tuple -> (name without the root dot, ``query`` text); cleared at 65536


def _rcode_text(code: int) -> str:
    text = _RCODE_TEXT.get(code)
    if text is None:
        text = _RCODE_TEXT[code] = rcode_text(code)
    return text


def _query(q: tuple) -> tuple:
    """(name without the root dot, the event's ``query`` text) of a question."""
    hit = _QUERY_MEMO.get(q)
    if hit is None:
        qname, qtype, qclass = q
        qname = trim_dot(qname)
        hit = (qname, "class %s, type %s, %s" % (class_text(qclass), type_text(qtype), qname))
        if len(_QUERY_MEMO) >= 65536:
            _QUERY_MEMO.clear()
        _QUERY_MEMO[q] = hit
    return hit


def _add_message(d: dict, msg: p.DnsMessage, cfg: DnsConfig, psl) -> list[str]:
    bits = msg.bits
    d["id"] = msg.id
    d["op_code"] = _OPCODE_TEXT[(bits >> 11) & 0xF]
    opt = msg.opt
    flags, hf = _flags(bits, opt is not None and opt[4][3])
    d["flags"] = flags.copy()
    d["response_code"] = _rcode_text(msg.rcode)
    if hf:
        d["header_flags"] = hf[:]
    if msg.questions:
        q = msg.questions[0]
        d["question"] = question(_query(q)[0], q[1], q[2], psl)
    if opt is not None:
        d["opt"] = opt_fields(opt[4])
    ips: list[str] = []
    d["answers_count"] = len(msg.answers)
    if msg.answers:
        rrs = records(msg.answers, ips)
        if rrs:
            d["answers"] = rrs
        if ips:
            d["resolved_ip"] = ips
    d["authorities_count"] = len(msg.authorities)
    if cfg.include_authorities and msg.authorities:
        rrs = records(msg.authorities, None)
        if rrs:
            d["authorities"] = rrs
    extra = msg.additionals
    d["additionals_count"] = len(extra) - 1 if opt is not None else len(extra)
    if cfg.include_additionals and extra:
        rrs = records(extra, None)
        if rrs:
            d["additionals"] = rrs
    return ips


_FLAG_MASK = p.AA | p.TC | p.RD | p.RA | p.AD | p.CD
_FLAGS_MEMO: dict = {}      # (flag bits, DO) -> (flags object, header_flags); at most 128 entries


def _flags(bits: int, do: bool) -> tuple[dict, list]:
    """The ``flags`` object and ``header_flags`` list for a header's flag bits
    (memoised; callers copy them into the event)."""
    key = (bits & _FLAG_MASK, bool(do))
    hit = _FLAGS_MEMO.get(key)
    if hit is None:
        flags = {
            "authoritative": bool(bits & p.AA),
            "truncated_response": bool(bits & p.TC),
            "recursion_desired": bool(bits & p.RD),
            "recursion_available": bool(bits & p.RA),
            "authentic_data": bool(bits & p.AD),
            "checking_disabled": bool(bits & p.CD),
        }
        hf = [up for bit, up, _ in _FLAG_NAMES if bits & bit]
        if do:
            hf.append("DO")
        hit = _FLAGS_MEMO[key] = (flags, hf)
    return hit


_QUESTION_MEMO: dict = {}   # (psl, name, qtype, qclass) -> question object; cleared at 65536 entries


def question(name: str, qtype: int, qclass: int, psl) -> dict:
    """The ``dns.question`` object (a new dict; its values are strings)."""
    key = (psl, name, qtype, qclass)
    hit = _QUESTION_MEMO.get(key)
    if hit is not None:
        return hit.copy()
    q = _question(name, qtype, qclass, psl)
    if len(_QUESTION_MEMO) >= 65536:
        _QUESTION_MEMO.clear()
    _QUESTION_MEMO[key] = q
    return q.copy()


def _question(name: str, qtype: int, qclass: int, psl) -> dict:
    q = {"name": name, "type": type_text(qtype), "class": class_text(qclass)}
    etld1 = psl.registered_domain(name)
    if etld1:
        q["etld_plus_one"] = etld1
        q["registered_domain"] = etld1
        dot = etld1.find(".")
        if dot >= 0:
            q["top_level_domain"] = etld1[dot + 1:]
        sub = (name[:-len(etld1)] if name.endswith(etld1) else name).rstrip(".")
        if sub:
            q["subdomain"] = sub
    elif name.count(".") == 1:
        tld = name.split(".")[1]
        if tld:
            q["top_level_domain"] = tld
        q["registered_domain"] = name
    return q


_RECORD_MEMO: dict = {}     # record key (_memo_key) -> its object; cleared at 65536 entries


def _memo_key(rr: tuple):
    """A hashable key of a record for _RECORD_MEMO: the record itself, or a copy whose
    data has its list made a tuple (TXT strings; the type list of NSEC and NSEC3; OPT's
    options)."""
    data = rr[4]
    if type(data) is list:
        key = (rr[0], rr[1], rr[2], rr[3], tuple(data))
    elif type(data) is tuple and data and type(data[-1]) is list:
        key = (rr[0], rr[1], rr[2], rr[3], data[:-1] + (tuple(data[-1]),))
    else:
        key = rr
    return key


def records(rrs: list, ips: list | None) -> list[dict]:
    """The objects of the records (new dicts, values str or int); addresses
    of A/AAAA records are appended to ``ips`` when given. Memoised per record
    (the same answers come back for every client that asks)."""
    out = []
    memo = _RECORD_MEMO
    for rr in rrs:
        rtype = rr[1]
        key = _memo_key(rr)
        try:
            hit = memo.get(key)
        except TypeError:           # data that cannot be hashed: not memoised
            key = None
            hit = None
        if hit is not None:
            if ips is not None and (rtype == T_A or rtype == T_AAAA):
                ips.append(rr[4])
            out.append(hit.copy())
            continue
        if rtype == T_A or rtype == T_AAAA:
            data = rr[4]
            if data is None:
                continue            # an address record without an address
            if ips is not None:
                ips.append(data)
            fields = {"data": data}
        elif rtype == T_CNAME or rtype == T_NS or rtype == T_PTR:
            fields = {"data": trim_dot(rr[4])}
        else:
            fields = rdata_fields(rr)
            if not fields:
                continue            # OPT
        name = rr[0]
        fields["name"] = name[:-1] if len(name) > 1 and name[-1] == "." else name
        fields["type"] = TYPES.get(rtype) or str(rtype)
        fields["class"] = CLASSES.get(rr[2]) or str(rr[2])
        fields["ttl"] = str(rr[3])
        if key is not None:
            if len(memo) >= 65536:
                memo.clear()
            memo[key] = fields.copy()
        out.append(fields)
    return out


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _time(t: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


def rdata_fields(rr) -> dict:
    """The RDATA of one record as Packetbeat's ``rrToMapStr`` (no header
    fields); empty for OPT and for an A/AAAA record without an address."""
    rtype = rr[1]
    data = rr[4]
    if rtype == T_A or rtype == T_AAAA:
        return {"data": data} if data is not None else {}
    if rtype == T_CNAME or rtype == T_NS or rtype == T_PTR:
        return {"data": trim_dot(data)}
    if rtype == T_MX:
        return {"preference": data[0], "data": trim_dot(data[1])}
    if rtype == T_TXT:
        return {"data": " ".join(txt_text(s) for s in data)}
    if rtype == T_SOA:
        return {"rname": trim_dot(data[1]), "serial": data[2], "refresh": data[3], "retry": data[4],
                "expire": data[5], "minimum": data[6], "data": trim_dot(data[0])}
    if rtype == T_SRV:
        return {"priority": data[0], "weight": data[1], "port": data[2], "data": trim_dot(data[3])}
    if rtype == T_OPT:
        return {}
    if rtype == T_DNSKEY:
        return {"flags": str(data[0]), "protocol": str(data[1]), "algorithm": algorithm_text(data[2]),
                "data": _b64(data[3])}
    if rtype == T_DS:
        return {"key_tag": str(data[0]), "algorithm": algorithm_text(data[1]),
                "digest_type": hash_text(data[2]), "data": data[3].hex().upper()}
    if rtype == T_RRSIG:
        return {"type_covered": type_text(data[0]), "algorithm": algorithm_text(data[1]),
                "labels": str(data[2]), "original_ttl": str(data[3]), "expiration": _time(data[4]),
                "inception": _time(data[5]), "key_tag": str(data[6]), "signer_name": trim_dot(data[7]),
                "data": _b64(data[8])}
    if rtype == T_NSEC:
        return {"type_bits": type_bits_text(data[1]), "data": data[0]}
    if rtype == T_NSEC3:
        return {"hash": hash_text(data[0]), "flags": str(data[1]), "iterations": str(data[2]),
                "salt": salt_text(data[3]), "type_bits": type_bits_text(data[5]),
                "data": base64.b32hexencode(data[4]).decode("ascii").rstrip("=")}
    if rtype == T_NSEC3PARAM:
        return {"hash": hash_text(data[0]), "flags": str(data[1]), "iterations": str(data[2]),
                "data": salt_text(data[3])}
    return {"data": rdata_text(data)}


# EDNS option codes (RFC 6891 registry) and how the 8.x event shows them.
_OPT_LLQ, _OPT_UL, _OPT_NSID, _OPT_DAU, _OPT_DHU, _OPT_N3U = 1, 2, 3, 5, 6, 7
_OPT_SUBNET, _OPT_EXPIRE, _OPT_COOKIE = 8, 9, 10
_OPT_SILENT = frozenset((11, 12, 15))     # keepalive, padding, extended error: not shown


_OPT_MEMO: dict = {}        # (udp_size, ext, version, do, options as a tuple) -> object; cleared at 4096


def opt_fields(opt: tuple) -> dict:
    """The ``dns.opt`` object of an OPT record's (udp_size, ext, version, do, options)
    (a new dict; memoised: resolvers send the same OPT again and again)."""
    udp_size, ext, version, do, options = opt
    key = (udp_size, ext, version, do, tuple(options))
    hit = _OPT_MEMO.get(key)
    if hit is None:
        hit = _opt_fields(udp_size, ext, version, do, options)
        if len(_OPT_MEMO) >= 4096:
            _OPT_MEMO.clear()
        _OPT_MEMO[key] = hit
    return hit.copy()


def _opt_fields(udp_size, ext, version, do, options) -> dict:
    out = {"do": do, "version": str(version), "udp_size": udp_size, "ext_rcode": rcode_text(ext << 4)}
    for code, data in options:
        if code in _OPT_SILENT:
            continue
        key, text = _option(code, data)
        if key:
            out[key] = text
    return out


def _option(code: int, data: bytes) -> tuple[str, str]:
    if code == _OPT_NSID:
        return "nsid", data.hex()
    if code == _OPT_COOKIE:
        return "cookie", data.hex()
    if code == _OPT_SUBNET:
        return "subnet", _subnet(data)
    if code == _OPT_UL:
        if len(data) == 4:
            return "ul", str(int.from_bytes(data, "big"))
        if len(data) == 8:
            lease, key = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")
            return "ul", str(lease) + ("," + str(key) if key else "")
        return "", ""
    if code == _OPT_LLQ:
        if len(data) != 18:
            return "", ""
        return "llq", "%d %d %d %d %d" % (int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big"),
                                          int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:14], "big"),
                                          int.from_bytes(data[14:18], "big"))
    if code == _OPT_DAU:
        return "dau", "".join(" " + algorithm_text(b) for b in data)
    if code == _OPT_DHU:
        return "dhu", "".join(" " + hash_text(b) for b in data)
    if code == _OPT_N3U:
        return "n3u", "".join(" " + hash_text(b) for b in data)
    if code == _OPT_EXPIRE:
        # 8.x files EXPIRE under "local"
        return "local", str(int.from_bytes(data, "big")) if len(data) == 4 else ""
    return "local", "%d:0x%s" % (code, data.hex())


def _subnet(data: bytes) -> str:
    if len(data) < 4:
        return "<nil>"
    family = int.from_bytes(data[:2], "big")
    src, scope = data[2], data[3]
    addr = data[4:]
    if family == 1:
        text = socket.inet_ntop(socket.AF_INET, (addr + bytes(4))[:4])
    elif family == 2:
        raw = (addr + bytes(16))[:16]
        text = p._ipv6_text(raw)
        if ":" in text:
            text = "[" + text + "]"
    elif family == 0:
        text = "0.0.0.0"
    else:
        text = "<nil>"
    return "%s/%d/%d" % (text, src, scope)


# ----------------------------------------------------------- request/response text

def message_text(msg: p.DnsMessage) -> str:
    """The raw ``request``/``response`` text (``dnsToString``)."""
    bits = msg.bits
    flags = " ".join(low for bit, _, low in _FLAG_NAMES if bits & bit)
    parts = ["ID %d; QR %s; OPCODE %s; FLAGS %s; RCODE %s" % (
        msg.id, "query" if msg.is_request else "response", opcode_text(msg.opcode), flags,
        rcode_text(msg.rcode))]
    if msg.questions:
        parts.append("QUESTION " + "; ".join(
            "class %s, type %s, %s" % (class_text(c), type_text(t), trim_dot(n)) for n, t, c in msg.questions))
    for title, rrs in (("ANSWER", msg.answers), ("AUTHORITY", msg.authorities), ("ADDITIONAL", msg.additionals)):
        if rrs:
            parts.append(title + " " + "; ".join(_rr_text(rr) for rr in rrs))
    return "; ".join(parts)


def _rr_text(rr) -> str:
    fields = rdata_fields(rr)
    data = fields.pop("data", None)
    text = "".join("%s %s, " % (k, fields[k]) for k in sorted(fields) if isinstance(fields[k], str))
    if data is None:
        return text[:-2] if text.endswith(", ") else text
    return text + data
