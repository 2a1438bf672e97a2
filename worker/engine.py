"""One shard's analysis engine, free of I/O: packets in, events out.

``Engine`` decodes each packet record, hands TCP segments to the
:class:`~worker.tcp.TcpTracker` and UDP datagrams to the
:class:`~worker.udp.UdpDispatcher`, and collects the events the protocol
plugins emit. The worker process (``worker/process.py``) feeds it batches from
ZeroMQ; benchmarks and tests feed it directly.
"""
from __future__ import annotations

import collections
import logging
from typing import Callable

from shared.confutil import build
from shared.addr import ip_text
from shared.decode import decode
from shared.procs import ProcAttributor
from worker.ecs import configure_direction
from worker.flows import FlowTable
from worker.plugin import IpPortTuple, Packet, ParseError
from worker.tcp import TcpTracker
from worker.udp import UdpDispatcher

log = logging.getLogger("packetbeat.worker")


def _decorator(entry_cfg, fresh: bool = False) -> Callable[[dict], dict] | None:
    """Per-protocol tags/fields (Packetbeat's per-protocol publishing options).
    ``fresh``: each event gets its own copy of nested values (processors may
    change them in place). Without ``keep_null`` the fields' null values are
    left out (the protocols themselves never emit a null)."""
    tags = list(entry_cfg.tags)
    fields = dict(entry_cfg.fields)
    if not getattr(entry_cfg, "keep_null", False):
        fields = drop_nulls(fields)
    under_root = entry_cfg.fields_under_root
    if not tags and not fields:
        return None
    copy = _deep_copy if fresh else (lambda d: d)

    def decorate(ev: dict) -> dict:
        if tags:
            ev["tags"] = list(dict.fromkeys(list(ev.get("tags") or []) + tags))
        if fields:
            if under_root:
                ev.update(copy(fields))
            else:
                ev.setdefault("fields", {}).update(copy(fields))
        return ev
    return decorate


def drop_nulls(d: dict) -> dict:
    """``d`` without its null values, nested mappings too (libbeat without keep_null)."""
    out = {}
    for k, v in d.items():
        if v is None:
            continue
        out[k] = drop_nulls(v) if type(v) is dict else v
    return out


def strip_nulls(d: dict) -> None:
    """Remove the null values of ``d`` in place, nested mappings too."""
    dead = None
    for k, v in d.items():
        if v is None:
            if dead is None:
                dead = []
            dead.append(k)
        elif type(v) is dict:
            strip_nulls(v)
    if dead:
        for k in dead:
            del d[k]


def _finisher(cfg) -> Callable[[dict], dict] | None:
    """After the processors: ``index`` / ``pipeline`` into ``@metadata`` (the
    Elasticsearch output's ``raw_index`` and ``pipeline``; ``index`` is a format
    string expanded on each event, as libbeat's add_formatted_index)."""
    index = getattr(cfg, "index", "") or ""
    pipeline = getattr(cfg, "pipeline", "") or ""
    if not index and not pipeline:
        return None
    fmt = None
    if index:
        from coordinator.publisher.elasticsearch import IndexFormat
        fmt = IndexFormat(index)

    def finish(ev: dict) -> dict:
        meta = ev.get("@metadata")
        if type(meta) is not dict:
            meta = ev["@metadata"] = {}
        if fmt is not None:
            try:
                meta["raw_index"] = fmt(ev)
            except KeyError:            # a field the format names is missing: the output's own index
                pass
        if pipeline:
            meta["pipeline"] = pipeline
        return ev
    return finish


def _deep_copy(value):
    if type(value) is dict:
        return {k: _deep_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_deep_copy(v) for v in value]
    return value


def _own_process(ev: dict) -> dict:
    """The attribution's process objects, copied for this event (processors may change them)."""
    for key in ("process", "source", "destination", "client", "server"):
        v = ev.get(key)
        if key == "process":
            if v is not None:
                ev[key] = _deep_copy(v)
        elif type(v) is dict and "process" in v:
            v["process"] = _deep_copy(v["process"])
    return ev


def _chain(attr, decorate):
    """The attribution and per-protocol decoration as one callable (None: nothing to do)."""
    if attr is None:
        return decorate
    if decorate is None:
        return attr
    return lambda ev: attr(decorate(ev))


