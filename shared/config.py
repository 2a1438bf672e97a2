"""Load, merge and validate ``packetbeat.yml`` (Packetbeat 8.x shape).

- Keys may be dotted (``output.file.path: /tmp``) or nested, mixed freely.
- ``${VAR}`` / ``${VAR:default}`` in strings expand from the keystore
  (``packetbeat keystore``, coordinator/keystore.py), then the environment.
- ``-E key=value`` overrides (value parsed as YAML) apply after the file.
- ``packetbeat.protocols`` is a list of ``- type: X`` entries (8.x) or a map
  ``{X: {...}}`` (5.x); both become the list form.
- Unknown keys, wrong types, several enabled outputs and a port claimed by two
  protocols are :class:`ConfigError` naming the key path.

Sections whose schema lives with the code that uses them (each output's,
``setup.*``, ``queue.disk``) come in through :class:`Schemas`, which the
caller passes (``coordinator/config.py`` builds the table): nothing in
``shared/`` imports the coordinator.

``path.*`` follows Beats: ``path.home`` defaults to the working directory,
``path.config`` to the home, ``path.data`` and ``path.logs`` to ``data`` and
``logs`` under it; the loaded :attr:`Settings.path` holds all four, absolute.

The result, :class:`Settings`, is plain data (JSON-serialisable) so that the
coordinator can hand exactly the same resolved configuration to every child
process without pickling.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from shared.confutil import ConfigError, Duration, build, parse_mode
from shared.metrics import HttpConfig, MetricsConfig
# Settings and load_settings_json live in shared/settings.py: a child process loads its
# settings without building this module's section schemas (~10 ms of dataclass building)
from shared.settings import Settings, load_settings_json

__all__ = ["ConfigError", "Schemas", "Settings", "load_config", "load_settings_json"]


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
        if self.poll_default_route:
            raise ConfigError(path + ".poll_default_route", "following the default route's device is not "
                                                            "supported by this version; name the device")
        if not self.top_speed:
            raise ConfigError(path + ".top_speed", "files are always read as fast as possible in this version "
                                                   "(packet times are taken from the file); leave it true")
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
class MonitoredProcess:
    """One ``packetbeat.procs.monitored`` entry: a process is attributed when its command
    line contains ``cmdline_grep`` (default: ``process``), shared/procs.py monitored_filter."""
    process: str = ""
    cmdline_grep: str = ""

    def validate(self, path: str) -> None:
        if not (self.process or self.cmdline_grep):
            raise ConfigError(path, "process (a name) or cmdline_grep (text of the command line) is required")


@dataclass(frozen=True)
class ProcsConfig:
    enabled: bool = False
    monitored: list[MonitoredProcess] = field(default_factory=list)   # none: every process is attributed
    refresh_process_info_period: Duration = 1.0
    max_proc_read_age: Duration = 0.1


@dataclass(frozen=True)
class LoggingFilesConfig:
    """``logging.files`` (libbeat's names): a size-rotated log file per host,
    ``<path>/<name>``, rotated to ``<name>.1`` (newest) ... ``<name>.<keepfiles>``."""
    path: str = ""                      # "": path.logs
    name: str = "packetbeat"
    rotateeverybytes: int = 10 * 1024 * 1024
    keepfiles: int = 7
    permissions: int | str = 0o600
    rotateonstartup: bool = True
    interval: Duration = 0.0
    redirect_stderr: bool = False

    def validate(self, path: str) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(path + ".name", "must be a plain file name, got %r" % self.name)
        if self.rotateeverybytes < 1:
            raise ConfigError(path + ".rotateeverybytes", "must be at least 1")
        if not 2 <= self.keepfiles <= 1024:
            raise ConfigError(path + ".keepfiles", "must be between 2 and 1024, got %d" % self.keepfiles)
        object.__setattr__(self, "permissions", parse_mode(self.permissions, path + ".permissions"))
        if self.interval:
            raise ConfigError(path + ".interval", "time-based log rotation is not supported by this version; "
                                                  "use rotateeverybytes (or leave interval at 0)")
        if self.redirect_stderr:
            raise ConfigError(path + ".redirect_stderr", "not supported by this version (stderr stays "
                                                         "where it is); leave it false")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    selectors: list[str] = field(default_factory=list)
    to_stderr: bool = False
    to_files: bool = True
    to_syslog: bool = False
    to_eventlog: bool = False
    json: bool = False
    ecs: bool = True
    files: LoggingFilesConfig = field(default_factory=LoggingFilesConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def validate(self, path: str) -> None:
        if self.level not in ("debug", "info", "warning", "error", "critical"):
            raise ConfigError(path + ".level", "must be debug, info, warning, error or critical, got %r" % self.level)
        if self.to_syslog:
            raise ConfigError(path + ".to_syslog", "syslog logging is not supported by this version; use "
                                                   "to_stderr (journald collects it) or to_files")
        if self.to_eventlog:
            raise ConfigError(path + ".to_eventlog", "the Windows event log is not available on this platform")


@dataclass(frozen=True)
class PathConfig:
    """``path.*`` (Beats' layout); empty values get their defaults in :func:`resolve_paths`."""
    home: str = ""
    config: str = ""
    data: str = ""
    logs: str = ""


def resolve_paths(raw, cwd: str | None = None) -> dict:
    """``path.*`` with Beats' defaults, absolute: home = the working directory,
    config = home, data = home/data, logs = home/logs (relative values are
    relative to the working directory)."""
    pc = build(PathConfig, raw, "path")
    cwd = cwd or os.getcwd()
    home = os.path.abspath(os.path.join(cwd, pc.home)) if pc.home else cwd
    def under(v, default):
        return os.path.abspath(os.path.join(cwd, v)) if v else default
    return {"home": home, "config": under(pc.config, home), "data": under(pc.data, os.path.join(home, "data")),
            "logs": under(pc.logs, os.path.join(home, "logs"))}


@dataclass(frozen=True)
class KeystoreConfig:
    path: str = ""                      # "": <path.data>/packetbeat.keystore


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
        for name in ("workers", "captures", "batch_packets", "event_batch", "hwm",
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


# every top-level key the loader accepts; each is read by validate_tree (and the
# code named in tests/unit/test_config_schema.py), the others are refused naming the key
_TOP = {"packetbeat", "output", "logging", "cluster", "tags", "fields", "fields_under_root", "name",
        "processors", "path", "queue", "http", "setup", "keystore", "monitoring"}
_PACKETBEAT_OWN = {"ignore_outgoing", "shutdown_timeout", "overwrite_pipelines"}
_PACKETBEAT = {"interfaces", "flows", "protocols", "procs"} | _PACKETBEAT_OWN


@dataclass(frozen=True)
class PacketbeatConfig:
    """The ``packetbeat.*`` options outside its sections."""
    ignore_outgoing: bool = False       # every interface's ignore_outgoing
    shutdown_timeout: Duration = 0.0    # Settings.shutdown_timeout: bounds the drain on a stop (coordinator/supervisor.py)
    overwrite_pipelines: bool = False

    def validate(self, path: str) -> None:
        if self.shutdown_timeout < 0:
            raise ConfigError(path + ".shutdown_timeout", "must be >= 0")
        if self.overwrite_pipelines:
            raise ConfigError(path + ".overwrite_pipelines", "this version installs no ingest pipeline; "
                                                             "leave it false")
_OUTPUTS_LATER = {"logstash", "kafka", "discard"}
# Beats settings this version does not implement: refused with the reason
_NOT_HERE = {
    "seccomp": "seccomp policies are not applied by this version",
    "max_procs": "there is no Go runtime here; the parallelism is cluster.workers",
    "features": "no feature flags exist in this version",
    "instrumentation": "APM instrumentation is not available in this version",
    "xpack": "X-Pack monitoring is not available in this version",
    "ilm": "use setup.ilm",
}


@dataclass(frozen=True)
class Schemas:
    """The configuration sections whose schema lives with the code that uses them.

    ``outputs``: output name -> its config dataclass (``output.<name>``), a mapping;
    ``setup``: ``setup.<key>`` -> checker(value, path) raising ConfigError;
    ``queue``: ``queue.<key>`` -> checker(value, path);
    ``agent_id``: (beat name, host name, data path) -> the agent id (OSError / ValueError)."""
    outputs: dict
    setup: dict
    queue: dict
    agent_id: Any = None


# --------------------------------------------------------------------------
# Tree helpers
# --------------------------------------------------------------------------

# yaml (~10 ms of start-up) and the ${...} pattern only where a configuration is read: the
# children load the coordinator's resolved settings from JSON (load_settings_json) and need neither
_ENV_PATTERN = r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}"


def _expand_env(value, path: str, secrets=None):
    """``${NAME}`` / ``${NAME:default}``: from ``secrets`` (the keystore, a mapping) first,
    then the environment."""
    if isinstance(value, str):
        def sub(m):
            name, default = m.group(1), m.group(2)
            if secrets is not None and name in secrets:
                return secrets[name]
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(path, "%s is neither in the keystore nor in the environment" % name)
        if "${" not in value:
            return value
        import re
        import yaml
        env = re.compile(_ENV_PATTERN)      # re's own cache keeps it
        whole = env.fullmatch(value)
        out = env.sub(sub, value)
        return yaml.safe_load(out) if whole and out else out
    if isinstance(value, dict):
        return {k: _expand_env(v, "%s.%s" % (path, k) if path else str(k), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, "%s[%d]" % (path, i), secrets) for i, v in enumerate(value)]
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
    import yaml
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def read_yaml(path: str) -> dict:
    import yaml
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


def merged_tree(path: str | None, overrides=()) -> dict:
    """The file and the ``-E`` overrides, nested, before ``${...}`` expansion."""
    raw = read_yaml(path) if path else {}
    tree = expand_dotted(raw)
    for text in overrides:
        key, value = parse_override(text)
        tree = expand_dotted(tree)
        _set_override(tree, key, expand_dotted(value))
    return tree


def early_sections(tree: dict) -> tuple[dict, Any]:
    """What is needed before the keystore can be read: the resolved ``path.*`` and the
    ``keystore`` section (``${VAR}`` in them expand from the environment only)."""
    pre = _expand_env({k: tree[k] for k in ("path", "keystore") if k in tree}, "")
    return resolve_paths(pre.get("path")), pre.get("keystore")


def load_config(path: str | None, overrides=(), registry=None, *, schemas: Schemas, secrets=None) -> Settings:
    """``secrets``: a callable (the resolved ``path`` dict, ``keystore`` section) -> mapping
    of keystore values for ``${NAME}`` (None: the environment only)."""
    tree = merged_tree(path, overrides)
    store = None
    if secrets is not None:
        store = secrets(*early_sections(tree))
    tree = _expand_env(tree, "", store)
    return validate_tree(tree, registry, schemas=schemas)


def validate_tree(tree: dict, registry=None, *, schemas: Schemas) -> Settings:
    if registry is None:
        from worker.protos.registry import load_registry
        registry = load_registry()
    for key in tree:
        if key in _NOT_HERE:
            raise ConfigError(key, _NOT_HERE[key])
        if key not in _TOP:
            raise ConfigError(key, "unknown setting (known: %s)" % ", ".join(sorted(_TOP)))
    pb = tree.get("packetbeat") or {}
    if not isinstance(pb, dict):
        raise ConfigError("packetbeat", "expected a mapping")
    for key in pb:
        if key not in _PACKETBEAT:
            raise ConfigError("packetbeat." + key, "unknown setting (known: %s)" % ", ".join(sorted(_PACKETBEAT)))

    interfaces = _interfaces(pb.get("interfaces"))
    top = build(PacketbeatConfig, {k: v for k, v in pb.items() if k in _PACKETBEAT_OWN}, "packetbeat")
    if top.ignore_outgoing:             # Packetbeat's global switch: every interface
        for iface in interfaces:
            iface["ignore_outgoing"] = True
    flows = None
    if pb.get("flows") is not None:
        fc = build(FlowsConfig, pb["flows"], "packetbeat.flows")
        flows = dataclasses.asdict(fc) if fc.enabled else None
    procs = dataclasses.asdict(build(ProcsConfig, pb.get("procs"), "packetbeat.procs"))
    protocols = _protocols(pb.get("protocols"), registry)
    cluster = dataclasses.asdict(build(ClusterConfig, tree.get("cluster"), "cluster"))
    # a capture host (cluster.role: capture) publishes nothing: its output may be left out
    output = {} if cluster["role"] == "capture" and tree.get("output") is None else \
        _output(tree.get("output"), schemas.outputs)
    paths = resolve_paths(tree.get("path"))
    logging_cfg = dataclasses.asdict(build(LoggingConfig, tree.get("logging"), "logging"))
    if not logging_cfg["files"]["path"]:
        logging_cfg["files"]["path"] = paths["logs"]
    build(HttpConfig, tree.get("http"), "http")                 # read by shared/metrics.py (http_config)
    build(KeystoreConfig, tree.get("keystore"), "keystore")     # read before expansion (coordinator/keystore.py)
    _monitoring(tree.get("monitoring"))
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
    processors, agent = _processors(tree, protocols, flows, name, paths["data"], schemas.agent_id)
    _sections(tree, "queue", schemas.queue)
    queue = tree.get("queue") or {}
    if isinstance(queue, dict) and queue.get("mem") is not None and queue.get("disk") is not None:
        raise ConfigError("queue", "only one queue type can be configured (mem or disk)")
    _sections(tree, "setup", schemas.setup)
    return Settings(name=name, tags=tags, fields=fields, fields_under_root=fur, interfaces=interfaces,
                    flows=flows, protocols=protocols, procs=procs, output=output, logging=logging_cfg,
                    cluster=cluster, path=paths, raw=json.loads(json.dumps(tree, default=str)),
                    processors=processors, agent=agent, shutdown_timeout=float(top.shutdown_timeout))


def _monitoring(value) -> None:
    """``monitoring`` (X-Pack monitoring to a cluster) is not in this version: only
    ``monitoring.enabled: false`` (the stock configuration's value) is accepted."""
    if value is None:
        return
    if not isinstance(value, dict) or set(value) - {"enabled"} or value.get("enabled", False) is not False:
        raise ConfigError("monitoring", "monitoring to an Elasticsearch cluster is not available in this version "
                                        "(only monitoring.enabled: false); use http.enabled for the stats endpoint")


def _sections(tree: dict, top: str, checkers: dict) -> None:
    """``top.<key>`` checked by ``checkers[key]``; other keys are refused."""
    value = tree.get(top)
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigError(top, "expected a mapping")
    for key, sub in value.items():
        check = checkers.get(key)
        if check is None:
            raise ConfigError("%s.%s" % (top, key), "unknown setting (known: %s)" % ", ".join(sorted(checkers)))
        check(sub, "%s.%s" % (top, key))


def _processors(tree: dict, protocols: list[dict], flows: dict | None, name: str, data_path: str,
                agent_id) -> tuple[list, dict]:
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
    hostname = socket.gethostname()
    if agent_id is None:
        raise ConfigError("processors", "the caller gave no agent id source (Schemas.agent_id)")
    try:
        agent_id = agent_id(name or hostname, hostname, data_path)
    except (OSError, ValueError) as e:
        raise ConfigError("path.data", "cannot read or create the agent id: %s" % e) from None
    return raw, {"id": agent_id, "ephemeral_id": str(uuid.uuid4())}


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
        if not getattr(spec.config_class, "RAW_TEXT", True):
            for key in ("send_request", "send_response"):
                if getattr(cfg, key):
                    raise ConfigError("%s.%s" % (path, key), "the %s analyser publishes no raw %s text; "
                                      "its fields say what was sent" % (name, key[5:]))
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


def _output(value, classes: dict) -> dict:
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
        cls = classes.get(name)
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
            raise ConfigError(path, "unknown output (known: %s)" % ", ".join(sorted(set(classes) | _OUTPUTS_LATER)))
    if len(enabled) > 1:
        raise ConfigError("output", "exactly one output may be enabled, found: %s" % ", ".join(enabled))
    if not enabled:
        raise ConfigError("output", "no output is enabled (configure output.file or output.console)")
    return result
