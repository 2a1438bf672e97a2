"""Names of DNS codes and the text forms of wire data, as Packetbeat 8.x
prints them (``packetbeat/protos/dns/names.go`` and the tables of the
``miekg/dns`` library it uses). Plain data and pure functions, no state.

An unknown code prints as its number, except a response code, which prints
as ``Unknown <n>``.
"""
from __future__ import annotations

OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}

RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
    16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
    22: "BADTRUNC", 23: "BADCOOKIE",
}

CLASSES = {1: "IN", 2: "CS", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}

TYPES = {
    0: "None", 1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25",
    20: "ISDN", 21: "RT", 23: "NSAPPTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA",
    29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX",
    37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY",
    46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA",
    53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY",
    61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO",
    101: "UID", 102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64", 107: "LP",
    108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB",
    254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 258: "AVC", 260: "AMTRELAY",
    32768: "TA", 32769: "DLV", 65535: "Reserved",
}

ALGORITHMS = {
    1: "RSAMD5", 2: "DH", 3: "DSA", 5: "RSASHA1", 6: "DSA-NSEC3-SHA1", 7: "RSASHA1-NSEC3-SHA1",
    8: "RSASHA256", 10: "RSASHA512", 12: "ECC-GOST", 13: "ECDSAP256SHA256", 14: "ECDSAP384SHA384",
    15: "ED25519", 16: "ED448", 252: "INDIRECT", 253: "PRIVATEDNS", 254: "PRIVATEOID",
}

HASHES = {1: "SHA1", 2: "SHA256", 3: "GOST94", 4: "SHA384", 5: "SHA512"}


def opcode_text(code: int) -> str:
    return OPCODES.get(code) or str(code)


def rcode_text(code: int) -> str:
    return RCODES.get(code) or "Unknown %d" % code


def type_text(code: int) -> str:
    return TYPES.get(code) or str(code)


def class_text(code: int) -> str:
    return CLASSES.get(code) or str(code)


def algorithm_text(code: int) -> str:
    return ALGORITHMS.get(code) or str(code)


def hash_text(code: int) -> str:
    return HASHES.get(code) or str(code)


def type_bits_text(types: list[int]) -> str:
    return " ".join(TYPES.get(t) or str(t) for t in types)


def salt_text(salt: bytes) -> str:
    return salt.hex().upper() if salt else "-"


# Character strings (TXT) and names escape bytes the way the presentation
# format does: a backslash before specials, \DDD for the unprintable.
_TXT_ESCAPES = {b: "\\%03d" % b for b in range(256) if b < 0x20 or b > 0x7E}
_TXT_ESCAPES[0x22] = '\\"'
_TXT_ESCAPES[0x5C] = "\\\\"
_LABEL_ESCAPES = dict(_TXT_ESCAPES)
# . ( ) ; @ space, as ints: a bytes literal iterates as C chars once compiled
for _c in (0x2E, 0x28, 0x29, 0x3B, 0x40, 0x20):
    _LABEL_ESCAPES[_c] = "\\" + chr(_c)
del _c
# bytes -> str tables for bytes.translate-free escaping of the rare odd byte
_TXT_MAP = [_TXT_ESCAPES.get(b, chr(b)) for b in range(256)]
_LABEL_MAP = [_LABEL_ESCAPES.get(b, chr(b)) for b in range(256)]
# bytes.translate(None, PLAIN) deletes the plain bytes: empty result = nothing to escape
_PLAIN_LABEL = bytes(b for b in range(256) if b not in _LABEL_ESCAPES)
_PLAIN_TXT = bytes(b for b in range(256) if b not in _TXT_ESCAPES)


def label_text(label: bytes) -> str:
    """One name label in presentation form (``a\\.b``, ``\\000``)."""
    if not label.translate(None, _PLAIN_LABEL):
        return label.decode("ascii")
    return "".join(_LABEL_MAP[b] for b in label)


def txt_text(s: bytes) -> str:
    """One character-string of a TXT record in presentation form, unquoted."""
    if not s.translate(None, _PLAIN_TXT):
        return s.decode("ascii")
    return "".join(_TXT_MAP[b] for b in s)


def rdata_text(data: bytes) -> str:
    """RDATA Packetbeat has no special rendering for (CAA, SVCB, HTTPS, ...):
    the bytes with the printable ones kept and the others as \\DDD; a quote
    and a backslash are escaped, tab, CR and LF written \\t, \\r, \\n
    (``hexStringToString``)."""
    out = []
    for b in data:
        if b == 0x22 or b == 0x5C:
            out.append("\\" + chr(b))
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b < 0x20 or b >= 0x7F:
            out.append("\\%03d" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def trim_dot(name: str) -> str:
    """A name without its trailing root dot; the root itself stays ``.``."""
    if len(name) > 1 and name[-1] == ".":
        return name[:-1]
    return name
