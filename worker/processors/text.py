"""Text processors: dissect, syslog, decode_xml."""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from shared.confutil import ConfigError
from worker.processors import event as E
from worker.processors.base import ProcessorError, append_error
from worker.processors.basic import _to_bool, _to_float, _to_int, _to_ip

MISSING = E.MISSING

# -- dissect ---------------------------------------------------------------------------------

_KEY = re.compile(r"%\{([^}]*)\}")
_DTYPES = {"integer": lambda v: _to_int(v, 32), "long": lambda v: _to_int(v, 64), "float": _to_float,
           "double": _to_float, "boolean": _to_bool, "ip": _to_ip, "string": str}


class _Key:
    __slots__ = ("name", "kind", "ordinal", "pad", "dtype")

    def __init__(self, raw: str, path: str):
        self.dtype = None
        if "|" in raw:
            raw, dtype = raw.rsplit("|", 1)
            if dtype not in _DTYPES:
                raise ConfigError(path, "unknown dissect data type %r" % dtype)
            self.dtype = dtype
        self.pad = raw.endswith("->")
        if self.pad:
            raw = raw[:-2]
        self.kind = ""
        if raw[:1] in ("+", "?", "*", "&"):
            self.kind, raw = raw[0], raw[1:]
        self.ordinal = 0
        if "/" in raw and self.kind == "+":
            raw, o = raw.rsplit("/", 1)
            if not o.isdigit():
                raise ConfigError(path, "bad append ordinal in %%{%s}" % raw)
            self.ordinal = int(o)
        self.name = raw
        if not raw and self.kind:
            raise ConfigError(path, "a dissect key with a modifier needs a name")


class Dissector:
    """The tokenizer as a prefix and (key, following delimiter) pairs."""

    def __init__(self, tokenizer: str, path: str):
        parts = _KEY.split(tokenizer)
        self.prefix = parts[0]
        self.fields: list[tuple[_Key, str]] = []
        for i in range(1, len(parts), 2):
            delim = parts[i + 1]
            if i + 2 < len(parts) and delim == "":
                raise ConfigError(path, "dissect keys must be separated by a delimiter")
            self.fields.append((_Key(parts[i], path), delim))
        if not self.fields:
            raise ConfigError(path, "the tokenizer has no %{key}")
        refs = {k.name for k, _ in self.fields if k.kind == "*"}
        vals = {k.name for k, _ in self.fields if k.kind == "&"}
        if refs != vals:
            raise ConfigError(path, "every %{*key} needs its %{&key} and back")

    def parse(self, text: str):
        if not text.startswith(self.prefix):
            return None
        pos = len(self.prefix)
        values = []
        n = len(self.fields)
        for i, (key, delim) in enumerate(self.fields):
            if delim == "" or i == n - 1 and delim == "":
                value, pos = text[pos:], len(text)
            else:
                end = text.find(delim, pos)
                if end < 0:
                    return None
                value = text[pos:end]
                pos = end + len(delim)
                if key.pad:
                    while text.startswith(delim, pos):
                        pos += len(delim)
            values.append((key, value))
        if pos != len(text) and self.fields[-1][1] != "":
            # trailing text after the last delimiter: libbeat refuses it
            return None
        return values


