"""Network processors: community_id, registered_domain,
add_network_direction, dns (reverse lookups), detect_mime_type."""
from __future__ import annotations

import ipaddress
import logging
import threading
import time

from shared.confutil import ConfigError
from worker.ecs import community_id as _cid
from worker.processors import event as E
from worker.processors.base import ProcessorError
from worker.processors.conditions import network_matcher, parse_ip

MISSING = E.MISSING
log = logging.getLogger("packetbeat.processors")

_TRANSPORTS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "ipv6-icmp": 58, "icmpv6": 58, "eigrp": 88,
               "ospf": 89, "pim": 103, "sctp": 132}


# -- community_id --------------------------------------------------------------------------

def _uint(v):
    """libbeat's tryToUint: an integer, or a string as Go's ParseUint(s, 0, 64)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, str):
        from worker.processors.basic import _go_int
        try:
            n = _go_int(v, 65)
        except ValueError:
            return None
        return n if n >= 0 and not v.strip().startswith(("-", "+")) else None
    return None


class CommunityId:
    def __init__(self, f, target, seed):
        self.f, self.target, self.seed = f, target, seed

    def run(self, ev):
        if E.get(ev, self.target) is not MISSING:       # already set (Packetbeat's own): left as is
            return ev
        f = self.f
        src, dst = E.get(ev, f["source_ip"], None), E.get(ev, f["destination_ip"], None)
        if not isinstance(src, str) or not isinstance(dst, str) or not parse_ip(src) or not parse_ip(dst):
            return ev
        proto = E.get(ev, f["iana_number"])
        if proto is MISSING:
            proto = E.get(ev, f["transport"])
            if proto is MISSING:
                return ev
        if isinstance(proto, str) and proto.lower() in _TRANSPORTS:
            proto = _TRANSPORTS[proto.lower()]
        else:
            proto = _uint(proto)
            if proto is None:
                return ev
            proto &= 0xFF
        sport = dport = 0
        if proto in (6, 17, 132):
            sport, dport = _uint(E.get(ev, f["source_port"], None)), _uint(E.get(ev, f["destination_port"], None))
            if sport is None or dport is None or sport > 65535 or dport > 65535:
                return ev
        elif proto in (1, 58):
            t, c = _uint(E.get(ev, f["icmp_type"], None)), _uint(E.get(ev, f["icmp_code"], None))
            if t is not None and c is not None:       # a flow even without type and code
                sport, dport = t & 0xFF, c & 0xFF
        cid = _cid(proto, src, sport, dst, dport, self.seed)
        if cid:
            E.put(ev, self.target, cid)
        return ev


def community_id(o, ctx):
    raw = o.mapping("fields")
    f = {"source_ip": "source.ip", "source_port": "source.port", "destination_ip": "destination.ip",
         "destination_port": "destination.port", "iana_number": "network.iana_number",
         "transport": "network.transport", "icmp_type": "icmp.type", "icmp_code": "icmp.code"}
    for k, v in raw.items():
        if k not in f:
            raise ConfigError("%s.%s" % (o.sub("fields"), k), "unknown field (known: %s)" % ", ".join(sorted(f)))
        if not isinstance(v, str):
            raise ConfigError("%s.%s" % (o.sub("fields"), k), "expected a field name")
        f[k] = v
    seed = o.int("seed", 0, minimum=0)
    if seed > 0xFFFF:
        raise ConfigError(o.sub("seed"), "must fit in 16 bits")
    return CommunityId(f, o.str("target", "network.community_id") or "network.community_id", seed)


# -- registered_domain --------------------------------------------------------------------------

_PSL = None


def public_suffix_list():
    global _PSL
    if _PSL is None:
        from worker.protos.dns.publicsuffix import PublicSuffixList
        _PSL = PublicSuffixList.load()
    return _PSL


class RegisteredDomain:
    def __init__(self, field, target, etld, sub, ignore_missing, ignore_failure):
        self.field, self.target, self.etld, self.sub = field, target, etld, sub
        self.ignore_missing, self.ignore_failure = ignore_missing, ignore_failure
        self.psl = public_suffix_list()

    def run(self, ev):
        v = E.get(ev, self.field)
        if v is MISSING:
            if self.ignore_missing:
                return ev
            raise ProcessorError("registered_domain: field [%s] not found" % self.field, ev)
        name = v.rstrip(".").lower() if isinstance(v, str) else None
        rd = self.psl.registered_domain(name) if name else None
        if rd is None:
            if self.ignore_failure:
                return ev
            raise ProcessorError("registered_domain: failed to determine the registered domain of %r" % (v,), ev)
        E.put(ev, self.target, rd)
        if self.etld:
            E.put(ev, self.etld, self.psl.public_suffix(rd))
        if self.sub and len(name) > len(rd):
            E.put(ev, self.sub, name[:-len(rd) - 1])
        return ev


def registered_domain(o, ctx):
    return RegisteredDomain(o.str("field", required=True), o.str("target_field", required=True),
                            o.str("target_etld_field", ""), o.str("target_subdomain_field", ""),
                            o.bool("ignore_missing", False), o.bool("ignore_failure", False))


# -- add_network_direction ------------------------------------------------------------------------

class NetworkDirection:
    def __init__(self, src, dst, target, internal):
        self.src, self.dst, self.target, self.internal = src, dst, target, internal

    def run(self, ev):
        s, d = E.get(ev, self.src, None), E.get(ev, self.dst, None)
        if not isinstance(s, str) or not isinstance(d, str):
            return ev
        sip, dip = parse_ip(s), parse_ip(d)
        if not sip or not dip:
            return ev
        si, di = self.internal(sip), self.internal(dip)
        direction = ("internal" if di else "outbound") if si else ("inbound" if di else "external")
        E.put(ev, self.target, direction)
        return ev


def add_network_direction(o, ctx):
    nets = o.any("internal_networks", required=True)
    return NetworkDirection(o.str("source", required=True), o.str("destination", required=True),
                            o.str("target", required=True), network_matcher(nets, o.sub("internal_networks")))


# -- dns (reverse lookups) -----------------------------------------------------------------------

class _TTLCache:
    """A bounded map with per-entry expiry (the processor's success/failure caches)."""

    def __init__(self, ttl, capacity, clock):
        self.ttl, self.capacity, self.clock = ttl, capacity, clock
        self.data: dict = {}

    def get(self, key):
        hit = self.data.get(key)
        if hit is None:
            return None
        if hit[1] < self.clock():
            del self.data[key]
            return None
        return hit

    def put(self, key, value, ttl=None):
        if len(self.data) >= self.capacity:
            now = self.clock()
            for k in [k for k, v in self.data.items() if v[1] < now]:
                del self.data[k]
            if len(self.data) >= self.capacity:
                self.data.pop(next(iter(self.data)))
        self.data[key] = (value, self.clock() + (self.ttl if ttl is None else ttl))


class ReverseDNS:
    """PTR lookups of IP fields (``type: reverse``) with dnspython, each bounded
    by ``timeout``; answers and failures cached (``success_cache`` /
    ``failure_cache``), so a busy address costs one lookup per TTL."""

    def __init__(self, fields, action, tag, timeout, resolver, ok_cache, bad_cache):
        self.fields, self.action, self.tag, self.timeout = fields, action, tag, timeout
        self.resolver, self.ok, self.bad = resolver, ok_cache, bad_cache
        self.lookups = 0
        self.failures = 0

    def lookup(self, ip: str):
        hit = self.ok.get(ip) or self.bad.get(ip)
        if hit is not None:
            return hit[0]
        import dns.exception
        import dns.resolver
        import dns.reversename
        self.lookups += 1
        try:
            ans = self.resolver.resolve(dns.reversename.from_address(ip), "PTR", lifetime=self.timeout)
            names = [r.target.to_text().rstrip(".") for r in ans]
            ttl = max(ans.rrset.ttl, self.ok.ttl) if ans.rrset is not None else self.ok.ttl
            self.ok.put(ip, names, ttl if self.ok.ttl_from_answer else None)
            return names
        except (dns.exception.DNSException, ValueError, OSError):
            self.failures += 1
            self.bad.put(ip, False)
            return False

    def run(self, ev):
        failed = False
        for src, dst in self.fields:
            v = E.get(ev, src, None)
            if not isinstance(v, str) or not parse_ip(v):
                continue
            names = self.lookup(v)
            if not names:
                failed = True
                continue
            if self.action == "replace":
                E.put(ev, dst, names[0] if len(names) == 1 else names)
            else:
                have = E.get(ev, dst, None)
                cur = [] if have is None else (have if isinstance(have, list) else [have])
                for n in names:
                    if n not in cur:
                        cur.append(n)
                E.put(ev, dst, cur[0] if len(cur) == 1 else cur)
        if failed and self.tag:
            E.add_tags(ev, "tags", self.tag)
        return ev


def _cache_opts(o, name, ttl, capacity):
    raw = o.mapping(name, {})
    allowed = {"capacity.initial", "capacity.max", "min_ttl", "ttl", "capacity"}
    flat = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                flat["%s.%s" % (k, k2)] = v2
        else:
            flat[k] = v
    for k in flat:
        if k not in allowed:
            raise ConfigError("%s.%s" % (o.sub(name), k), "unknown option")
    from shared.confutil import parse_duration
    if "ttl" in flat:
        ttl = parse_duration(flat["ttl"], o.sub(name) + ".ttl")
    if "min_ttl" in flat:
        ttl = parse_duration(flat["min_ttl"], o.sub(name) + ".min_ttl")
    cap = flat.get("capacity.max", capacity)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(o.sub(name) + ".capacity.max", "expected a positive integer")
    return ttl, cap


def dns(o, ctx):
    o.str("type", "reverse", choices=("reverse",))
    fields = E.flatten(o.mapping("fields", required=True))
    if not fields or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigError(o.sub("fields"), "expected a mapping of <ip field>: <target field>")
    action = o.str("action", "append", choices=("append", "replace"))
    tags = o.strings("tag_on_failure")
    timeout = o.duration("timeout", 0.5)
    servers = o.strings("nameservers")
    transport = o.str("transport", "udp", choices=("udp", "tls"))
    ok_ttl, ok_cap = _cache_opts(o, "success_cache", 60.0, 10000)
    bad_ttl, bad_cap = _cache_opts(o, "failure_cache", 60.0, 10000)
    if transport == "tls":
        raise ConfigError(o.sub("transport"), "DNS over TLS is not available in this version")
    import dns.resolver
    try:
        resolver = dns.resolver.Resolver(configure=not servers)
    except Exception:                      # no /etc/resolv.conf
        resolver = dns.resolver.Resolver(configure=False)
    if servers:
        addrs = []
        for s in servers:
            host, _, port = s.rpartition(":") if s.count(":") == 1 else (s, "", "")
            addrs.append(host or s)
            if port:
                resolver.port = int(port)
        resolver.nameservers = addrs
    resolver.timeout = timeout
    resolver.lifetime = timeout
    ok = _TTLCache(ok_ttl, ok_cap, ctx.clock)
    ok.ttl_from_answer = True
    bad = _TTLCache(bad_ttl, bad_cap, ctx.clock)
    return ReverseDNS(list(fields.items()), action, tags, timeout, resolver, ok, bad)


# -- detect_mime_type ----------------------------------------------------------------------------

class DetectMime:
    def __init__(self, field, target):
        self.field, self.target = field, target

    def run(self, ev):
        v = E.get(ev, self.field, None)
        if isinstance(v, str):
            data = v.encode("utf-8", "surrogateescape")
        elif isinstance(v, (bytes, bytearray)):
            data = bytes(v)
        else:
            return ev
        if not data:
            return ev
        mime = detect_mime(data)
        if mime:
            E.put(ev, self.target, mime)
        return ev


# The usual payloads' signatures, checked first (microseconds); the names are those of
# Go's mimetype library, which libbeat uses. Anything else binary goes to puremagic's
# much longer (and slower) table, cached by the payload's first 512 bytes.
_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"), (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"), (0, b"GIF89a", "image/gif"), (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b", "application/gzip"), (0, b"PK\x03\x04", "application/zip"),
    (0, b"BZh", "application/x-bzip2"), (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"(\xb5/\xfd", "application/zstd"), (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x00asm", "application/wasm"), (0, b"\x7fELF", "application/x-elf"),
    (0, b"wOFF", "font/woff"), (0, b"wOF2", "font/woff2"), (0, b"OggS", "application/ogg"),
    (0, b"ID3", "audio/mpeg"), (0, b"II*\x00", "image/tiff"), (0, b"MM\x00*", "image/tiff"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"), (0, b"\xca\xfe\xba\xbe", "application/x-java-applet"),
    (0, b"\x00\x00\x01\x00", "image/x-icon"), (0, b"BM", "image/bmp"),
    (0, b"%!PS", "application/postscript"), (0, b"{\\rtf", "text/rtf"),
)
_CTRL = __import__("re").compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_MAGIC_CACHE: dict = {}


def detect_mime(data: bytes) -> str | None:
    """The MIME type of a payload (Go mimetype's names for the usual kinds)."""
    head = data[:3072]
    for off, sig, mime in _SIGNATURES:
        if head.startswith(sig, off):
            return mime
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return "video/mp4"
    kind = _text_kind(data, head)
    if kind is not None:
        return kind
    key = data[:512]
    hit = _MAGIC_CACHE.get(key)
    if hit is None:
        hit = _puremagic(data[:4096]) or "application/octet-stream"
        if len(_MAGIC_CACHE) >= 4096:
            _MAGIC_CACHE.clear()
        _MAGIC_CACHE[key] = hit
    return hit


def _puremagic(head: bytes) -> str | None:
    try:
        import puremagic
        matches = puremagic.magic_string(head)
    except Exception:            # puremagic raises on input it knows nothing about
        return None
    for m in matches:
        mt = getattr(m, "mime_type", "")
        if mt:
            return mt
    return None


def _text_kind(data: bytes, head: bytes) -> str | None:
    """Text kinds for UTF-8 payloads without control characters; None: binary."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:          # not just a character cut by the 3 KiB head
            return None
        text = head[:e.start].decode("utf-8")
    if _CTRL.search(text):
        return None
    s = text.lstrip().lower()
    if s.startswith(("<!doctype html", "<html", "<head", "<body", "<script", "<title", "<p>", "<div", "<!--")):
        return "text/html; charset=utf-8"
    if s.startswith("<?xml"):
        return "text/xml; charset=utf-8"
    if s[:1] in ("{", "["):
        import json
        try:
            if len(data) <= 65536:
                json.loads(data)
                return "application/json"
        except ValueError:
            pass
    return "text/plain; charset=utf-8"


def detect_mime_type(o, ctx):
    return DetectMime(o.str("field", required=True), o.str("target", required=True))


PROCESSORS = {
    "community_id": community_id, "registered_domain": registered_domain,
    "add_network_direction": add_network_direction, "dns": dns, "detect_mime_type": detect_mime_type,
}
