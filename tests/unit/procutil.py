"""Helpers of the processor tests: real events from the project's captures
(the worker engine run over tests/golden/pcaps), and processors applied to them."""
from __future__ import annotations

import copy
import functools
import pathlib
from types import SimpleNamespace

from coordinator.capture.pcapfile import open_capture
from worker.engine import Engine
from worker.processors import beat_config, compile_list
from worker.processors.base import Context
from worker.protos.registry import load_registry

PCAPS = pathlib.Path(__file__).resolve().parents[1] / "golden" / "pcaps"

HTTP = [{"type": "http", "ports": [80, 8080], "send_request": True, "send_response": True,
         "include_body_for": ["json", "text", "html"]}]
DNS = [{"type": "dns", "ports": [10053]}]
PROTOCOLS = {"http_sample.pcap": HTTP, "http_real.pcap": HTTP, "dns_real.pcap": DNS,
             "redis_real.pcap": [{"type": "redis", "ports": [6379]}],
             "mysql_real.pcap": [{"type": "mysql", "ports": [3306]}]}


def settings(processors=None, tags=(), fields=None, under_root=False, name="proc-test"):
    return SimpleNamespace(name=name, tags=list(tags), fields=dict(fields or {}), fields_under_root=under_root,
                           processors=list(processors or ()), agent={"id": "agent-id", "ephemeral_id": "eph-id"})


def run(pcap: str, protocols=None, processors=None, beat_settings=None, flows=None) -> tuple[list, dict]:
    """(events, counters) of the engine over ``pcap`` with these processors."""
    protocols = copy.deepcopy(protocols if protocols is not None else PROTOCOLS[pcap])
    beat = beat_config(beat_settings or settings(processors))
    engine = Engine(protocols, load_registry(with_entry_points=False), beat=beat, flows=flows)
    reader = open_capture(str(PCAPS / pcap))
    try:
        batch = []
        for rec in reader:
            batch.append(rec)
            if len(batch) == 128:
                engine.handle(batch)
                batch = []
        if batch:
            engine.handle(batch)
    finally:
        reader.close()
    engine.finish()
    return engine.take_events(), dict(engine.counters)


@functools.lru_cache(maxsize=None)
def _plain(pcap: str):
    engine = Engine(copy.deepcopy(PROTOCOLS[pcap]), load_registry(with_entry_points=False))
    reader = open_capture(str(PCAPS / pcap))
    try:
        engine.handle(list(reader))
    finally:
        reader.close()
    engine.finish()
    return engine.take_events()


def events(pcap: str = "http_sample.pcap") -> list[dict]:
    """Fresh copies of the analysers' events over ``pcap`` (no processors)."""
    evs = copy.deepcopy(_plain(pcap))
    assert evs, pcap
    return evs


def chain(raw, ctx: Context | None = None):
    return compile_list(raw, "processors", ctx or Context(start=False))


def apply(raw, evs, ctx=None) -> list:
    """``raw`` processors run on each event; dropped ones come out as None."""
    c = chain(raw, ctx)
    return [c.run(ev) for ev in evs]
