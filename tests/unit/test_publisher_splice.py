"""Workers send events as JSON text; the publisher splices its keys in.

``Enricher.enrich_line(encode_event(ev))`` must be byte for byte
``encode_event(enricher(ev))`` (what the file/console outputs wrote when the
publisher decoded every event), and the Elasticsearch index/id derived from
the text must be those derived from the dict.
"""
from __future__ import annotations

import copy
import json

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from coordinator.publisher.elasticsearch import IndexFormat
from coordinator.publisher.enrich import Enricher
from coordinator.publisher.outputs import encode_event
from shared.wire import decode_batch, encode_events
from tests.helpers import ROOT

EXPECTED = ROOT / "tests" / "golden" / "expected"

CONFIGS = [
    {},
    {"tags": ["web", "prod"]},
    {"fields": {"env": "staging", "n": 3}},
    {"fields": {"env": "x", "nested": {"a": 1}}, "fields_under_root": True, "tags": ["t"]},
    {"fields": {"agent": {"extra": 1}, "status": "never-over"}, "fields_under_root": True},   # clashes
]


def enrichers():
    for c in CONFIGS:
        yield Enricher("beat", "host-1", "8.15.0", tags=c.get("tags"), fields=c.get("fields"),
                       fields_under_root=c.get("fields_under_root", False), agent_id="id-1", ephemeral_id="eph-1")


def worker_events() -> list[dict]:
    """The golden files' events as a worker emits them (no publisher-owned keys)."""
    out = []
    for f in sorted(EXPECTED.glob("*.json")):
        data = json.loads(f.read_text())
        evs = data if isinstance(data, list) else data.get("events", [])
        for ev in evs:
            out.append({k: v for k, v in ev.items() if k not in ("agent", "host", "ecs")})
    assert out, "no golden events found"
    return out


ODD = [
    {},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "tags": ["own"], "n": 1},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "tags": "one"},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "host": {"ip": "1.2.3.4"}, "agent": {"x": 1}},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "request": 'GET / "agent": {"host": 1}', "v": 1e-05},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "fields": {"env": "mine"}, "env": "own", "status": "OK"},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "u": "é\u2028☃", "big": 2 ** 70, "f": 0.1, "neg": -0.0},
    {"@timestamp": "2024-05-01T10:00:00.000Z", "ecs": "not-a-dict"},
]


class _Settings:
    def __init__(self, c):
        self.fields = c.get("fields") or {}
        self.fields_under_root = c.get("fields_under_root", False)


@pytest.mark.parametrize("n", range(len(CONFIGS)))
def test_splice_equals_decode_enrich_encode_on_golden_and_odd_events(n):
    enrich = list(enrichers())[n]
    events = worker_events() + ODD
    want = [encode_event(enrich(copy.deepcopy(ev))) for ev in events]
    # as the worker sends them: the header says which events carry our keys
    header, body = decode_batch(encode_events("w0", 0, events, settings=_Settings(CONFIGS[n])))
    flags = enrich.clean_positions(header, len(body))
    assert flags is not None and flags.count(False) == len(header["own"])
    assert [enrich.enrich_line(line, flag) for line, flag in zip(body, flags)] == want
    if n < 4:
        assert enrich.spliced == flags.count(True) >= len(worker_events())
    else:
        assert enrich.spliced == 0                         # clashing root fields: always decoded
    # without the worker's word: the text is searched (same bytes)
    assert [enrich.enrich_line(line) for line in body] == want
    # a sender that checked other keys is not trusted
    assert enrich.clean_positions(dict(header, own_keys=["agent"]), len(body)) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15)
keys = st.sampled_from(["@timestamp", "agent", "host", "ecs", "tags", "fields", "env", "a", "status"]) | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6))
def test_splice_property(ev):
    for enrich in enrichers():
        assert enrich.enrich_line(encode_event(ev)) == encode_event(enrich(copy.deepcopy(ev)))


def test_index_from_line_equals_index_from_dict():
    enrich = next(enrichers())
    for fmt in ("pb-%{[agent.version]}-%{+yyyy.MM.dd}", "pb-%{+yyyy.MM}", "pb-%{[network.protocol]}",
                "static", "pb-%{[agent.version]}"):
        idx = IndexFormat(fmt)
        for ev in worker_events()[:50]:
            full = enrich(copy.deepcopy(ev))
            line = encode_event(full)
            try:
                want = idx(full)
            except KeyError:
                with pytest.raises(KeyError):
                    idx.from_line(line, enrich.known)
                continue
            assert idx.from_line(line, enrich.known) == want
    with pytest.raises(KeyError):
        IndexFormat("pb-%{+yyyy}").from_line(b'{"n":1}')
    # names are cached by the timestamp's hour; fields from the event itself are never cached
    idx = IndexFormat("pb-%{+yyyy.MM.dd.HH}-%{[type]}")
    a = b'{"@timestamp":"2024-05-01T10:59:59Z","type":"http"}'
    b = b'{"@timestamp":"2024-05-01T10:00:00Z","type":"dns"}'
    c = b'{"@timestamp":"2024-05-01T11:00:00Z","type":"dns"}'
    assert [idx.from_line(x) for x in (a, b, c, a)] == ["pb-2024.05.01.10-http", "pb-2024.05.01.10-dns",
                                                          "pb-2024.05.01.11-dns", "pb-2024.05.01.10-http"]
    idx = IndexFormat("pb-%{[agent.version]}-%{+yyyy.MM.dd}")
    k1, k2 = {"agent.version": "1"}, {"agent.version": "2"}
    assert [idx.from_line(a, k1), idx.from_line(a, k2), idx.from_line(c, k1)] == \
        ["pb-1-2024.05.01", "pb-2-2024.05.01", "pb-1-2024.05.01"]


def test_wire_events_are_json_text_and_unencodable_ones_are_counted():
    import collections
    counters = collections.Counter()
    frames = encode_events("w0", 7, [{"a": 1}, {"bad": float("nan")}, {"b": "é"}], counters)
    header, body = decode_batch(frames)
    assert header["enc"] == "json" and header["n"] == 2 and header["seq"] == 7
    assert body == [b'{"a":1}', '{"b":"é"}'.encode()]
    assert counters["worker.unencodable_events"] == 1


@pytest.mark.parametrize("n", range(len(CONFIGS)))
def test_splice_all_equals_enrich_line_per_event(n):
    """A whole batch spliced in one pass (publisher/process.py's common batch) gives what
    enrich_line gives per event; a batch it cannot take whole is left to enrich_line."""
    enrich = list(enrichers())[n]
    settings = _Settings(CONFIGS[n])
    clean = [ev for ev in worker_events() if not any(k in ev for k in enrich.own_keys)]
    header, body = decode_batch(encode_events("w0", 0, clean, settings=settings))
    got = enrich.splice_all(header, body)
    if n == 4:                       # fields_under_root naming agent: never spliced
        assert got is None
        return
    want = [enrich.enrich_line(line, True) for line in body]
    assert got == want and [encode_event(enrich(copy.deepcopy(ev))) for ev in clean] == want
    for odd in ODD:                  # one event with our keys, an empty object, ...: per event
        h, b = decode_batch(encode_events("w0", 0, clean[:3] + [odd], settings=settings))
        if h.get("own") or odd == {}:
            assert enrich.splice_all(h, b) is None
    h, b = decode_batch(encode_events("w0", 0, clean[:3], settings=settings, enriched=True))
    assert enrich.splice_all(h, b) is None
    assert enrich.splice_all(dict(header, own_keys=["other"]), body) is None
    assert enrich.splice_all(header, body[:2] + [{"a": 1}]) is None