class Dissect:
    def __init__(self, d, field, prefix, ignore_failure, overwrite, trim, chars):
        self.d, self.field, self.prefix = d, field, prefix
        self.ignore_failure, self.overwrite, self.trim, self.chars = ignore_failure, overwrite, trim, chars

    def _trim(self, v):
        if self.trim == "all":
            return v.strip(self.chars)
        if self.trim == "left":
            return v.lstrip(self.chars)
        if self.trim == "right":
            return v.rstrip(self.chars)
        return v

    def _error(self, ev, msg):
        if self.ignore_failure:          # the event as it was, silently
            return ev
        E.add_tags(ev, "log.flags", ["dissect_parsing_error"])
        append_error(ev, msg)
        raise ProcessorError(msg, ev)

    def run(self, ev):
        text = E.get(ev, self.field)
        if not isinstance(text, str):
            return self._error(ev, "dissect: field %s is missing or not a string" % self.field)
        parsed = self.d.parse(text)
        if parsed is None:
            return self._error(ev, "could not find beginning delimiter or a delimiter in the tokenizer "
                                   "for field %s" % self.field)
        out: dict = {}
        parts: dict = {}          # name -> [(ordinal, position, value)]: %{a} and its %{+a} appends
        dtypes: dict = {}
        refs: dict = {}
        vals: dict = {}
        for pos, (key, value) in enumerate(parsed):
            value = self._trim(value)
            if not key.name or key.kind == "?":
                continue
            if key.kind == "*":
                refs[key.name] = value
            elif key.kind == "&":
                vals[key.name] = value
            else:
                parts.setdefault(key.name, []).append((key.ordinal, pos, value))
                if key.dtype:
                    dtypes[key.name] = key.dtype
        for name, items in parts.items():
            out[name] = (" ".join(v for _, _, v in sorted(items)), dtypes.get(name))
        for name, k in refs.items():
            out[k] = (vals.get(name, ""), None)
        results = {}
        for name, (value, dtype) in out.items():
            if dtype is not None:
                try:
                    value = _DTYPES[dtype](value)
                except (ValueError, TypeError) as e:
                    return self._error(ev, "dissect: cannot convert %s to %s: %s" % (name, dtype, e))
            target = "%s.%s" % (self.prefix, name) if self.prefix else name
            if not self.overwrite and E.get(ev, target) is not MISSING and target != self.field:
                return self._error(ev, "dissect: cannot override existing key %s" % target)
            results[target] = value
        for target, value in results.items():
            E.put(ev, target, value)
        return ev


def dissect(o, ctx):
    d = Dissector(o.str("tokenizer", required=True), o.sub("tokenizer"))
    return Dissect(d, o.str("field", "message"), o.str("target_prefix", "dissect"), o.bool("ignore_failure", False),
                   o.bool("overwrite_keys", False), o.str("trim_values", "none", choices=("none", "left", "right", "all")),
                   o.str("trim_chars", " ") or " ")


# -- syslog -------------------------------------------------------------------------------

_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
               "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
               "local4", "local5", "local6", "local7")
_SEVERITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
try:                       # linear-time matching on hostile input
    import re2 as _rx
except ImportError:        # pragma: no cover
    _rx = re
_RFC5424_HEAD = _rx.compile(r"^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ")
_RFC3164 = _rx.compile(r"(?s)^(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\dT\S+) "
                       r"(?:(\S+) )?([^\s:\[]+)(?:\[([^\]]+)\])?: ?(.*)$")
_SD_NAME = _rx.compile(r"^[^\s\]=\"]+")


def _structured_data(text: str, pos: int):
    """RFC 5424 STRUCTURED-DATA from ``pos``: ``({id: {param: value}}, end)`` or
    None. A single left-to-right scan (no backtracking on hostile input)."""
    out: dict = {}
    n = len(text)
    while pos < n and text[pos] == "[":
        m = _SD_NAME.match(text[pos + 1:pos + 129])
        if not m:
            return None
        sid = m.group(0)
        pos += 1 + len(sid)
        params: dict = {}
        while True:
            if pos >= n:
                return None
            if text[pos] == "]":
                pos += 1
                break
            if text[pos] != " ":
                return None
            pos += 1
            eq = text.find('="', pos, pos + 130)
            if eq <= pos or " " in text[pos:eq] or "]" in text[pos:eq]:
                return None
            name = text[pos:eq]
            pos = eq + 2
            value = []
            while True:
                if pos >= n:
                    return None
                c = text[pos]
                if c == "\\" and pos + 1 < n and text[pos + 1] in '"\\]':
                    value.append(text[pos + 1])
                    pos += 2
                elif c == '"':
                    pos += 1
                    break
                else:
                    value.append(c)
                    pos += 1
            params[name] = "".join(value)
        out[sid] = params
    return out, pos
_MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                            "Nov", "Dec"))}


