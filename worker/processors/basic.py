"""Field processors: drop/include/add/rename/copy/move/truncate/convert/
replace/append/extract_array/urldecode/base64/gzip/JSON/duration/add_id/
fingerprint/rate_limit/add_locale (libbeat ``processors/actions`` and
friends). Each factory checks its options; ``run`` mutates the event.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import ipaddress
import json
import os
import re
import struct
import threading
import time
import urllib.parse
import zlib

from shared.confutil import ConfigError, parse_duration
from worker.processors import event as E
from worker.processors.base import ProcessorError, append_error, fail
from worker.processors.conditions import compile_regexp

MISSING = E.MISSING


def _backup(ev, fail_on_error):
    return E.deep_copy(ev) if fail_on_error else None


# -- drop / include --------------------------------------------------------------

class DropEvent:
    def run(self, ev):
        return None


def drop_event(o, ctx):
    return DropEvent()


class DropFields:
    def __init__(self, fields, regexps, ignore_missing):
        self.fields = fields
        self.regexps = regexps
        self.ignore_missing = ignore_missing

    def run(self, ev):
        errors = []
        for f in self.fields:
            if not E.delete(ev, f) and not self.ignore_missing:
                errors.append("failed to drop field [%s]: key not found" % f)
        if self.regexps:
            for key in list(_flat_keys(ev)):
                if any(rx.search(key) for rx in self.regexps) and key not in ("@timestamp", "type"):
                    E.delete(ev, key)
        if errors:
            raise ProcessorError("; ".join(errors), ev)
        return ev


def _flat_keys(ev, prefix=""):
    for k, v in ev.items():
        key = prefix + k
        if type(v) is dict and v:
            yield from _flat_keys(v, key + ".")
        yield key


def drop_fields(o, ctx):
    fields = o.strings("fields", required=True)
    plain, rxs = [], []
    for f in fields:
        if len(f) > 2 and f.startswith("/") and f.endswith("/"):
            rxs.append(compile_regexp(f[1:-1], o.sub("fields")))
        elif f in ("@timestamp", "type"):
            raise ConfigError(o.sub("fields"), "%s cannot be dropped" % f)
        else:
            plain.append(f)
    return DropFields(plain, rxs, o.bool("ignore_missing", False))


class IncludeFields:
    def __init__(self, fields):
        self.fields = fields

    def run(self, ev):
        out: dict = {}
        for f in self.fields:
            v = E.get(ev, f)
            if v is not MISSING:
                E.put(out, f, v)
        ev.clear()
        ev.update(out)
        return ev


def include_fields(o, ctx):
    fields = o.strings("fields", required=True)
    return IncludeFields(["@timestamp", "type"] + [f for f in fields if f not in ("@timestamp", "type")])


# -- add_fields / add_tags / add_labels ------------------------------------------------

class AddFields:
    def __init__(self, fields: dict, overwrite=True):
        self.fields = fields
        self.overwrite = overwrite

    def run(self, ev):
        E.deep_update(ev, self.fields, self.overwrite)
        return ev


def add_fields(o, ctx):
    fields = o.mapping("fields", required=True)
    target = o.str("target", "fields") if "target" in o.raw else "fields"
    fields = E.expand(fields)
    if target:
        wrapped: dict = {}
        E.put(wrapped, target, fields)
        fields = wrapped
    return AddFields(fields)


class AddTags:
    def __init__(self, tags, target):
        self.tags = tags
        self.target = target

    def run(self, ev):
        E.add_tags(ev, self.target, self.tags)
        return ev


def add_tags(o, ctx):
    tags = o.strings("tags", required=True)
    target = o.str("target", "tags") or "tags"
    return AddTags(tags, target)


def _flatten(d: dict, prefix: str, out: dict) -> dict:
    for k, v in d.items():
        key = "%s%s" % (prefix, k)
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def add_labels(o, ctx):
    labels = o.mapping("labels", required=True)
    # ECS labels are flat keywords: nested labels become dotted keys under labels
    return AddFields({"labels": E.flatten(labels)})


# -- rename / copy / move ----------------------------------------------------------

class Rename:
    def __init__(self, pairs, ignore_missing, fail_on_error):
        self.pairs = pairs
        self.ignore_missing = ignore_missing
        self.fail_on_error = fail_on_error

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        for src, dst in self.pairs:
            v = E.get(ev, src)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "could not fetch value for key: %s, Error: key not found" % src)
            if E.get(ev, dst) is not MISSING:
                return fail(ev, backup, self.fail_on_error, "target field %s already exists, drop or rename this field first" % dst)
            E.delete(ev, src)
            E.put(ev, dst, v)
        return ev


def rename(o, ctx):
    return Rename(o.from_to("fields"), o.bool("ignore_missing", False), o.bool("fail_on_error", True))


class CopyFields(Rename):
    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        for src, dst in self.pairs:
            v = E.get(ev, src)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "could not fetch value for key: %s, Error: key not found" % src)
            if E.get(ev, dst) is not MISSING:
                return fail(ev, backup, self.fail_on_error, "target field %s already exists, drop or rename this field first" % dst)
            E.put(ev, dst, E.deep_copy(v))
        return ev


def copy_fields(o, ctx):
    return CopyFields(o.from_to("fields"), o.bool("ignore_missing", False), o.bool("fail_on_error", True))


class MoveFields:
    def __init__(self, src, fields, exclude, to, ignore_missing):
        self.src, self.fields, self.exclude, self.to = src, fields, exclude, to
        self.ignore_missing = ignore_missing

    def run(self, ev):
        parent = ev if not self.src else E.get(ev, self.src)
        if type(parent) is not dict:
            if self.ignore_missing:
                return ev
            raise ProcessorError("move_fields: %s is not an object" % self.src, ev)
        keys = self.fields or [k for k in parent if k not in self.exclude]
        moved = {}
        for k in keys:
            if k in self.exclude:
                continue
            v = E.get(parent, k)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                raise ProcessorError("move_fields: %s not found" % k, ev)
            E.delete(parent, k)
            moved[k] = v
        for k, v in moved.items():
            E.put(ev, self.to + k, v)
        return ev


def move_fields(o, ctx):
    return MoveFields(o.str("from", ""), o.strings("fields"), set(o.strings("exclude")), o.str("to", ""),
                      o.bool("ignore_missing", False))


# -- truncate_fields -----------------------------------------------------------

class Truncate:
    def __init__(self, fields, max_bytes, max_chars, ignore_missing, fail_on_error):
        self.fields, self.max_bytes, self.max_chars = fields, max_bytes, max_chars
        self.ignore_missing, self.fail_on_error = ignore_missing, fail_on_error

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        truncated = False
        for f in self.fields:
            v = E.get(ev, f)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "could not fetch value for key: %s, Error: key not found" % f)
            if isinstance(v, (bytes, bytearray)):
                v = bytes(v).decode("utf-8", "replace")
            if not isinstance(v, str):
                return fail(ev, backup, self.fail_on_error, "value cannot be truncated: %r" % (v,))
            if self.max_chars is not None:
                if len(v) > self.max_chars:
                    E.put(ev, f, v[:self.max_chars])
                    truncated = True
            else:
                raw = v.encode("utf-8")
                if len(raw) > self.max_bytes:
                    # never cut a character in two
                    E.put(ev, f, raw[:self.max_bytes].decode("utf-8", "ignore"))
                    truncated = True
        if truncated:
            E.add_tags(ev, "log.flags", ["truncated"])
        return ev


def truncate_fields(o, ctx):
    fields = o.strings("fields", required=True)
    mb = o.int("max_bytes", None, minimum=0) if "max_bytes" in o.raw else None
    mc = o.int("max_characters", None, minimum=0) if "max_characters" in o.raw else None
    if (mb is None) == (mc is None):
        raise ConfigError(o.path, "exactly one of max_bytes and max_characters must be set")
    return Truncate(fields, mb, mc, o.bool("ignore_missing", False), o.bool("fail_on_error", True))


# -- convert -------------------------------------------------------------------

_INT_RX = re.compile(r"^[+-]?(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]*|0[bB][01_]+|[1-9][0-9_]*)$")
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _go_int(s: str, bits: int) -> int:
    """strconv.ParseInt(s, 0, bits): base prefixes 0x, 0o, 0b and a bare leading 0 (octal)."""
    s = s.strip()
    if not _INT_RX.match(s):
        raise ValueError("invalid syntax")
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-").replace("_", "")
    if body[:2] in ("0x", "0X"):
        n = int(body[2:], 16)
    elif body[:2] in ("0b", "0B"):
        n = int(body[2:], 2)
    elif body[:2] in ("0o", "0O"):
        n = int(body[2:], 8)
    elif len(body) > 1 and body[0] == "0":
        n = int(body[1:], 8)
    else:
        n = int(body)
    n *= sign
    if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
        raise ValueError("value out of range")
    return n


def _to_int(v, bits):
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, int):
        if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
            raise ValueError("value out of range")
        return v
    if isinstance(v, float):
        return _to_int(int(v), bits)
    if isinstance(v, str):
        return _go_int(v, bits)
    raise ValueError("cannot convert %s" % type(v).__name__)


def _to_float(v):
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return float(v.strip())
    raise ValueError("cannot convert %s" % type(v).__name__)


def _to_bool(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str) and v in _BOOLS:
        return _BOOLS[v]
    raise ValueError("invalid boolean %r" % (v,))


def _to_str(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return repr(v).rstrip("0").rstrip(".") if abs(v) < 1e21 else repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return str(v)


def _to_ip(v):
    if not isinstance(v, str):
        raise ValueError("ip must be a string")
    return str(ipaddress.ip_address(v.strip()))


_CONVERTERS = {"integer": lambda v: _to_int(v, 32), "long": lambda v: _to_int(v, 64),
               "float": _to_float, "double": _to_float, "boolean": _to_bool, "string": _to_str, "ip": _to_ip}


class Convert:
    def __init__(self, fields, ignore_missing, fail_on_error, tag, mode):
        self.fields, self.ignore_missing, self.fail_on_error = fields, ignore_missing, fail_on_error
        self.tag, self.mode = tag, mode

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        for src, dst, conv, tname in self.fields:
            v = E.get(ev, src)
            if v is MISSING or v is None:
                if self.ignore_missing:
                    continue
                msg = "field [%s] is missing" % src
                if self.tag:
                    E.add_tags(ev, "tags", [self.tag])
                return fail(ev, backup, self.fail_on_error, msg)
            try:
                out = [conv(x) for x in v] if isinstance(v, list) else conv(v)
            except (ValueError, TypeError, OverflowError) as e:
                msg = "unable to convert field [%s] value [%r] to [%s]: %s" % (src, v, tname, e)
                if self.tag:
                    E.add_tags(ev, "tags", [self.tag])
                if self.fail_on_error:
                    if self.tag:
                        E.add_tags(backup, "tags", [self.tag])
                    return fail(ev, backup, True, msg)
                continue
            if dst and dst != src:
                if self.mode == "rename":
                    E.delete(ev, src)
                E.put(ev, dst, out)
            else:
                E.put(ev, src, out)
        return ev


def convert(o, ctx):
    raw = o.any("fields", required=True)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(o.sub("fields"), "expected a list of {from, to, type}")
    fields = []
    for i, item in enumerate(raw):
        p = "%s[%d]" % (o.sub("fields"), i)
        if not isinstance(item, dict) or not isinstance(item.get("from"), str) or not item["from"] \
                or set(item) - {"from", "to", "type"}:
            raise ConfigError(p, "expected {from: <field>, to: <field>, type: <type>}")
        tname = item.get("type")
        if tname is None and not item.get("to"):
            raise ConfigError(p, "type or to must be set")
        if tname is not None and tname not in _CONVERTERS:
            raise ConfigError(p + ".type", "must be one of %s" % ", ".join(sorted(_CONVERTERS)))
        to = item.get("to") or ""
        if not isinstance(to, str):
            raise ConfigError(p + ".to", "expected a string")
        fields.append((item["from"], to, _CONVERTERS[tname] if tname else (lambda v: v), tname or "none"))
    return Convert(fields, o.bool("ignore_missing", False), o.bool("fail_on_error", True), o.str("tag", ""),
                   o.str("mode", "copy", choices=("copy", "rename")))


# -- replace -----------------------------------------------------------------------------

_GO_REPL = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def go_replacement(repl: str) -> str:
    """A Go ``Regexp.ReplaceAllString`` template (``$1``, ``${name}``, ``$$``) as a
    Python one. Go takes the longest name after ``$`` (``$1x`` names group ``1x``,
    which does not exist: empty)."""
    out = []
    pos = 0
    for m in _GO_REPL.finditer(repl):
        out.append(repl[pos:m.start()].replace("\\", "\\\\"))
        if m.group(1) == "$":
            out.append("$")
        else:
            out.append("\\g<%s>" % (m.group(2) or m.group(3)))
        pos = m.end()
    out.append(repl[pos:].replace("\\", "\\\\"))
    return "".join(out)


class Replace:
    def __init__(self, fields, ignore_missing, fail_on_error):
        self.fields, self.ignore_missing, self.fail_on_error = fields, ignore_missing, fail_on_error

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        for key, rx, repl, names in self.fields:
            v = E.get(ev, key)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "could not fetch value for key: %s, Error: key not found" % key)
            if not isinstance(v, str):
                return fail(ev, backup, self.fail_on_error, "field %s is not a string" % key)
            E.put(ev, key, rx.sub(lambda m: _expand(m, repl, names), v))
        return ev


def _expand(m, template, names):
    def one(t):
        if t.group(1) == "$":
            return "$"
        name = t.group(2) or t.group(3)
        try:
            g = m.group(int(name)) if name.isdigit() else (m.group(name) if name in names else None)
        except (IndexError, ValueError):
            g = None
        return g or ""
    return _GO_REPL.sub(one, template)


def replace(o, ctx):
    raw = o.any("fields", required=True)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(o.sub("fields"), "expected a list of {field, pattern, replacement}")
    fields = []
    for i, item in enumerate(raw):
        p = "%s[%d]" % (o.sub("fields"), i)
        if not isinstance(item, dict) or set(item) - {"field", "pattern", "replacement"} \
                or not isinstance(item.get("field"), str) or not isinstance(item.get("pattern"), str) \
                or not isinstance(item.get("replacement", ""), str):
            raise ConfigError(p, "expected {field, pattern, replacement}")
        rx = compile_regexp(item["pattern"], p + ".pattern")
        names = set(getattr(rx, "groupindex", {}) or {})
        fields.append((item["field"], rx, item.get("replacement") or "", names))
    return Replace(fields, o.bool("ignore_missing", False), o.bool("fail_on_error", True))


# -- append / extract_array ----------------------------------------------------------------

class Append:
    def __init__(self, target, fields, values, ignore_empty, ignore_missing, fail_on_error, allow_dup):
        self.target, self.fields, self.values = target, fields, values
        self.ignore_empty, self.ignore_missing, self.fail_on_error = ignore_empty, ignore_missing, fail_on_error
        self.allow_dup = allow_dup

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        items = []
        for f in self.fields:
            v = E.get(ev, f)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "could not fetch value for key: %s, Error: key not found" % f)
            items.extend(E.deep_copy(v) if isinstance(v, list) else [E.deep_copy(v)])
        items.extend(E.deep_copy(self.values))
        if self.ignore_empty:
            items = [x for x in items if x is not None and x != "" and x != [] and x != {}]
        have = E.get(ev, self.target)
        out = [] if have is MISSING or have is None else (list(have) if isinstance(have, list) else [have])
        out.extend(items)
        if not self.allow_dup:
            dedup = []
            for x in out:
                if x not in dedup:
                    dedup.append(x)
            out = dedup
        E.put(ev, self.target, out)
        return ev


def append(o, ctx):
    target = o.str("target_field", required=True)
    fields = o.strings("fields")
    values = o.any("values", [])
    if not isinstance(values, list):
        values = [values]
    if not fields and not values:
        raise ConfigError(o.path, "fields or values must be set")
    return Append(target, fields, values, o.bool("ignore_empty_values", False), o.bool("ignore_missing", False),
                  o.bool("fail_on_error", True), o.bool("allow_duplicate", True))


class ExtractArray:
    def __init__(self, field, mappings, ignore_missing, overwrite, fail_on_error, omit_empty):
        self.field, self.mappings = field, mappings
        self.ignore_missing, self.overwrite, self.fail_on_error, self.omit_empty = \
            ignore_missing, overwrite, fail_on_error, omit_empty

    def run(self, ev):
        v = E.get(ev, self.field)
        if v is MISSING:
            if self.ignore_missing:
                return ev
            return fail(ev, E.deep_copy(ev), self.fail_on_error, "could not fetch value for key: %s" % self.field)
        if not isinstance(v, list):
            return fail(ev, E.deep_copy(ev), self.fail_on_error, "field %s is not an array" % self.field)
        backup = _backup(ev, self.fail_on_error)
        for target, idx in self.mappings:
            if idx >= len(v):
                continue
            x = v[idx]
            if self.omit_empty and (x is None or x == "" or x == [] or x == {}):
                continue
            if not self.overwrite and E.get(ev, target) is not MISSING:
                return fail(ev, backup, self.fail_on_error, "target field %s already has a value" % target)
            E.put(ev, target, E.deep_copy(x))
        return ev


def extract_array(o, ctx):
    field = o.str("field", required=True)
    m = E.flatten(o.mapping("mappings", required=True))
    mappings = []
    for k, idx in m.items():
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ConfigError("%s.%s" % (o.sub("mappings"), k), "expected an array index >= 0")
        mappings.append((str(k), idx))
    return ExtractArray(field, mappings, o.bool("ignore_missing", False), o.bool("overwrite_keys", False),
                        o.bool("fail_on_error", True), o.bool("omit_empty", False))


# -- decoders (urldecode, base64, gzip, JSON, duration) -------------------------------------------

class FromTo:
    """One transformation applied from -> to (to empty: in place)."""

    def __init__(self, name, pairs, fn, ignore_missing, fail_on_error):
        self.name, self.pairs, self.fn = name, pairs, fn
        self.ignore_missing, self.fail_on_error = ignore_missing, fail_on_error

    def run(self, ev):
        backup = _backup(ev, self.fail_on_error)
        for src, dst in self.pairs:
            v = E.get(ev, src)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                return fail(ev, backup, self.fail_on_error, "%s: could not fetch value for key: %s, Error: key not found"
                            % (self.name, src))
            try:
                out = self.fn(v)
            except (ValueError, TypeError, OSError, EOFError, zlib.error, binascii.Error) as e:
                msg = "%s: failed to decode field [%s]: %s" % (self.name, src, e)
                if self.fail_on_error:
                    return fail(ev, backup, True, msg)
                append_error(ev, msg)
                continue
            E.put(ev, dst or src, out)
        return ev


def _single_from_to(o, name):
    raw = o.any(name, required=True)
    if not isinstance(raw, dict) or not isinstance(raw.get("from"), str) or not raw["from"] \
            or set(raw) - {"from", "to"} or not isinstance(raw.get("to", ""), (str, type(None))):
        raise ConfigError(o.sub(name), "expected {from: <field>, to: <field>}")
    return [(raw["from"], raw.get("to") or "")]


def _urldecode(v):
    if not isinstance(v, str):
        raise TypeError("not a string")
    _check_escapes(v)
    return urllib.parse.unquote_plus(v, errors="strict")


_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


def _check_escapes(v):
    m = _BAD_ESCAPE.search(v)
    if m:            # Go's url.QueryUnescape refuses what Python would leave as is
        raise ValueError("invalid URL escape %r" % v[m.start():m.start() + 3])


def urldecode(o, ctx):
    return FromTo("urldecode", o.from_to("fields", optional_to=True), _urldecode, o.bool("ignore_missing", False),
                  o.bool("fail_on_error", True))


def _b64(v):
    if not isinstance(v, str):
        raise TypeError("not a string")
    return base64.b64decode(v, validate=True).decode("utf-8", "replace")


def decode_base64_field(o, ctx):
    return FromTo("decode_base64_field", _single_from_to(o, "field"), _b64, o.bool("ignore_missing", False),
                  o.bool("fail_on_error", True))


def _gunzip(v):
    if isinstance(v, str):
        v = v.encode("latin-1", "replace")
    if not isinstance(v, (bytes, bytearray)):
        raise TypeError("not a string")
    return gzip.decompress(bytes(v)).decode("utf-8", "replace")


def decompress_gzip_field(o, ctx):
    return FromTo("decompress_gzip_field", _single_from_to(o, "field"), _gunzip, o.bool("ignore_missing", False),
                  o.bool("fail_on_error", True))


_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(s: str) -> float:
    """Seconds of a Go duration string (``1h2m3.5s``, ``-150ms``)."""
    if not isinstance(s, str):
        raise TypeError("not a string")
    t = s.strip()
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if t == "0":
        return 0.0
    pos, total = 0, 0.0
    if not t:
        raise ValueError("invalid duration %r" % s)
    while pos < len(t):
        m = _GO_DURATION.match(t, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError("invalid duration %r" % s)
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


_DURATION_FORMATS = {"milliseconds": 1e3, "seconds": 1.0, "minutes": 1 / 60.0, "hours": 1 / 3600.0}


class DecodeDuration:
    def __init__(self, field, factor):
        self.field, self.factor = field, factor

    def run(self, ev):
        v = E.get(ev, self.field)
        if v is MISSING:
            return ev
        try:
            E.put(ev, self.field, round(go_duration(v) * self.factor, 9))
        except (TypeError, ValueError) as e:
            raise ProcessorError("decode_duration: %s" % e, ev) from None
        return ev


def decode_duration(o, ctx):
    return DecodeDuration(o.str("field", required=True),
                          _DURATION_FORMATS[o.str("format", "milliseconds", choices=tuple(_DURATION_FORMATS))])


class DecodeJSON:
    def __init__(self, fields, process_array, max_depth, target, overwrite, add_error_key, document_id,
                 expand_keys=False):
        self.expand_keys = expand_keys
        self.fields, self.process_array, self.max_depth = fields, process_array, max_depth
        self.target, self.overwrite, self.add_error_key, self.document_id = target, overwrite, add_error_key, document_id

    def _decode(self, text, depth):
        try:
            v = _go_json(text)
        except ValueError:
            return text, False
        return self._deeper(v, depth), True

    def _deeper(self, v, depth):
        if depth >= self.max_depth:
            return v
        if isinstance(v, dict):
            return {k: (self._decode(x, depth + 1)[0] if isinstance(x, str) else self._deeper(x, depth + 1))
                    for k, x in v.items()}
        if isinstance(v, list) and self.process_array:
            return [(self._decode(x, depth + 1)[0] if isinstance(x, str) else self._deeper(x, depth + 1)) for x in v]
        return v

    def run(self, ev):
        try:
            return self._run(ev)
        except RecursionError:
            raise ProcessorError("decode_json_fields: the JSON document is too deeply nested", ev) from None

    def _run(self, ev):
        errors = []
        for f in self.fields:
            text = E.get(ev, f)
            if not isinstance(text, str):
                continue
            try:
                obj = _go_json(text)
            except ValueError as e:
                msg = "parsing input as JSON: %s" % e
                errors.append(msg)
                if self.add_error_key:
                    E.put(ev, "error.message", msg)
                    E.put(ev, "error.type", "json")
                continue
            obj = self._deeper(obj, 1)
            if self.expand_keys and isinstance(obj, dict):
                obj = E.expand(obj)
            if self.document_id and isinstance(obj, dict):
                doc_id = obj.pop(self.document_id, None)
                if isinstance(doc_id, str):
                    E.put(ev, "@metadata._id", doc_id)
            if self.target is None:
                E.put(ev, f, obj)
            elif self.target == "":
                if not isinstance(obj, dict):
                    errors.append("cannot merge %s into the event's root: not a JSON object" % f)
                    continue
                E.deep_update(ev, obj, self.overwrite) if self.overwrite else _merge_no_overwrite(ev, obj)
            else:
                if E.get(ev, self.target) is not MISSING and not self.overwrite:
                    errors.append("target %s exists and overwrite_keys is false" % self.target)
                    continue
                E.put(ev, self.target, obj)
        if errors and not self.add_error_key:
            raise ProcessorError("decode_json_fields: " + "; ".join(errors), ev)
        return ev


_JSON = json.JSONDecoder()


def _go_json(text: str):
    """The first JSON value of ``text`` (Go's json.Decoder: what follows it is not read)."""
    start = len(text) - len(text.lstrip())
    return _JSON.raw_decode(text, start)[0]


def _merge_no_overwrite(ev, obj):
    for k, v in obj.items():
        if k not in ev:
            ev[k] = v


def decode_json_fields(o, ctx):
    fields = o.strings("fields", required=True)
    target = o.any("target", None)
    if target is not None and not isinstance(target, str):
        raise ConfigError(o.sub("target"), "expected a string")
    return DecodeJSON(fields, o.bool("process_array", False), o.int("max_depth", 1, minimum=1), target,
                      o.bool("overwrite_keys", False), o.bool("add_error_key", False), o.str("document_id", ""),
                      o.bool("expand_keys", False))


# -- add_id / fingerprint ---------------------------------------------------------------------

class ESIdGenerator:
    """Elasticsearch's time-based UUIDs (``TimeBasedUUIDGenerator``): 6 bytes of
    milliseconds, a 3-byte sequence and a 6-byte node address, base64url, 20 chars."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seq = int.from_bytes(os.urandom(3), "big")
        self.last = 0
        self.node = os.urandom(6)

    def next(self) -> str:
        with self.lock:
            self.seq = (self.seq + 1) & 0xFFFFFF
            ms = max(int(time.time() * 1000), self.last)
            if self.seq == 0:
                ms += 1
            self.last = ms
            seq = self.seq
        raw = bytearray(15)
        raw[0:2] = struct.pack(">H", seq & 0xFFFF)
        raw[2:8] = ms.to_bytes(6, "big")
        raw[8:14] = self.node
        raw[14] = (seq >> 16) & 0xFF
        return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


class AddId:
    def __init__(self, target):
        self.target = target
        self.gen = ESIdGenerator()

    def run(self, ev):
        E.put(ev, self.target, self.gen.next())
        return ev


def add_id(o, ctx):
    o.str("type", "elasticsearch", choices=("elasticsearch",))
    return AddId(o.str("target_field", "@metadata._id") or "@metadata._id")


def _go_value(v) -> str:
    """The text Go's ``%v`` gives for a JSON value (libbeat's fingerprint input)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, float):
        return repr(v) if not v.is_integer() else str(int(v))
    if isinstance(v, list):
        return "[" + " ".join(_go_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, _go_value(v[k])) for k in sorted(v)) + "]"
    return str(v)


