"""A strict, in-process Kibana test server (the saved-objects API subset ``packetbeat setup`` uses).

No Kibana can be installed here, so this speaks real HTTP (http.server in a
thread, like tests/esserver.py) and checks what Kibana 8 would refuse:

- ``GET /api/status``: ``{name, uuid, version: {number, ...}, status: {overall: {level}}}``.
- ``POST [/s/<space>]/api/saved_objects/_import[?overwrite=true]``: needs the
  ``kbn-xsrf`` header (else 400 as Kibana), ``multipart/form-data`` with a
  ``file`` part named ``*.ndjson`` (else 400/415). Every NDJSON line must be a
  JSON object (else 400 for the whole request). Each object is then checked:
  known ``type``, non-empty ``id`` (unique in the file), ``attributes`` a
  mapping, ``references`` a list of ``{name, type, id}``,
  ``coreMigrationVersion``/``typeMigrationVersion`` not newer than this
  Kibana; per type: data view title/timeFieldName and parsable ``fields`` /
  ``fieldFormatMap``; saved search ``searchSourceJSON`` parses and its
  ``indexRefName`` is a reference; Lens ``visualizationType`` known,
  ``state.datasourceStates.formBased.layers`` each with a reference
  ``indexpattern-datasource-layer-<layerId>``, ``columnOrder`` = the columns,
  every column's ``sourceField`` a field of the referenced data view (when the
  data view lists fields) or ``___records___``, terms ``orderBy`` naming a
  column of the layer, the visualization's accessors naming columns;
  dashboards' ``panelsJSON`` / ``optionsJSON`` / ``searchSourceJSON`` parse,
  every panel has ``gridData`` within the 48-column grid and a ``panelRefName``
  that resolves (``<panelIndex>:<panelRefName>`` or the plain name).
  Every reference must resolve to an object of the import or one already
  stored in the space; an object whose references do not resolve gets a
  ``missing_references`` error, other problems an ``unknown`` error naming what
  is wrong, and is not stored. An existing object without ``overwrite=true`` is
  a ``conflict``. The answer has Kibana's shape
  ``{success, successCount, successResults, errors}``.
- ``GET [/s/<space>]/api/saved_objects/_find?type=T[&search=...]``.

Faults (``server.faults``): ``not_ready`` (the next N requests get 503
"Kibana server is not ready yet"); ``credentials`` (``("user", "pass")``) or
``api_key`` (``"id:key"``) make every request without that Authorization a 401.
``server.stop()`` closes the port (connections refused).

``KibanaServer(tls=True)`` serves HTTPS with a certificate for ``localhost`` /
``127.0.0.1`` signed by ``TEST_CA_PEM`` (a test-only CA made for this file,
valid until 2126; ``kb.ca_file`` is its path).
"""
from __future__ import annotations

import base64
import dataclasses
import email.parser
import email.policy
import http.server
import json
import os
import re
import socketserver
import ssl
import tempfile
import threading
import time
import urllib.parse

VERSION = "8.15.0"
TYPES = {"index-pattern", "search", "lens", "dashboard", "visualization", "config", "tag", "map"}
LENS_TYPES = {"lnsXY", "lnsMetric", "lnsPie", "lnsDatatable", "lnsLegacyMetric", "lnsGauge", "lnsHeatmap",
              "lnsTagcloud"}
RECORDS = "___records___"
# what an exported saved object may hold at its root (Kibana 8.8+; "managed" since 8.10)
ROOT_KEYS = {"id", "type", "attributes", "references", "migrationVersion", "coreMigrationVersion",
             "typeMigrationVersion", "originId", "updated_at", "created_at", "version", "namespaces", "managed",
             "created_by", "updated_by"}