def _pri(ev, pri):
    if pri is None:
        return True
    p = int(pri)
    if p > 191:
        return False
    fac, sev = p >> 3, p & 7
    E.put(ev, "log.syslog.priority", p)
    E.put(ev, "log.syslog.facility.code", fac)
    E.put(ev, "log.syslog.facility.name", _FACILITIES[fac])
    E.put(ev, "log.syslog.severity.code", sev)
    E.put(ev, "log.syslog.severity.name", _SEVERITIES[sev])
    return True


def _iso(ts: str, tz) -> str | None:
    try:
        t = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def _bsd_time(ts: str, tz) -> str | None:
    if ts[:1].isdigit():
        return _iso(ts, tz)
    mon = _MONTHS.get(ts[:3])
    if mon is None:
        return None
    day = int(ts[4:6])
    h, m, rest = ts[7:9], ts[10:12], ts[13:]
    sec = float(rest)
    now = dt.datetime.now(tz)
    year = now.year - 1 if mon > now.month + 1 else now.year   # no year in RFC 3164: the last such date
    try:
        t = dt.datetime(year, mon, day, int(h), int(m), int(sec), int((sec % 1) * 1e6), tzinfo=tz)
    except ValueError:
        return None
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class Syslog:
    def __init__(self, field, fmt, tz, overwrite, ignore_missing, ignore_failure, tag):
        self.field, self.fmt, self.tz = field, fmt, tz
        self.overwrite, self.ignore_missing, self.ignore_failure, self.tag = overwrite, ignore_missing, ignore_failure, tag

    def run(self, ev):
        text = E.get(ev, self.field)
        if text is MISSING:
            if self.ignore_missing:
                return ev
            raise ProcessorError("syslog: field %s not found" % self.field, ev)
        if not isinstance(text, str):
            return self._fail(ev, "syslog: field %s is not a string" % self.field)
        out: dict = {}
        ok = False
        if self.fmt in ("rfc5424", "auto"):
            ok = self._rfc5424(text.rstrip("\n"), out)
        if not ok and self.fmt in ("rfc3164", "auto"):
            ok = self._rfc3164(text.rstrip("\n"), out)
        if not ok:
            return self._fail(ev, "syslog: the message is not %s" % ("RFC 3164 nor RFC 5424" if self.fmt == "auto"
                                                                     else self.fmt.upper()))
        for k, v in out.items():
            if not self.overwrite and E.get(ev, k) is not MISSING and k != self.field:
                continue
            E.put(ev, k, v)
        return ev

    def _fail(self, ev, msg):
        if self.tag:
            E.add_tags(ev, "tags", [self.tag])
        if self.ignore_failure:
            return ev
        append_error(ev, msg)
        raise ProcessorError(msg, ev)

    def _rfc5424(self, text, out):
        m = _RFC5424_HEAD.match(text)
        if not m or not _pri(out, m.group(1)):
            return False
        ts = _iso(m.group(3), self.tz) if m.group(3) != "-" else None
        if m.group(3) != "-" and ts is None:
            return False
        pos = m.end()
        if text.startswith("-", pos):
            sd, pos = None, pos + 1
        else:
            parsed = _structured_data(text, pos)
            if parsed is None:
                return False
            sd, pos = parsed
            if not sd:
                return False
        if pos < len(text):
            if text[pos] != " ":
                return False
            pos += 1
        E.put(out, "log.syslog.version", m.group(2))
        if ts:
            out["@timestamp"] = ts
        for name, g in (("hostname", 4), ("appname", 5), ("procid", 6), ("msgid", 7)):
            if m.group(g) != "-":
                E.put(out, "log.syslog." + name, m.group(g))
        if sd:
            E.put(out, "log.syslog.structured_data", sd)
        msg = text[pos:]
        if msg.startswith("\ufeff"):
            msg = msg[1:]
        out["message"] = msg
        return True

    def _rfc3164(self, text, out):
        m = _RFC3164.match(text)
        if not m or not _pri(out, m.group(1)):
            return False
        ts = _bsd_time(m.group(2), self.tz)
        if ts is None:
            return False
        out["@timestamp"] = ts
        if m.group(3):
            E.put(out, "log.syslog.hostname", m.group(3))
        E.put(out, "log.syslog.appname", m.group(4))
        if m.group(5):
            E.put(out, "log.syslog.procid", m.group(5))
        out["message"] = m.group(6)
        return True


