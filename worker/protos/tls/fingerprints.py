"""Client and server hello fingerprints.

- JA3 / JA3S (Salesforce): ``version,ciphers,extensions,groups,point_formats``
  of the ClientHello, ``version,cipher,extensions`` of the ServerHello, decimal
  values joined by ``-``, GREASE values (RFC 8701) left out, MD5 in hex.
  JA3 is Packetbeat's ``tls.client.ja3``; JA3S is ECS's ``tls.server.ja3s``.
- JA4 / JA4S (FoxIO, https://github.com/FoxIO-LLC/ja4, technical details):

  JA4 = ``a_b_c``: a = ``t`` (TLS over TCP), the version (the highest of
  supported_versions, else the hello's version: ``13 12 11 10 s3``), ``d``
  when SNI is present else ``i``, the number of ciphers and of extensions
  (two digits, at most 99, GREASE left out), the first and last characters of
  the first ALPN value (``00`` without ALPN; the hex form's first and last
  characters when either is not alphanumeric); b = the first 12 hex digits of
  SHA-256 over the sorted ciphers as 4-digit hex joined by ``,``; c = the same
  over the sorted extensions without SNI and ALPN, then ``_`` and the signature
  algorithms in their order (no ``_`` part when there are none). An empty list
  hashes to ``000000000000``.

  JA4S = ``a_b_c``: a = ``t``, the version (supported_versions, else the
  hello's), the number of extensions, the chosen ALPN's first and last
  characters; b = the cipher as 4-digit hex; c = the 12 first hex digits of
  SHA-256 over the extensions in their order.
"""
from __future__ import annotations

import hashlib

from worker.protos.tls import algos
from worker.protos.tls.handshake import (
    EXT_ALPN, EXT_EC_POINT_FORMATS, EXT_SIGNATURE_ALGORITHMS, EXT_SNI, EXT_SUPPORTED_GROUPS, Hello,
    alpn_list, supported_versions, u16_list, u8_list,
)

_G = algos.is_grease


def ja3_string(h: Hello) -> str:
    version = h.version[0] * 256 + h.version[1]
    ciphers = [c for c in h.ciphers if not _G(c)]
    exts = [c for c, _ in h.extensions if not _G(c)]
    groups = [g for g in u16_list(h.ext(EXT_SUPPORTED_GROUPS)) if not _G(g)]
    points = [p for p in u8_list(h.ext(EXT_EC_POINT_FORMATS))]
    return "%d,%s,%s,%s,%s" % (version, "-".join(map(str, ciphers)), "-".join(map(str, exts)),
                               "-".join(map(str, groups)), "-".join(map(str, points)))


def ja3(h: Hello) -> str:
    return hashlib.md5(ja3_string(h).encode()).hexdigest()


def ja3s_string(h: Hello) -> str:
    version = h.version[0] * 256 + h.version[1]
    exts = [c for c, _ in h.extensions if not _G(c)]
    return "%d,%d,%s" % (version, h.cipher, "-".join(map(str, exts)))


def ja3s(h: Hello) -> str:
    return hashlib.md5(ja3s_string(h).encode()).hexdigest()


_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                 0x0200: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def _ja4_version(h: Hello) -> str:
    vs = [v for v in supported_versions(h) if not _G(v)]
    v = max(vs) if vs else h.version[0] * 256 + h.version[1]
    return _JA4_VERSIONS.get(v, "00")


def _alnum(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def _ja4_alpn(h: Hello) -> str:
    lst = alpn_list(h.ext(EXT_ALPN))
    if not lst or not lst[0]:
        return "00"
    first = lst[0]
    if _alnum(first[0]) and _alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    hx = first.hex()
    return hx[0] + hx[-1]


def _hash12(text: str) -> str:
    if not text:
        return "000000000000"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ja4(h: Hello) -> str:
    ciphers = [c for c in h.ciphers if not _G(c)]
    exts = [c for c, _ in h.extensions if not _G(c)]
    sni = "d" if h.has_ext(EXT_SNI) else "i"
    a = "t%s%s%02d%02d%s" % (_ja4_version(h), sni, min(len(ciphers), 99), min(len(exts), 99), _ja4_alpn(h))
    b = _hash12(",".join("%04x" % c for c in sorted(ciphers))) if ciphers else "000000000000"
    rest = sorted(c for c in exts if c not in (EXT_SNI, EXT_ALPN))
    sigs = [s for s in u16_list(h.ext(EXT_SIGNATURE_ALGORITHMS)) if not _G(s)]
    text = ",".join("%04x" % c for c in rest)
    if sigs:
        text += "_" + ",".join("%04x" % s for s in sigs)
    c = _hash12(text) if rest else "000000000000"
    return "%s_%s_%s" % (a, b, c)


def ja4s(h: Hello) -> str:
    exts = [c for c, _ in h.extensions if not _G(c)]
    a = "t%s%02d%s" % (_ja4_version(h), min(len(exts), 99), _ja4_alpn(h))
    c = _hash12(",".join("%04x" % e for e in exts)) if exts else "000000000000"
    return "%s_%04x_%s" % (a, h.cipher & 0xFFFF, c)