# test-only TLS material (EC P-256), made with openssl for this file; the key protects nothing
TEST_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUcfhaLZoqcsgLTQgxMxp5qKH1TZ0wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVcGFja2V0YmVhdC1weSB0ZXN0IENBMCAXDTI2MTEyNjE3MDQw
M1oYDzIxMjYxMTAyMTcwNDAzWjAgMR4wHAYDVQQDDBVwYWNrZXRiZWF0LXB5IHRl
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASEHh++bUre5MLb4rBOTw/1
7dPTstKDnkXodcRgjU8vp2TENgWuMIW2b03jdrxp7Q/13EpJmY1z17eYaUobzWAn
o2MwYTAdBgNVHQ4EFgQUJ4Izl5MOi4Ql7aEuvnwigW4Bj80wHwYDVR0jBBgwFoAU
J4Izl5MOi4Ql7aEuvnwigW4Bj80wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E
BAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIhALFjx78l6SMBNy9ZNPStGXxnWngVZaVj
y9xqO7eHXIrNAiBu7wC46hGxFJmqxYTtiC+SN3QTiZaTsP826/Hrtf+5Iw==
-----END CERTIFICATE-----
"""
SERVER_CERT_PEM = """-----BEGIN CERTIFICATE-----
MIIByzCCAXGgAwIBAgIUZc1yrBTpPmtlP1hwMm4wmRdDDz4wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVcGFja2V0YmVhdC1weSB0ZXN0IENBMCAXDTI2MTEyNjE3MDQw
N1oYDzIxMjYxMTAyMTcwNDA3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASKo2H/KzoDlpxtjaFShadKhF1zzdzrUX14//Vc
nYGiRUQyoA0gtLOragLSbRS+0b5LWs6CiETYTqRwUNwI9CPBo4GSMIGPMBoGA1Ud
EQQTMBGCCWxvY2FsaG9zdIcEfwAAATAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQE
AwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUqDqF/hZ3Ws6YA99w
DG2pEfGKM6kwHwYDVR0jBBgwFoAUJ4Izl5MOi4Ql7aEuvnwigW4Bj80wCgYIKoZI
zj0EAwIDSAAwRQIgIbZpflArEA7bP8zN1u/bXL9rk1om0EmeN6FRp8ZbhcMCIQC2
zobgoLW/Dr79kK3mmOGgsnU3i+LwYLf6/lbzo6d/Dw==
-----END CERTIFICATE-----
"""
SERVER_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjIsvLgydDF/zBgNj
d9FiBVmPf+wFUJ1nazFUvro6zZehRANCAASKo2H/KzoDlpxtjaFShadKhF1zzdzr
UX14//VcnYGiRUQyoA0gtLOragLSbRS+0b5LWs6CiETYTqRwUNwI9CPB
-----END PRIVATE KEY-----
"""


@dataclasses.dataclass
class Faults:
    not_ready: int = 0                       # next N requests answered 503
    credentials: tuple[str, str] | None = None
    api_key: str | None = None


class _Invalid(Exception):
    """One object is wrong; the message says why."""


def _vtuple(text) -> tuple:
    if not isinstance(text, str) or not re.match(r"^\d+\.\d+\.\d+$", text):
        raise _Invalid("bad migration version %r" % (text,))
    return tuple(int(x) for x in text.split("."))


def _json_attr(attrs: dict, key: str, kind):
    if key not in attrs:
        raise _Invalid("attributes.%s is missing" % key)
    try:
        value = json.loads(attrs[key])
    except (TypeError, ValueError) as e:
        raise _Invalid("attributes.%s does not parse: %s" % (key, e)) from None
    if not isinstance(value, kind):
        raise _Invalid("attributes.%s is not a %s" % (key, kind.__name__))
    return value


