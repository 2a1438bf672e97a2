"""Generate the Kibana 8 saved objects in deploy/kibana/*.ndjson.

    .venv/bin/python deploy/kibana/build.py          # rewrite the NDJSON files
    .venv/bin/python deploy/kibana/build.py --check  # exit 1 if they differ from this script's output

The objects are written here as Python (one place for ids, columns, layout) and
committed as NDJSON, the format Kibana's saved-objects import API and its UI
(Stack Management > Saved objects > Import) read. Each file is self-contained:
the data view, the saved searches and Lens visualizations, then the dashboard
that shows them (Kibana resolves references within one import).

Formats (Kibana 8.8 and later: ``coreMigrationVersion`` 8.8.0 and the
per-type ``typeMigrationVersion`` of the format each object is written in;
Kibana migrates them forward on import):

- data view (``index-pattern``, 8.0.0): ``title`` ``packetbeat-*``,
  ``timeFieldName`` ``@timestamp``; ``fields`` lists the fields the objects use,
  typed from the index template (coordinator/setup.py ``FIELDS``);
  ``fieldFormatMap`` shows ``event.duration`` (nanoseconds) as milliseconds and
  byte counters as bytes.
- saved search (``search``, 8.0.0): columns, sort, KQL query; the data view is
  the reference ``kibanaSavedObjectMeta.searchSourceJSON.index``.
- Lens (``lens``, 8.6.0: ``datasourceStates.formBased``, partition charts with
  ``primaryGroups``/``metrics``, the new ``lnsMetric``): each layer's data view
  is the reference ``indexpattern-datasource-layer-<layerId>``.
- dashboard (``dashboard``, 8.7.0): ``panelsJSON`` panels point at their
  object with ``panelRefName`` ``panel_<i>`` and the reference
  ``<i>:panel_<i>``.

Flow events are Packetbeat's: each periodic report carries the flow's totals so
far (``flow.final: false``) and the last one ``flow.final: true``; the flows
dashboard sums bytes and packets over final reports only, so each flow counts once.
"""
from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

CORE_MIGRATION = "8.8.0"
TYPE_MIGRATION = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.6.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.8.0"

DATA_VIEW_ID = "packetbeat-*"
DATA_VIEW_TITLE = "packetbeat-*"
RECORDS = "___records___"          # Lens' source field of "count of records"

# ---------------------------------------------------------------------------
# data view
# ---------------------------------------------------------------------------

_KBN_TYPE = {"keyword": "string", "text": "string", "long": "number", "ip": "ip", "date": "date",
             "boolean": "boolean"}

# shown in Discover and the data view beyond those the visualizations use
_EXTRA_FIELDS = ["event.start", "event.end", "event.category", "event.kind", "network.type",
                 "network.community_id", "source.port", "destination.port", "client.ip", "client.port",
                 "server.ip", "server.port", "related.ip", "agent.name", "agent.hostname", "agent.version",
                 "host.name", "url.full", "url.query", "user_agent.original", "http.version",
                 "http.request.bytes", "http.response.bytes", "http.response.status_phrase",
                 "dns.id", "dns.answers_count", "dns.resolved_ip", "mysql.num_rows", "mysql.affected_rows",
                 "pgsql.num_rows", "flow.id", "source.packets", "destination.packets", "source.bytes",
                 "destination.bytes", "error.message", "tags"]

_BYTES_FIELDS = ["network.bytes", "source.bytes", "destination.bytes", "client.bytes", "server.bytes",
                 "http.request.bytes", "http.response.bytes", "http.request.body.bytes",
                 "http.response.body.bytes"]


def template_fields() -> dict:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from coordinator.setup import FIELDS
    return FIELDS


def data_view(used: set[str]) -> dict:
    tf = template_fields()
    names = sorted(set(used) | set(_EXTRA_FIELDS) | {"@timestamp"})
    fields = []
    for name in names:
        es_type = tf[name]["type"]
        fields.append({"name": name, "type": _KBN_TYPE[es_type], "esTypes": [es_type], "searchable": True,
                       "aggregatable": es_type != "text", "readFromDocValues": es_type != "text",
                       "count": 0, "scripted": False})
    formats = {"event.duration": {"id": "duration", "params": {"inputFormat": "nanoseconds",
                                                               "outputFormat": "asMilliseconds",
                                                               "outputPrecision": 2}}}
    for f in _BYTES_FIELDS:
        if f in names:
            formats[f] = {"id": "bytes"}
    return _obj("index-pattern", DATA_VIEW_ID, {
        "title": DATA_VIEW_TITLE,
        "name": "packetbeat-py",
        "timeFieldName": "@timestamp",
        "allowNoIndex": True,
        "fields": json.dumps(fields, separators=(",", ":")),
        "fieldFormatMap": json.dumps(formats, separators=(",", ":")),
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "typeMeta": "{}",
    }, [])


