"""A strict, in-process Elasticsearch test server (the HTTP API subset we use).

No Elasticsearch can be installed here, so this speaks what the official
``elasticsearch`` 8.x client sends for our use:

- ``GET /`` / ``HEAD /``: cluster info; every response carries
  ``X-Elastic-Product: Elasticsearch`` (the client refuses a server without it).
- ``POST /_bulk`` and ``/<index>/_bulk``: NDJSON, gzip bodies accepted; actions
  ``index`` / ``create`` / ``update`` / ``delete`` with ``_index``, ``_id``,
  ``op_type``, ``pipeline``; ``create`` on an existing id gives 409
  ``version_conflict_engine_exception``, as ES does. Dynamic mapping is kept
  per index: a value whose type conflicts with the mapped one gets 400
  ``mapper_parsing_exception``.
- ``PUT/GET/HEAD/DELETE /_index_template/<name>``, ``PUT/GET /_ilm/policy/<name>``,
  ``PUT /<index>``, ``HEAD /<index>``, ``/<index>/_count``,
  ``GET /<index>/_doc/<id>``, ``/<index>/_search`` (``ids``, ``term`` on
  ``_id``, ``match_all``), ``/<index>/_refresh``.

Index templates with ``data_stream`` make a write to a matching unknown name
create that data stream (backing index ``.ds-<name>-<yyyy.MM.dd>-000001``);
into a data stream only ``create`` is allowed (``index`` gets 400
``illegal_argument_exception``) and ``@timestamp`` is required (400
``document_parsing_exception``); ``PUT /<name>`` that matches such a template
is refused. ``PUT/GET/DELETE /_data_stream/<name>``. Aliases: ``PUT /<index>``
with ``aliases`` (``is_write_index``; one write index per alias), index names
with date math (``<pb-{now/d}-000001>``), ``GET/HEAD /_alias[/<name>]`` and
``/<index>/_alias``, ``POST /<alias or stream>/_rollover``; a write to an alias
goes to its write index (400 when it has none). Searches, counts and
``docs()`` expand aliases and data streams; wildcards skip hidden (``.``)
indices.

Faults (``server.faults``, changed at any time from the test):
``reject_429`` (fraction of index/create items answered 429), ``fail_500``
(the next N requests get 500), ``delay`` (seconds before each answer),
``drop_bulk`` (the next N bulk requests are applied and then the connection is
closed without an answer), and ``refuse_for(seconds)`` / ``stop()`` /
``start()``: the port is closed, so connections are refused.

``EsServer(check_mappings=False)`` is a sink for the benchmark: no dynamic-mapping
check, and index/create sources are kept as their bytes (checked to be one JSON
object at its ends, parsed when read; data stream writes are still parsed for
their ``@timestamp``); ids, 409 on a second create, routing, faults and
answers are the same. Only ``bench/bench_es.py`` uses it, so that the benchmark
measures the publisher rather than this single-process server; every test
keeps the full checks.

Use ``with EsServer() as es: es.url``. ``es.docs(index_pattern)`` gives the
stored documents.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import http.server
import json
import random
import re
import socket
import threading
import time
import urllib.parse
import uuid

try:                        # the C parser: the bulk body is most of the server's own work
    import orjson
except ImportError:         # pragma: no cover - orjson is a project dependency
    orjson = None

PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
VERSION = "8.15.0"


@dataclasses.dataclass
class Faults:
    reject_429: float = 0.0     # fraction of index/create items answered 429
    fail_500: int = 0           # next N requests answered 500
    delay: float = 0.0          # seconds slept before answering each request
    drop_bulk: int = 0          # next N bulk requests applied, then the connection dropped
    seed: int = 1


class _Index:
    def __init__(self, name: str):
        self.name = name
        self.docs: dict[str, dict] = {}
        self.versions: dict[str, int] = {}
        self.mapping: dict[str, str] = {}     # dotted path -> type
        self.shapes: set = set()       # document shapes known to fit the mapping
        self.seq = 0


def _vtype(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "float"
    if isinstance(v, dict):
        return "object"
    return "keyword"


_COMPATIBLE = {("long", "float"), ("float", "long"), ("keyword", "long"), ("keyword", "float"),
               ("keyword", "boolean")}


class _Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.indices: dict[str, _Index] = {}
        self.templates: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.pipelines: dict[str, dict] = {}         # ingest pipelines (stored, not run)
        self.requests: list[tuple[str, str]] = []
        self.bulk_items = 0
        self.connections = 0                         # TCP connections accepted (idle_connection_timeout)
        self.last_bulk: tuple[dict, list] = ({}, [])
        self.data_streams: dict[str, dict] = {}     # name -> {"indices": [...], "generation", "template"}
        self.aliases: dict[str, dict[str, dict]] = {}   # alias -> {index: {"is_write_index": bool}}

    def index(self, name: str, create: bool = True) -> _Index | None:
        idx = self.indices.get(name)
        if idx is None and create:
            idx = self.indices[name] = _Index(name)
        return idx

    def match(self, pattern: str) -> list[_Index]:
        """Indices named by ``pattern`` (comma list, wildcards): concrete names,
        and the indices behind matching aliases and data streams. Wildcards
        skip hidden (dot) indices such as data stream backing indices, unless
        the pattern itself starts with a dot."""
        if pattern in ("", "_all"):
            pattern = "*"
        out: list[_Index] = []

        def add(name):
            i = self.indices.get(name)
            if i is not None and i not in out:
                out.append(i)
        for p in pattern.split(","):
            wild = "*" in p or "?" in p
            for n in list(self.indices):
                if fnmatch.fnmatchcase(n, p) and not (wild and n.startswith(".") and not p.startswith(".")):
                    add(n)
            for ds, info in self.data_streams.items():
                if fnmatch.fnmatchcase(ds, p):
                    for n in info["indices"]:
                        add(n)
            for alias, members in self.aliases.items():
                if fnmatch.fnmatchcase(alias, p):
                    for n in members:
                        add(n)
        return out

    def template_for(self, name: str) -> tuple[str, dict] | None:
        """The index template with the highest priority whose patterns match ``name``."""
        best = None
        for tname, t in self.templates.items():
            if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns") or []):
                if best is None or t.get("priority", 0) > best[1].get("priority", 0):
                    best = (tname, t)
        return best

    def new_data_stream(self, name: str, template: str) -> dict:
        backing = ".ds-%s-%s-000001" % (name, time.strftime("%Y.%m.%d", time.gmtime()))
        self.index(backing)
        info = self.data_streams[name] = {"indices": [backing], "generation": 1, "template": template}
        return info

    def write_index(self, name: str) -> tuple[_Index | None, dict | None, bool]:
        """Where a write to ``name`` goes: (index, None, is_data_stream) or
        (None, error, False). Creates a data stream (matching template with
        ``data_stream``) or an index (otherwise) for an unknown name."""
        ds = self.data_streams.get(name)
        if ds is not None:
            return self.indices[ds["indices"][-1]], None, True
        members = self.aliases.get(name)
        if members is not None:
            writers = [n for n, a in members.items() if a.get("is_write_index")]
            if not writers and len(members) == 1:
                writers = list(members)
            if len(writers) != 1:
                return None, {"type": "illegal_argument_exception",
                              "reason": "no write index is defined for alias [%s]. The write index may be "
                                        "explicitly disabled using is_write_index=false or the alias points "
                                        "to multiple indices without one being designated as a write index"
                                        % name}, False
            return self.indices[writers[0]], None, False
        idx = self.indices.get(name)
        if idx is not None:
            return idx, None, any(name in d["indices"] for d in self.data_streams.values())
        bad = _invalid_name(name)
        if bad:
            return None, {"type": "invalid_index_name_exception", "reason": bad, "index": name}, False
        tpl = self.template_for(name)
        if tpl is not None and "data_stream" in tpl[1]:
            info = self.new_data_stream(name, tpl[0])
            return self.indices[info["indices"][-1]], None, True
        return self.index(name), None, False

    def check_mapping(self, idx: _Index, doc: dict) -> str:
        """'' when doc fits idx's dynamic mapping (updated), else the reason.
        A document whose shape (_shape) was accepted before skips the walk."""
        shape = _shape(doc)
        if shape in idx.shapes:
            return ""
        reason = self._check_mapping(idx, doc)
        if not reason:
            if len(idx.shapes) > 50_000:
                idx.shapes.clear()
            idx.shapes.add(shape)
        return reason

    def _check_mapping(self, idx: _Index, doc: dict) -> str:
        found: dict[str, str] = {}

        def walk(obj, prefix):
            for k, v in obj.items():
                path = prefix + k
                if isinstance(v, list):
                    for x in v:
                        if isinstance(x, dict):
                            found.setdefault(path, "object")
                            walk(x, path + ".")
                        elif x is not None:
                            found.setdefault(path, _vtype(x))
                elif isinstance(v, dict):
                    found[path] = "object"
                    walk(v, path + ".")
                elif v is not None:
                    found.setdefault(path, _vtype(v))

        walk(doc, "")
        for path, t in found.items():
            have = idx.mapping.get(path)
            if have is None or have == t:
                continue
            if (have, t) in _COMPATIBLE and not (have == "keyword" and t == "object"):
                continue
            if have == "object" or t == "object":
                return "can't merge a non object mapping [%s] with an object mapping" % path
            return "failed to parse field [%s] of type [%s] in document" % (path, have)
        for path, t in found.items():
            idx.mapping.setdefault(path, t)
        return ""


_DATE_MATH = re.compile(r"\{now(?:/([yMwdhHms]))?(?:\{([^}|]*)[^}]*\})?\}")


def date_math(name: str) -> str:
    """``<logs-{now/d}-000001>`` -> ``logs-2024.05.01-000001`` (UTC; ``{now/M{yyyy.MM}}`` too)."""
    if not (name.startswith("<") and name.endswith(">")):
        return name

    def sub(m):
        fmt = m.group(2) or "yyyy.MM.dd"
        t = time.gmtime()
        for tok, val in (("yyyy", "%04d" % t.tm_year), ("MM", "%02d" % t.tm_mon), ("dd", "%02d" % t.tm_mday),
                         ("HH", "%02d" % t.tm_hour)):
            fmt = fmt.replace(tok, val)
        return fmt
    return _DATE_MATH.sub(sub, name[1:-1])


def _invalid_name(name: str) -> str:
    if name != name.lower():
        return "Invalid index name [%s], must be lowercase" % name
    if name.startswith(("_", "-", "+")) or any(c in name for c in ' "*\\<|,>/?#:'):
        return "Invalid index name [%s], must not start with '_', '-', or '+' or contain " \
               "'\\', '/', '*', '?', '\"', '<', '>', '|', ' ', ',', '#', ':'" % name
    return ""


def _src(v):
    """A stored document: a dict, or (sink mode) the source line's bytes, parsed on access."""
    return v if type(v) is not bytes else (orjson.loads(v) if orjson is not None else json.loads(v))


