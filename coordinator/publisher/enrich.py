"""Agent metadata, tags and custom fields added to every event by the publisher.

What libbeat's pipeline adds to each event (``publisher/processing``):
``agent.{name, hostname, version, type, id, ephemeral_id}``, ``host.name``
(the beat's ``name`` setting, which defaults to the host name),
``ecs.version``, the configured ``tags`` (appended to the event's own,
without duplicates) and the configured ``fields`` (under ``fields``, or at
the root with ``fields_under_root``).

Unlike libbeat, custom fields never overwrite what the protocol wrote: they
are merged in only where the event has no value. The agent keys, ``host.name``
and ``ecs.version`` are always set.

``agent.id`` is stable per host: the ``uuid`` kept in ``<data_path>/meta.json``
(the file Packetbeat itself keeps there; created on first use), or without a
data path a UUID derived from the beat name and host name.
``agent.ephemeral_id`` is new for each Enricher, that is for each process.

With processors configured the workers add these fields themselves, in
libbeat's order around the processors, with the same agent ids (the settings'
``agent``), and mark their batches ``enriched``: those events pass through.

Workers send events already encoded (``shared.wire.encode_events``).
:meth:`Enricher.enrich_line` gives the canonical JSON of the enriched event
from that text without decoding it: when the event has none of the keys the
enrichment touches (``agent``, ``host``, ``ecs``, and ``tags`` / the custom
fields when configured), enriching only appends them at the end, so their
pre-encoded text is spliced in before the closing brace. The result is byte
for byte ``encode_event(enricher(json.loads(line)))``, which is what it falls
back to otherwise (a key name seen anywhere in the text, even inside a
string, takes the fallback: slower, never different).
"""
from __future__ import annotations

import json
import os
import uuid

ECS_VERSION = "8.0.0"
BEAT_TYPE = "packetbeat"
META_FILE = "meta.json"
# a clean_positions flag: the worker already added the beat's fields and ran the
# processors (worker/processors): the event is published as it is
ENRICHED = "enriched"