def _obj(type_: str, id_: str, attributes: dict, references: list) -> dict:
    # no "managed" flag: Kibana before 8.10 does not know it
    return {"attributes": attributes, "coreMigrationVersion": CORE_MIGRATION, "id": id_,
            "references": references, "type": type_, "typeMigrationVersion": TYPE_MIGRATION[type_]}


# ---------------------------------------------------------------------------
# Lens columns
# ---------------------------------------------------------------------------

def c_time(label: str = "@timestamp") -> dict:
    return {"label": label, "dataType": "date", "operationType": "date_histogram", "sourceField": "@timestamp",
            "isBucketed": True, "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}}


def c_count(label: str = "Events") -> dict:
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "count",
            "sourceField": RECORDS, "isBucketed": False, "scale": "ratio", "params": {"emptyAsNull": True}}


def c_terms(field: str, order_by: str, size: int = 10, label: str = "", number: bool = False,
            other: bool = True) -> dict:
    dtype = _KBN_TYPE[template_fields()[field]["type"]]      # string, number, ip, boolean
    assert number == (dtype == "number"), field
    col = {"label": label or "Top %d values of %s" % (size, field), "dataType": dtype,
           "operationType": "terms", "sourceField": field, "isBucketed": True, "scale": "ordinal",
           "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by},
                      "orderDirection": "desc", "otherBucket": other, "missingBucket": False,
                      "parentFormat": {"id": "terms"}, "include": [], "exclude": [],
                      "includeIsRegex": False, "excludeIsRegex": False}}
    if label:
        col["customLabel"] = True
    return col


def c_metric(op: str, field: str, label: str, **params) -> dict:
    col = {"label": label, "customLabel": True, "dataType": "number", "operationType": op, "sourceField": field,
           "isBucketed": False, "scale": "ratio", "params": dict(params, emptyAsNull=True)}
    if op == "percentile":
        col["params"] = {"percentile": params["percentile"]}
    return col


# ---------------------------------------------------------------------------
# Lens visualizations
# ---------------------------------------------------------------------------