_HASHES = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
           "sha512": hashlib.sha512}


def _xxhash():
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh64


class Fingerprint:
    def __init__(self, fields, target, hasher, encode, ignore_missing):
        self.fields, self.target, self.hasher, self.encode = sorted(fields), target, hasher, encode
        self.ignore_missing = ignore_missing

    def run(self, ev):
        h = self.hasher()
        for f in self.fields:
            v = E.get(ev, f)
            if v is MISSING:
                if self.ignore_missing:
                    continue
                raise ProcessorError("failed to compute fingerprint: failed to find field [%s] in event" % f, ev)
            h.update(("|%s|%s" % (f, _go_value(v))).encode("utf-8"))
        h.update(b"|")
        E.put(ev, self.target, self.encode(h.digest()))
        return ev


_ENCODINGS = {"hex": lambda b: b.hex(), "base32": lambda b: base64.b32encode(b).decode(),
              "base64": lambda b: base64.b64encode(b).decode()}


def fingerprint(o, ctx):
    fields = o.strings("fields", required=True)
    method = o.str("method", "sha256", choices=tuple(_HASHES) + ("xxhash",))
    hasher = _HASHES.get(method) or _xxhash()
    if hasher is None:
        raise ConfigError(o.sub("method"), "xxhash needs the xxhash Python package, which is not installed")
    return Fingerprint(fields, o.str("target_field", "fingerprint") or "fingerprint", hasher,
                       _ENCODINGS[o.str("encoding", "hex", choices=tuple(_ENCODINGS))], o.bool("ignore_missing", False))


