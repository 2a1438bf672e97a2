"""``packetbeat setup``, ``export template``, ``export ilm-policy`` and ``test output``.

The index template maps the fields this project emits with their ECS types
(dates, ips, longs, keywords); any other string becomes a ``keyword``
(``ignore_above: 1024``) through a dynamic template, and the raw
``request``/``response`` texts are ``text`` (not aggregatable). The template
applies to the indices the configured ``index`` option produces (its
``%{...}`` parts become ``*``) and names the ILM policy, whose only phase
deletes an index 30 days after creation (indices are dated, so no rollover).
"""
from __future__ import annotations

import re

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
    "dns.question.name": _KW, "dns.question.type": _KW, "dns.question.class": _KW,
    "dns.question.etld_plus_one": _KW, "dns.answers_count": _LONG, "dns.authorities_count": _LONG,
    "dns.additionals_count": _LONG, "dns.resolved_ip": _IP,
    "mysql.affected_rows": _LONG, "mysql.insert_id": _LONG, "mysql.num_fields": _LONG,
    "mysql.num_rows": _LONG, "mysql.error_code": _LONG, "mysql.error_message": _TEXT,
    "pgsql.error_code": _KW, "pgsql.error_message": _TEXT, "pgsql.error_severity": _KW,
    "pgsql.num_fields": _LONG, "pgsql.num_rows": _LONG,
    "redis.return_value": _KW, "redis.error": _KW,
    "memcache.request.command": _KW, "memcache.response.status": _KW,
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


def index_template(index: str, version: str = VERSION) -> dict:
    return {
        "index_patterns": [index_pattern(index)],
        "priority": 150,
        "template": {
            "settings": {"index": {"lifecycle": {"name": POLICY_NAME}, "refresh_interval": "5s",
                                   "number_of_shards": 1, "max_docvalue_fields_search": 200}},
            "mappings": mappings(),
        },
        "_meta": {"description": "packetbeat-py %s index template" % version, "managed_by": "packetbeat"},
    }


def ilm_policy() -> dict:
    return {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {}},
                                  "delete": {"min_age": "30d", "actions": {"delete": {}}}}}}


def template_name(version: str = VERSION) -> str:
    return "packetbeat-%s" % version


def setup(client, index: str, out=print) -> None:
    """Install the ILM policy and the index template through ``client``."""
    client.ilm.put_lifecycle(name=POLICY_NAME, policy=ilm_policy()["policy"])
    out("ILM policy %s installed" % POLICY_NAME)
    body = index_template(index)
    client.indices.put_index_template(name=template_name(), **body)
    out("Index template %s installed for %s" % (template_name(), body["index_patterns"][0]))


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
            out("  talk to server... ERROR %s" % e)
            ok = False
            continue
        finally:
            client.close()
        out("  talk to server... OK")
        out("  version: %s" % resp["version"]["number"])
    return ok


def main(cmd: list[str], settings) -> int:
    """The CLI sub-commands; settings.output must be elasticsearch except for exports."""
    import json
    import sys

    from coordinator.publisher.elasticsearch import DEFAULT_INDEX, ElasticsearchConfig, make_client
    from shared.confutil import ConfigError, build
    raw = settings.output.get("elasticsearch")
    index = (raw or {}).get("index") or DEFAULT_INDEX
    if cmd == ["export", "template"]:
        sys.stdout.write(json.dumps(index_template(index), indent=2) + "\n")
        return 0
    if cmd == ["export", "ilm-policy"]:
        sys.stdout.write(json.dumps(ilm_policy(), indent=2) + "\n")
        return 0
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
    client = make_client(cfg)
    try:
        setup(client, cfg.index)
    except Exception as e:      # noqa: BLE001 - connection, auth, API errors: all end the command
        sys.stderr.write("Exiting: setup failed: %s\n" % e)
        return 1
    finally:
        client.close()
    return 0