def _timezone(name: str, path: str):
    if name in ("Local", ""):
        return dt.datetime.now().astimezone().tzinfo
    if name == "UTC":
        return dt.timezone.utc
    m = re.match(r"^([+-])(\d\d):?(\d\d)$", name)
    if m:
        off = dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return dt.timezone(-off if m.group(1) == "-" else off)
    try:
        import zoneinfo
        return zoneinfo.ZoneInfo(name)
    except Exception:
        raise ConfigError(path, "unknown time zone %r" % name) from None


def syslog(o, ctx):
    return Syslog(o.str("field", "message"), o.str("format", "auto", choices=("auto", "rfc3164", "rfc5424")),
                  _timezone(o.str("timezone", "Local"), o.sub("timezone")), o.bool("overwrite_keys", True),
                  o.bool("ignore_missing", False), o.bool("ignore_failure", False), o.str("tag", ""))


# -- decode_xml -------------------------------------------------------------------------------

def _xml_to_dict(el, lower):
    def name(n):
        if "}" in n:
            n = n.split("}", 1)[1]
        return n.lower() if lower else n

    out: dict = {}
    for k, v in el.attrib.items():
        out[name(k)] = v
    for child in el:
        k = name(child.tag)
        v = _xml_to_dict(child, lower)
        if k in out:
            if not isinstance(out[k], list):
                out[k] = [out[k]]
            out[k].append(v)
        else:
            out[k] = v
    text = (el.text or "").strip()
    if not out:
        return text
    if text:
        out["#text"] = text
    return out


class DecodeXML:
    def __init__(self, field, target, overwrite, document_id, lower, ignore_missing, ignore_failure):
        self.field, self.target, self.overwrite, self.document_id = field, target, overwrite, document_id
        self.lower, self.ignore_missing, self.ignore_failure = lower, ignore_missing, ignore_failure

    def run(self, ev):
        text = E.get(ev, self.field)
        if text is MISSING:
            if self.ignore_missing:
                return ev
            return self._fail(ev, "decode_xml: field %s not found" % self.field)
        if not isinstance(text, str):
            return self._fail(ev, "decode_xml: field %s is not a string" % self.field)
        if "<!DOCTYPE" in text or "<!ENTITY" in text:     # no entity expansion (billion laughs)
            return self._fail(ev, "decode_xml: DTDs are not accepted")
        try:
            root = ET.fromstring(text)
            tag = root.tag.split("}", 1)[-1]
            doc = {tag.lower() if self.lower else tag: _xml_to_dict(root, self.lower)}
        except ET.ParseError as e:
            return self._fail(ev, "decode_xml: failed to decode XML: %s" % e)
        except RecursionError:
            return self._fail(ev, "decode_xml: the document is too deeply nested")
        if self.document_id:
            inner = doc[next(iter(doc))]
            if isinstance(inner, dict):
                v = E.get(inner, self.document_id)
                if isinstance(v, str):
                    E.delete(inner, self.document_id)
                    E.put(ev, "@metadata._id", v)
        if self.target == "":
            E.deep_update(ev, doc, self.overwrite)
        else:
            target = self.target if self.target is not None else self.field
            if not self.overwrite and target != self.field and E.get(ev, target) is not MISSING:
                return self._fail(ev, "decode_xml: target %s exists" % target)
            E.put(ev, target, doc)
        return ev

    def _fail(self, ev, msg):
        if self.ignore_failure:
            return ev
        append_error(ev, msg)
        raise ProcessorError(msg, ev)


def decode_xml(o, ctx):
    target = o.any("target_field", None)
    if target is not None and not isinstance(target, str):
        raise ConfigError(o.sub("target_field"), "expected a string")
    return DecodeXML(o.str("field", required=True), target, o.bool("overwrite_keys", True), o.str("document_id", ""),
                     o.bool("to_lower", True), o.bool("ignore_missing", False), o.bool("ignore_failure", False))


PROCESSORS = {"dissect": dissect, "syslog": syslog, "decode_xml": decode_xml}