# -- rate_limit / add_locale ----------------------------------------------------------------

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


class RateLimit:
    """Token bucket per key (the values of ``fields``), refilled at ``limit``;
    buckets idle for a minute are forgotten (at most 100 000 kept)."""

    def __init__(self, rate, fields, clock, capacity):
        self.rate, self.fields, self.clock = rate, fields, clock
        self.capacity = max(capacity, 1.0)
        self.buckets: dict = {}
        self.dropped = 0

    def run(self, ev):
        key = tuple(repr(E.get(ev, f, None)) for f in self.fields)
        now = self.clock()
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) >= 100_000:
                self._gc(now)
            b = self.buckets[key] = [self.capacity, now]
        else:
            b[0] = min(self.capacity, b[0] + (now - b[1]) * self.rate)
            b[1] = now
        if b[0] >= 1.0:
            b[0] -= 1.0
            return ev
        self.dropped += 1
        return None

    def _gc(self, now):
        for k in [k for k, b in self.buckets.items() if now - b[1] > 60]:
            del self.buckets[k]
        if len(self.buckets) >= 100_000:
            self.buckets.clear()


def rate_limit(o, ctx):
    limit = o.str("limit", required=True)
    m = _RATE.match(limit)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(o.sub("limit"), "expected <number>/s, /m or /h, got %r" % limit)
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
    algo = o.mapping("algorithm", {"token_bucket": {}})
    if set(algo) - {"token_bucket"}:
        raise ConfigError(o.sub("algorithm"), "only token_bucket is available")
    tb = algo.get("token_bucket") or {}
    if not isinstance(tb, dict) or set(tb) - {"burst_multiplier", "gc"}:
        raise ConfigError(o.sub("algorithm") + ".token_bucket", "known options: burst_multiplier, gc.num_calls")
    burst = tb.get("burst_multiplier", 1.0)
    if isinstance(burst, bool) or not isinstance(burst, (int, float)) or burst <= 0:
        raise ConfigError(o.sub("algorithm") + ".token_bucket.burst_multiplier", "expected a positive number")
    n = float(m.group(1))
    return RateLimit(n / per, o.strings("fields"), ctx.clock, n * burst)


