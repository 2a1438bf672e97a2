"""deploy/kibana: the NDJSON saved objects are what build.py makes, parse, resolve their
references, and use only fields of the index template that our real events carry.
Also: the strict Kibana test server refuses what Kibana would refuse."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from coordinator import kibana
from coordinator.setup import FIELDS
from tests.helpers import PCAPS, ROOT, run_packetbeat
from worker.protos.registry import load_registry
from tests.kibanaserver import KibanaServer

KIBANA_DIR = ROOT / "deploy" / "kibana"
FILES = sorted(KIBANA_DIR.glob("*.ndjson"))
RECORDS = "___records___"


def objects_of(path):
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), "%s:%d is empty" % (path.name, n)
        obj = json.loads(line)
        assert isinstance(obj, dict)
        out.append(obj)
    return out


ALL = {f.name: objects_of(f) for f in FILES}


# protocols whose dashboard is a module of deploy/kibana/protos/: (name, protocol entry
# with the analyser's default ports); each has a real capture tests/golden/pcaps/<name>_real.pcap
# ports their real captures use beside the defaults (a non-default TLS port, the CQL responder)
CAPTURE_PORTS = {"tls": [14430], "cassandra": [19042, 19043], "mongodb": [27117], "thrift": [19090, 19091, 19092, 19093, 19094, 19095, 19096, 19097]}
# options their real captures need (the Thrift capture's IDL names services and fields)
CAPTURE_OPTIONS = {"thrift": {"idl_files": [str(ROOT / "tests" / "golden" / "gen" / "thrift_idl" / "store.thrift")]}}
ADDED = [(p.stem, {"type": p.stem, "ports": list(load_registry(False).get(p.stem).config_class().ports)
                   + CAPTURE_PORTS.get(p.stem, []), **CAPTURE_OPTIONS.get(p.stem, {})})
         for p in sorted((KIBANA_DIR / "protos").glob("*.py"))]


def test_files_are_what_build_py_makes():
    assert [f.name for f in FILES] == sorted("packetbeat-%s.ndjson" % n for n in
                                             ("overview", "http", "dns", "mysql", "pgsql", "redis", "flows")
                                             + tuple(n for n, _ in ADDED))
    p = subprocess.run([sys.executable, str(KIBANA_DIR / "build.py"), "--check"], capture_output=True, text=True,
                       cwd=str(ROOT))
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("name", sorted(ALL))
def test_objects_parse_ids_unique_references_resolve(name):
    objs = ALL[name]
    keys = [(o["type"], o["id"]) for o in objs]
    assert len(keys) == len(set(keys)), "duplicate ids in %s" % name
    assert objs[0]["type"] == "index-pattern" and objs[-1]["type"] == "dashboard"
    assert sum(o["type"] == "dashboard" for o in objs) == 1
    view = objs[0]["attributes"]
    assert view["title"] == "packetbeat-*" and view["timeFieldName"] == "@timestamp"
    view_fields = {f["name"]: f for f in json.loads(view["fields"])}
    versions = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.6.0", "dashboard": "8.7.0"}
    for o in objs:
        assert o["coreMigrationVersion"] == "8.8.0" and o["typeMigrationVersion"] == versions[o["type"]]
        assert o["attributes"].get("title")
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in keys, "%s %s: unresolved reference %r" % (o["type"], o["id"], ref)
        refnames = {r["name"]: r for r in o["references"]}
        if o["type"] == "lens":
            state = o["attributes"]["state"]
            assert o["attributes"]["visualizationType"] in ("lnsXY", "lnsMetric", "lnsPie", "lnsDatatable")
            for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
                assert refnames["indexpattern-datasource-layer-" + layer_id]["type"] == "index-pattern"
                assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
                for col in layer["columns"].values():
                    src = col["sourceField"]
                    if src != RECORDS:
                        assert src in view_fields, src
                        assert view_fields[src]["aggregatable"], "%s is not aggregatable" % src
        elif o["type"] == "search":
            source = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert source["indexRefName"] in refnames
            for c in o["attributes"]["columns"]:
                assert c in view_fields
        elif o["type"] == "dashboard":
            panels = json.loads(o["attributes"]["panelsJSON"])
            json.loads(o["attributes"]["optionsJSON"])
            json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert len(panels) == len(o["references"]) >= 5
            for p in panels:
                ref = refnames["%s:%s" % (p["panelIndex"], p["panelRefName"])]
                assert ref["type"] == p["type"]
                assert 0 <= p["gridData"]["x"] and p["gridData"]["x"] + p["gridData"]["w"] <= 48
            shown = {r["id"] for r in o["references"]}
            assert shown == {k[1] for k in keys if k[0] in ("lens", "search")}, "objects not on the dashboard"


# --- fields -------------------------------------------------------------------

_COND = re.compile(r"^(not\s+)?([a-z_@][\w.@]*)\s*(:|>=|<=|>|<)\s*([\w.-]+)$")


def kql(query: str):
    """A predicate over events for the KQL subset the objects use: field:value, field >= n,
    not, and, or, parentheses."""
    tokens = re.findall(r"\(|\)|[^\s()]+(?:\s*(?:>=|<=|>|<)\s*[^\s()]+)?", query)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr():
        left = term()
        while peek() == "or":
            take()
            right = term()
            left = (lambda a, b: lambda e: a(e) or b(e))(left, right)
        return left

    def term():
        left = factor()
        while peek() == "and":
            take()
            right = factor()
            left = (lambda a, b: lambda e: a(e) and b(e))(left, right)
        return left

    def factor():
        tok = take()
        if tok == "not":
            inner = factor()
            return lambda e: not inner(e)
        if tok == "(":
            inner = expr()
            assert take() == ")"
            return inner
        m = re.match(r"^([a-z_@][\w.@]*)\s*(:|>=|<=|>|<)\s*([\w.-]+)$", tok)
        if m is None and ":" in tok:
            m = re.match(r"^([a-z_@][\w.@]*)(:)([\w.-]+)$", tok)
        assert m, "unsupported KQL %r in %r" % (tok, query)
        field, op, value = m.groups()
        FIELDS_IN_QUERIES.add(field)

        def pred(e):
            v = get(e, field)
            vals = v if isinstance(v, list) else [v]
            for x in vals:
                if x is None:
                    continue
                if op == ":":
                    if str(x).lower() == value.lower():
                        return True
                elif isinstance(x, (int, float)):
                    n = float(value)
                    if {">=": x >= n, "<=": x <= n, ">": x > n, "<": x < n}[op]:
                        return True
            return False
        return pred

    if not query.strip():
        return lambda e: True
    fn = expr()
    assert pos == len(tokens), "trailing tokens in %r" % query
    return fn


FIELDS_IN_QUERIES: set[str] = set()


def get(event, dotted):
    node = event
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.fixture(scope="module")
def real_events(tmp_path_factory):
    """Our pipeline's events from the project's real-server captures, flows on."""
    protos = [{"type": "http", "ports": [80, 8080, 8000]}, {"type": "dns", "ports": [53, 10053]},
              {"type": "mysql", "ports": [3306]}, {"type": "pgsql", "ports": [5432]},
              {"type": "redis", "ports": [6379]}] + [entry for _, entry in ADDED]
    events = []
    for name in ("http_real", "dns_real", "mysql_real", "pgsql_real", "redis_real") + tuple(n + "_real" for n, _ in ADDED):
        proc, evs = run_packetbeat(tmp_path_factory.mktemp(name), PCAPS / (name + ".pcap"), protocols=protos,
                                   extra_cfg={"packetbeat.flows": {"enabled": True, "period": "-1s"}}, workers=1)
        assert proc.returncode == 0, proc.stderr[-2000:]
        events += evs
    assert {e["type"] for e in events} >= {"http", "dns", "mysql", "pgsql", "redis", "flow"}
    return events


def _queries(o):
    if o["type"] == "lens":
        return o["attributes"]["state"]["query"]["query"]
    return json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]


def test_every_field_is_mapped_and_carried_by_real_events(real_events):
    """Each Lens column / search column / KQL field is in the index template and in a real
    event that the object's own query selects; every query selects some real events."""
    checked = set()
    for name, objs in ALL.items():
        view_fields = {f["name"]: f for f in json.loads(objs[0]["attributes"]["fields"])}
        for fname, f in view_fields.items():
            assert fname in FIELDS, "%s is not in the index template" % fname
            assert f["esTypes"] == [FIELDS[fname]["type"]], fname
        for o in objs:
            if o["type"] not in ("lens", "search"):
                continue
            query = _queries(o)
            selected = [e for e in real_events if kql(query)(e)]
            assert selected, "%s %s: query %r selects none of our events" % (name, o["id"], query)
            if o["type"] == "lens":
                layers = o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
                fields = {c["sourceField"] for layer in layers for c in layer["columns"].values()} - {RECORDS}
            else:
                fields = set(o["attributes"]["columns"]) - {"error.message"}  # only on failed transactions
            for field in fields:
                assert field in FIELDS, "%s: %s is not in the index template" % (o["id"], field)
                assert any(get(e, field) is not None for e in selected), \
                    "%s: no event selected by %r carries %s" % (o["id"], query, field)
                checked.add(field)
    for field in FIELDS_IN_QUERIES:
        assert field in FIELDS, "query field %s is not in the index template" % field
        assert any(get(e, field) is not None for e in real_events), field
    assert "error.message" in FIELDS and any(get(e, "error.message") for e in real_events)
    assert len(checked) >= 20


