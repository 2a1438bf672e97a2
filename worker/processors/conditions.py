"""libbeat's conditions (``when:`` and ``if:``), compiled once to closures.

``equals``, ``contains``, ``regexp``, ``range``, ``network``, ``has_fields``,
``or``, ``and``, ``not``. A condition naming several fields matches when all
of them match. A missing field never matches (``not`` inverts that).
Regular expressions have Go RE2 semantics (the ``google-re2`` package; the
standard ``re`` module when it is not installed) and, like Go's
``MatchString``, match anywhere in the value unless anchored.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Callable

from shared.confutil import ConfigError
from worker.processors import event as E

try:
    import re2 as _re
    RE_ENGINE = "re2"
except ImportError:          # pragma: no cover - google-re2 is a dependency
    import re as _re
    RE_ENGINE = "re"

Cond = Callable[[dict], bool]
log = logging.getLogger("packetbeat.processors")
MISSING = E.MISSING


def compile_regexp(pattern: str, path: str):
    try:
        return _re.compile(pattern)
    except Exception as e:
        raise ConfigError(path, "invalid regular expression %r: %s" % (pattern, e)) from None


def compile_condition(raw, path: str) -> Cond:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(path, "expected a condition (equals, contains, regexp, range, network, "
                                "has_fields, or, and, not), got %r" % (raw,))
    for kind in raw:
        if kind not in _BUILDERS:
            raise ConfigError("%s.%s" % (path, kind), "unknown condition (known: %s)" % ", ".join(sorted(_BUILDERS)))
    # one condition per mapping; given several, libbeat takes the first in this order and
    # ignores the others: so does this (with a warning)
    kinds = [k for k in _BUILDERS if k in raw]
    if len(kinds) > 1:
        log.warning("%s: several conditions in one mapping (%s): only %s is used, as in libbeat; "
                    "combine them with and/or", path, ", ".join(kinds), kinds[0])
    return _BUILDERS[kinds[0]](raw[kinds[0]], "%s.%s" % (path, kinds[0]))


def _fields(arg, path: str) -> dict:
    if not isinstance(arg, dict) or not arg:
        raise ConfigError(path, "expected a mapping of field: value")
    return E.flatten({str(k): v for k, v in arg.items()})


def _all(tests: list) -> Cond:
    if len(tests) == 1:
        return tests[0]
    return lambda ev: all(t(ev) for t in tests)


def _equals(arg, path):
    # libbeat: an integer, a string or a boolean; the field must hold that type
    # (an integer field never equals "404", a float never equals 404, a list never matches)
    tests = []
    for key, want in _fields(arg, path).items():
        if isinstance(want, bool):
            tests.append(_eq_bool(key, want))
        elif isinstance(want, int):
            tests.append(_eq_int(key, want))
        elif isinstance(want, str):
            tests.append(_eq_str(key, want))
        else:
            raise ConfigError("%s.%s" % (path, key), "equals takes a string, an integer or a boolean, got %r"
                              % (want,))
    return _all(tests)


def _eq_bool(key, want):
    return lambda ev: E.get(ev, key) is want


def _eq_int(key, want):
    want &= (1 << 64) - 1         # Go compares as uint64

    def test(ev):
        v = E.get(ev, key)
        return type(v) is int and (v & ((1 << 64) - 1)) == want
    return test


def _eq_str(key, want):
    def test(ev):
        v = E.get(ev, key)
        return type(v) is str and v == want
    return test


def _strings(v):
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list):
        return tuple(x for x in v if isinstance(x, str))
    return ()


def _contains(arg, path):
    tests = []
    for key, want in _fields(arg, path).items():
        if not isinstance(want, str):
            raise ConfigError("%s.%s" % (path, key), "contains takes a string, got %r" % (want,))
        tests.append(lambda ev, key=key, want=want: any(want in s for s in _strings(E.get(ev, key))))
    return _all(tests)


def _regexp(arg, path):
    tests = []
    for key, pattern in _fields(arg, path).items():
        if not isinstance(pattern, str):
            raise ConfigError("%s.%s" % (path, key), "regexp takes a string, got %r" % (pattern,))
        rx = compile_regexp(pattern, "%s.%s" % (path, key))
        tests.append(lambda ev, key=key, rx=rx: any(rx.search(s) is not None for s in _strings(E.get(ev, key))))
    return _all(tests)


_RANGE_OPS = {"gte": lambda a, b: a >= b, "gt": lambda a, b: a > b,
              "lte": lambda a, b: a <= b, "lt": lambda a, b: a < b}


def _range(arg, path):
    # libbeat's shape: {field.gte: 1, field.lt: 10} or {field: {gte: 1, lt: 10}}
    bounds: dict[str, list] = {}
    for key, v in _fields(arg, path).items():
        if isinstance(v, dict):
            items = [("%s.%s" % (key, op), b) for op, b in v.items()]
        else:
            items = [(key, v)]
        for k, b in items:
            field_name, _, op = k.rpartition(".")
            if op not in _RANGE_OPS or not field_name:
                raise ConfigError("%s.%s" % (path, k), "a range bound is <field>.gte, .gt, .lte or .lt")
            if isinstance(b, bool) or not isinstance(b, (int, float)):
                raise ConfigError("%s.%s" % (path, k), "a range bound must be a number, got %r" % (b,))
            bounds.setdefault(field_name, []).append((_RANGE_OPS[op], b))
    tests = []
    for key, ops in bounds.items():
        def test(ev, key=key, ops=tuple(ops)):
            v = E.get(ev, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                if isinstance(v, str):
                    try:
                        v = float(v)
                    except ValueError:
                        return False
                else:
                    return False
            return all(op(v, b) for op, b in ops)
        tests.append(test)
    return _all(tests)


def _has_fields(arg, path):
    if isinstance(arg, str):
        arg = [arg]
    if not isinstance(arg, list) or not arg or not all(isinstance(k, str) for k in arg):
        raise ConfigError(path, "expected a list of field names")
    keys = tuple(arg)
    return lambda ev: all(E.get(ev, k) is not MISSING for k in keys)


def _or(arg, path):
    conds = _list(arg, path)
    return lambda ev: any(c(ev) for c in conds)


def _and(arg, path):
    conds = _list(arg, path)
    return lambda ev: all(c(ev) for c in conds)


def _not(arg, path):
    c = compile_condition(arg, path)
    return lambda ev: not c(ev)


def _list(arg, path):
    if not isinstance(arg, list) or not arg:
        raise ConfigError(path, "expected a list of conditions")
    return tuple(compile_condition(c, "%s[%d]" % (path, i)) for i, c in enumerate(arg))


# -- network ---------------------------------------------------------------

def _nets(*cidrs):
    return tuple(ipaddress.ip_network(c) for c in cidrs)


_PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")    # libbeat's (RFC 1918, fd00::/8)
_LOOPBACK = _nets("127.0.0.0/8", "::1/128")
_LL_UNICAST = _nets("169.254.0.0/16", "fe80::/10")
_LL_MULTICAST4 = _nets("224.0.0.0/24")


def _v6_scope(ip, scope: int) -> bool:
    """Go's IPv6 multicast scope tests: ff<flags><scope>::/16, any flags."""
    if ip.version != 6:
        return False
    b = ip.packed
    return b[0] == 0xFF and b[1] & 0x0F == scope


