"""The one wire format between processes: ``[header, body]`` msgpack frames.

header = ``{"v": 1, "kind": K, "from": sender, "seq": n, "n": count, ...}``
body   = one msgpack array of records:

- ``pkts``:   ``[ts_ns, linktype, raw]`` packet records (capture -> worker)
- ``events``: event dicts (worker -> publisher)
- ``eos``:    empty body; end of stream from one sender
- ``stats``:  one counters dict (any -> coordinator)
- ``ack``:    empty body; publisher -> worker, every batch <= ``seq`` is accepted
- ``procs``:  ``[transport, ip, port, process]`` records (capture -> worker, process attribution)

msgpack >= 1.0 defaults (bin type for bytes, str keys). Pickle never crosses a
process boundary.
"""
from __future__ import annotations

import msgpack

VERSION = 1
KINDS = ("pkts", "events", "eos", "stats", "ack", "procs")


class WireError(Exception):
    """A frame that does not follow this format."""


_packb = msgpack.Packer(use_bin_type=True).pack


def encode_batch(kind: str, sender: str, seq: int, records: list, **extra) -> list[bytes]:
    header = {"v": VERSION, "kind": kind, "from": sender, "seq": seq, "n": len(records)}
    if extra:
        header.update(extra)
    return [_packb(header), _packb(records)]


def decode_batch(frames: list) -> tuple[dict, list]:
    if len(frames) != 2:
        raise WireError("expected 2 frames, got %d" % len(frames))
    try:
        header = msgpack.unpackb(frames[0], raw=False)
        body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several types
        raise WireError("undecodable frame: %s" % exc) from None
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise WireError("unsupported header %r" % (header,))
    if header.get("kind") not in KINDS:
        raise WireError("unknown kind %r" % header.get("kind"))
    if not isinstance(body, list) or len(body) != header.get("n"):
        raise WireError("body does not hold n=%r records" % header.get("n"))
    return header, body
