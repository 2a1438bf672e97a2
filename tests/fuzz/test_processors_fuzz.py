"""Hypothesis: every processor, on events whose fields hold arbitrary JSON
values (and on real events with arbitrary values put in), either returns an
event (or None: dropped) or raises ProcessorError; never anything else, and
what it returns can still be encoded."""
from __future__ import annotations

import copy
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from coordinator.publisher.outputs import encode_event
from worker.processors import ProcessorError
from worker.processors.base import Context
from worker.processors.registry import compile_list
from tests.unit.procutil import events

N = int(os.environ.get("PROCESSORS_FUZZ_N", "60"))

F = ["a", "a.b", "message", "source.ip", "http.response.status_code", "tags", "x"]
CONFIGS = [
    {"drop_fields": {"fields": ["a", "/^x/"], "ignore_missing": True}},
    {"include_fields": {"fields": ["a", "source"]}},
    {"add_fields": {"target": "", "fields": {"a": {"b": 1}}}},
    {"add_tags": {"tags": ["t"], "target": "a.b"}},
    {"add_labels": {"labels": {"k": "v"}}},
    {"rename": {"fields": [{"from": "a", "to": "x.y"}], "fail_on_error": False}},
    {"rename": {"fields": [{"from": "a.b", "to": "a"}]}},
    {"copy_fields": {"fields": [{"from": "a", "to": "a.c"}]}},
    {"move_fields": {"from": "a", "to": "m_"}},
    {"truncate_fields": {"fields": ["message", "a"], "max_bytes": 3, "ignore_missing": True}},
    {"convert": {"fields": [{"from": "a", "type": t} for t in ("integer", "long", "float", "boolean", "string", "ip")],
                 "fail_on_error": False, "ignore_missing": True}},
    {"convert": {"fields": [{"from": "a", "to": "a.b", "type": "string"}]}},
    {"replace": {"fields": [{"field": "message", "pattern": "(a+)", "replacement": "$1$$${1}x"}]}},
    {"append": {"target_field": "a.b", "fields": ["message", "a"], "values": [1], "ignore_missing": True,
                "allow_duplicate": False}},
    {"extract_array": {"field": "a", "mappings": {"a.b": 0, "x": 2}}},
    {"urldecode": {"fields": [{"from": "message", "to": "a"}]}},
    {"decode_base64_field": {"field": {"from": "message", "to": "a.b"}}},
    {"decompress_gzip_field": {"field": {"from": "message", "to": "a"}}},
    {"decode_json_fields": {"fields": ["message", "a"], "target": "", "max_depth": 3, "process_array": True,
                            "overwrite_keys": True, "add_error_key": True, "document_id": "id"}},
    {"decode_json_fields": {"fields": ["message"], "target": "a.b", "expand_keys": True}},
    {"decode_duration": {"field": "message"}},
    {"fingerprint": {"fields": ["a", "message"], "ignore_missing": True}},
    {"community_id": {"fields": {"source_ip": "a", "destination_ip": "message", "transport": "x"}}},
    {"registered_domain": {"field": "message", "target_field": "a.b", "target_subdomain_field": "x"}},
    {"add_network_direction": {"source": "a", "destination": "message", "target": "x",
                               "internal_networks": ["private"]}},
    {"detect_mime_type": {"field": "message", "target": "a.b"}},
    {"dissect": {"tokenizer": "%{a} %{+a} %{*k}=%{&k}|%{n|integer}", "field": "message"}},
    {"syslog": {"field": "message"}},
    {"decode_xml": {"field": "message", "target_field": "a"}},
    {"drop_event": {"when": {"or": [{"regexp": {"message": "^a"}}, {"range": {"a.gte": 1}},
                                    {"network": {"a": ["private", "10.0.0.0/8"]}}, {"has_fields": ["x"]},
                                    {"equals": {"a": 1}}, {"contains": {"tags": "t"}}]}}},
]
CHAIN = compile_list(CONFIGS, "processors", Context(start=False))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
    | st.sampled_from(["10.0.0.1", "::1", "www.example.co.uk", "<a b='1'>t</a>", '{"id":"x","a":{"b":"[1]"}}',
                       "H4sIAAAAAAAA", "%41%zz+", "1h2m", "<34>Oct 11 22:14:15 host app[1]: m", "a b k=v|12"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "id", "c.d"]), inner,
                                                                max_size=4),
    max_leaves=10)
BASE = events("http_sample.pcap")[:3]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BASE) - 1), st.dictionaries(st.sampled_from(F), json_values, max_size=5),
       st.permutations(range(len(CONFIGS))))
def test_any_values_only_processor_errors(base, values, order):
    ev = copy.deepcopy(BASE[base])
    for k, v in values.items():
        ev[k] = v
    for i in order:
        proc = CHAIN.procs[i]
        try:
            out = proc.run(ev)
        except ProcessorError as e:
            out = e.event
        if out is None:
            return
        assert isinstance(out, dict)
        encode_event(out)
        ev = out
