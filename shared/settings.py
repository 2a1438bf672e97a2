"""The resolved configuration (:class:`Settings`) and its JSON form.

The coordinator loads and validates ``packetbeat.yml`` (shared/config.py) and
writes the result as JSON for its children (coordinator/child.py reads it
with :func:`load_settings_json`). This module is apart from shared/config.py so
that a child, which only reads that JSON, does not build the section schemas
and their validators at start-up; shared/config.py re-exports both names.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

__all__ = ["Settings", "load_settings_json"]


@dataclass
class Settings:
    """The resolved configuration, plain data only."""
    name: str
    tags: list[str]
    fields: dict
    fields_under_root: bool
    interfaces: list[dict]
    flows: dict | None
    protocols: list[dict]               # enabled entries, each {"type": name, ...options as given}
    procs: dict
    output: dict                        # {"file": {...}} or {"console": {...}}
    logging: dict
    cluster: dict
    path: dict
    raw: dict = field(repr=False)       # the merged tree, resolved
    processors: list = field(default_factory=list)    # the global processors (worker/processors)
    agent: dict = field(default_factory=dict)         # {id, ephemeral_id} when processors run in the workers
    shutdown_timeout: float = 0.0       # packetbeat.shutdown_timeout: seconds a stop may drain (0: until done)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def load_settings_json(text: str) -> Settings:
    return Settings(**json.loads(text))
