"""``packetbeat setup``, ``export template``, ``export ilm-policy`` and ``test output``.

The index template maps the fields this project emits with their ECS types
(dates, ips, longs, keywords); any other string becomes a ``keyword``
(``ignore_above: 1024``) through a dynamic template, and the raw
``request``/``response`` texts are ``text`` (not aggregatable).

Three ways of writing, chosen from ``output.elasticsearch.index`` and
``setup.ilm`` (:func:`plan`), as libbeat does:

- ``dated`` (any index with a ``%{+...}`` date, e.g. the 7.x default
  ``packetbeat-%{[agent.version]}-%{+yyyy.MM.dd}``): plain daily indices; the template's
  pattern is the index with its ``%{...}`` parts as ``*``; the ILM policy
  deletes an index 30 days after creation (no rollover: indices are dated).
- ``data_stream`` (an index without a date: the default, Packetbeat 8.x's
  ``packetbeat-%{[agent.version]}``): the template has ``data_stream: {}``,
  Elasticsearch creates the stream at the first write (backing indices
  ``.ds-<name>-<date>-000001``); the policy rolls over (50 GB primary shard
  or 30 days, libbeat's default policy). Writes are ``create`` with an
  ``@timestamp``, which every event has.
- ``alias`` (``setup.ilm.rollover_alias`` set, libbeat 7.x style): the template
  matches ``<alias>-*`` and names the policy and the rollover alias; setup
  creates the bootstrap index ``<alias>-{now/d}-000001`` (``setup.ilm.pattern``)
  holding the alias as its write index, and the output writes to the alias
  (the ``index`` option is then not used).

``setup.ilm.enabled: false`` installs no policy and no lifecycle setting;
``setup.template.enabled: false`` no template. An existing policy/template is
kept unless ``setup.ilm.overwrite`` / ``setup.template.overwrite``; an
existing alias is always kept.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from shared.confutil import ConfigError, build
from shared.version import VERSION

POLICY_NAME = "packetbeat"

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_IP = {"type": "ip"}
_DATE = {"type": "date"}
_TEXT = {"type": "text"}

# dotted field -> mapping (what the workers and the publisher emit)
FIELDS: dict[str, dict] = {
    "@timestamp": _DATE,
    "type": _KW, "status": _KW, "method": _KW, "query": _KW, "resource": _KW, "path": _KW,
    "request": _TEXT, "response": _TEXT, "notes": _KW, "tags": _KW, "error.message": _TEXT,
    "event.kind": _KW, "event.category": _KW, "event.type": _KW, "event.dataset": _KW,
    "event.action": _KW, "event.outcome": _KW, "event.duration": _LONG,
    "event.start": _DATE, "event.end": _DATE,
    "network.transport": _KW, "network.type": _KW, "network.protocol": _KW,
    "network.direction": _KW, "network.bytes": _LONG, "network.packets": _LONG,
    "network.community_id": _KW, "related.ip": _IP, "related.hosts": _KW,
    "agent.name": _KW, "agent.hostname": _KW, "agent.version": _KW, "agent.type": _KW,
    "agent.id": _KW, "agent.ephemeral_id": _KW, "host.name": _KW, "ecs.version": _KW,
    "flow.id": _KW, "flow.final": {"type": "boolean"},
    "url.full": _KW, "url.path": _KW, "url.query": _KW, "url.domain": _KW, "url.port": _LONG,
    "url.scheme": _KW, "url.original": _KW, "user_agent.original": _KW,
    "http.version": _KW, "http.request.method": _KW, "http.request.bytes": _LONG,
    "http.request.body.bytes": _LONG, "http.request.mime_type": _KW, "http.request.referrer": _KW,
    "http.response.status_code": _LONG, "http.response.status_phrase": _KW,
    "http.response.bytes": _LONG, "http.response.body.bytes": _LONG, "http.response.mime_type": _KW,
    "dns.id": _LONG, "dns.op_code": _KW, "dns.response_code": _KW, "dns.flags.authoritative": {"type": "boolean"},
    "dns.flags.authentic_data": {"type": "boolean"}, "dns.flags.checking_disabled": {"type": "boolean"},
    "dns.flags.recursion_available": {"type": "boolean"}, "dns.flags.recursion_desired": {"type": "boolean"},
    "dns.flags.truncated_response": {"type": "boolean"}, "dns.opt.do": {"type": "boolean"},
    "dns.opt.udp_size": _LONG, "dns.opt.version": _KW, "dns.opt.ext_rcode": _KW,
    # ECS dns.answers: an array of objects (name, type, class, ttl, data); authorities and
    # additionals have the same shape
    "dns.answers.name": _KW, "dns.answers.type": _KW, "dns.answers.class": _KW, "dns.answers.ttl": _LONG,
    "dns.answers.data": _KW, "dns.authorities.name": _KW, "dns.authorities.type": _KW,
    "dns.authorities.class": _KW, "dns.authorities.ttl": _LONG, "dns.authorities.data": _KW,
    "dns.additionals.name": _KW, "dns.additionals.type": _KW, "dns.additionals.class": _KW,
    "dns.additionals.ttl": _LONG, "dns.additionals.data": _KW,
    "dns.question.name": _KW, "dns.question.type": _KW, "dns.question.class": _KW,
    "dns.question.etld_plus_one": _KW, "dns.answers_count": _LONG, "dns.authorities_count": _LONG,
    "dns.additionals_count": _LONG, "dns.resolved_ip": _IP,
    "mysql.affected_rows": _LONG, "mysql.insert_id": _LONG, "mysql.num_fields": _LONG,
    "mysql.num_rows": _LONG, "mysql.error_code": _LONG, "mysql.error_message": _TEXT,
    "pgsql.error_code": _KW, "pgsql.error_message": _TEXT, "pgsql.error_severity": _KW,
    "pgsql.num_fields": _LONG, "pgsql.num_rows": _LONG,
    "redis.return_value": _KW, "redis.error": _KW,
    "memcache.request.command": _KW, "memcache.response.status": _KW,
    **{"memcache.%s.%s" % (side, f): _LONG for side in ("request", "response")
       for f in ("bytes", "cas_unique", "count_values", "flags", "opaque", "opcode_value")},
    **{"memcache.request.%s" % f: _LONG for f in ("delta", "exptime", "initial", "vbucket", "verbosity",
                                                   "sleep_us")},
    "memcache.request.noreply": {"type": "boolean"}, "memcache.request.quiet": {"type": "boolean"},
    "memcache.response.status_code": _LONG, "memcache.response.value": _LONG,
    # STAT name/value pairs: any names
    "memcache.response.stats": {"type": "flattened"},
    "flow.vlan": _LONG,
    "icmp.version": _LONG, "icmp.request.type": _LONG, "icmp.request.code": _LONG,
    "icmp.response.type": _LONG, "icmp.response.code": _LONG,
}
for _side in ("source", "destination", "client", "server"):
    FIELDS.update({
        "%s.ip" % _side: _IP, "%s.port" % _side: _LONG, "%s.bytes" % _side: _LONG,
        "%s.packets" % _side: _LONG, "%s.domain" % _side: _KW, "%s.mac" % _side: _KW,
        "%s.process.name" % _side: _KW, "%s.process.pid" % _side: _LONG,
        "%s.process.executable" % _side: _KW, "%s.process.args" % _side: _KW,
        "%s.process.start" % _side: _DATE, "%s.process.working_directory" % _side: _KW,
    })


def _protocol_fields() -> dict[str, dict]:
    """Mappings the analysers declare themselves: ``worker/protos/<name>/fields.py``
    with ``FIELDS = {dotted name: mapping}`` (mapping dicts such as
    ``{"type": "keyword", "ignore_above": 1024}``), for every analyser listed in the
    registry (built-in, or still pending) that has one."""
    import importlib
    from worker.protos.pending import PENDING
    from worker.protos.registry import BUILTIN
    out: dict[str, dict] = {}
    for name in sorted(set(BUILTIN) | set(PENDING)):
        module = BUILTIN.get(name, "worker.protos.%s:" % name).partition(":")[0] + ".fields"
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module.startswith(exc.name):
                continue
            raise
        out.update(mod.FIELDS)
    return out


FIELDS.update(_protocol_fields())


def mappings() -> dict:
    """The ``mappings`` object: nested properties from FIELDS, plus dynamic templates."""
    props: dict = {}
    for dotted, mapping in sorted(FIELDS.items()):
        node = props
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {"properties": {}})["properties"]
        node[parts[-1]] = dict(mapping)
    return {
        "dynamic_templates": [{"http_headers": {"path_match": "http.*.headers.*", "mapping": dict(_KW)}},
                              {"strings_as_keyword": {"match_mapping_type": "string",
                                                      "mapping": dict(_KW)}}],
        "date_detection": False,
        "properties": props,
    }


def index_pattern(index: str) -> str:
    """The indices an ``index`` format produces, as a pattern: ``%{...}`` -> ``*``."""
    return re.sub(r"(%\{[^}]*\})+", "*", index).lower()


# --- setup.ilm / setup.template ------------------------------------------------

_VERSION_REF = "%{[agent.version]}"


@dataclasses.dataclass
class IlmConfig:
    enabled: bool = True
    policy_name: str = POLICY_NAME
    rollover_alias: str = ""            # set: write-alias mode (libbeat 7.x style)
    pattern: str = "{now/d}-000001"     # bootstrap index suffix (date math allowed)
    overwrite: bool = False
    check_exists: bool = True

    def validate(self, path: str) -> None:
        if not self.policy_name:
            raise ConfigError(path + ".policy_name", "must not be empty")
        if self.rollover_alias:
            if not self.enabled:
                raise ConfigError(path + ".rollover_alias", "needs setup.ilm.enabled: true")
            rest = self.rollover_alias.replace(_VERSION_REF, "")
            if "%{" in rest:
                raise ConfigError(path + ".rollover_alias", "only %s may be used in the alias, got %r"
                                  % (_VERSION_REF, self.rollover_alias))
            if rest != rest.lower() or any(c in rest for c in ' "*\\<|,>/?#:') or rest.startswith(("_", "-", "+")):
                raise ConfigError(path + ".rollover_alias", "not a valid lowercase alias name: %r"
                                  % self.rollover_alias)
        if not (re.fullmatch(r"(\{now[^{}]*(\{[^{}]*\})?\}|[a-z0-9._-])*", self.pattern)
                and re.search(r"(^|-)\d+$", self.pattern)):
            raise ConfigError(path + ".pattern", "lowercase letters, digits, . _ - and {now...} date math, "
                              "ending with a number (rollover counts it up), got %r" % self.pattern)


@dataclasses.dataclass
class TemplateConfig:
    enabled: bool = True
    name: str = ""                      # default packetbeat-<version>
    pattern: str = ""                   # default from the index (or <alias>-*)
    overwrite: bool = False
    priority: int = 150
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)   # {"index": {...}} merged in

    def validate(self, path: str) -> None:
        if self.name and (self.name != self.name.lower() or " " in self.name):
            raise ConfigError(path + ".name", "must be a lowercase name without spaces, got %r" % self.name)
        if self.pattern and self.pattern != self.pattern.lower():
            raise ConfigError(path + ".pattern", "index patterns are lowercase, got %r" % self.pattern)
        if self.priority < 0:
            raise ConfigError(path + ".priority", "must not be negative")
        if self.settings and not isinstance(self.settings.get("index", {}), dict):
            raise ConfigError(path + ".settings.index", "expected a mapping")


def setup_configs(setup_raw) -> tuple[IlmConfig, TemplateConfig]:
    """``setup.ilm`` and ``setup.template`` checked (ConfigError naming the key);
    other ``setup.*`` keys (kibana, dashboards) are not looked at here."""
    setup_raw = setup_raw or {}
    if not isinstance(setup_raw, dict):
        raise ConfigError("setup", "expected a mapping")
    ilm = build(IlmConfig, dict(setup_raw.get("ilm") or {}), "setup.ilm")
    tpl = build(TemplateConfig, dict(setup_raw.get("template") or {}), "setup.template")
    return ilm, tpl


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``setup`` installs and where the output writes."""
    mode: str                   # dated | data_stream | alias
    write_index: str            # the output's index option (alias mode: the alias)
    template_name: str
    template_pattern: str
    policy_name: str | None     # None: ILM disabled
    alias: str = ""
    bootstrap: str = ""         # alias mode: the first index, e.g. <pb-{now/d}-000001>