def stable_agent_id(beat_name: str, hostname: str, data_path: str | None = None) -> str:
    """The agent id: from ``<data_path>/meta.json`` (created if absent), else derived.

    Raises OSError when the data path cannot be read or written, ValueError
    when meta.json holds no valid uuid.
    """
    if not data_path:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, "%s.%s" % (beat_name, hostname)))
    meta = os.path.join(data_path, META_FILE)
    try:
        with open(meta, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        new = str(uuid.uuid4())
        os.makedirs(data_path, 0o750, exist_ok=True)
        tmp = meta + ".new"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"uuid": new}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, meta)
        return new
    try:
        return str(uuid.UUID(json.loads(raw)["uuid"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError("%s: no valid uuid (%s)" % (meta, e)) from None


class _FieldsView:
    def __init__(self, fields, fields_under_root):
        self.fields = fields
        self.fields_under_root = fields_under_root


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _merge_missing(dst: dict, src: dict) -> None:
    """Add what ``src`` has and ``dst`` lacks, recursing into dicts on both sides."""
    for k, v in src.items():
        cur = dst.get(k)
        if k not in dst:
            dst[k] = _copy(v)
        elif isinstance(cur, dict) and isinstance(v, dict):
            _merge_missing(cur, v)


class Enricher:
    def __init__(self, beat_name: str, hostname: str, version: str, tags: list[str] | None = None,
                 fields: dict | None = None, fields_under_root: bool = False, *,
                 data_path: str | None = None, agent_id: str | None = None,
                 ephemeral_id: str | None = None):
        self.agent_id = agent_id or stable_agent_id(beat_name, hostname, data_path)
        self.ephemeral_id = ephemeral_id or str(uuid.uuid4())
        self._agent = {
            "name": beat_name,
            "hostname": hostname,
            "version": version,
            "type": BEAT_TYPE,
            "id": self.agent_id,
            "ephemeral_id": self.ephemeral_id,
        }
        self._host_name = beat_name
        self._tags = list(dict.fromkeys(tags or ()))
        fields = dict(fields or {})
        self._fields = fields if fields_under_root else ({"fields": fields} if fields else {})
        # enrich_line: the appended members' text, and the keys whose presence needs the slow path
        tail: dict = {"agent": dict(self._agent), "host": {"name": self._host_name}, "ecs": {"version": ECS_VERSION}}
        if self._tags:
            tail["tags"] = list(self._tags)
        clash = any(k in tail for k in self._fields)      # fields_under_root naming agent/host/...
        tail.update(self._fields)
        from coordinator.publisher.outputs import encode_event
        self._encode = encode_event
        self._tail = encode_event(tail)[1:-1]
        self._comma_tail = b"," + self._tail + b"}"      # spliced in place of an event's closing brace
        self._probes = tuple(b'"%s":' % json.dumps(k, ensure_ascii=False)[1:-1].encode() for k in tail)
        self._splice = not clash            # fields_under_root naming agent/host/...: always decode
        from shared.wire import publisher_keys
        self.own_keys = publisher_keys(_FieldsView(fields, fields_under_root))
        # values an index format may name (the same in every enriched event)
        self.known = {"agent.%s" % k: v for k, v in self._agent.items()}
        self.known.update({"host.name": self._host_name, "ecs.version": ECS_VERSION})
        self.spliced = 0            # enrich_line calls served by the splice
        self.decoded = 0            # ... and by decode, enrich, encode
        self.passed = 0             # ... events a worker already enriched (processors configured)

    def clean_positions(self, header: dict, n: int):
        """For an ``enc: json`` batch header: a per-event list, True where the
        worker says the event has none of our keys (its ``own_keys`` must be
        ours), else None (enrich_line then looks at the text)."""
        if header.get("enriched"):           # the worker added our fields and ran the processors
            return [ENRICHED] * n
        if header.get("own_keys") != self.own_keys:
            return None
        flags = [True] * n
        for i in header.get("own") or ():
            if 0 <= i < n:
                flags[i] = False
        return flags

    def splice_all(self, header: dict, body: list) -> list | None:
        """The enriched lines of a whole ``enc: json`` batch whose header says none of its
        events has one of our keys: ``enrich_line(line, True)`` of each, in one pass. None
        when the batch needs more (enriched by the worker, an event with our keys, other
        keys, an empty object, not a line): then ``enrich_line`` per event."""
        if not self._splice or header.get("enriched") or header.get("own") or \
                header.get("own_keys") != self.own_keys:
            return None
        tail = self._comma_tail
        try:
            out = [line[:-1] + tail for line in body if type(line) is bytes and len(line) > 2 and line[-1] == 0x7D]
        except TypeError:
            return None
        if len(out) != len(body):
            return None
        self.spliced += len(out)
        return out

    def enrich_line(self, line: bytes, clean: bool | None = None) -> bytes:
        """The enriched event's canonical JSON from the event's canonical JSON.
        ``clean``: True when the sender knows the event has none of the keys
        the enrichment writes, False when it has some, None: unknown (the
        text is searched for them; a match in a string value only costs the
        slow path); ``ENRICHED``: the worker enriched it (processors), it is final."""
        if clean is ENRICHED:
            self.passed += 1
            return line
        if clean is None:
            clean = True
            for probe in self._probes:
                if probe in line:
                    clean = False
                    break
        if clean and self._splice:
            if line[-1:] == b"}":
                self.spliced += 1
                if len(line) == 2:
                    return b"{" + self._tail + b"}"
                return line[:-1] + self._comma_tail
        self.decoded += 1
        ev = json.loads(line)
        if not isinstance(ev, dict):
            raise ValueError("an event must be a JSON object")
        return self._encode(self(ev))

    def __call__(self, event: dict) -> dict:
        agent = event.get("agent")
        if isinstance(agent, dict):
            agent.update(self._agent)
        else:
            event["agent"] = dict(self._agent)
        host = event.get("host")
        if isinstance(host, dict):
            host["name"] = self._host_name
        else:
            event["host"] = {"name": self._host_name}
        ecs = event.get("ecs")
        if isinstance(ecs, dict):
            ecs["version"] = ECS_VERSION
        else:
            event["ecs"] = {"version": ECS_VERSION}
        if self._tags:
            have = event.get("tags")
            if isinstance(have, list):
                try:
                    event["tags"] = list(dict.fromkeys(have + self._tags))
                except TypeError:            # an unhashable tag (a list, a dict): compare by equality
                    merged: list = []
                    for t in have + self._tags:
                        if t not in merged:
                            merged.append(t)
                    event["tags"] = merged
            elif isinstance(have, str):
                event["tags"] = [have] + [t for t in self._tags if t != have]
            else:
                event["tags"] = list(self._tags)
        if self._fields:
            _merge_missing(event, self._fields)
        return event
