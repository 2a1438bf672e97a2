"""libbeat processors and conditions, run in the worker on each event.

:func:`build_pipeline` compiles the configuration once at start-up into a
:class:`Pipeline` the engine calls on every event, in libbeat's order
(``publisher/processing``): the beat's own fields (``agent.*``,
``host.name``, ``ecs.version``), the per-protocol processors, the global
``tags`` / ``fields``, the global processors. An event that went through a
pipeline carries everything the publisher would add: the worker marks its
batches ``enriched`` and the publisher passes them through untouched, so a
processor may read, change or drop ``agent.*``, ``host.*``, ``tags`` and
``fields`` exactly as in Packetbeat.
"""
from __future__ import annotations

import logging
import time

from worker.processors import event as E
from worker.processors.base import Context, ProcessorError
from worker.processors.registry import Chain, compile_list

log = logging.getLogger("packetbeat.processors")

ERROR_LOG_EVERY = 10.0      # seconds between two logged processor errors (the rest are counted)


class BeatFields:
    """What the publisher's enrichment adds, done in the worker (the same
    values: agent id and ephemeral id come from the settings)."""

    def __init__(self, agent: dict, host_name: str, ecs_version: str, tags: list, fields: dict, under_root: bool):
        self.agent = dict(agent)
        self.host_name = host_name
        self.ecs_version = ecs_version
        self.tags = list(dict.fromkeys(tags or ()))
        fields = dict(fields or {})
        self.fields = fields if under_root else ({"fields": fields} if fields else {})

    def meta(self, ev: dict) -> dict:
        agent = ev.get("agent")
        if isinstance(agent, dict):
            agent.update(self.agent)
        else:
            ev["agent"] = dict(self.agent)
        host = ev.get("host")
        if isinstance(host, dict):
            host["name"] = self.host_name
        else:
            ev["host"] = {"name": self.host_name}
        ecs = ev.get("ecs")
        if isinstance(ecs, dict):
            ecs["version"] = self.ecs_version
        else:
            ev["ecs"] = {"version": self.ecs_version}
        return ev

    def tags_fields(self, ev: dict) -> dict:
        if self.tags:
            have = ev.get("tags")
            if isinstance(have, str):
                have = [have]
            out = list(have) if isinstance(have, list) else []
            for t in self.tags:
                if t not in out:
                    out.append(t)
            ev["tags"] = out
        if self.fields:
            _merge_missing(ev, self.fields)
        return ev


def _merge_missing(dst: dict, src: dict) -> None:
    for k, v in src.items():
        cur = dst.get(k, E.MISSING)
        if cur is E.MISSING:
            dst[k] = E.deep_copy(v)
        elif isinstance(cur, dict) and isinstance(v, dict):
            _merge_missing(cur, v)


class Pipeline:
    """One event path: per-protocol chain, then the global one (libbeat's order)."""

    def __init__(self, beat: BeatFields, local: Chain, global_: Chain, counters, name: str = ""):
        self.beat, self.local, self.global_ = beat, local, global_
        self.counters = counters
        self.name = name
        self._last_log = -1e18
        self._suppressed = 0

    def __call__(self, ev: dict):
        """The event to publish, or None when a processor dropped it."""
        beat = self.beat
        ev = beat.meta(ev)
        if self.local.procs:
            ev = self._run(self.local, ev)
            if ev is None:
                return None
        ev = beat.tags_fields(ev)
        if self.global_.procs:
            ev = self._run(self.global_, ev)
        return ev

    def _run(self, chain, ev):
        try:
            out = chain.run(ev)
        except ProcessorError as e:
            self.counters["processors.errors"] += 1
            self._log(str(e))
            return e.event if isinstance(e.event, dict) else ev
        except Exception as e:         # a bug in a processor: the event goes on unprocessed
            self.counters["processors.failures"] += 1
            self._log("%s: %r" % (type(e).__name__, e), exc=True)
            return ev
        if out is None:
            self.counters["processors.dropped"] += 1
        return out

    def _log(self, msg: str, exc: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_log < ERROR_LOG_EVERY:
            self._suppressed += 1
            return
        more = " (%d more errors not logged)" % self._suppressed if self._suppressed else ""
        self._last_log = now
        self._suppressed = 0
        log.error("processor error%s: %s%s", " (%s)" % self.name if self.name else "", msg, more, exc_info=exc)


def beat_config(settings) -> dict:
    """What the engine needs from the settings to build pipelines (plain data)."""
    import socket
    from coordinator.publisher.enrich import BEAT_TYPE, ECS_VERSION
    from shared.version import VERSION
    hostname = socket.gethostname()
    name = settings.name or hostname
    agent = dict(getattr(settings, "agent", None) or {})
    return {"processors": list(getattr(settings, "processors", None) or ()),
            "agent": {"name": name, "hostname": hostname, "version": VERSION, "type": BEAT_TYPE,
                      "id": agent.get("id", ""), "ephemeral_id": agent.get("ephemeral_id", "")},
            "host_name": name, "ecs_version": ECS_VERSION, "tags": list(settings.tags or ()),
            "fields": dict(settings.fields or {}), "fields_under_root": bool(settings.fields_under_root)}


class PipelineFactory:
    """Builds one :class:`Pipeline` per event source (a protocol, the flows),
    all sharing the global chain, compiled once."""

    def __init__(self, beat: dict, counters):
        self.counters = counters
        self.ctx = Context()
        self.beat = BeatFields(beat["agent"], beat["host_name"], beat["ecs_version"], beat["tags"], beat["fields"],
                               beat["fields_under_root"])
        self.global_ = compile_list(beat["processors"], "processors", self.ctx)
        self.chains = [self.global_]

    def build(self, local: list, name: str) -> Pipeline:
        path = "packetbeat.flows.processors" if name == "flows" else "packetbeat.protocols.%s.processors" % name
        chain = compile_list(local, path, self.ctx)
        self.chains.append(chain)
        return Pipeline(self.beat, chain, self.global_, self.counters, name)

    def close(self) -> None:
        for c in self.chains:
            c.close()


def validate(tree_processors, path: str):
    """Check a processors list (ConfigError naming the key path), nothing started."""
    compile_list(tree_processors, path, Context(start=False))


__all__ = ["BeatFields", "Chain", "PipelineFactory", "beat_config", "Context", "Pipeline", "ProcessorError", "compile_list", "validate"]
