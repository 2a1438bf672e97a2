"""The cyclic GC settings of the pipeline's busy processes (workers, file and live
captures, the publisher).

Generation-0 threshold 20000 instead of CPython's 700: these processes allocate
containers per packet or per event (record tuples, event dicts, batch lists),
nearly all freed by reference counting; with the default a young collection runs
every few hundred of them and the older ones walk everything that lives long.
Measured in a worker: ICMP 9.4 -> 8.1 us of CPU per packet; in a capture and the
publisher the collector's share of their instructions (callgrind, docs/benchmarks.md).
"""
from __future__ import annotations

import gc

GC_THRESHOLD = (20000, 20, 20)


def tune_gc() -> None:
    """Objects that live for the whole run (modules, configuration, the engine) are
    moved out of the collected generations, and young collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
