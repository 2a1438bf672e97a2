"""The time texts of ecs.transaction_event (compiled: nine digits written by a C loop,
ecs.pxd ``_digits9_c``) against ``iso_time``'s "%09d" formatting."""
from __future__ import annotations

import random

from worker.ecs import iso_time, transaction_event
from worker.plugin import IpPortTuple

_NS = 1_000_000_000


def test_event_times_equal_iso_time_for_every_digit_pattern():
    rnd = random.Random(5)
    fracs = [0, 1, 9, 10, 99, 100, 999_999, 1_000_000, 100_000_000, 999_999_999, 123_456_789]
    fracs += [rnd.randrange(_NS) for _ in range(2000)] + [10 ** rnd.randrange(9) for _ in range(50)]
    tup = IpPortTuple(17, "10.0.0.1", 5353, "10.0.0.2", 53)
    for i, frac in enumerate(fracs):
        start = (1_700_000_000 + i) * _NS + frac
        end = start + rnd.randrange(3 * _NS)
        ev = transaction_event("dns", tup, start, end, 10, 20, transport=17)
        assert ev["event"]["start"] == iso_time(start), frac
        assert ev["event"]["end"] == iso_time(end)
        assert ev["@timestamp"] == iso_time(start, 3)
        only_end = transaction_event("dns", tup, None, end, 0, 20, transport=17)
        assert only_end["event"]["end"] == iso_time(end)
        assert only_end["@timestamp"] == iso_time(end, 3)
