"""The coordinator's configuration loader: ``shared.config`` plus the sections
whose schema lives with the coordinator's code (each output's, ``setup.*``,
``queue.*``) and the keystore for ``${NAME}``.

``shared/`` never imports the coordinator; this module hands it the table
(:data:`SCHEMAS`) instead.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from shared import config as _config
from shared.confutil import ConfigError, build
from shared.config import Schemas, Settings

__all__ = ["ConfigError", "SCHEMAS", "Settings", "load_config", "validate_tree"]


def _setup_ilm_template(value, path: str) -> None:
    from coordinator.setup import setup_configs
    setup_configs({path.rsplit(".", 1)[1]: value})


def _setup_kibana(value, path: str) -> None:
    from coordinator.kibana import kibana_configs
    kibana_configs({path.rsplit(".", 1)[1]: value})


def _queue_disk(value, path: str) -> None:
    from coordinator.publisher.spool import DiskQueueConfig
    build(DiskQueueConfig, value, path)


def _queue_mem(value, path: str) -> None:
    """queue.mem: the publisher's memory queue (coordinator/publisher/memqueue.py)."""
    from coordinator.publisher.memqueue import MemQueueConfig
    build(MemQueueConfig, value or {}, path)


def _agent_id(beat_name: str, hostname: str, data_path: str) -> str:
    from coordinator.publisher.enrich import stable_agent_id
    return stable_agent_id(beat_name, hostname, data_path)


class _Outputs(Mapping):
    """Output name -> its config class, each module imported when its name is first
    looked up: a configuration names one output, and the Elasticsearch output's
    module (hashlib, its index templates) costs the coordinator's start-up ~15 ms."""

    def __init__(self, targets: dict[str, str]):
        self._targets = targets
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        cls = self._classes.get(name)
        if cls is None:
            module, _, attr = self._targets[name].partition(":")
            cls = self._classes[name] = getattr(importlib.import_module(module), attr)
        return cls

    def __iter__(self):
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


def _outputs() -> Mapping:
    return _Outputs({"console": "coordinator.publisher.outputs:ConsoleConfig",
                     "file": "coordinator.publisher.outputs:FileConfig",
                     "redis": "coordinator.publisher.redis_out:RedisConfig",
                     "elasticsearch": "coordinator.publisher.elasticsearch:ElasticsearchConfig"})


SCHEMAS = Schemas(
    outputs=_outputs(),
    setup={"ilm": _setup_ilm_template, "template": _setup_ilm_template,
           "kibana": _setup_kibana, "dashboards": _setup_kibana},
    queue={"disk": _queue_disk, "mem": _queue_mem},
    agent_id=_agent_id,
)


def _keystore_reader(strict_perms: bool):
    def values(paths: dict, section) -> dict:
        from coordinator.keystore import Keystore, KeystoreError, check_perms, keystore_path
        ks = Keystore(keystore_path(paths, section))
        try:
            if strict_perms and ks.exists():
                check_perms(ks.path)
            return ks.load_values()
        except KeystoreError as e:
            raise ConfigError("keystore", str(e)) from None
    return values


def load_config(path: str | None, overrides=(), registry=None, strict_perms: bool = True) -> Settings:
    """``packetbeat.yml`` + ``-E`` overrides, ``${NAME}`` from the keystore then the environment.
    ``strict_perms``: the keystore must be this user's (or root's) and not readable by others."""
    return _config.load_config(path, overrides, registry, schemas=SCHEMAS, secrets=_keystore_reader(strict_perms))


def validate_tree(tree: dict, registry=None) -> Settings:
    return _config.validate_tree(tree, registry, schemas=SCHEMAS)
