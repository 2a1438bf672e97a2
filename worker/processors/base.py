"""What every processor shares: option checking, errors, the run context.

A processor is an object with ``run(event) -> event | None`` (None: the
event is dropped). A failure it reports raises :class:`ProcessorError`
carrying the event to go on with (libbeat returns the event and the error:
the event is still published, the rest of the chain is skipped).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from shared.confutil import ConfigError, parse_duration
from worker.processors import event as E


class ProcessorError(Exception):
    """A processor failed on one event; ``event`` is what is published."""

    def __init__(self, msg: str, event: dict | None):
        super().__init__(msg)
        self.event = event


@dataclass
class Context:
    """What processors may look at besides the event (no I/O done here)."""
    hostname: str = field(default_factory=socket.gethostname)
    clock: object = time.time          # seconds, for caches and rate limits
    start: bool = True                 # False: validate the configuration only (no probing)


class Opts:
    """The options of one processor: typed reads, then ``done()`` refuses the unknown ones."""

    def __init__(self, raw, path: str):
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(path, "expected a mapping of options, got %s" % type(raw).__name__)
        # dotted option names (cache.ttl) as the configuration loader gives them: nested
        self.raw = E.expand({str(k): v for k, v in raw.items()})
        self.path = path
        self.seen: set[str] = set()

    def sub(self, name: str) -> str:
        return "%s.%s" % (self.path, name)

    def _get(self, name, default, required):
        self.seen.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                raise ConfigError(self.sub(name), "missing required option")
            return default, False
        return self.raw[name], True

    def any(self, name, default=None, required=False):
        return self._get(name, default, required)[0]

    def str(self, name, default="", required=False, choices=None) -> str:
        v, given = self._get(name, default, required)
        if not given:
            return v
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ConfigError(self.sub(name), "expected a string, got %r" % (v,))
        v = str(v)
        if choices is not None and v not in choices:
            raise ConfigError(self.sub(name), "must be one of %s, got %r" % (", ".join(choices), v))
        return v

    def bool(self, name, default=False) -> bool:
        v, given = self._get(name, default, False)
        if given and not isinstance(v, bool):
            raise ConfigError(self.sub(name), "expected true or false, got %r" % (v,))
        return v

    def int(self, name, default=0, required=False, minimum=None) -> int:
        v, given = self._get(name, default, required)
        if given and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(self.sub(name), "expected an integer, got %r" % (v,))
        if given and minimum is not None and v < minimum:
            raise ConfigError(self.sub(name), "must be >= %d, got %r" % (minimum, v))
        return v

    def duration(self, name, default=0.0) -> float:
        v, given = self._get(name, default, False)
        return parse_duration(v, self.sub(name)) if given else default

    def strings(self, name, default=(), required=False, allow_one=True) -> list:
        v, given = self._get(name, None, required)
        if not given:
            return list(default)
        if allow_one and isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(self.sub(name), "expected a list of strings, got %r" % (v,))
        if required and not v:
            raise ConfigError(self.sub(name), "must not be empty")
        return list(v)

    def mapping(self, name, default=None, required=False) -> dict:
        v, given = self._get(name, default, required)
        if not given:
            return {} if v is None else v
        if not isinstance(v, dict):
            raise ConfigError(self.sub(name), "expected a mapping, got %r" % (v,))
        return v

    def from_to(self, name, required=True, optional_to=False) -> list[tuple[str, str]]:
        """``fields: [{from: a, to: b}, ...]`` (rename, copy_fields, ...)."""
        v, given = self._get(name, None, required)
        if not given:
            return []
        if not isinstance(v, list):
            raise ConfigError(self.sub(name), "expected a list of {from, to} mappings")
        out = []
        for i, item in enumerate(v):
            p = "%s[%d]" % (self.sub(name), i)
            to = item.get("to") if isinstance(item, dict) else None
            if to is None and optional_to:
                to = ""
            if not isinstance(item, dict) or set(item) - {"from", "to"} or not isinstance(item.get("from"), str) \
                    or not isinstance(to, str) or not item["from"] or not (to or optional_to):
                raise ConfigError(p, "expected {from: <field>, to: <field>}, got %r" % (item,))
            out.append((item["from"], to))
        return out

    def done(self) -> None:
        extra = sorted(set(self.raw) - self.seen)
        if extra:
            raise ConfigError(self.sub(extra[0]), "unknown option (known: %s)" % ", ".join(sorted(self.seen)))


def fail(ev: dict, backup: dict | None, fail_on_error: bool, msg: str, ignore_error: bool = False):
    """libbeat's error path: with fail_on_error the event goes back to its
    state before the processor, ``error.message`` is appended and the
    processor reports the error; otherwise the partial result is kept."""
    if fail_on_error:
        out = backup if backup is not None else ev
        append_error(out, msg)
        raise ProcessorError(msg, out)
    return ev


def append_error(ev: dict, msg: str) -> None:
    cur = E.get(ev, "error.message", None)
    if cur is None:
        E.put(ev, "error.message", msg)
    elif isinstance(cur, list):
        cur.append(msg)
    else:
        E.put(ev, "error.message", [cur, msg])