def plan(index: str, ilm: IlmConfig | None = None, tpl: TemplateConfig | None = None,
         version: str = VERSION) -> Plan:
    ilm = ilm or IlmConfig()
    tpl = tpl or TemplateConfig()
    policy = ilm.policy_name if ilm.enabled else None
    name = tpl.name or template_name(version)
    if ilm.enabled and ilm.rollover_alias:
        alias = ilm.rollover_alias.replace(_VERSION_REF, version).lower()
        boot = "%s-%s" % (alias, ilm.pattern)
        if "{" in boot:
            boot = "<%s>" % boot                     # date math, resolved by Elasticsearch
        return Plan("alias", alias, name, tpl.pattern or alias + "-*", policy, alias, boot)
    mode = "dated" if "%{+" in index else "data_stream"
    # the version resolved, as libbeat (packetbeat-8.x.y): templates of two versions never overlap
    return Plan(mode, index, name, tpl.pattern or index_pattern(index.replace(_VERSION_REF, version)), policy)


def write_index(index: str, setup_raw) -> str:
    """The index format the output writes to (the alias in alias mode)."""
    ilm, tpl = setup_configs(setup_raw)
    return plan(index, ilm, tpl).write_index


def index_template(index: str, version: str = VERSION, ilm: IlmConfig | None = None,
                   tpl: TemplateConfig | None = None) -> dict:
    p = plan(index, ilm, tpl, version)
    tpl = tpl or TemplateConfig()
    settings: dict = {"index": {"refresh_interval": "5s", "number_of_shards": 1,
                                "max_docvalue_fields_search": 200}}
    if p.policy_name:
        lifecycle = {"name": p.policy_name}
        if p.mode == "alias":
            lifecycle["rollover_alias"] = p.alias
        settings["index"]["lifecycle"] = lifecycle
    for k, v in (tpl.settings or {}).items():
        if k == "index":
            settings["index"].update(v)
        else:
            settings[k] = v
    body = {
        "index_patterns": [p.template_pattern],
        "priority": tpl.priority,
        "template": {"settings": settings, "mappings": mappings()},
        "_meta": {"description": "packetbeat-py %s index template" % version, "managed_by": "packetbeat"},
    }
    if p.mode == "data_stream":
        body["data_stream"] = {}
    return body