def _ll_multicast(ip) -> bool:
    return _in(ip, _LL_MULTICAST4) or _v6_scope(ip, 2)


def _if_multicast(ip) -> bool:
    return _v6_scope(ip, 1)


_MULTICAST = _nets("224.0.0.0/4", "ff00::/8")
_UNSPECIFIED = _nets("0.0.0.0/32", "::/128")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def _in(ip, nets) -> bool:
    v = ip.version
    return any(ip in n for n in nets if n.version == v)


def _unmap(ip):
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_private(ip) -> bool:
    return _in(ip, _PRIVATE)


def is_global_unicast(ip) -> bool:
    return not (_in(ip, _UNSPECIFIED) or _in(ip, _LOOPBACK) or _in(ip, _MULTICAST)
                or _in(ip, _LL_UNICAST) or ip == _BROADCAST)


def is_public(ip) -> bool:
    return not (is_private(ip) or _in(ip, _LOOPBACK) or _in(ip, _UNSPECIFIED) or _in(ip, _LL_UNICAST)
                or _ll_multicast(ip) or _if_multicast(ip) or ip == _BROADCAST)


NAMED_NETWORKS = {
    "loopback": lambda ip: _in(ip, _LOOPBACK),
    "private": is_private,
    "public": is_public,
    "multicast": lambda ip: _in(ip, _MULTICAST),
    "link_local_unicast": lambda ip: _in(ip, _LL_UNICAST),
    "link_local_multicast": _ll_multicast,
    "interface_local_multicast": _if_multicast,
    "unspecified": lambda ip: _in(ip, _UNSPECIFIED),
    "global_unicast": is_global_unicast,
    "unicast": is_global_unicast,
}


def network_matcher(spec, path: str):
    """A test ``ip -> bool`` for a CIDR, a named range or a list of them."""
    specs = spec if isinstance(spec, list) else [spec]
    if not specs:
        raise ConfigError(path, "expected a CIDR or a named network")
    tests = []
    cidrs = []
    for i, s in enumerate(specs):
        if not isinstance(s, str):
            raise ConfigError(path, "expected a CIDR or a named network, got %r" % (s,))
        named = NAMED_NETWORKS.get(s)
        if named is not None:
            tests.append(named)
            continue
        try:
            cidrs.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            raise ConfigError(path, "%r is neither a CIDR nor a named network (%s)"
                              % (s, ", ".join(sorted(NAMED_NETWORKS)))) from None
    if cidrs:
        nets = tuple(cidrs)
        tests.append(lambda ip: _in(ip, nets))
    return lambda ip: any(t(ip) for t in tests)


_IP_CACHE: dict = {}


def parse_ip(v):
    ip = _IP_CACHE.get(v)
    if ip is None:
        try:
            ip = _unmap(ipaddress.ip_address(v))
        except ValueError:
            ip = False
        if len(_IP_CACHE) > 16384:
            _IP_CACHE.clear()
        _IP_CACHE[v] = ip
    return ip


def _network(arg, path):
    tests = []
    for key, spec in _fields(arg, path).items():
        match = network_matcher(spec, "%s.%s" % (path, key))

        def test(ev, key=key, match=match):
            v = E.get(ev, key)
            for s in _strings(v):
                ip = parse_ip(s)
                if ip and match(ip):
                    return True
            return False
        tests.append(test)
    return _all(tests)


# libbeat's precedence (conditions.go NewCondition)
_BUILDERS = {"equals": _equals, "contains": _contains, "regexp": _regexp, "range": _range,
             "has_fields": _has_fields, "network": _network, "or": _or, "and": _and, "not": _not}
