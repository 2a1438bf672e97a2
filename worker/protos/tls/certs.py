"""X.509 certificates as Packetbeat 8 writes them (``certToMap``, ``toMap``,
``hashCert``, ``getPEMCertChain`` in ``packetbeat/protos/tls``), parsed with
the ``cryptography`` package.

- ``subject`` / ``issuer``: the attributes Go's ``pkix.Name`` knows
  (``country``, ``organization``, ``organizational_unit``, ``locality``,
  ``postal_code``, ``serial_number``, ``common_name``, ``street_address``,
  ``state_or_province``; several values joined by a space), and
  ``distinguished_name`` as Go's ``Name.String()`` prints it (RFC 2253 order:
  SERIALNUMBER, CN, OU, O, POSTALCODE, STREET, L, ST, C, other attributes).
- ``alternative_names``: DNS names, then e-mail addresses, then IP addresses.
- ``signature_algorithm`` in Go's spelling (``SHA256-RSA``, ``ECDSA-SHA384``,
  ``SHA256-RSAPSS``, ``Ed25519``), ``public_key_algorithm`` (``RSA``, ``ECDSA``,
  ``DSA``, ``Ed25519``), ``public_key_size`` in bits, ``serial_number`` in
  decimal, ``version_number``, ``not_before`` / ``not_after`` (RFC 3339, ms).

A certificate that ``cryptography`` refuses is reported by :func:`describe`
as None. Parsed certificates are cached by DER digest (bounded): a server
sends the same chain on every connection.
"""
from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
except ImportError:          # pragma: no cover - declared dependency
    x509 = None

_CACHE: "OrderedDict[bytes | tuple, list]" = OrderedDict()   # LRU, _CACHE_MAX certificates
_CACHE_MAX = 512
_KEY_MAX = 4096             # certificates up to this size are their own cache key