def ilm_policy(mode: str = "data_stream") -> dict:
    """Dated indices: deleted after 30 days. Data streams and aliases: libbeat's
    default policy (roll over at 50 GB per primary shard or after 30 days)."""
    if mode == "dated":
        return {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {}},
                                      "delete": {"min_age": "30d", "actions": {"delete": {}}}}}}
    return {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {
        "rollover": {"max_primary_shard_size": "50gb", "max_age": "30d"}}}}}}


def template_name(version: str = VERSION) -> str:
    return "packetbeat-%s" % version


def setup(client, index: str, out=print, ilm: IlmConfig | None = None,
          tpl: TemplateConfig | None = None) -> Plan:
    """Install the ILM policy, the index template and (alias mode) the bootstrap
    index with its write alias through ``client``; what exists is kept unless
    the matching ``overwrite`` is set."""
    from elasticsearch import NotFoundError
    ilm = ilm or IlmConfig()
    tpl = tpl or TemplateConfig()
    p = plan(index, ilm, tpl)
    if p.policy_name:
        exists = False
        if ilm.check_exists and not ilm.overwrite:
            try:
                client.ilm.get_lifecycle(name=p.policy_name)
                exists = True
            except NotFoundError:
                pass
        if exists:
            out("ILM policy %s exists already, not overwritten (setup.ilm.overwrite)" % p.policy_name)
        else:
            client.ilm.put_lifecycle(name=p.policy_name, policy=ilm_policy(p.mode)["policy"])
            out("ILM policy %s installed" % p.policy_name)
    if tpl.enabled:
        if not tpl.overwrite and client.indices.exists_index_template(name=p.template_name):
            out("Index template %s exists already, not overwritten (setup.template.overwrite)"
                % p.template_name)
        else:
            body = index_template(index, ilm=ilm, tpl=tpl)
            client.indices.put_index_template(name=p.template_name, **body)
            out("Index template %s installed for %s%s" % (p.template_name, p.template_pattern,
                                                           " (data stream)" if p.mode == "data_stream" else ""))
    if p.mode == "alias":
        if client.indices.exists_alias(name=p.alias):
            out("Write alias %s exists already" % p.alias)
        else:
            from elasticsearch import BadRequestError
            try:
                client.indices.create(index=p.bootstrap, aliases={p.alias: {"is_write_index": True}})
                out("Write alias %s created with bootstrap index %s" % (p.alias, p.bootstrap))
            except BadRequestError as e:          # created meanwhile by another beat
                if e.error != "resource_already_exists_exception":
                    raise
                out("Write alias %s exists already" % p.alias)
    return p


