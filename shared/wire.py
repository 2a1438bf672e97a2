"""The one wire format between processes: ``[header, body]`` msgpack frames.

header = ``{"v": 1, "kind": K, "from": sender, "seq": n, "n": count, ...}``
body   = one msgpack array of records:

- ``pkts``:   ``[ts_ns, linktype, raw]`` packet records (capture -> worker)
- ``events``: events (worker -> publisher), each one the event's canonical
  JSON text as bytes (``coordinator.publisher.outputs.encode_event``, header
  ``"enc": "json"``), without the keys the publisher owns (agent, host, ecs,
  tags, fields): the publisher splices those in as pre-encoded bytes and
  never decodes the event (``Enricher.enrich_line``); header ``own`` lists the
  events that do have such a key (those are decoded). Event dicts are still
  accepted (a header without ``enc``).
- ``eos``:    empty body; end of stream from one sender
- ``stats``:  one counters dict (any -> coordinator)
- ``ack``:    empty body; publisher -> worker, every batch <= ``seq`` is accepted
- ``procs``:  ``[transport, ip, port, process]`` records (capture -> worker, process attribution)

msgpack >= 1.0 defaults (bin type for bytes, str keys). Pickle never crosses a
process boundary.
"""
from __future__ import annotations

import msgpack

from shared.jsonenc import EncodeError, encode_event

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


PUBLISHER_KEYS = ("agent", "ecs", "fields", "host", "tags")


def publisher_keys(settings=None) -> list[str]:
    """The top-level keys the publisher's enrichment writes: agent, ecs, fields,
    host, tags, and the custom fields' own keys with ``fields_under_root``."""
    keys = set(PUBLISHER_KEYS)
    if settings is not None and getattr(settings, "fields_under_root", False):
        keys.update(getattr(settings, "fields", None) or ())
    return sorted(keys)


def encode_events(sender: str, seq: int, events: list, counters=None, log=None, settings=None,
                  enriched: bool = False) -> list[bytes]:
    """An ``events`` batch of JSON-encoded events. The header's ``own`` lists
    the positions of events that have one of ``own_keys`` (publisher_keys) at
    the top: only those need the publisher to decode them. An event that
    cannot be encoded (NaN, a cycle...) is left out, logged and counted in
    ``counters["worker.unencodable_events"]``. ``enriched``: the worker already
    added the beat's fields and ran the processors (worker/processors): the
    header says so and the publisher leaves the events as they are."""
    keys = publisher_keys(settings)
    lines = []
    own = []
    for ev in events:
        try:
            line = encode_event(ev)
        except EncodeError as e:
            if counters is not None:
                counters["worker.unencodable_events"] += 1
            if log is not None:
                log.error("event dropped, it cannot be encoded: %s", e)
            continue
        for k in keys:
            if k in ev:
                own.append(len(lines))
                break
        lines.append(line)
    if enriched:
        return encode_batch("events", sender, seq, lines, enc="json", enriched=True)
    return encode_batch("events", sender, seq, lines, enc="json", own=own, own_keys=keys)


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