def lens(id_: str, title: str, vis_type: str, columns: dict, visualization: dict, query: str = "",
         description: str = "", layer: str = "layer1") -> dict:
    state = {
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columns": columns, "columnOrder": list(columns), "incompleteColumns": {}, "sampling": 1}}}},
        "visualization": visualization,
        "query": {"query": query, "language": "kuery"},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    refs = [{"type": "index-pattern", "id": DATA_VIEW_ID, "name": "indexpattern-datasource-layer-" + layer}]
    return _obj("lens", id_, {"title": title, "description": description, "visualizationType": vis_type,
                              "state": state}, refs)


def xy(id_, title, columns, x, accessors, split=None, series="bar_stacked", query="", description="",
       y_title=None):
    layer = {"layerId": "layer1", "layerType": "data", "seriesType": series, "xAccessor": x,
             "accessors": list(accessors), "position": "top", "showGridlines": False}
    if split:
        layer["splitAccessor"] = split
    vis = {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
           "fittingFunction": "None", "preferredSeriesType": series, "layers": [layer],
           "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True}}
    if y_title:
        vis["yTitle"] = y_title
    return lens(id_, title, "lnsXY", columns, vis, query, description)


def pie(id_, title, columns, group, metric, query="", description=""):
    vis = {"shape": "donut", "layers": [{"layerId": "layer1", "layerType": "data", "primaryGroups": [group],
                                         "metrics": [metric], "numberDisplay": "percent",
                                         "categoryDisplay": "default", "legendDisplay": "default",
                                         "nestedLegend": False}]}
    return lens(id_, title, "lnsPie", columns, vis, query, description)


def metric(id_, title, columns, accessor, query="", description=""):
    vis = {"layerId": "layer1", "layerType": "data", "metricAccessor": accessor}
    return lens(id_, title, "lnsMetric", columns, vis, query, description)


def table(id_, title, columns, query="", description=""):
    vis = {"layerId": "layer1", "layerType": "data", "columns": [{"columnId": c} for c in columns]}
    return lens(id_, title, "lnsDatatable", columns, vis, query, description)


def latency(id_, title, query, description=""):
    cols = {"t": c_time(), "p50": c_metric("percentile", "event.duration", "50th percentile", percentile=50),
            "p95": c_metric("percentile", "event.duration", "95th percentile", percentile=95),
            "p99": c_metric("percentile", "event.duration", "99th percentile", percentile=99)}
    return xy(id_, title, cols, "t", ["p50", "p95", "p99"], series="line", query=query,
              description=description or "Response time (event.duration) percentiles over time",
              y_title="Response time")


def over_time_by(id_, title, field, query, size=10, number=False, series="bar_stacked", description=""):
    cols = {"t": c_time(), "g": c_terms(field, "n", size, number=number), "n": c_count()}
    return xy(id_, title, cols, "t", ["n"], split="g", series=series, query=query, description=description)


def top_table(id_, title, field, query, size=20, latency_col=True, description="", label=""):
    cols = {"g": c_terms(field, "n", size, label=label or field, other=False), "n": c_count("Count")}
    if latency_col:
        cols["avg"] = c_metric("average", "event.duration", "Average response time")
        cols["p95"] = c_metric("percentile", "event.duration", "95th percentile response time", percentile=95)
    return table(id_, title, cols, query, description)


def share(id_, title, field, query, size=10, number=False, description=""):
    cols = {"g": c_terms(field, "n", size, number=number), "n": c_count()}
    return pie(id_, title, cols, "g", "n", query, description)


def count_metric(id_, title, query, description=""):
    return metric(id_, title, {"n": c_count(title)}, "n", query, description)


# ---------------------------------------------------------------------------
# saved searches and dashboards
# ---------------------------------------------------------------------------

def search(id_, title, query, columns, description=""):
    source = {"query": {"query": query, "language": "kuery"}, "filter": [],
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    return _obj("search", id_, {
        "title": title, "description": description, "columns": list(columns),
        "sort": [["@timestamp", "desc"]], "grid": {}, "hideChart": False, "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source, separators=(",", ":"))},
    }, [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": DATA_VIEW_ID}])


def dashboard(id_, title, description, panels, query=""):
    """panels: [(object, width, height)] laid out left to right on Kibana's 48-column grid."""
    out, refs = [], []
    x = y = row_h = 0
    for i, (obj, w, h) in enumerate(panels, 1):
        if x + w > 48:
            x, y, row_h = 0, y + row_h, 0
        idx = str(i)
        out.append({"version": PANEL_VERSION, "type": obj["type"],
                    "gridData": {"x": x, "y": y, "w": w, "h": h, "i": idx}, "panelIndex": idx,
                    "embeddableConfig": {"enhancements": {}}, "panelRefName": "panel_" + idx})
        refs.append({"name": "%s:panel_%s" % (idx, idx), "type": obj["type"], "id": obj["id"]})
        x += w
        row_h = max(row_h, h)
    source = {"query": {"query": query, "language": "kuery"}, "filter": []}
    return _obj("dashboard", id_, {
        "title": title, "description": description, "version": 1, "timeRestore": False,
        "panelsJSON": json.dumps(out, separators=(",", ":")),
        "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "syncCursor": True,
                                   "syncTooltips": False, "hidePanelTitles": False}, separators=(",", ":")),
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source, separators=(",", ":"))},
    }, refs)


P = "packetbeat-py-"
TX = "not type:flow"       # transactions (every event but flow reports)


def overview():
    objs = [
        over_time_by(P + "events-by-type", "Events over time by type", "type", "",
                     description="Events per type (http, dns, mysql, ..., flow) over time"),
        share(P + "top-protocols", "Top protocols", "network.protocol", TX,
              description="Share of transactions per application protocol"),
        count_metric(P + "transactions", "Transactions", TX),
        count_metric(P + "errors", "Transactions with errors", TX + " and not status:OK"),
        over_time_by(P + "error-rate", "Error rate (transactions by status)", "status", TX,
                     series="bar_percentage_stacked",
                     description="Share of transactions per status (OK, Error, Client Error, Server Error)"),
        latency(P + "latency", "Latency percentiles (all protocols)", TX),
        top_table(P + "latency-by-type", "Latency by protocol", "type", TX, size=10, label="Protocol"),
        search(P + "search-errors", "Packetbeat errors", TX + " and not status:OK",
               ["type", "status", "query", "client.ip", "server.ip", "error.message"],
               "Transactions whose status is not OK"),
    ]
    return objs, dashboard(P + "overview", "[Packetbeat] Overview",
                           "Events over time by type, top protocols, error rate and latency",
                           [(objs[0], 32, 14), (objs[1], 16, 14), (objs[2], 12, 8), (objs[3], 12, 8),
                            (objs[4], 24, 14), (objs[5], 24, 14), (objs[6], 24, 14), (objs[7], 48, 16)])


def http():
    q = "type:http"
    objs = [
        over_time_by(P + "http-status-codes", "HTTP status codes over time", "http.response.status_code", q,
                     number=True),
        top_table(P + "http-top-urls", "Top URLs", "url.path", q, label="URL path"),
        latency(P + "http-latency", "HTTP response time percentiles", q),
        count_metric(P + "http-errors-count", "HTTP errors (status >= 400)",
                     q + " and http.response.status_code >= 400"),
        share(P + "http-methods", "HTTP methods", "http.request.method", q),
        share(P + "http-error-codes", "HTTP error codes", "http.response.status_code",
              q + " and http.response.status_code >= 400", number=True),
        search(P + "http-search-errors", "HTTP errors", q + " and (http.response.status_code >= 400 or not status:OK)",
               ["http.request.method", "url.full", "http.response.status_code", "status", "client.ip",
                "error.message"], "HTTP responses with a 4xx/5xx code and transactions not OK"),
    ]
    return objs, dashboard(P + "http", "[Packetbeat] HTTP",
                           "HTTP status codes over time, top URLs, response time percentiles and errors",
                           [(objs[0], 32, 14), (objs[3], 16, 7), (objs[5], 16, 7), (objs[1], 24, 15),
                            (objs[2], 24, 15), (objs[4], 16, 12), (objs[6], 32, 12)], query=q)


def dns():
    q = "type:dns"
    objs = [
        top_table(P + "dns-top-questions", "Top DNS questions", "dns.question.name", q, label="Question"),
        share(P + "dns-response-codes", "DNS response codes", "dns.response_code", q),
        share(P + "dns-query-types", "DNS query types", "dns.question.type", q),
        latency(P + "dns-latency", "DNS response time percentiles", q),
        over_time_by(P + "dns-codes-over-time", "DNS response codes over time", "dns.response_code", q),
        search(P + "dns-search-errors", "DNS errors", q + " and (not dns.response_code:NOERROR or not status:OK)",
               ["dns.question.name", "dns.question.type", "dns.response_code", "status", "client.ip",
                "error.message"], "DNS answers other than NOERROR and transactions not OK"),
    ]
    return objs, dashboard(P + "dns", "[Packetbeat] DNS",
                           "Top DNS questions, response codes, query types and latency",
                           [(objs[0], 24, 15), (objs[1], 12, 15), (objs[2], 12, 15), (objs[3], 24, 14),
                            (objs[4], 24, 14), (objs[5], 48, 12)], query=q)


def sql(kind: str, title: str, error_field: str, extra_error=None):
    q = "type:%s" % kind
    objs = [
        top_table(P + kind + "-top-queries", "Top %s queries" % title, "query", q, label="Query"),
        latency(P + kind + "-latency", "%s response time percentiles" % title, q),
        share(P + kind + "-methods", "%s methods" % title, "method", q),
        over_time_by(P + kind + "-errors", "%s errors by code" % title, error_field,
                     q + " and not status:OK", number=kind == "mysql"),
        count_metric(P + kind + "-errors-count", "%s errors" % title, q + " and not status:OK"),
        search(P + kind + "-search-errors", "%s errors" % title, q + " and not status:OK",
               ["query", error_field] + ([extra_error] if extra_error else [])
               + ["%s.error_message" % kind, "client.ip", "server.ip"], "%s queries that failed" % title),
    ]
    return objs, dashboard(P + kind, "[Packetbeat] %s" % title,
                           "Top %s queries, errors and latency" % title,
                           [(objs[0], 32, 15), (objs[4], 16, 7), (objs[2], 16, 8), (objs[1], 24, 14),
                            (objs[3], 24, 14), (objs[5], 48, 12)], query=q)


def redis():
    q = "type:redis"
    objs = [
        top_table(P + "redis-top-commands", "Top Redis commands", "method", q, label="Command"),
        over_time_by(P + "redis-commands-over-time", "Redis commands over time", "method", q),
        top_table(P + "redis-errors", "Redis errors", "redis.error", q + " and not status:OK", latency_col=False,
                  label="Error"),
        count_metric(P + "redis-errors-count", "Redis errors", q + " and not status:OK"),
        latency(P + "redis-latency", "Redis response time percentiles", q),
        search(P + "redis-search-errors", "Redis errors", q + " and not status:OK",
               ["query", "redis.error", "client.ip", "server.ip"], "Redis commands answered with an error"),
    ]
    return objs, dashboard(P + "redis", "[Packetbeat] Redis", "Top Redis commands, errors and latency",
                           [(objs[0], 24, 15), (objs[1], 24, 15), (objs[3], 12, 12), (objs[2], 36, 12),
                            (objs[4], 24, 14), (objs[5], 24, 14)], query=q)


def flows():
    q = "type:flow and flow.final:true"
    talkers = {"g": c_terms("source.ip", "b", 10, label="Source IP", other=False),
               "b": c_metric("sum", "network.bytes", "Bytes"),
               "p": c_metric("sum", "network.packets", "Packets"),
               "n": c_count("Flows")}
    dest = {"g": c_terms("destination.ip", "b", 10, label="Destination IP", other=False),
            "b": c_metric("sum", "network.bytes", "Bytes"),
            "n": c_count("Flows")}
    packets = {"t": c_time(), "g": c_terms("network.transport", "p", 5), "p": c_metric("sum", "network.packets",
                                                                                        "Packets")}
    ports = {"g": c_terms("destination.port", "b", 10, label="Destination port", number=True, other=False),
             "b": c_metric("sum", "network.bytes", "Bytes"), "n": c_count("Flows")}
    objs = [
        table(P + "flows-top-talkers", "Top talkers by bytes (source)", talkers, q,
              "Source addresses by bytes of their finished flows (each flow counted once)"),
        table(P + "flows-top-destinations", "Top destinations by bytes", dest, q),
        xy(P + "flows-packets-over-time", "Packets over time by transport", packets, "t", ["p"], split="g",
           series="area_stacked", query=q, description="Packets of finished flows, by the flow's end time"),
        share(P + "flows-transport", "Flows by network.transport", "network.transport", "type:flow and flow.final:true"),
        table(P + "flows-top-ports", "Top destination ports by bytes", ports, q),
        search(P + "flows-search", "Flows", q, ["source.ip", "source.port", "destination.ip", "destination.port",
                                                 "network.transport", "network.bytes", "network.packets",
                                                 "event.duration"], "Finished flows"),
    ]
    return objs, dashboard(P + "flows", "[Packetbeat] Flows",
                           "Top talkers by bytes, packets over time, network.transport (finished flows)",
                           [(objs[0], 24, 15), (objs[1], 24, 15), (objs[2], 32, 14), (objs[3], 16, 14),
                            (objs[4], 24, 14), (objs[5], 24, 14)], query="type:flow")


DASHBOARDS = {
    "overview": overview,
    "http": http,
    "dns": dns,
    "mysql": lambda: sql("mysql", "MySQL", "mysql.error_code"),
    "pgsql": lambda: sql("pgsql", "PostgreSQL", "pgsql.error_code", "pgsql.error_severity"),
    "redis": redis,
    "flows": flows,
}


def _protocol_dashboards() -> dict:
    """The dashboards of the protocols added later, one module each in
    ``deploy/kibana/protos/<name>.py`` defining ``dashboard(k)`` (``k``: this
    module, for its helpers) that returns ``(objects, dashboard)``."""
    import importlib.util
    out = {}
    for path in sorted((HERE / "protos").glob("*.py")):
        spec = importlib.util.spec_from_file_location("kibana_protos_" + path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out[path.stem] = (lambda m: lambda: m.dashboard(sys.modules[__name__]))(mod)
    return out


def used_fields(objects) -> set[str]:
    """Every field a Lens column or a saved search column names (not ``___records___``)."""
    out: set[str] = set()
    for o in objects:
        if o["type"] == "lens":
            for layer in o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
                out |= {c["sourceField"] for c in layer["columns"].values() if c.get("sourceField") != RECORDS}
        elif o["type"] == "search":
            out |= set(o["attributes"]["columns"])
    return out


def build() -> dict[str, list[dict]]:
    """file name -> objects, in import order (data view first, dashboard last)."""
    made = {name: fn() for name, fn in {**DASHBOARDS, **_protocol_dashboards()}.items()}
    # one data view, the same in every file: its fields are those all the files use
    view = data_view(set().union(*(used_fields(objs) for objs, _ in made.values())))
    return {"packetbeat-%s.ndjson" % name: [view] + objs + [dash] for name, (objs, dash) in made.items()}


def render(objects: list[dict]) -> str:
    return "".join(json.dumps(o, sort_keys=True, separators=(",", ":")) + "\n" for o in objects)


def main(argv: list[str]) -> int:
    files = build()
    stale = []
    for name, objs in files.items():
        path = HERE / name
        text = render(objs)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write("out of date (run deploy/kibana/build.py): %s\n" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