def ensure_function(output, setup_raw):
    """What the publisher runs when the Elasticsearch output (re)connects, as
    libbeat: the ILM policy and index template (and the write alias in alias
    mode) per ``setup.ilm`` / ``setup.template``, existing ones kept unless
    ``overwrite``; None when both are disabled. Raises RuntimeError naming the
    host and the cause (the publisher then retries with backoff)."""
    import logging
    ilm, tpl = setup_configs(setup_raw)
    if not tpl.enabled and not ilm.enabled:
        return None
    log = logging.getLogger("packetbeat.setup")
    index = output.cfg.index

    def ensure() -> None:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        from coordinator.publisher.elasticsearch import describe_error, node_url
        try:
            setup(output.client, index, out=log.info, ilm=ilm, tpl=tpl)
        except TransportError as e:
            raise RuntimeError("%s (loading the index template and ILM policy)" % describe_error(e)) from None
        except ApiError as e:
            raise RuntimeError("Elasticsearch at %s refused the index setup: %s %s" % (
                node_url(e.meta.node), e.meta.status, e.message)) from None
    return ensure


def test_output(cfg, out=print) -> bool:
    """``packetbeat test output``: talk to every host of an ElasticsearchConfig; False if any fails."""
    import dataclasses

    from coordinator.publisher.elasticsearch import _host_url, make_client
    ok = True
    for host in cfg.hosts:
        out("elasticsearch: %s..." % _host_url(host, cfg))
        client = make_client(dataclasses.replace(cfg, hosts=[host]))
        try:
            resp = client.options(request_timeout=min(10.0, float(cfg.timeout))).info()
        except Exception as e:      # noqa: BLE001 - the client raises many kinds; all are a failed check
            from elastic_transport import TransportError

            from coordinator.publisher.elasticsearch import describe_error
            out("  talk to server... ERROR %s" % (describe_error(e, _host_url(host, cfg))
                                                  if isinstance(e, TransportError) else e))
            ok = False
            continue
        finally:
            client.close()
        out("  talk to server... OK")
        out("  version: %s" % resp["version"]["number"])
    return ok