class AddLocale:
    def __init__(self, fmt):
        self.fmt = fmt

    def run(self, ev):
        lt = time.localtime()
        if self.fmt == "abbreviation":
            E.put(ev, "event.timezone", lt.tm_zone)
        else:
            off = lt.tm_gmtoff
            sign = "-" if off < 0 else "+"
            off = abs(off)
            E.put(ev, "event.timezone", "%s%02d:%02d" % (sign, off // 3600, off % 3600 // 60))
        return ev


def add_locale(o, ctx):
    return AddLocale(o.str("format", "offset", choices=("offset", "abbreviation")))


PROCESSORS = {
    "drop_event": drop_event, "drop_fields": drop_fields, "include_fields": include_fields,
    "add_fields": add_fields, "add_tags": add_tags, "add_labels": add_labels, "rename": rename,
    "copy_fields": copy_fields, "move_fields": move_fields, "truncate_fields": truncate_fields,
    "convert": convert, "replace": replace, "append": append, "extract_array": extract_array,
    "urldecode": urldecode, "decode_base64_field": decode_base64_field,
    "decompress_gzip_field": decompress_gzip_field, "decode_json_fields": decode_json_fields,
    "decode_duration": decode_duration, "add_id": add_id, "fingerprint": fingerprint,
    "rate_limit": rate_limit, "add_locale": add_locale,
}