if x509 is not None:
    _ATTRS = (  # Go's pkix.Name fields, in toMap's order
        ("country", NameOID.COUNTRY_NAME), ("organization", NameOID.ORGANIZATION_NAME),
        ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME), ("locality", NameOID.LOCALITY_NAME),
        ("postal_code", NameOID.POSTAL_CODE), ("serial_number", NameOID.SERIAL_NUMBER),
        ("common_name", NameOID.COMMON_NAME), ("street_address", NameOID.STREET_ADDRESS),
        ("state_or_province", NameOID.STATE_OR_PROVINCE_NAME),
    )
    _SINGLE = {NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME}    # Go keeps the last one
    # ToRDNSequence order (reversed when printed)
    _DN_ORDER = (
        (NameOID.COUNTRY_NAME, "C"), (NameOID.STATE_OR_PROVINCE_NAME, "ST"), (NameOID.LOCALITY_NAME, "L"),
        (NameOID.STREET_ADDRESS, "STREET"), (NameOID.POSTAL_CODE, "POSTALCODE"),
        (NameOID.ORGANIZATION_NAME, "O"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
        (NameOID.COMMON_NAME, "CN"), (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
    )
    _KNOWN = {oid for oid, _ in _DN_ORDER}
    _SIG = {
        SignatureAlgorithmOID.RSA_WITH_MD5: "MD5-RSA", SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA1-RSA",
        SignatureAlgorithmOID.RSA_WITH_SHA224: "SHA224-RSA", SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256-RSA",
        SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384-RSA", SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512-RSA",
        SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ECDSA-SHA1", SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ECDSA-SHA224",
        SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ECDSA-SHA256",
        SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ECDSA-SHA384",
        SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ECDSA-SHA512", SignatureAlgorithmOID.DSA_WITH_SHA1: "DSA-SHA1",
        SignatureAlgorithmOID.DSA_WITH_SHA256: "DSA-SHA256", SignatureAlgorithmOID.ED25519: "Ed25519",
        SignatureAlgorithmOID.ED448: "Ed448",
    }
    _MD2 = "1.2.840.113549.1.1.2"


def _go_escape(v: str) -> str:
    out = []
    last = len(v) - 1
    for k, c in enumerate(v):
        if c in ',+"\\<>;' or (c == " " and (k == 0 or k == last)) or (c == "#" and k == 0):
            out.append("\\")
        out.append(c)
    return "".join(out)


def _value(attr) -> str:
    v = attr.value
    return v if isinstance(v, str) else v.hex()


def _dn(name) -> str:
    """Go's pkix.Name.String() of ``name``."""
    rdns: list[str] = []
    # attributes Go does not name come first in the sequence (last when printed)
    for attr in name:
        if attr.oid not in _KNOWN:
            rdns.append("%s=%s" % (attr.oid.dotted_string, _go_escape(_value(attr))))
    for oid, short in _DN_ORDER:
        vals = [_value(a) for a in name.get_attributes_for_oid(oid)]
        if oid in _SINGLE:
            vals = [v for v in vals[-1:] if v]
        if vals:        # several values of one attribute: one multi-valued RDN, as Go
            rdns.append("+".join("%s=%s" % (short, _go_escape(v)) for v in vals))
    return ",".join(reversed(rdns))


def _name_map(name) -> dict:
    out = {}
    for key, oid in _ATTRS:
        vals = [_value(a) for a in name.get_attributes_for_oid(oid)]
        if oid in _SINGLE:
            vals = vals[-1:]
        text = " ".join(vals)
        if text:
            out[key] = text
    dn = _dn(name)
    if dn:
        out["distinguished_name"] = dn
    return out


def _time(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def _sig_name(cert) -> str:
    oid = cert.signature_algorithm_oid
    name = _SIG.get(oid)
    if name:
        return name
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        h = cert.signature_hash_algorithm
        return "%s-RSAPSS" % (h.name.upper().replace("-", "") if h is not None else "SHA256")
    if oid.dotted_string == _MD2:
        return "MD2-RSA"
    return oid.dotted_string


def _key(cert) -> tuple[str, int]:
    try:
        key = cert.public_key()
    except Exception:           # unsupported key type (GOST, ...): cryptography refuses it
        return cert.public_key_algorithm_oid.dotted_string if hasattr(cert, "public_key_algorithm_oid") else "", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 0
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 0
    return type(key).__name__, 0


def _sans(cert) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except Exception:
        return []
    dns = ext.get_values_for_type(x509.DNSName)
    mail = ext.get_values_for_type(x509.RFC822Name)
    ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return list(dns) + list(mail) + ips


def _parse(der: bytes) -> dict | None:
    if x509 is None:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        algo, size = _key(cert)
        m = {
            "signature_algorithm": _sig_name(cert),
            "public_key_algorithm": algo,
            "serial_number": str(cert.serial_number),
            "issuer": _name_map(cert.issuer),
            "subject": _name_map(cert.subject),
            "not_before": _time(cert.not_valid_before_utc),
            "not_after": _time(cert.not_valid_after_utc),
            "version_number": cert.version.value + 1,
        }
        if size > 0:
            m["public_key_size"] = size
        sans = _sans(cert)
        if sans:
            m["alternative_names"] = sans
        return m
    except Exception:           # a certificate cryptography refuses: not described
        return None


def _entry(der: bytes) -> list:
    """The cache entry of one certificate: [map or None, hash names, hashes]."""
    # the certificate itself is the key (no digest to compute), up to a size
    # that keeps the cache small; a larger one is known by its SHA-1
    key = bytes(der) if len(der) <= _KEY_MAX else ("sha1", hashlib.sha1(der).digest())
    e = _CACHE.get(key)
    if e is None:
        e = [_parse(der), None, None]
        _CACHE[key] = e
        if len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return e


def describe(der: bytes) -> dict | None:
    """Packetbeat's certificate map of one DER certificate (a fresh copy), or None."""
    m = _entry(der)[0]
    if m is None:
        return None
    out = dict(m)
    out["issuer"] = dict(m["issuer"])
    out["subject"] = dict(m["subject"])
    if "alternative_names" in m:
        out["alternative_names"] = list(m["alternative_names"])
    return out


_HASHES = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha-1": hashlib.sha1,
           "sha256": hashlib.sha256, "sha-256": hashlib.sha256}
HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256"}


def _hashes(der: bytes, names) -> dict:
    out = {}
    for n in names:
        key = HASH_NAMES[n.lower()]
        out[key] = _HASHES[key](der).hexdigest().upper()
    return out


def fingerprints(der: bytes, names) -> dict:
    """``{md5|sha1|sha256: upper-case hex}`` of the DER bytes (``tls.*.hash``),
    a fresh dict; computed once per certificate of the cache and list of names."""
    e = _entry(der)
    names = tuple(names)
    if e[1] != names:
        e[2] = _hashes(der, names)
        e[1] = names
    return dict(e[2])


def pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
