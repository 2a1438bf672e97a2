"""The DNS event builder memoises question and answer objects: every event still gets its
own dicts (a change to one event's never shows in another's), equal to a fresh build."""
from __future__ import annotations

from pathlib import Path

from coordinator.capture.pcapfile import open_capture
from worker.engine import Engine
from worker.protos.registry import load_registry

PCAP = Path(__file__).resolve().parents[2] / "golden" / "pcaps" / "dns_real.pcap"


def _events():
    r = open_capture(str(PCAP))
    try:
        records = [list(x) for x in r]
    finally:
        r.close()
    eng = Engine([{"type": "dns", "ports": [10053], "include_authorities": True,
                   "include_additionals": True}], load_registry())
    out = []
    for _ in range(2):                      # the same queries twice: the second pass hits the memo
        eng.handle(records)
        out.extend(eng.take_events())
    eng.finish()
    out.extend(eng.take_events())
    return out


def test_memoised_objects_are_not_shared_between_events():
    events = [e for e in _events() if isinstance(e.get("dns"), dict)]
    assert len(events) > 20
    by_question: dict = {}
    for ev in events:
        q = ev["dns"].get("question")
        if q:
            by_question.setdefault((q.get("name"), q.get("type")), []).append(ev)
    pairs = [evs for evs in by_question.values() if len(evs) >= 2]
    assert pairs, "the capture repeats no question"
    for evs in pairs:
        qs = [e["dns"]["question"] for e in evs]
        assert all(q == qs[0] for q in qs)
        assert len({id(q) for q in qs}) == len(qs)          # one dict per event
        for key in ("answers", "authorities", "additionals"):
            objs = [o for e in evs for o in e["dns"].get(key) or []]
            assert len({id(o) for o in objs}) == len(objs)
    # changing one event's objects leaves the others as they were
    first, second = pairs[0][0]["dns"], pairs[0][1]["dns"]
    want = dict(second["question"])
    first["question"]["name"] = "changed.example."
    if first.get("answers") and second.get("answers"):
        kept = dict(second["answers"][0])
        first["answers"][0]["data"] = "changed"
        assert second["answers"][0] == kept
    assert second["question"] == want