def connect(cfg, out=print):
    """A client on the first host of ``cfg`` that answers, announced with ``out``;
    RuntimeError naming every host and its cause when none does within
    ``output.elasticsearch.timeout``."""
    import dataclasses

    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from coordinator.publisher.elasticsearch import _host_url, describe_error, make_client
    errors = []
    for host in cfg.hosts:
        url = _host_url(host, cfg)
        out("Connecting to Elasticsearch at %s (giving up after %.0f s: output.elasticsearch.timeout)"
            % (url, float(cfg.timeout)))
        client = make_client(dataclasses.replace(cfg, hosts=[host]))
        try:
            info = client.info()
        except TransportError as e:
            errors.append(describe_error(e, url))
            client.close()
            continue
        except ApiError as e:
            errors.append("Elasticsearch at %s answered %s: %s" % (url, e.meta.status, e.message))
            client.close()
            continue
        out("Connected to Elasticsearch %s at %s" % (info["version"]["number"], url))
        return client
    raise RuntimeError("couldn't connect to any of the configured Elasticsearch hosts: %s" % "; ".join(errors))


def check_pipelines(client, settings, out=print) -> int:
    """``setup --pipelines``: Packetbeat ships no ingest pipeline of its own; the ones the
    configuration names (``output.elasticsearch.pipeline``, a protocol's ``pipeline``)
    must exist in Elasticsearch. The number missing (each reported)."""
    from elasticsearch import NotFoundError
    names = []
    es = settings.output.get("elasticsearch") or {}
    if es.get("pipeline"):
        names.append(("output.elasticsearch.pipeline", es["pipeline"]))
    for i, proto in enumerate(settings.protocols or []):
        if proto.get("pipeline"):
            names.append(("packetbeat.protocols[%d].pipeline" % i, proto["pipeline"]))
    if not names:
        out("Packetbeat has no ingest pipelines of its own, and the configuration names none: nothing to load")
        return 0
    missing = 0
    for key, name in names:
        if "%{" in name:
            out("Pipeline %s (%s) is a format: not checked" % (name, key))
            continue
        try:
            client.ingest.get_pipeline(id=name)
            out("Pipeline %s (%s) exists" % (name, key))
        except NotFoundError:
            out("Pipeline %s (%s) does not exist in Elasticsearch: documents sent to it are refused; "
                "create it (PUT _ingest/pipeline/%s) or remove %s" % (name, key, name, key))
            missing += 1
    return missing


