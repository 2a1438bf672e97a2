"""Load, merge and validate ``packetbeat.yml`` (Packetbeat 8.x shape).

- Keys may be dotted (``output.file.path: /tmp``) or nested, mixed freely.
- ``${VAR}`` / ``${VAR:default}`` in strings expand from the environment.
- ``-E key=value`` overrides (value parsed as YAML) apply after the file.
- ``packetbeat.protocols`` is a list of ``- type: X`` entries (8.x) or a map
  ``{X: {...}}`` (5.x); both become the list form.
- Unknown keys, wrong types, several enabled outputs and a port claimed by two
  protocols are :class:`ConfigError` naming the key path.

The result, :class:`Settings`, is plain data (JSON-serialisable) so that the
coordinator can hand exactly the same resolved configuration to every child
process without pickling.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shared.confutil import ConfigError, Duration, build

__all__ = ["ConfigError", "Settings", "load_config", "load_settings_json"]


# --------------------------------------------------------------------------
# Section schemas
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class InterfaceConfig:
    device: str = "any"
    type: str = "af_packet"
    snaplen: int = 65535
    buffer_size_mb: int = 30
    bpf_filter: str = ""
    with_vlans: bool = False
    ignore_outgoing: bool = False
    auto_promisc_mode: bool = False
    fanout_group: int | None = None
    internal_networks: list[str] = field(default_factory=lambda: ["private"])
    poll_default_route: Duration = 0.0
    file: str = ""
    loop: int = 1
    top_speed: bool = True
    dumpfile: str = ""

    def validate(self, path: str) -> None:
        if self.type not in ("af_packet", "pcap", "autodetect"):
            raise ConfigError(path + ".type", "must be af_packet, pcap or autodetect, got %r" % self.type)
        if self.loop < 0:
            raise ConfigError(path + ".loop", "must be >= 0 (0 = forever)")
        if self.internal_networks:
            # CIDRs or named networks, as the processors' `network` condition reads them
            from worker.processors.conditions import network_matcher
            network_matcher(list(self.internal_networks), path + ".internal_networks")


@dataclass(frozen=True)
class FlowsConfig:
    enabled: bool = True
    timeout: Duration = 30.0
    period: Duration = 10.0
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    fields_under_root: bool = False
    keep_null: bool = False
    index: str = ""
    processors: list[Any] = field(default_factory=list)

    def validate(self, path: str) -> None:
        # Packetbeat's limits (flows/worker.go): timeout >= 1s; period -1 (only final reports) or >= 1s
        if self.timeout < 1:
            raise ConfigError(path + ".timeout", "must be >= 1s")
        if 0 < self.period < 1:
            raise ConfigError(path + ".period", "must be -1 or 0 (report only at the end) or >= 1s")


@dataclass(frozen=True)
class ProcsConfig:
    enabled: bool = False
    monitored: list[Any] = field(default_factory=list)
    refresh_process_info_period: Duration = 1.0
    max_proc_read_age: Duration = 0.1


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    selectors: list[str] = field(default_factory=list)
    to_stderr: bool = False
    to_files: bool = True
    to_syslog: bool = False
    json: bool = False
    files: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    ecs: bool = False

    def validate(self, path: str) -> None:
        if self.level not in ("debug", "info", "warning", "error", "critical"):
            raise ConfigError(path + ".level", "must be debug, info, warning or error, got %r" % self.level)


@dataclass(frozen=True)
class CurveConfig:
    enabled: bool | None = None         # None: on when an endpoint crosses hosts (tcp:// to a non-loopback address)
    secret_key_file: str = ""           # this host's keypair (packetbeat keygen)
    public_key_file: str = ""
    server_public_key_file: str = ""    # role capture: the worker host's public key
    client_keys_dir: str = ""           # role workers: only these clients' public keys (*.key) may connect


@dataclass(frozen=True)
class ClusterConfig:
    workers: int = 0                    # 0: one per CPU
    captures: int = 1
    batch_packets: int = 128            # packets per capture -> worker batch
    batch_bytes: int = 1 << 20
    batch_age_ms: float = 20.0
    event_batch: int = 256              # events per worker -> publisher batch
    hwm: int = 64                       # batches queued per socket before blocking/dropping
    run_dir: str = ""                   # where ipc:// endpoints live; empty: a private temp dir
    max_restarts: int = 5
    # bounded state per worker (worker/tcp.py): open TCP connections (the least recently
    # active one is flushed and forgotten to make room) and remembered data-less SYNs
    max_connections: int = 32_768
    max_pending_syns: int = 65_536
    max_buffered_bytes: int = 128 * 1024 * 1024   # TCP bytes held after holes, per worker
    max_flows: int = 262_144            # open flows per worker (packetbeat.flows)
    restart_window: Duration = 60.0
    run_as_user: str = ""               # live capture: drop root to this user once the sockets are open
    # multi-host (shared/transport.py, docs/configuration.md "cluster"): all | capture | workers
    role: str = "all"
    name: str = ""                      # prefix of this host's capture names (default: the host name)
    shards: list[str] = field(default_factory=list)     # role capture: shard i -> shards[i] (tcp://host:port)
    listen: str = ""                    # role workers: worker k binds port + k
    first_shard: int = 0                # role workers: global index of worker 0 (names and logs only)
    replay: bool = False                # role workers: the captures read files (packet time, ends at eos)
    curve: CurveConfig = field(default_factory=lambda: CurveConfig())

    def validate(self, path: str) -> None:
        for name in ("workers", "captures", "batch_packets", "batch_bytes", "event_batch", "hwm",
                     "max_connections", "max_buffered_bytes", "max_flows"):
            v = getattr(self, name)
            if v < (0 if name == "workers" else 1):
                raise ConfigError("%s.%s" % (path, name), "must be positive, got %r" % v)
        if self.max_pending_syns < 0:
            raise ConfigError(path + ".max_pending_syns", "must be >= 0, got %r" % self.max_pending_syns)
        if self.workers > 256:
            raise ConfigError(path + ".workers", "at most 256")
        from shared.transport import validate_cluster
        validate_cluster(self, path)


_FREE_FORM = {"queue", "http", "setup", "monitoring", "processors", "path", "seccomp", "max_procs",
              "keystore", "features", "instrumentation", "monitoring", "xpack", "ilm"}
_TOP = {"packetbeat", "output", "logging", "cluster", "tags", "fields", "fields_under_root", "name"} | _FREE_FORM
_PACKETBEAT = {"interfaces", "flows", "protocols", "procs", "ignore_outgoing", "shutdown_timeout",
               "overwrite_pipelines"}
_OUTPUTS_LATER = {"logstash", "kafka", "discard"}


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
    raw: dict = field(repr=False)       # the merged tree, for `packetbeat export config`
    processors: list = field(default_factory=list)    # the global processors (worker/processors)
    agent: dict = field(default_factory=dict)         # {id, ephemeral_id} when processors run in the workers

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def load_settings_json(text: str) -> Settings:
    return Settings(**json.loads(text))


# --------------------------------------------------------------------------
# Tree helpers
# --------------------------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}")


def _expand_env(value, path: str):
    if isinstance(value, str):
        def sub(m):
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(path, "environment variable %s is not set" % name)
        if "${" not in value:
            return value
        whole = _ENV.fullmatch(value)
        out = _ENV.sub(sub, value)
        return yaml.safe_load(out) if whole and out else out
    if isinstance(value, dict):
        return {k: _expand_env(v, "%s.%s" % (path, k) if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
    return value


def _merge(dst: dict, key: str, value, path: str) -> None:
    if key in dst and isinstance(dst[key], dict) and isinstance(value, dict):
        for k, v in value.items():
            _merge(dst[key], k, v, "%s.%s" % (path, k))
    elif key in dst and dst[key] != value:
        raise ConfigError(path, "set twice with different values")
    else:
        dst[key] = value


def expand_dotted(tree, path: str = ""):
    """Nested form of a mapping whose keys may be dotted."""
    if isinstance(tree, list):
        return [expand_dotted(v, "%s[%d]" % (path, i)) for i, v in enumerate(tree)]
    if not isinstance(tree, dict):
        return tree
    out: dict = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            key = str(key)
        value = expand_dotted(value, "%s.%s" % (path, key) if path else key)
        parts = key.split(".")
        node, sub = value, path
        for p in reversed(parts[1:]):
            node = {p: node}
        _merge(out, parts[0], node, "%s.%s" % (path, key) if path else key)
    return out


def _set_override(tree: dict, key: str, value) -> None:
    parts = key.split(".")
    node = tree
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p) if isinstance(node, dict) else None
        if isinstance(nxt, list):
            nxt = _list_member(nxt, parts[i + 1], key)
            if nxt is not None and i + 1 == len(parts) - 1:
                raise ConfigError(key, "cannot replace a whole list entry with -E")
            if nxt is not None:
                # skip the index / type segment
                rest = ".".join(parts[i + 2:])
                _set_override(nxt, rest, value)
                return
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def _list_member(lst: list, seg: str, key: str):
    if seg.isdigit():
        idx = int(seg)
        if idx >= len(lst) or not isinstance(lst[idx], dict):
            raise ConfigError(key, "no list entry %d" % idx)
        return lst[idx]
    for item in lst:
        if isinstance(item, dict) and item.get("type") == seg:
            return item
    return None


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(text, "-E expects key=value")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(text, "-E expects key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def read_yaml(path: str) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError("", "config file %s not found" % path) from None
    except OSError as exc:
        raise ConfigError("", "cannot read config file %s: %s" % (path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("", "config file %s is not valid YAML: %s" % (path, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", "config file %s must hold a mapping at the top" % path)
    return data


def load_config(path: str | None, overrides: list[str] = (), registry=None) -> Settings:
    raw = read_yaml(path) if path else {}
    tree = expand_dotted(raw)
    for text in overrides:
        key, value = parse_override(text)
        tree = expand_dotted(tree)
        _set_override(tree, key, expand_dotted(value))
    tree = _expand_env(tree, "")
    return validate_tree(tree, registry)


def validate_tree(tree: dict, registry=None) -> Settings:
    if registry is None:
        from worker.protos.registry import load_registry
        registry = load_registry()
    for key in tree:
        if key not in _TOP:
            raise ConfigError(key, "unknown setting (known: %s)" % ", ".join(sorted(_TOP)))
    pb = tree.get("packetbeat") or {}
    if not isinstance(pb, dict):
        raise ConfigError("packetbeat", "expected a mapping")
    for key in pb:
        if key not in _PACKETBEAT:
            raise ConfigError("packetbeat." + key, "unknown setting (known: %s)" % ", ".join(sorted(_PACKETBEAT)))

    interfaces = _interfaces(pb.get("interfaces"))
    flows = None
    if pb.get("flows") is not None:
        fc = build(FlowsConfig, pb["flows"], "packetbeat.flows")
        flows = dataclasses.asdict(fc) if fc.enabled else None
    procs = dataclasses.asdict(build(ProcsConfig, pb.get("procs"), "packetbeat.procs"))
    protocols = _protocols(pb.get("protocols"), registry)
    cluster = dataclasses.asdict(build(ClusterConfig, tree.get("cluster"), "cluster"))
    # a capture host (cluster.role: capture) publishes nothing: its output may be left out
    output = {} if cluster["role"] == "capture" and tree.get("output") is None else _output(tree.get("output"))
    logging_cfg = dataclasses.asdict(build(LoggingConfig, tree.get("logging"), "logging"))
    if cluster["role"] == "capture":
        cluster["workers"] = len(cluster["shards"])      # one PUSH per remote shard
    if cluster["role"] == "workers":
        # attribution is done on the capture hosts (their packetbeat.procs): a worker host applies
        # whatever process records they send along with the packets
        procs["enabled"] = True
    if cluster["workers"] == 0:
        cluster["workers"] = max(1, os.cpu_count() or 1)

    tags = tree.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError("tags", "expected a list of strings")
    fields = tree.get("fields") or {}
    if not isinstance(fields, dict):
        raise ConfigError("fields", "expected a mapping")
    fur = tree.get("fields_under_root", False)
    if not isinstance(fur, bool):
        raise ConfigError("fields_under_root", "expected true or false")
    name = tree.get("name") or ""
    if not isinstance(name, str):
        raise ConfigError("name", "expected a string")
    processors, agent = _processors(tree, protocols, flows, name)
    path = tree.get("path") or {}
    if not isinstance(path, dict):
        raise ConfigError("path", "expected a mapping")
    _queue(tree.get("queue"))
    if tree.get("setup") is not None:          # setup.ilm / setup.template (the Elasticsearch setup's schema)
        from coordinator.setup import setup_configs
        setup_configs(tree["setup"])
        from coordinator.kibana import kibana_configs   # setup.kibana / setup.dashboards
        kibana_configs(tree["setup"])
    return Settings(name=name, tags=tags, fields=fields, fields_under_root=fur, interfaces=interfaces,
                    flows=flows, protocols=protocols, procs=procs, output=output, logging=logging_cfg,
                    cluster=cluster, path=path, raw=json.loads(json.dumps(tree, default=str)),
                    processors=processors, agent=agent)


def _processors(tree: dict, protocols: list[dict], flows: dict | None, name: str) -> tuple[list, dict]:
    """The global ``processors`` list, each list checked (the protocols' and the
    flows' too; worker/processors), and when any is configured the agent's ids,
    shared by the workers (which then add the beat's fields themselves, see
    worker/processors/__init__.py) and the publisher."""
    from worker.processors import validate
    raw = tree.get("processors")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError("processors", "expected a list of processors")
    raw = json.loads(json.dumps(raw, default=str))
    validate(raw, "processors")
    any_local = False
    for i, entry in enumerate(protocols):
        if entry.get("processors"):
            validate(entry["processors"], "packetbeat.protocols[%d].processors" % i)
            any_local = True
    if flows and flows.get("processors"):
        validate(flows["processors"], "packetbeat.flows.processors")
        any_local = True
    if not raw and not any_local:
        return [], {}
    import socket
    import uuid
    from coordinator.publisher.enrich import stable_agent_id
    hostname = socket.gethostname()
    data_path = (tree.get("path") or {}).get("data", "") if isinstance(tree.get("path"), dict) else ""
    try:
        agent_id = stable_agent_id(name or hostname, hostname, data_path)
    except (OSError, ValueError) as e:
        raise ConfigError("path.data", "cannot read or create the agent id: %s" % e) from None
    return raw, {"id": agent_id, "ephemeral_id": str(uuid.uuid4())}


def _queue(value) -> None:
    """queue.mem (the publisher's memory queue) or queue.disk (its spool), checked."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigError("queue", "expected a mapping")
    from coordinator.publisher.memqueue import check_queue   # queue.mem / queue.disk, one of them
    check_queue(value, "queue")


def _interfaces(value) -> list[dict]:
    if value is None:
        value = {}
    if isinstance(value, dict):
        return [dataclasses.asdict(build(InterfaceConfig, value, "packetbeat.interfaces"))]
    if isinstance(value, list):
        if not value:
            raise ConfigError("packetbeat.interfaces", "an empty list captures nothing")
        return [dataclasses.asdict(build(InterfaceConfig, v, "packetbeat.interfaces[%d]" % i))
                for i, v in enumerate(value)]
    raise ConfigError("packetbeat.interfaces", "expected a mapping or a list of mappings")


def _protocols(value, registry) -> list[dict]:
    if value is None:
        return []
    entries: list[tuple[str, dict]] = []
    if isinstance(value, dict):           # 5.x map form
        for name, opts in value.items():
            if opts is None:
                opts = {}
            if not isinstance(opts, dict):
                raise ConfigError("packetbeat.protocols.%s" % name, "expected a mapping")
            entries.append(("packetbeat.protocols.%s" % name, dict(opts, type=name)))
    elif isinstance(value, list):
        for i, opts in enumerate(value):
            if not isinstance(opts, dict):
                raise ConfigError("packetbeat.protocols[%d]" % i, "expected a mapping with a type")
            entries.append(("packetbeat.protocols[%d]" % i, opts))
    else:
        raise ConfigError("packetbeat.protocols", "expected a list of '- type: NAME' entries")

    out: list[dict] = []
    claimed: dict[tuple[str, int], str] = {}
    seen_types: dict[str, str] = {}
    for path, opts in entries:
        name = opts.get("type")
        if not isinstance(name, str):
            raise ConfigError(path + ".type", "missing protocol type")
        spec = registry.get(name)
        if spec is None:
            raise ConfigError(path + ".type", "unknown protocol %r (known: %s)" % (name, ", ".join(registry.names())))
        cfg = build(spec.config_class, opts, path, ignore=("type",))
        if not cfg.enabled:
            continue
        if name in seen_types:
            raise ConfigError(path, "protocol %s is already configured at %s" % (name, seen_types[name]))
        seen_types[name] = path
        for port in cfg.ports:
            if not 0 < port < 65536:
                raise ConfigError(path + ".ports", "port %r out of range" % port)
            for tr in spec.transports:
                other = claimed.get((tr, port))
                if other is not None:
                    raise ConfigError(path + ".ports", "port %d/%s is already used by %s" % (port, tr, other))
                claimed[(tr, port)] = "%s (%s)" % (name, path)
        entry = json.loads(json.dumps({k: v for k, v in opts.items()}, default=str))
        entry["type"] = name
        out.append(entry)
    return out


_OUTPUTS = {"console", "file", "elasticsearch", "redis"}


def _output_class(name: str):
    """The one schema of each output, kept beside the output's code."""
    if name == "console":
        from coordinator.publisher.outputs import ConsoleConfig
        return ConsoleConfig
    if name == "file":
        from coordinator.publisher.outputs import FileConfig
        return FileConfig
    if name == "redis":
        from coordinator.publisher.redis_out import RedisConfig
        return RedisConfig
    if name == "elasticsearch":
        from coordinator.publisher.elasticsearch import ElasticsearchConfig
        return ElasticsearchConfig
    return None


def _output(value) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError("output", "expected a mapping")
    enabled = []
    result = {}
    for name, opts in value.items():
        path = "output.%s" % name
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise ConfigError(path, "expected a mapping")
        on = opts.get("enabled", True)
        if not isinstance(on, bool):
            raise ConfigError(path + ".enabled", "expected true or false")
        cls = _output_class(name)
        if cls is not None:
            cfg = build(cls, opts, path)
            if on:
                enabled.append(name)
                result = {name: dataclasses.asdict(cfg)}
        elif name in _OUTPUTS_LATER:
            if on:
                raise ConfigError(path, "the %s output is not available in this version; "
                                        "use output.file or output.console (or set %s.enabled: false)" % (name, path))
        else:
            raise ConfigError(path, "unknown output (known: %s)" % ", ".join(sorted(_OUTPUTS | _OUTPUTS_LATER)))
    if len(enabled) > 1:
        raise ConfigError("output", "exactly one output may be enabled, found: %s" % ", ".join(enabled))
    if not enabled:
        raise ConfigError("output", "no output is enabled (configure output.file or output.console)")
    return result
