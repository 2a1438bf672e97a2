"""Processor names -> factories, and the compilation of a ``processors:`` list.

Each list entry is a one-key mapping ``{name: {options..., when: cond}}`` or
the ``{if: cond, then: [...], else: [...]}`` form. A processor's factory
takes its :class:`~worker.processors.base.Opts` and the
:class:`~worker.processors.base.Context` and returns an object with
``run(event) -> event | None``.
"""
from __future__ import annotations

from shared.confutil import ConfigError
from worker.processors.base import Context, Opts, ProcessorError
from worker.processors.conditions import compile_condition
from worker.processors.event import expand

# libbeat processors this version does not have (they need Kubernetes, Nomad, Cloud Foundry,
# a JavaScript engine or Windows)
UNAVAILABLE = {
    "script": "the JavaScript engine is not available in this version",
    "add_kubernetes_metadata": "Kubernetes metadata is not available in this version",
    "add_nomad_metadata": "Nomad metadata is not available in this version",
    "add_cloudfoundry_metadata": "Cloud Foundry metadata is not available in this version",
    "decode_xml_wineventlog": "Windows event log decoding is not available in this version",
    "translate_sid": "Windows SID translation is not available in this version",
    # other libbeat processors this version does not have (yet): named, so the error says so
    "lowercase": "not available in this version",
    "uppercase": "not available in this version",
    "decode_csv_fields": "not available in this version",
    "translate_ldap_attribute": "LDAP lookups are not available in this version",
    "add_session_metadata": "session metadata (eBPF) is not available in this version",
}


def _factories() -> dict:
    from worker.processors import basic, metadata, netproc, text
    out = {}
    for mod in (basic, netproc, text, metadata):
        out.update(mod.PROCESSORS)
    return out


_REGISTRY: dict | None = None


def registry() -> dict:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _factories()
    return _REGISTRY


class Chain:
    """Processors run in order; a dropped event stops the chain, an error too
    (the event as the failing processor left it goes on, libbeat's rule)."""
    __slots__ = ("procs",)

    def __init__(self, procs: list):
        self.procs = tuple(procs)

    def run(self, ev):
        for p in self.procs:
            ev = p.run(ev)
            if ev is None:
                return None
        return ev

    def close(self) -> None:
        for p in self.procs:
            close = getattr(p, "close", None)
            if close is not None:
                close()

    def __len__(self):
        return len(self.procs)


class When:
    __slots__ = ("cond", "proc", "close")

    def __init__(self, cond, proc):
        self.cond = cond
        self.proc = proc
        self.close = getattr(proc, "close", lambda: None)

    def run(self, ev):
        if self.cond(ev):
            return self.proc.run(ev)
        return ev


class IfThenElse:
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond, then: Chain, other: Chain | None):
        self.cond = cond
        self.then = then
        self.other = other

    def run(self, ev):
        if self.cond(ev):
            return self.then.run(ev)
        if self.other is not None:
            return self.other.run(ev)
        return ev

    def close(self):
        self.then.close()
        if self.other is not None:
            self.other.close()


def compile_list(raw, path: str, ctx: Context | None = None) -> Chain:
    """A :class:`Chain` from a ``processors:`` list (ConfigError naming the key path)."""
    if ctx is None:
        ctx = Context()
    if raw is None:
        return Chain([])
    if isinstance(raw, dict):        # a single processor given as a mapping (then: {add_tags: ...})
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError(path, "expected a list of processors")
    return Chain([compile_one(entry, "%s[%d]" % (path, i), ctx) for i, entry in enumerate(raw)])


def compile_one(entry, path: str, ctx: Context):
    if not isinstance(entry, dict) or not entry:
        raise ConfigError(path, "expected a mapping naming one processor, got %r" % (entry,))
    entry = expand({str(k): v for k, v in entry.items()})      # "if.contains.tags: x"
    if "if" in entry:
        extra = set(entry) - {"if", "then", "else"}
        if extra:
            raise ConfigError("%s.%s" % (path, sorted(extra)[0]), "an if/then/else entry has only if, then and else")
        if "then" not in entry:
            raise ConfigError(path + ".then", "missing required option")
        cond = compile_condition(entry["if"], path + ".if")
        then = compile_list(entry["then"], path + ".then", ctx)
        other = compile_list(entry["else"], path + ".else", ctx) if entry.get("else") is not None else None
        return IfThenElse(cond, then, other)
    if len(entry) != 1:
        raise ConfigError(path, "one processor per list entry, got %s" % ", ".join(sorted(map(str, entry))))
    name, options = next(iter(entry.items()))
    name = str(name)
    sub = "%s.%s" % (path, name)
    if name in UNAVAILABLE:
        raise ConfigError(sub, "processor %s is not available: %s" % (name, UNAVAILABLE[name]))
    factory = registry().get(name)
    if factory is None:
        raise ConfigError(sub, "unknown processor (known: %s)" % ", ".join(sorted(registry())))
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(sub, "expected a mapping of options, got %r" % (options,))
    options = expand({str(k): v for k, v in options.items()})     # "when.equals.x: 1" as the loader gives it
    when = options.pop("when", None)
    opts = Opts(options, sub)
    proc = factory(opts, ctx)
    opts.done()
    if when is not None:
        return When(compile_condition(when, sub + ".when"), proc)
    return proc


__all__ = ["Chain", "Context", "ProcessorError", "UNAVAILABLE", "compile_list", "registry"]