def test_fields_are_in_the_shipped_index_template():
    """deploy/elasticsearch/index-template.json (what `export template` writes) maps them with the same type."""
    tpl = json.loads((ROOT / "deploy" / "elasticsearch" / "index-template.json").read_text())
    props = tpl["template"]["mappings"]["properties"]
    for objs in ALL.values():
        for f in json.loads(objs[0]["attributes"]["fields"]):
            node = {"properties": props}
            for part in f["name"].split("."):
                node = node["properties"][part]
            assert [node["type"]] == f["esTypes"], f["name"]


def test_lens_operations_fit_the_field_types():
    numeric = {"sum", "average", "median", "percentile", "max", "min"}
    for objs in ALL.values():
        for o in objs:
            if o["type"] != "lens":
                continue
            for layer in o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
                for col in layer["columns"].values():
                    src = col["sourceField"]
                    es_type = FIELDS[src]["type"] if src != RECORDS else None
                    if col["operationType"] in numeric:
                        assert es_type == "long", "%s on %s (%s)" % (col["operationType"], src, es_type)
                    if col["operationType"] == "terms":
                        assert es_type in ("keyword", "long", "ip", "boolean"), src
                        assert col["dataType"] == {"long": "number", "ip": "ip", "boolean": "boolean"}.get(
                            es_type, "string"), src
                    if col["operationType"] == "date_histogram":
                        assert es_type == "date"


