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
"""
from __future__ import annotations

import json
import os
import uuid

ECS_VERSION = "8.0.0"
BEAT_TYPE = "packetbeat"
META_FILE = "meta.json"


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
                event["tags"] = list(dict.fromkeys(have + self._tags))
            elif isinstance(have, str):
                event["tags"] = [have] + [t for t in self._tags if t != have]
            else:
                event["tags"] = list(self._tags)
        if self._fields:
            _merge_missing(event, self._fields)
        return event
