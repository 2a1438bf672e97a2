"""Typed option tables -> frozen dataclasses, with errors that name the key path.

Every ``<Proto>Config`` is a frozen dataclass whose fields carry defaults;
:func:`build` checks a raw YAML mapping against it: unknown keys and wrong
types are :class:`ConfigError` naming the full key path
(``packetbeat.protocols[2].send_headers``).
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing


class ConfigError(Exception):
    """A configuration problem; ``str()`` names the key path."""

    def __init__(self, path: str, msg: str):
        super().__init__("%s: %s" % (path, msg) if path else msg)
        self.path = path


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value, path: str) -> float:
    """Seconds from ``10``, ``1.5``, ``"10s"``, ``"500ms"``, ``"-1s"`` (Go-style)."""
    if isinstance(value, bool):
        raise ConfigError(path, "expected a duration, got %r" % (value,))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ConfigError(path, "expected a duration such as 10s or 500ms, got %r" % (value,))


class Duration(float):
    """Marker type for dataclass fields holding seconds parsed by parse_duration."""


def _check(value, tp, path: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any:
        return value
    if tp is Duration:
        return parse_duration(value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(value, a, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(path, "wrong type %s: %r" % (type(value).__name__, value))
    if origin in (list, tuple):
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, "expected a list, got %s %r" % (type(value).__name__, value))
        inner = args[0] if args else typing.Any
        out = [_check(v, inner, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(path, "expected a mapping, got %s" % type(value).__name__)
        vt = args[1] if len(args) == 2 else typing.Any
        return {str(k): _check(v, vt, "%s.%s" % (path, k)) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, "expected true or false, got %r" % (value,))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, "expected an integer, got %r" % (value,))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, "expected a number, got %r" % (value,))
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(path, "expected a string, got %r" % (value,))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    raise ConfigError(path, "unsupported option type %r" % (tp,))


def build(cls, raw, path: str, ignore: typing.Iterable[str] = ()):
    """Instance of dataclass ``cls`` from mapping ``raw`` (None = defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping, got %s" % type(raw).__name__)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    skip = set(ignore)
    for key, value in raw.items():
        key = str(key)
        if key in skip:
            continue
        sub = "%s.%s" % (path, key) if path else key
        if key not in names:
            raise ConfigError(sub, "unknown option (known: %s)" % ", ".join(sorted(names)))
        kwargs[key] = _check(value, hints[key], sub)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def parse_mode(value, path: str) -> int:
    """A file mode from ``0600`` (YAML int, read as octal digits when written so),
    ``"0600"`` or ``"0o600"``; ConfigError naming ``path`` otherwise."""
    if isinstance(value, str):
        try:
            value = int(value.strip().lower().removeprefix("0o"), 8)
        except ValueError:
            raise ConfigError(path, "expected an octal mode such as 0600, got %r" % value) from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ConfigError(path, "mode %r is invalid (expected 0000-0777)" % (value,))
    return value