# --- the test server is strict --------------------------------------------------

def _import(kb, lines, filename="x.ndjson", xsrf=True):
    import http.client
    ctype, body = kibana.multipart(filename, "".join(json.dumps(o) + "\n" for o in lines).encode())
    conn = http.client.HTTPConnection("127.0.0.1", kb.port, timeout=10)
    headers = {"Content-Type": ctype}
    if xsrf:
        headers["kbn-xsrf"] = "t"
    conn.request("POST", "/api/saved_objects/_import?overwrite=true", body=body, headers=headers)
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def test_server_imports_every_file_and_refuses_broken_objects():
    objs = ALL["packetbeat-http.ndjson"]
    with KibanaServer() as kb:
        status, body = _import(kb, objs, xsrf=False)
        assert status == 400 and "kbn-xsrf" in body["message"]
        status, body = _import(kb, objs, filename="x.json")
        assert status == 400
        # a dashboard alone: its panels' references are missing
        status, body = _import(kb, [objs[-1]])
        assert status == 200 and body["success"] is False
        assert body["errors"][0]["error"]["type"] == "missing_references"
        # a Lens column on a field the data view lacks; a panelRefName that does not resolve
        lens = json.loads(json.dumps(next(o for o in objs if o["type"] == "lens")))
        layer = next(iter(lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()))
        col = next(c for c in layer["columns"].values() if c["sourceField"] != RECORDS)
        col["sourceField"] = "no.such.field"
        dash = json.loads(json.dumps(objs[-1]))
        panels = json.loads(dash["attributes"]["panelsJSON"])
        panels[0]["panelRefName"] = "panel_nope"
        dash["attributes"]["panelsJSON"] = json.dumps(panels)
        status, body = _import(kb, [lens if o["id"] == lens["id"] else dash if o["id"] == dash["id"] else o
                                    for o in objs])
        errs = {e["id"]: e["error"] for e in body["errors"]}
        assert "no.such.field" in errs[lens["id"]]["message"]
        assert "panel_nope" in errs[dash["id"]]["message"]
        # the real file: every object imported
        status, body = _import(kb, objs)
        assert status == 200 and body["success"] is True and body["successCount"] == len(objs)
        assert len(kb.objects()) == len(objs)


def test_multipart_and_prepare():
    ctype, body = kibana.multipart("a.ndjson", b'{"x":1}\n', boundary="B")
    assert ctype == "multipart/form-data; boundary=B"
    assert body == (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.ndjson"\r\n'
                    b'Content-Type: application/ndjson\r\n\r\n{"x":1}\n\r\n--B--\r\n')
    data = (KIBANA_DIR / "packetbeat-dns.ndjson").read_bytes()
    out = [json.loads(line) for line in kibana.prepare(data, "pb-*").decode().splitlines()]
    assert out[0]["type"] == "index-pattern" and out[0]["attributes"]["title"] == "pb-*"
    assert out[1:] == [json.loads(line) for line in data.decode().splitlines()][1:]
    assert kibana.prepare(data, "") == data


def test_base_url_and_versions():
    kc = kibana.KibanaConfig
    assert kibana.base_url(kc()) == "http://localhost:5601"
    assert kibana.base_url(kc(host="https://kb.example:443/", path="/kibana")) == "https://kb.example:443/kibana"
    assert kibana.base_url(kc(host="kb:8080/base", protocol="https")) == "https://kb:8080/base"
    assert kibana.parse_version("8.15.0-SNAPSHOT") == (8, 15)
    with pytest.raises(kibana.KibanaError):
        kibana.parse_version("abc")