def _dispatch(engine, records, tcp, udp, counters):
    """The per-packet loop of ``Engine.handle`` (a module function so that the
    compiled build calls the TCP/UDP layers at C level; see engine.pxd).
    Returns the time of the last record (``engine.last_ts`` when empty)."""
    ts = engine.last_ts
    flow = engine.flows.add if engine.flows is not None else None
    icmp = engine.icmp
    n_icmp = 0
    # compiled: the common TCP frame goes to the tracker without a decode() tuple
    # (flows need that tuple); pure Python: decode()'s Struct reads are cheaper
    fast = flow is None and _FAST
    for ts, linktype, raw in records:
        if fast and linktype == 1 and type(raw) is bytes and tcp.process_eth4(ts, raw):
            continue
        dec = decode(linktype, raw)
        if dec is None:
            counters["worker.undecodable"] += 1
            continue
        if flow is not None:
            flow(ts, linktype, raw, dec)
        t = dec[0]
        if t == 6:
            tcp.process(ts, dec, raw)
        elif t == 17:
            udp.process(ts, dec, raw)
        elif (t == 1 or t == 58) and icmp is not None:
            n_icmp += 1
            _icmp(engine, ts, dec, raw)
        else:
            counters["worker.other_transport"] += 1
    if n_icmp:
        counters["icmp.packets"] += n_icmp
    return ts


def _icmp(engine, ts: int, dec: tuple, raw) -> None:
    """One ICMP datagram to the analyser, behind the dispatch boundary (TCP/UDP
    have their own): a ParseError is counted, anything else counted and logged once.
    The analyser's ``parse_datagram`` takes the addresses and the ICMP bytes without
    a Packet; an analyser without it gets ``parse_icmp(Packet)``."""
    tuples = engine._icmp_tuples
    key = (dec[1], dec[2])
    ips = tuples.get(key)
    if ips is None:
        if len(tuples) > 65536:         # bound: 65,536 address pairs
            tuples.clear()
        ips = tuples[key] = (ip_text(dec[1]), ip_text(dec[2]))
    payload = raw[dec[8]:dec[9]]
    try:
        datagram = engine._icmp_datagram
        if datagram is not None:
            datagram(ts, dec[0], ips[0], ips[1], payload)
        else:
            engine.icmp.parse_icmp(Packet(ts, IpPortTuple(dec[0], ips[0], 0, ips[1], 0), memoryview(payload)))
    except ParseError:
        engine.counters["icmp.parse_errors"] += 1
    except Exception:
        _icmp_failed(engine, "parse_icmp")


def _icmp_failed(engine, what: str) -> None:
    engine.counters["icmp.plugin_errors"] += 1
    if not engine._icmp_logged:
        engine._icmp_logged = True
        log.exception("icmp analyser failed in %s; the packet is dropped", what)


def _probe():
    pass


# the compiled build (setup.py) takes TcpTracker.process_eth4 for the common TCP frame
_FAST = type(_probe).__name__ != "function"