class KibanaStore:
    def __init__(self):
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str, str], dict] = {}      # (space, type, id) -> object
        self.spaces = {"default"}
        self.requests: list[tuple[str, str]] = []
        self.imports: list[dict] = []                            # every import answer

    # -- validation ---------------------------------------------------------------
    def _data_view_fields(self, space: str, batch: dict, view_id: str) -> set[str] | None:
        obj = batch.get(("index-pattern", view_id)) or self.objects.get((space, "index-pattern", view_id))
        if obj is None:
            return None
        raw = obj["attributes"].get("fields")
        if not raw:
            return None
        fields = json.loads(raw)
        return {f["name"] for f in fields} or None

    def check(self, obj: dict, space: str, batch: dict) -> None:
        t = obj["type"]
        attrs = obj["attributes"]
        refs = {r["name"]: r for r in obj["references"]}
        if t == "index-pattern":
            if not isinstance(attrs.get("title"), str) or not attrs["title"]:
                raise _Invalid("data view without a title")
            if "timeFieldName" in attrs and not isinstance(attrs["timeFieldName"], str):
                raise _Invalid("timeFieldName is not a string")
            if "fields" in attrs:
                fields = _json_attr(attrs, "fields", list)
                for f in fields:
                    if not isinstance(f, dict) or not isinstance(f.get("name"), str) or "type" not in f:
                        raise _Invalid("a data view field without name/type: %r" % (f,))
                names = {f["name"] for f in fields}
                if fields and attrs.get("timeFieldName") and attrs["timeFieldName"] not in names:
                    raise _Invalid("timeFieldName %s is not among the fields" % attrs["timeFieldName"])
            if "fieldFormatMap" in attrs:
                _json_attr(attrs, "fieldFormatMap", dict)
        elif t == "search":
            meta = attrs.get("kibanaSavedObjectMeta") or {}
            source = _json_attr(meta, "searchSourceJSON", dict)
            ref = source.get("indexRefName")
            if ref is not None and ref not in refs:
                raise _Invalid("searchSourceJSON.indexRefName %s is not a reference" % ref)
            if not isinstance(attrs.get("columns", []), list):
                raise _Invalid("columns is not a list")
            q = source.get("query")
            if q is not None and (not isinstance(q, dict) or q.get("language") not in ("kuery", "lucene")):
                raise _Invalid("searchSourceJSON.query needs a language kuery or lucene")
        elif t == "lens":
            self._check_lens(obj, refs, space, batch)
        elif t == "dashboard":
            panels = _json_attr(attrs, "panelsJSON", list)
            _json_attr(attrs, "optionsJSON", dict)
            _json_attr(attrs.get("kibanaSavedObjectMeta") or {}, "searchSourceJSON", dict)
            seen = set()
            for p in panels:
                g = p.get("gridData") or {}
                if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or "i" not in g:
                    raise _Invalid("panel %r: gridData needs x, y, w, h, i" % p.get("panelIndex"))
                if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 48:
                    raise _Invalid("panel %r is outside the 48-column grid" % p.get("panelIndex"))
                idx = p.get("panelIndex")
                if not idx or idx in seen:
                    raise _Invalid("panelIndex %r missing or repeated" % idx)
                seen.add(idx)
                name = p.get("panelRefName")
                if name is None:
                    if "embeddableConfig" not in p or not isinstance(p["embeddableConfig"], dict):
                        raise _Invalid("panel %s has neither panelRefName nor an embeddableConfig" % idx)
                    continue
                ref = refs.get("%s:%s" % (idx, name)) or refs.get(name)
                if ref is None:
                    raise _Invalid('Could not find reference "%s"' % name)
                if p.get("type") and p["type"] != ref["type"]:
                    raise _Invalid("panel %s has type %s but its reference is a %s" % (idx, p["type"], ref["type"]))
        if not isinstance(attrs.get("title", ""), str):
            raise _Invalid("title is not a string")

    def _check_lens(self, obj, refs, space, batch) -> None:
        attrs = obj["attributes"]
        if attrs.get("visualizationType") not in LENS_TYPES:
            raise _Invalid("unknown visualizationType %r" % attrs.get("visualizationType"))
        state = attrs.get("state")
        if not isinstance(state, dict):
            raise _Invalid("Lens state is not a mapping")
        try:
            layers = state["datasourceStates"]["formBased"]["layers"]
        except (KeyError, TypeError):
            raise _Invalid("Lens state has no datasourceStates.formBased.layers") from None
        if not isinstance(layers, dict) or not layers:
            raise _Invalid("Lens state has no layers")
        columns_of: dict[str, dict] = {}
        for layer_id, layer in layers.items():
            ref = refs.get("indexpattern-datasource-layer-%s" % layer_id)
            if ref is None or ref["type"] != "index-pattern":
                raise _Invalid("layer %s has no reference indexpattern-datasource-layer-%s" % (layer_id, layer_id))
            cols = layer.get("columns")
            if not isinstance(cols, dict) or not cols:
                raise _Invalid("layer %s has no columns" % layer_id)
            if sorted(layer.get("columnOrder") or []) != sorted(cols):
                raise _Invalid("layer %s: columnOrder %r does not list its columns" % (layer_id, layer.get("columnOrder")))
            fields = self._data_view_fields(space, batch, ref["id"])
            for cid, col in cols.items():
                for k in ("operationType", "dataType", "isBucketed", "label"):
                    if k not in col:
                        raise _Invalid("column %s has no %s" % (cid, k))
                src = col.get("sourceField")
                if src is not None and src != RECORDS and fields is not None and src not in fields:
                    raise _Invalid("column %s: field %s is not in data view %s" % (cid, src, ref["id"]))
                if col["operationType"] == "terms":
                    order = (col.get("params") or {}).get("orderBy") or {}
                    if order.get("type") == "column" and order.get("columnId") not in cols:
                        raise _Invalid("column %s orders by a column %r the layer lacks" % (cid, order.get("columnId")))
                if col["operationType"] == "percentile" and not 0 < (col.get("params") or {}).get("percentile", 0) < 100:
                    raise _Invalid("column %s: percentile out of range" % cid)
            columns_of[layer_id] = cols
        vis = state.get("visualization")
        if not isinstance(vis, dict):
            raise _Invalid("Lens state has no visualization")
        for q in (state.get("query"),):
            if not isinstance(q, dict) or q.get("language") not in ("kuery", "lucene"):
                raise _Invalid("Lens state.query needs a language kuery or lucene")

        def need(layer_id, cid, what):
            if layer_id not in columns_of:
                raise _Invalid("visualization names layer %r that the datasource lacks" % layer_id)
            if cid is not None and cid not in columns_of[layer_id]:
                raise _Invalid("visualization %s %r is not a column of layer %s" % (what, cid, layer_id))

        vt = attrs["visualizationType"]
        if vt == "lnsXY":
            for layer in vis.get("layers") or []:
                need(layer.get("layerId"), layer.get("xAccessor"), "xAccessor")
                need(layer.get("layerId"), layer.get("splitAccessor"), "splitAccessor")
                if not layer.get("accessors"):
                    raise _Invalid("XY layer without accessors")
                for a in layer["accessors"]:
                    need(layer.get("layerId"), a, "accessor")
        elif vt == "lnsPie":
            for layer in vis.get("layers") or []:
                for a in (layer.get("primaryGroups") or []) + (layer.get("metrics") or []):
                    need(layer.get("layerId"), a, "group/metric")
                if not layer.get("metrics"):
                    raise _Invalid("pie layer without metrics")
        elif vt == "lnsMetric":
            need(vis.get("layerId"), vis.get("metricAccessor"), "metricAccessor")
            if not vis.get("metricAccessor"):
                raise _Invalid("metric without metricAccessor")
        elif vt == "lnsDatatable":
            for c in vis.get("columns") or []:
                need(vis.get("layerId"), c.get("columnId"), "columnId")
            if not vis.get("columns"):
                raise _Invalid("datatable without columns")

    # -- import -------------------------------------------------------------------
    def import_objects(self, space: str, objects: list[dict], overwrite: bool) -> dict:
        errors, results = [], []
        batch: dict[tuple[str, str], dict] = {}
        ok_shape = []
        for obj in objects:
            t, oid = obj.get("type"), obj.get("id")
            title = (obj.get("attributes") or {}).get("title") if isinstance(obj.get("attributes"), dict) else None
            meta = {"title": title or oid}

            def err(kind, message, **extra):
                errors.append({"id": oid, "type": t, "title": title, "meta": meta,
                               "error": dict({"type": kind, "message": message}, **extra)})
            if t not in TYPES:
                err("unsupported_type", "Unsupported saved object type: %r" % (t,))
                continue
            if not isinstance(oid, str) or not oid:
                err("unknown", "object without an id")
                continue
            if (t, oid) in batch:
                err("unknown", "id %s appears twice in the import" % oid)
                continue
            if not isinstance(obj.get("attributes"), dict):
                err("unknown", "attributes is not a mapping")
                continue
            extra = sorted(set(obj) - ROOT_KEYS)
            if extra:
                err("unknown", "unknown saved object properties %s" % ", ".join(extra))
                continue
            refs = obj.get("references", [])
            if not isinstance(refs, list) or not all(isinstance(r, dict) and all(isinstance(r.get(k), str) and r[k]
                                                                                  for k in ("name", "type", "id"))
                                                      for r in refs):
                err("unknown", "references must be a list of {name, type, id}")
                continue
            try:
                core = obj.get("coreMigrationVersion")
                if core is not None and _vtuple(core) > _vtuple(VERSION):
                    raise _Invalid("coreMigrationVersion %s is newer than Kibana %s" % (core, VERSION))
                if obj.get("typeMigrationVersion") is not None:
                    _vtuple(obj["typeMigrationVersion"])
            except _Invalid as e:
                err("unknown", str(e))
                continue
            batch[(t, oid)] = obj
            ok_shape.append(obj)
        for obj in ok_shape:
            t, oid = obj["type"], obj["id"]
            title = obj["attributes"].get("title")
            missing = [{"type": r["type"], "id": r["id"]} for r in obj["references"]
                       if (r["type"], r["id"]) not in batch and (space, r["type"], r["id"]) not in self.objects]
            if missing:
                errors.append({"id": oid, "type": t, "title": title, "meta": {"title": title},
                               "error": {"type": "missing_references", "references": missing}})
                continue
            if not overwrite and (space, t, oid) in self.objects:
                errors.append({"id": oid, "type": t, "title": title, "meta": {"title": title},
                               "error": {"type": "conflict"}})
                continue
            try:
                self.check(obj, space, batch)
            except _Invalid as e:
                errors.append({"id": oid, "type": t, "title": title, "meta": {"title": title},
                               "error": {"type": "unknown", "message": str(e)}})
                continue
            exists = (space, t, oid) in self.objects
            self.objects[(space, t, oid)] = json.loads(json.dumps(obj))
            res = {"type": t, "id": oid, "meta": {"title": title or oid, "icon": t}}
            if exists:
                res["overwrite"] = True
            results.append(res)
        answer = {"success": not errors, "successCount": len(results), "successResults": results}
        if errors:
            answer["errors"] = errors
        self.imports.append(answer)
        return answer