def _shape(obj):
    """Keys and value kinds of a document, hashable: two documents with the
    same shape add the same paths and types to a mapping."""
    t = type(obj)
    if t is dict:
        return tuple((k, _shape(v)) for k, v in obj.items())
    if t is list:
        return tuple(_shape(v) for v in obj)
    return t


def _error(status: int, etype: str, reason: str, **extra) -> dict:
    err = {"type": etype, "reason": reason}
    err.update(extra)
    return {"error": {"root_cause": [dict(err)], **err}, "status": status}


class _DropConnection(Exception):
    pass



class _Raw(bytes):
    """(sink mode) a source line kept as bytes"""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "esserver"

    def log_message(self, fmt, *args):      # quiet
        pass

    # -- plumbing -------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and data:
            data = gzip.decompress(data)
        return data

    def _send(self, status: int, obj=None, head: bool = False) -> None:
        data = b"" if obj is None else (orjson.dumps(obj) if orjson is not None else json.dumps(obj).encode())
        self.send_response(status)
        for k, v in PRODUCT.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
        self.send_header("Content-Length", "0" if head else str(len(data)))
        if not head and data:                # one write: headers and body (no Nagle stall)
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        else:
            self.end_headers()

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.es.store.lock:                     # type: ignore[attr-defined]
            self.server.open_connections.add(self.connection)  # type: ignore[attr-defined]
            self.server.es.store.connections += 1           # type: ignore[attr-defined]

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.es.store.lock:                 # type: ignore[attr-defined]
                self.server.open_connections.discard(self.connection)  # type: ignore[attr-defined]

    def _dispatch(self, method: str) -> None:
        es: EsServer = self.server.es          # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        body = self._body()
        with es.store.lock:
            es.store.requests.append((method, url.path))
        f = es.faults
        if f.delay:
            time.sleep(f.delay)
        with es.store.lock:
            if f.fail_500 > 0:
                f.fail_500 -= 1
                fail = True
            else:
                fail = False
        if fail:
            self._send(500, _error(500, "internal_server_error", "injected failure"))
            return
        try:
            status, obj = es.route(method, parts, params, body)
        except _DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except (ValueError, KeyError, TypeError) as e:
            status, obj = 400, _error(400, "parse_exception", "bad request: %s" % e)
        self._send(status, obj, head=(method == "HEAD"))

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("HEAD")


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class EsServer:
    """The test server; ``start()`` picks a free port on 127.0.0.1 (kept across restarts)."""

    def __init__(self, port: int = 0, check_mappings: bool = True):
        self.port = port
        self.check_mappings = check_mappings
        self.faults = Faults()
        self.store = _Store()
        self._rng = random.Random(self.faults.seed)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._refuse_timer: threading.Timer | None = None

    # -- lifecycle ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def open_connections(self) -> int:
        """Client connections open now (the server side of idle_connection_timeout)."""
        httpd = self._httpd
        if httpd is None:
            return 0
        with self.store.lock:
            conns = list(httpd.open_connections)
        n = 0
        for c in conns:            # a connection the client closed reads as EOF
            try:
                n += 1 if c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) else 0
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def start(self) -> "EsServer":
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
        httpd.es = self                         # type: ignore[attr-defined]
        httpd.open_connections = set()          # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="esserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._thread.join()
            with self.store.lock:               # a stopped server keeps no connection open either
                conns = list(httpd.open_connections)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def refuse_for(self, seconds: float) -> None:
        """Close the port now (connections refused) and reopen it after ``seconds``."""
        self.stop()
        self._refuse_timer = threading.Timer(seconds, self.start)
        self._refuse_timer.daemon = True
        self._refuse_timer.start()

    def __enter__(self) -> "EsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._refuse_timer is not None:
            self._refuse_timer.cancel()
        self.stop()

    # -- inspection ---------------------------------------------------------------
    def docs(self, pattern: str = "*") -> dict[tuple[str, str], dict]:
        with self.store.lock:
            return {(i.name, k): _src(v) for i in self.store.match(pattern) for k, v in i.docs.items()}

    def count(self, pattern: str = "*") -> int:
        with self.store.lock:
            return sum(len(i.docs) for i in self.store.match(pattern))

    # the same inspection API as tests/estarget.RealCluster (tests run against either)
    @property
    def bulk_items(self) -> int:
        return self.store.bulk_items

    def templates(self) -> dict[str, dict]:
        with self.store.lock:
            return json.loads(json.dumps(self.store.templates))

    def policies(self) -> dict[str, dict]:
        with self.store.lock:
            return {n: v.get("policy", v) for n, v in self.store.policies.items()}

    def data_streams(self) -> dict[str, list[str]]:
        with self.store.lock:
            return {n: list(d["indices"]) for n, d in self.store.data_streams.items()}

    def alias(self, name: str) -> dict[str, bool]:
        """index -> is_write_index for the indices behind alias ``name``."""
        with self.store.lock:
            return {i: bool(a.get("is_write_index")) for i, a in self.store.aliases.get(name, {}).items()}

    def cleanup(self, prefix: str) -> None:
        """Nothing to do: each test has its own server."""

    # -- routing ------------------------------------------------------------------
    def route(self, method: str, parts: list[str], params: dict, body: bytes):
        st = self.store
        if not parts:
            if method in ("GET", "HEAD"):
                return 200, {"name": "esserver", "cluster_name": "test", "cluster_uuid": "esserver-uuid",
                             "version": {"number": VERSION, "build_flavor": "default",
                                         "lucene_version": "9.11.1",
                                         "minimum_wire_compatibility_version": "7.17.0",
                                         "minimum_index_compatibility_version": "7.0.0"},
                             "tagline": "You Know, for Search"}
            return 405, _error(405, "method_not_allowed", "%s / is not allowed" % method)
        if parts[-1] == "_bulk" and method in ("POST", "PUT"):
            return self._bulk(parts[0] if len(parts) == 2 else None, params, body)
        if parts[0] == "_index_template" and len(parts) == 2:
            return self._named(st.templates, "index_template", method, parts[1], body,
                               lambda n, v: {"index_templates": [{"name": n, "index_template": v}]})
        if parts[:2] == ["_ilm", "policy"] and len(parts) == 3:
            return self._named(st.policies, "policy", method, parts[2], body,
                               lambda n, v: {n: {"version": 1, "policy": v.get("policy", v)}})
        if parts[:2] == ["_ingest", "pipeline"] and len(parts) == 3:
            return self._named(st.pipelines, "pipeline", method, parts[2], body, lambda n, v: {n: v})
        if parts == ["_index_template"] and method == "GET":
            with st.lock:
                return 200, {"index_templates": [{"name": n, "index_template": v} for n, v in st.templates.items()]}
        if parts == ["_ilm", "policy"] and method == "GET":
            with st.lock:
                return 200, {n: {"version": 1, "policy": v.get("policy", v)} for n, v in st.policies.items()}
        if parts[:2] == ["_cat", "indices"] and method == "GET":
            with st.lock:
                if len(parts) > 2:
                    names = [n for n in st.indices if fnmatch.fnmatchcase(n, parts[2])]
                    names += [i.name for i in st.match(parts[2]) if i.name not in names]
                else:
                    names = list(st.indices)
                return 200, [{"index": n, "docs.count": str(len(st.indices[n].docs))} for n in names]
        if parts[0] == "_data_stream":
            return self._data_stream(method, parts[1] if len(parts) > 1 else "*")
        if parts[0] == "_alias" and method in ("GET", "HEAD"):
            return self._get_alias("*", parts[1] if len(parts) > 1 else "*", method)
        if len(parts) >= 2 and parts[1] == "_alias" and method in ("GET", "HEAD"):
            return self._get_alias(parts[0], parts[2] if len(parts) > 2 else "*", method)
        if len(parts) == 2 and parts[1] == "_rollover" and method == "POST":
            return self._rollover(parts[0])
        if parts[0] in ("_refresh", "_count", "_search"):
            parts = ["_all"] + parts
        name = parts[0]
        if name.startswith("_"):
            return 400, _error(400, "illegal_argument_exception", "unsupported endpoint /%s" % "/".join(parts))
        with st.lock:
            if len(parts) == 1:
                if method == "PUT":
                    return self._create_index(date_math(name), json.loads(body) if body else {})
                if method == "HEAD":
                    return (200 if st.match(name) else 404), None
                if method == "DELETE":
                    found = st.match(name)
                    for ds, info in st.data_streams.items():
                        if any(i.name == info["indices"][-1] for i in found):
                            return 400, _error(400, "illegal_argument_exception",
                                               "index [%s] is the write index for data stream [%s] and cannot "
                                               "be deleted" % (info["indices"][-1], ds))
                    for i in found:
                        del st.indices[i.name]
                        for members in st.aliases.values():
                            members.pop(i.name, None)
                    for alias in [a for a, m in st.aliases.items() if not m]:
                        del st.aliases[alias]
                    return (200, {"acknowledged": True}) if found else (
                        404, _error(404, "index_not_found_exception", "no such index [%s]" % name))
            op = parts[1]
            if op == "_refresh":
                return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
            if op == "_count":
                hits = self._query(name, body)
                return 200, {"count": len(hits), "_shards": {"total": 1, "successful": 1, "failed": 0}}
            if op == "_search":
                q = json.loads(body) if body else {}
                size = int(params.get("size", q.get("size", 10)))
                hits = self._query(name, body)
                return 200, {"took": 1, "timed_out": False,
                             "hits": {"total": {"value": len(hits), "relation": "eq"},
                                      "hits": [{"_index": i, "_id": k, "_score": 1.0, "_source": d}
                                               for i, k, d in hits[:size]]}}
            if op == "_doc" and len(parts) == 3 and method in ("GET", "HEAD"):
                idx = st.index(name, create=False)
                doc = idx.docs.get(parts[2]) if idx else None
                if doc is None:
                    return 404, {"_index": name, "_id": parts[2], "found": False}
                return 200, {"_index": name, "_id": parts[2], "_version": idx.versions[parts[2]],
                             "found": True, "_source": _src(doc)}
        return 400, _error(400, "illegal_argument_exception", "unsupported: %s /%s" % (method, "/".join(parts)))

    # -- indices, aliases, data streams ------------------------------------------
    def _create_index(self, name: str, body: dict):
        st = self.store
        bad = _invalid_name(name)
        if bad:
            return 400, _error(400, "invalid_index_name_exception", bad, index=name)
        if name in st.indices or name in st.data_streams:
            return 400, _error(400, "resource_already_exists_exception", "index [%s] already exists" % name,
                               index=name)
        if name in st.aliases:
            return 400, _error(400, "invalid_index_name_exception",
                               "Invalid index name [%s], an alias with the same name already exists" % name,
                               index=name)
        tpl = st.template_for(name)
        if tpl is not None and "data_stream" in tpl[1]:
            return 400, _error(400, "illegal_argument_exception",
                               "cannot create index with name [%s], because it matches with template [%s] that "
                               "creates data streams only, use create data stream api instead" % (name, tpl[0]))
        aliases = body.get("aliases") or {}
        for alias, opts in aliases.items():
            if alias in st.indices or alias in st.data_streams:
                return 400, _error(400, "invalid_alias_name_exception",
                                   "Invalid alias name [%s]: an index or data stream exists with the same name "
                                   "as the alias" % alias)
            if (opts or {}).get("is_write_index"):
                other = [n for n, a in st.aliases.get(alias, {}).items() if a.get("is_write_index")]
                if other:
                    return 400, _error(400, "illegal_state_exception", "alias [%s] has more than one write "
                                       "index [%s,%s]" % (alias, other[0], name))
        st.index(name)
        for alias, opts in aliases.items():
            st.aliases.setdefault(alias, {})[name] = {"is_write_index": bool((opts or {}).get("is_write_index"))}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _get_alias(self, index_pattern: str, alias_pattern: str, method: str):
        with self.store.lock:
            st = self.store
            wanted = {i.name for i in st.match(index_pattern)} if index_pattern != "*" else set(st.indices)
            out: dict = {}
            for alias, members in st.aliases.items():
                if not any(fnmatch.fnmatchcase(alias, p) for p in alias_pattern.split(",")):
                    continue
                for n, opts in members.items():
                    if n in wanted:
                        a = {"is_write_index": True} if opts.get("is_write_index") else {}
                        out.setdefault(n, {"aliases": {}})["aliases"][alias] = a
            if not out and alias_pattern != "*":
                return 404, ({"error": "alias [%s] missing" % alias_pattern, "status": 404}
                             if method == "GET" else None)
            if method == "HEAD":
                return 200, None
            if index_pattern == "*" and alias_pattern == "*":
                for n in st.indices:
                    out.setdefault(n, {"aliases": {}})
            return 200, out

    def _rollover(self, target: str):
        """``POST /<alias or data stream>/_rollover``: a new write index (suffix + 1)."""
        with self.store.lock:
            st = self.store
            ds = st.data_streams.get(target)
            if ds is not None:
                ds["generation"] += 1
                new = ".ds-%s-%s-%06d" % (target, time.strftime("%Y.%m.%d", time.gmtime()), ds["generation"])
                old = ds["indices"][-1]
                st.index(new)
                ds["indices"].append(new)
                return 200, {"acknowledged": True, "shards_acknowledged": True, "old_index": old,
                             "new_index": new, "rolled_over": True, "dry_run": False, "conditions": {}}
            members = st.aliases.get(target)
            if not members:
                return 400, _error(400, "illegal_argument_exception",
                                   "rollover target [%s] does not exist" % target)
            writers = [n for n, a in members.items() if a.get("is_write_index")] or (
                list(members) if len(members) == 1 else [])
            if len(writers) != 1:
                return 400, _error(400, "illegal_argument_exception",
                                   "rollover target [%s] does not point to a write index" % target)
            old = writers[0]
            m = re.search(r"-(\d+)$", old)
            if not m:
                return 400, _error(400, "illegal_argument_exception",
                                   "index name [%s] does not match pattern '^.*-\\d+$'" % old)
            new = "%s-%0*d" % (old[:m.start()], len(m.group(1)), int(m.group(1)) + 1)
            st.index(new)
            members[old] = {"is_write_index": False}
            members[new] = {"is_write_index": True}
            return 200, {"acknowledged": True, "shards_acknowledged": True, "old_index": old, "new_index": new,
                         "rolled_over": True, "dry_run": False, "conditions": {}}

    def _data_stream(self, method: str, name: str):
        with self.store.lock:
            st = self.store
            if method == "PUT":
                if name in st.data_streams:
                    return 400, _error(400, "resource_already_exists_exception",
                                       "data_stream [%s] already exists" % name)
                tpl = st.template_for(name)
                if tpl is None or "data_stream" not in tpl[1]:
                    return 400, _error(400, "illegal_argument_exception",
                                       "no matching index template found for data stream [%s]" % name)
                st.new_data_stream(name, tpl[0])
                return 200, {"acknowledged": True}
            found = [n for n in st.data_streams if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
            if not found and "*" not in name:
                return 404, _error(404, "index_not_found_exception", "no such index [%s]" % name,
                                   index=name)
            if method == "DELETE":
                for n in found:
                    for i in st.data_streams.pop(n)["indices"]:
                        st.indices.pop(i, None)
                return 200, {"acknowledged": True}
            if method == "GET":
                out = []
                for n in found:
                    info = st.data_streams[n]
                    tpl = st.templates.get(info["template"], {})
                    policy = (((tpl.get("template") or {}).get("settings") or {}).get("index") or {}).get(
                        "lifecycle", {}).get("name")
                    d = {"name": n, "timestamp_field": {"name": "@timestamp"},
                         "indices": [{"index_name": i, "index_uuid": "uuid-" + i} for i in info["indices"]],
                         "generation": info["generation"], "status": "GREEN", "template": info["template"],
                         "hidden": False, "system": False, "allow_custom_routing": False, "replicated": False}
                    if policy:
                        d["ilm_policy"] = policy
                    out.append(d)
                return 200, {"data_streams": out}
        return 405, _error(405, "method_not_allowed", method)

    def _named(self, table: dict, what: str, method: str, name: str, body: bytes, render):
        with self.store.lock:
            if method == "PUT" or method == "POST":
                table[name] = json.loads(body)
                return 200, {"acknowledged": True}
            if name not in table:
                return 404, _error(404, "resource_not_found_exception", "%s [%s] not found" % (what, name))
            if method == "GET":
                return 200, render(name, table[name])
            if method == "HEAD":
                return 200, None
            if method == "DELETE":
                del table[name]
                return 200, {"acknowledged": True}
        return 405, _error(405, "method_not_allowed", method)

    def _query(self, pattern: str, body: bytes) -> list[tuple[str, str, dict]]:
        q = (json.loads(body) if body else {}).get("query") or {"match_all": {}}
        hits = [(i.name, k, _src(d)) for i in self.store.match(pattern) for k, d in i.docs.items()]
        if "match_all" in q:
            return hits
        if "ids" in q:
            want = set(q["ids"]["values"])
            return [h for h in hits if h[1] in want]
        if "term" in q and "_id" in q["term"]:
            v = q["term"]["_id"]
            v = v.get("value") if isinstance(v, dict) else v
            return [h for h in hits if h[1] == v]
        raise ValueError("query not supported by the test server: %s" % list(q))

    # -- bulk -----------------------------------------------------------------
    def _bulk(self, default_index: str | None, params: dict, body: bytes):
        raw_lines = [x for x in body.split(b"\n") if x.strip()]
        if not self.check_mappings:
            parsed = self._sink_lines(raw_lines)
        else:
            try:                              # one parse for the whole body (fast path)
                whole = b"[" + b",".join(raw_lines) + b"]"
                parsed = orjson.loads(whole) if orjson is not None else json.loads(whole)
            except ValueError:
                parsed = [json.loads(x) for x in raw_lines]   # raises on the bad line
        if len(parsed) != len(raw_lines):
            raise ValueError("malformed NDJSON body")
        lines = iter(parsed)
        items = []
        drop = False
        with self.store.lock:
            self.store.last_bulk = (dict(params), [])        # (query params, action metadata) of the last bulk
            if self.faults.drop_bulk > 0:
                self.faults.drop_bulk -= 1
                drop = True
            for action in lines:
                if not isinstance(action, dict) or len(action) != 1:
                    raise ValueError("malformed action/metadata line")
                (op, meta), = action.items()
                if op not in ("index", "create", "update", "delete"):
                    raise ValueError("unknown action [%s]" % op)
                source = None
                if op != "delete":
                    source = next(lines, None)
                    if not isinstance(source, (dict, _Raw)):
                        raise ValueError("action [%s] needs a source line" % op)
                self.store.last_bulk[1].append((op, meta))
                items.append({op: self._apply(op, meta, source, default_index)})
                self.store.bulk_items += 1
        if drop:
            raise _DropConnection()
        errors = any(v["status"] >= 300 for it in items for v in it.values())
        return 200, {"took": 1, "errors": errors, "items": items}

    @staticmethod
    def _sink_lines(raw_lines: list[bytes]) -> list:
        """Sink mode (``check_mappings=False``, the benchmark): the action lines are
        parsed, each index/create source is kept as its bytes (checked to be one
        JSON object at its ends, parsed when something reads it)."""
        loads = orjson.loads if orjson is not None else json.loads
        out: list = []
        it = iter(raw_lines)
        for line in it:
            action = loads(line)
            out.append(action)
            if isinstance(action, dict) and len(action) == 1:
                op = next(iter(action))
                if op in ("index", "create"):
                    src = next(it, None)
                    if src is None:
                        break
                    src = src.strip()
                    if not (src.startswith(b"{") and src.endswith(b"}")):
                        raise ValueError("action [%s] needs a source line" % op)
                    out.append(_Raw(src))
                elif op == "update":
                    src = next(it, None)
                    if src is not None:
                        out.append(loads(src))
        return out

    def _apply(self, op: str, meta: dict, source: dict | None, default_index: str | None) -> dict:
        name = meta.get("_index") or default_index
        if not name:
            return {"status": 400, "error": {"type": "action_request_validation_exception",
                                             "reason": "Validation Failed: 1: index is missing;"}}
        if op == "index" and meta.get("op_type") == "create":
            op = "create"
        doc_id = meta.get("_id")
        res = {"_index": name, "_id": doc_id}
        if op in ("index", "create") and self.faults.reject_429 and self._rng.random() < self.faults.reject_429:
            res.update(status=429, error={"type": "es_rejected_execution_exception",
                                          "reason": "rejected execution (injected)"})
            return res
        idx, err, in_stream = self.store.write_index(date_math(name))
        if err is not None:
            res.update(status=400, error=err)
            return res
        res["_index"] = idx.name
        if type(source) is _Raw and in_stream:
            source = _src(bytes(source))
        if in_stream:
            if op != "create":
                res.update(status=400, error={
                    "type": "illegal_argument_exception",
                    "reason": "only write ops with an op_type of create are allowed in data streams"})
                return res
            if "@timestamp" not in source:
                res.update(status=400, error={
                    "type": "document_parsing_exception",
                    "reason": "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing"})
                return res
        if op in ("index", "create"):
            if doc_id is None:
                doc_id = res["_id"] = uuid.uuid4().hex[:20]
            if op == "create" and doc_id in idx.docs:
                res.update(status=409, error={
                    "type": "version_conflict_engine_exception",
                    "reason": "[%s]: version conflict, document already exists (current version [%d])"
                              % (doc_id, idx.versions[doc_id]), "index": name})
                return res
            reason = self.store.check_mapping(idx, source) if self.check_mappings else ""
            if reason:
                res.update(status=400, error={"type": "mapper_parsing_exception", "reason": reason})
                return res
            existed = doc_id in idx.docs
            idx.docs[doc_id] = bytes(source) if type(source) is _Raw else source
            idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1
            idx.seq += 1
            res.update(_version=idx.versions[doc_id], result="updated" if existed else "created",
                       status=200 if existed else 201, _seq_no=idx.seq, _primary_term=1,
                       _shards={"total": 1, "successful": 1, "failed": 0})
            return res
        if doc_id is None:
            res.update(status=400, error={"type": "action_request_validation_exception",
                                          "reason": "Validation Failed: 1: id is missing;"})
            return res
        if op == "delete":
            if doc_id not in idx.docs:
                res.update(status=404, result="not_found", _version=idx.versions.get(doc_id, 0) + 1)
                return res
            del idx.docs[doc_id]
            idx.versions[doc_id] += 1
            res.update(status=200, result="deleted", _version=idx.versions[doc_id])
            return res
        # update
        doc = source.get("doc") or {}
        if doc_id not in idx.docs:
            upsert = doc if source.get("doc_as_upsert") else source.get("upsert")
            if upsert is None:
                res.update(status=404, error={"type": "document_missing_exception",
                                              "reason": "[%s]: document missing" % doc_id, "index": name})
                return res
            new = dict(upsert)
        else:
            new = _deep_merge(dict(_src(idx.docs[doc_id])), doc)
        reason = self.store.check_mapping(idx, new)
        if reason:
            res.update(status=400, error={"type": "mapper_parsing_exception", "reason": reason})
            return res
        existed = doc_id in idx.docs
        idx.docs[doc_id] = new
        idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1
        res.update(status=200 if existed else 201, result="updated" if existed else "created",
                   _version=idx.versions[doc_id])
        return res


def _deep_merge(dst: dict, src: dict) -> dict:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            dst[k] = _deep_merge(dict(dst[k]), v)
        else:
            dst[k] = v
    return dst