class Engine:
    def __init__(self, protocols: list[dict], registry, counters: collections.Counter | None = None,
                 flows: dict | None = None, procs: dict | None = None,
                 max_connections: int = 32_768, max_pending_syns: int = 65_536,
                 max_buffered_bytes: int = 128 * 1024 * 1024, max_flows: int = 262_144,
                 beat: dict | None = None, internal_networks: list | None = None, local_ips=()):
        # network.direction rules of this process's events (Packetbeat 8: host based, then
        # packetbeat.interfaces.internal_networks)
        configure_direction(internal_networks, local_ips)
        self.counters = counters if counters is not None else collections.Counter()
        self.events: list[dict] = []
        # processors (worker/processors): ``beat`` from worker.processors.beat_config; when any
        # processors list is configured every event goes through a pipeline and leaves enriched
        self.pipelines = None
        if beat is not None and (beat["processors"] or any(p.get("processors") for p in protocols)
                                 or (flows or {}).get("processors")):
            from worker.processors import PipelineFactory
            self.pipelines = PipelineFactory(beat, self.counters)
        self.enriched = self.pipelines is not None
        # process attribution (packetbeat.procs): records shipped by the capture, see shared/procs.py
        self.attributor = ProcAttributor() if procs and procs.get("enabled") else None
        tcp_ports: dict[int, object] = {}
        udp_ports: dict[int, object] = {}
        self.icmp = None          # the ICMP analyser (transport "icmp"), at most one
        self._icmp_datagram = None    # its parse_datagram, when it has one
        self.plugins: dict[str, object] = {}
        idle = 10.0
        for i, entry in enumerate(protocols):
            spec = registry.get(entry["type"])
            if spec is None or not spec.implemented:
                continue
            cfg = build(spec.config_class, entry, "packetbeat.protocols[%d]" % i, ignore=("type",))
            plugin = spec.factory(cfg, self._emitter(_decorator(cfg), cfg, spec.name))
            self.plugins[spec.name] = plugin
            if "icmp" in spec.transports:
                self.icmp = plugin
                self._icmp_datagram = getattr(plugin, "parse_datagram", None)
            for port in (plugin.ports() if ("tcp" in spec.transports or "udp" in spec.transports) else ()):
                if "tcp" in spec.transports:
                    tcp_ports[port] = plugin
                if "udp" in spec.transports:
                    udp_ports[port] = plugin
            idle = max(idle, float(cfg.transaction_timeout))
        self.tcp = TcpTracker(tcp_ports, self.counters, default_idle_timeout=idle,
                              max_connections=max_connections, max_pending_syns=max_pending_syns,
                              max_buffered_bytes=max_buffered_bytes)
        self.udp = UdpDispatcher(udp_ports, self.counters)
        self.last_ts = 0
        self._icmp_tuples: dict = {}     # address bytes pair -> texts (at most 65,536)
        self._icmp_logged = False
        self.flows = None         # FlowTable when packetbeat.flows is enabled (settings.flows)
        if flows is not None:
            # imported here: shared.config builds its 12 section dataclasses at import (~10 ms of
            # a worker's start-up), and a worker without flows needs none of them
            from shared.config import FlowsConfig
            fc = build(FlowsConfig, flows, "packetbeat.flows")
            self.flows = FlowTable(float(fc.timeout), float(fc.period), self._emitter(_decorator(fc), fc, "flows"),
                                   max_flows=max_flows)

    def _emitter(self, decorate, cfg=None, name: str = ""):
        events = self.events
        attr = self.attributor
        finish = _finisher(cfg)
        if self.pipelines is not None:      # processors: compiled once here, run on each event
            pipeline = self.pipelines.build(list(getattr(cfg, "processors", None) or ()), name)
            if cfg is not None:
                decorate = _decorator(cfg, fresh=True)
            first = _chain((lambda ev: _own_process(attr(ev))) if attr is not None else None, decorate)
            keep_null = bool(getattr(cfg, "keep_null", False))

            def emit(ev):
                ev = pipeline(first(ev) if first is not None else ev)
                if ev is not None:
                    if not keep_null:       # processors may have set nulls
                        strip_nulls(ev)
                    events.append(finish(ev) if finish is not None else ev)
            return emit
        if finish is not None:
            decorate = _chain(finish, decorate)
        if attr is not None:
            if decorate is None:
                return lambda ev: events.append(attr(ev))
            return lambda ev: events.append(attr(decorate(ev)))
        if decorate is None:
            return events.append
        return lambda ev: events.append(decorate(ev))

    def handle_procs(self, records: list) -> None:
        """Endpoint -> process records from the capture (a ``procs`` message)."""
        if self.attributor is not None:
            self.attributor.update(records)

    def handle(self, records: list) -> None:
        """Process one batch of ``[ts_ns, linktype, raw]`` records."""
        counters = self.counters
        ts = _dispatch(self, records, self.tcp, self.udp, counters)
        counters["worker.packets"] += len(records)
        if ts > self.last_ts:
            self.last_ts = ts
            self.tcp.expire(ts)
            self.udp.expire(ts)
            if self.icmp is not None:
                self._guard("expire", self.icmp.expire, ts)
            if self.flows is not None:
                self.flows.tick(ts)

    def _guard(self, what: str, fn, arg) -> None:
        """The dispatch boundary for the ICMP analyser (TCP/UDP have their own)."""
        try:
            fn(arg)
        except ParseError:
            self.counters["icmp.parse_errors"] += 1
        except Exception:
            _icmp_failed(self, what)

    def finish(self) -> None:
        """End of stream: flush every open connection and transaction."""
        self.tcp.flush_all(self.last_ts)
        self.udp.flush_all(self.last_ts)
        if self.icmp is not None:
            self._guard("flush_all", self.icmp.flush_all, self.last_ts)
        if self.flows is not None:
            self.flows.flush_all(self.last_ts)
        self.counters.update(self.plugin_counters())
        if self.pipelines is not None:
            self.pipelines.close()

    def plugin_counters(self) -> dict[str, int]:
        """The analysers' own counters (streams resynchronised, dropped after a
        gap, ...) as ``<protocol>.<counter>``, and the flow table's, so the
        worker reports them."""
        out = {}
        if self.flows is not None:
            out.update((k, v) for k, v in self.flows.counters.items() if v)
        for name, plugin in self.plugins.items():
            for attr, value in vars(plugin).items():
                if type(value) is int and value and not attr.startswith(("_", "max_")):
                    out["%s.%s" % (name, attr)] = value
        return out

    def take_events(self) -> list[dict]:
        out = self.events[:]
        self.events.clear()
        return out