def _parse_multipart(ctype: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, content) of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ValueError("not a multipart body")
    parts = {}
    for part in msg.iter_parts():
        disp = part.get("Content-Disposition", "")
        if not disp.startswith("form-data"):
            raise ValueError("part without Content-Disposition: form-data")
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):      # quiet
        pass

    @property
    def kb(self) -> "KibanaServer":
        return self.server.kb               # type: ignore[attr-defined]

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 415: "Unsupported Media Type",
                 503: "Service Unavailable"}
        self._send(status, {"statusCode": status, "error": names.get(status, "Error"), "message": message})

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kb = self.kb
        store = kb.store
        url = urllib.parse.urlsplit(self.path)
        qs = urllib.parse.parse_qs(url.query)
        with store.lock:
            store.requests.append((method, self.path))
            if kb.faults.not_ready > 0:
                kb.faults.not_ready -= 1
                return self._error(503, "Kibana server is not ready yet")
        if not self._authorized():
            return self._error(401, "[security_exception]: unable to authenticate user")
        path = url.path
        space = "default"
        m = re.match(r"^/s/([^/]+)(/.*)$", path)
        if m:
            space, path = urllib.parse.unquote(m.group(1)), m.group(2)
        if path == "/api/status" and method == "GET":
            return self._send(200, {"name": "kibana-test", "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
                                    "version": {"number": kb.version, "build_hash": "0" * 40, "build_number": 1,
                                                "build_snapshot": False},
                                    "status": {"overall": {"level": "available", "summary": "All services are available"}}})
        if space not in store.spaces:
            return self._error(404, "Saved object [space/%s] not found" % space)
        if path == "/api/saved_objects/_import" and method == "POST":
            return self._import(space, qs, body)
        if path == "/api/saved_objects/_export" and method == "POST":
            return self._export(space, body)
        if path == "/api/saved_objects/_find" and method == "GET":
            types = qs.get("type", [])
            search = (qs.get("search") or [""])[0].lower().rstrip("*")
            with store.lock:
                found = [o for (s, t, _), o in sorted(store.objects.items())
                         if s == space and (not types or t in types)
                         and search in str(o["attributes"].get("title", "")).lower()]
            per = int((qs.get("per_page") or ["20"])[0])
            return self._send(200, {"page": 1, "per_page": per, "total": len(found), "saved_objects": found[:per]})
        return self._error(404, "Not Found")

    def _export(self, space: str, body: bytes) -> None:
        """Kibana's saved-objects export: NDJSON of the objects asked for (and, with
        includeReferencesDeep, everything they refer to), then the summary line;
        400 naming a missing object."""
        if not self.headers.get("kbn-xsrf"):
            return self._error(400, "Request must contain a kbn-xsrf header.")
        try:
            req = json.loads(body or b"{}")
            wanted = [(o["type"], o["id"]) for o in req.get("objects") or []]
        except (ValueError, KeyError, TypeError) as e:
            return self._error(400, "bad export request: %s" % e)
        out, seen = [], set()
        with self.kb.store.lock:
            for t, oid in wanted:
                if (space, t, oid) not in self.kb.store.objects:
                    return self._error(400, "Error fetching objects to export: %s [%s] not found" % (t, oid))
            todo = list(wanted)
            while todo:
                t, oid = todo.pop(0)
                if (t, oid) in seen or (space, t, oid) not in self.kb.store.objects:
                    continue
                seen.add((t, oid))
                obj = self.kb.store.objects[(space, t, oid)]
                out.append(obj)
                if req.get("includeReferencesDeep"):
                    todo += [(r["type"], r["id"]) for r in obj.get("references") or []]
        lines = [json.dumps(o, sort_keys=True) for o in out]
        lines.append(json.dumps({"excludedObjects": [], "excludedObjectsCount": 0, "exportedCount": len(out),
                                 "missingRefCount": 0, "missingReferences": []}))
        data = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/ndjson")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        f = self.kb.faults
        if f.credentials is None and f.api_key is None:
            return True
        auth = self.headers.get("Authorization") or ""
        if f.credentials is not None:
            want = "Basic " + base64.b64encode(("%s:%s" % f.credentials).encode()).decode()
            if auth == want:
                return True
        if f.api_key is not None:
            if auth == "ApiKey " + base64.b64encode(f.api_key.encode()).decode():
                return True
        return False

    def _import(self, space: str, qs: dict, body: bytes) -> None:
        if not self.headers.get("kbn-xsrf"):
            return self._error(400, "Request must contain a kbn-xsrf header.")
        ctype = self.headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data") or "boundary=" not in ctype:
            return self._error(415, "Unsupported Media Type: the import takes multipart/form-data")
        try:
            parts = _parse_multipart(ctype, body)
        except (ValueError, LookupError) as e:
            return self._error(400, "bad multipart body: %s" % e)
        if "file" not in parts:
            return self._error(400, "[request body.file]: expected value of type [Stream] but got [undefined]")
        filename, data = parts["file"]
        if not filename or not filename.endswith(".ndjson"):
            return self._error(400, "Invalid file extension %r" % (filename,))
        objects = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._error(400, "the file is not UTF-8")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                return self._error(400, "Unexpected token in JSON at line %d: %s" % (n, e))
            if not isinstance(obj, dict):
                return self._error(400, "line %d is not an object" % n)
            if "exportedCount" in obj and "type" not in obj:      # the export summary line
                continue
            objects.append(obj)
        overwrite = (qs.get("overwrite") or ["false"])[0] == "true"
        with self.kb.store.lock:
            answer = self.kb.store.import_objects(space, objects, overwrite)
        return self._send(200, answer)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class KibanaServer:
    """``with KibanaServer() as kb: kb.url``; ``kb.objects(space)``, ``kb.store.imports``."""

    def __init__(self, port: int = 0, version: str = VERSION, tls: bool = False):
        self.port = port
        self.version = version
        self.tls = tls
        self._tmp = tempfile.TemporaryDirectory(prefix="kibanaserver-") if tls else None
        self.ca_file = ""
        if tls:
            for name, text in (("ca.pem", TEST_CA_PEM), ("server.pem", SERVER_CERT_PEM), ("server.key", SERVER_KEY_PEM)):
                with open(os.path.join(self._tmp.name, name), "w") as fh:
                    fh.write(text)
            self.ca_file = os.path.join(self._tmp.name, "ca.pem")
        self.faults = Faults()
        self.store = KibanaStore()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self) -> "KibanaServer":
        if self._httpd is not None:
            return self
        for _ in range(50):
            try:
                httpd = _HTTPServer(("127.0.0.1", self.port), _Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise OSError("cannot bind 127.0.0.1:%d" % self.port)
        httpd.kb = self                         # type: ignore[attr-defined]
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(self._tmp.name, "server.pem"), os.path.join(self._tmp.name, "server.key"))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kibanaserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._thread.join()

    def __enter__(self) -> "KibanaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def objects(self, space: str = "default", type_: str | None = None) -> dict[tuple[str, str], dict]:
        with self.store.lock:
            return {(t, i): o for (s, t, i), o in self.store.objects.items()
                    if s == space and (type_ is None or t == type_)}
