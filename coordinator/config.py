"""The coordinator's configuration loader: ``shared.config`` plus the sections
whose schema lives with the coordinator's code (each output's, ``setup.*``,
``queue.*``) and the keystore for ``${NAME}``.

``shared/`` never imports the coordinator; this module hands it the table
(:data:`SCHEMAS`) instead.
"""
from __future__ import annotations

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
    """The memory queue is the default and has no option of its own here: the
    publisher's batches are output.*.bulk_max_size and cluster.event_batch."""
    if value not in (None, {}):
        raise ConfigError(path, "the memory queue takes no options in this version (batches are sized by "
                                "output.<name>.bulk_max_size and cluster.event_batch); remove them")


def _agent_id(beat_name: str, hostname: str, data_path: str) -> str:
    from coordinator.publisher.enrich import stable_agent_id
    return stable_agent_id(beat_name, hostname, data_path)


def _outputs() -> dict:
    from coordinator.publisher.elasticsearch import ElasticsearchConfig
    from coordinator.publisher.outputs import ConsoleConfig, FileConfig
    from coordinator.publisher.redis_out import RedisConfig
    return {"console": ConsoleConfig, "file": FileConfig, "redis": RedisConfig, "elasticsearch": ElasticsearchConfig}


SCHEMAS = Schemas(
    outputs=_outputs(),
    setup={"ilm": _setup_ilm_template, "template": _setup_ilm_template,
           "kibana": _setup_kibana, "dashboards": _setup_kibana},
    queue={"disk": _queue_disk, "mem": _queue_mem},
    agent_id=_agent_id,
)


def _keystore_values(paths: dict, section) -> dict:
    from coordinator.keystore import Keystore, KeystoreError, keystore_path
    try:
        return Keystore(keystore_path(paths, section)).load_values()
    except KeystoreError as e:
        raise ConfigError("keystore", str(e)) from None


def load_config(path: str | None, overrides=(), registry=None) -> Settings:
    """``packetbeat.yml`` + ``-E`` overrides, ``${NAME}`` from the keystore then the environment."""
    return _config.load_config(path, overrides, registry, schemas=SCHEMAS, secrets=_keystore_values)


def validate_tree(tree: dict, registry=None) -> Settings:
    return _config.validate_tree(tree, registry, schemas=SCHEMAS)