def main(cmd: list[str], settings, flags: set[str] | frozenset = frozenset(), dashboard_id: str = "") -> int:
    """``setup [--index-management] [--pipelines] [--dashboards]``, ``test output``,
    ``export template | ilm-policy | index-pattern | dashboard --id ID``; exit status."""
    import json
    import sys

    from coordinator import kibana
    from coordinator.publisher.elasticsearch import DEFAULT_INDEX, ElasticsearchConfig
    raw = settings.output.get("elasticsearch")
    index = (raw or {}).get("index") or DEFAULT_INDEX
    try:
        ilm, tpl = setup_configs((settings.raw or {}).get("setup"))
    except ConfigError as e:
        sys.stderr.write("Exiting: %s\n" % e)
        return 1
    if cmd == ["export", "template"]:
        sys.stdout.write(json.dumps(index_template(index, ilm=ilm, tpl=tpl), indent=2) + "\n")
        return 0
    if cmd == ["export", "ilm-policy"]:
        sys.stdout.write(json.dumps(ilm_policy(plan(index, ilm, tpl).mode), indent=2) + "\n")
        return 0
    if cmd == ["export", "index-pattern"]:
        try:
            sys.stdout.write(json.dumps(kibana.index_pattern_object(settings), indent=2) + "\n")
        except (kibana.KibanaError, ConfigError) as e:
            sys.stderr.write("Exiting: %s\n" % e)
            return 1
        return 0
    if cmd == ["export", "dashboard"]:
        if not dashboard_id:
            sys.stderr.write("Exiting: export dashboard needs --id DASHBOARD_ID\n")
            return 1
        try:
            sys.stdout.write(kibana.export_dashboard(settings, dashboard_id))
        except (kibana.KibanaError, ConfigError) as e:
            sys.stderr.write("Exiting: exporting the dashboard failed: %s\n" % e)
            return 1
        return 0
    if cmd == ["setup"] and flags == {"dashboards"}:
        return kibana.main(settings)
    if raw is None:
        sys.stderr.write("Exiting: %s needs output.elasticsearch (the enabled output is %s)\n"
                         % (" ".join(cmd), ", ".join(settings.output)))
        return 1
    try:
        cfg = build(ElasticsearchConfig, dict(raw), "output.elasticsearch")
    except ConfigError as e:
        sys.stderr.write("Exiting: %s\n" % e)
        return 1
    if cmd == ["test", "output"]:
        return 0 if test_output(cfg) else 1
    want = set(flags) or {"index-management", "dashboards-if-configured"}
    try:
        client = connect(cfg)
    except RuntimeError as e:
        sys.stderr.write("Exiting: setup failed: %s\n" % e)
        return 1
    rc = 0
    try:
        if "index-management" in want:
            print("Loading the index template and ILM policy (setup.template, setup.ilm)")
            setup(client, cfg.index, ilm=ilm, tpl=tpl)
            print("Index setup finished.")
        if "pipelines" in want:
            rc = 1 if check_pipelines(client, settings) else rc
    except Exception as e:      # noqa: BLE001 - connection, auth, API errors: all end the command
        from elastic_transport import TransportError

        from coordinator.publisher.elasticsearch import describe_error
        sys.stderr.write("Exiting: setup failed: %s\n" % (describe_error(e) if isinstance(e, TransportError) else e))
        return 1
    finally:
        client.close()
    if "dashboards" in want or ("dashboards-if-configured" in want and
                                kibana.wanted((settings.raw or {}).get("setup"))):
        print("Loading dashboards (Kibana must be running and reachable)")
        rc = kibana.main(settings) or rc
    return rc
