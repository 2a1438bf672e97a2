"""Where the Elasticsearch tests send their documents: the test server, or a real cluster.

Without ``ES_URL`` every test gets its own :class:`tests.esserver.EsServer`.
With ``ES_URL=http://user:pass@host:9200`` (``ES_CA_CERTS`` for a private CA
over https) the same tests run against that cluster:

- tests that need no fault get a :class:`RealCluster`: packetbeat talks to
  the cluster itself;
- tests that inject faults (refusal, 429 on some items, 500, delays,
  dropped connections) get a :class:`FaultProxy`: the test server's HTTP
  front (same ``faults``, ``refuse_for``, ``stop``/``start``) forwarding each
  request to the cluster; for ``_bulk`` it answers the items it rejects with
  429 itself and forwards the others, then merges the answers in order.

All three have the same inspection API (``url``, ``docs``, ``count``,
``templates``, ``policies``, ``data_streams``, ``alias``, ``bulk_items``) and a
``prefix``: tests name their indices, templates, policies and aliases with it,
and what carries it is deleted from a real cluster at the end.

    with es_target(faults=True) as es: ...
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.parse
import uuid

from tests.esserver import EsServer, _DropConnection

ES_URL = os.environ.get("ES_URL", "")


class RealCluster:
    """A cluster at ``url`` (credentials in the URL), spoken to with urllib3."""

    def __init__(self, url: str):
        import urllib3
        parts = urllib.parse.urlsplit(url)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username:
            token = "%s:%s" % (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
            self.headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        netloc = parts.hostname + (":%d" % parts.port if parts.port else "")
        self.base = "%s://%s%s" % (parts.scheme, netloc, parts.path.rstrip("/"))
        self.url = url.rstrip("/")
        ca = os.environ.get("ES_CA_CERTS")
        self.http = urllib3.PoolManager(maxsize=8, ca_certs=ca) if ca else urllib3.PoolManager(maxsize=8)
        self.prefix = ""

    def raw(self, method: str, path: str, params: dict | None = None, body: bytes = b"",
            content_type: str = "application/json"):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        headers = dict(self.headers, **{"Content-Type": content_type})
        r = self.http.request(method, url, body=body or None, headers=headers, timeout=60.0, retries=False)
        data = r.data
        return r.status, (json.loads(data) if data and method != "HEAD" else None)

    def _json(self, method: str, path: str, obj=None, **params):
        status, resp = self.raw(method, path, params, json.dumps(obj).encode() if obj is not None else b"")
        return status, resp

    # -- inspection (EsServer's API) ------------------------------------------------
    bulk_items = 0          # not known for a cluster; FaultProxy counts what passes it

    def docs(self, pattern: str = "*") -> dict[tuple[str, str], dict]:
        """Every document of ``pattern`` (at most 10000, the default result window)."""
        self._json("POST", "/%s/_refresh" % pattern, ignore_unavailable="true", allow_no_indices="true")
        status, resp = self._json("POST", "/%s/_search" % pattern,
                                  {"size": 10000, "track_total_hits": True, "query": {"match_all": {}}},
                                  ignore_unavailable="true", allow_no_indices="true")
        if status != 200:
            raise AssertionError("search %s: %s %s" % (pattern, status, resp))
        hits = resp["hits"]
        if hits["total"]["value"] > len(hits["hits"]):
            raise AssertionError("more than %d documents in %s" % (len(hits["hits"]), pattern))
        return {(h["_index"], h["_id"]): h["_source"] for h in hits["hits"]}

    def count(self, pattern: str = "*") -> int:
        self._json("POST", "/%s/_refresh" % pattern, ignore_unavailable="true", allow_no_indices="true")
        status, resp = self._json("GET", "/%s/_count" % pattern, ignore_unavailable="true",
                                  allow_no_indices="true")
        return resp["count"] if status == 200 else 0

    def templates(self) -> dict[str, dict]:
        status, resp = self._json("GET", "/_index_template")
        return {t["name"]: t["index_template"] for t in resp.get("index_templates", [])}

    def policies(self) -> dict[str, dict]:
        status, resp = self._json("GET", "/_ilm/policy")
        return {n: v["policy"] for n, v in resp.items()}

    def data_streams(self) -> dict[str, list[str]]:
        status, resp = self._json("GET", "/_data_stream/*")
        return {d["name"]: [i["index_name"] for i in d["indices"]] for d in resp.get("data_streams", [])}

    def alias(self, name: str) -> dict[str, bool]:
        status, resp = self._json("GET", "/_alias/%s" % urllib.parse.quote(name, safe=""))
        if status != 200:
            return {}
        return {i: bool(v["aliases"][name].get("is_write_index")) for i, v in resp.items()}

    def cleanup(self, prefix: str) -> None:
        """Delete the data streams, indices, templates and policies named ``prefix*``
        (each by its name: clusters refuse wildcard deletes by default)."""
        if not prefix:
            return
        for ds in self.data_streams():
            if ds.startswith(prefix):
                self._json("DELETE", "/_data_stream/%s" % ds)
        status, resp = self._json("GET", "/_cat/indices/%s*" % prefix, format="json", h="index",
                                  expand_wildcards="all")
        for row in (resp if status == 200 and resp else []):
            self._json("DELETE", "/%s" % row["index"])
        for name in self.templates():
            if name.startswith(prefix):
                self._json("DELETE", "/_index_template/%s" % name)
        for name in self.policies():
            if name.startswith(prefix):
                self._json("DELETE", "/_ilm/policy/%s" % name)


class FaultProxy(EsServer):
    """The test server's front (faults, refusal) forwarding to a RealCluster."""

    def __init__(self, upstream: RealCluster):
        super().__init__()
        self.upstream = upstream
        self._items = 0

    @property
    def bulk_items(self) -> int:
        return self._items

    def route(self, method: str, parts: list[str], params: dict, body: bytes):
        path = "/" + "/".join(urllib.parse.quote(p, safe=",*") for p in parts)
        if parts and parts[-1] == "_bulk" and method in ("POST", "PUT"):
            return self._forward_bulk(path, params, body)
        return self.upstream.raw(method, path, params, body)

    def _forward_bulk(self, path: str, params: dict, body: bytes):
        lines = [x for x in body.split(b"\n") if x.strip()]
        ops: list[list[bytes]] = []
        i = 0
        while i < len(lines):
            (op, _), = json.loads(lines[i]).items()
            n = 1 if op == "delete" else 2
            ops.append(lines[i:i + n])
            i += n
        keep, answers = [], [None] * len(ops)
        with self.store.lock:
            drop = self.faults.drop_bulk > 0
            if drop:
                self.faults.drop_bulk -= 1
            for pos, op in enumerate(ops):
                (name, meta), = json.loads(op[0]).items()
                if (name in ("index", "create") and self.faults.reject_429
                        and self._rng.random() < self.faults.reject_429):
                    answers[pos] = {name: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429,
                                           "error": {"type": "es_rejected_execution_exception",
                                                     "reason": "rejected execution (injected by the proxy)"}}}
                else:
                    keep.append(pos)
            self._items += len(ops)
        took = 0
        if keep:
            fwd = b"\n".join(x for pos in keep for x in ops[pos]) + b"\n"
            status, resp = self.upstream.raw("POST", path, params, fwd, "application/x-ndjson")
            if status != 200:
                return status, resp
            for pos, item in zip(keep, resp["items"]):
                answers[pos] = item
            took = resp.get("took", 0)
        if drop:
            raise _DropConnection()
        errors = any(v["status"] >= 300 for it in answers for v in it.values())
        return 200, {"took": took, "errors": errors, "items": answers}

    # inspection: the cluster's
    def docs(self, pattern: str = "*"):
        return self.upstream.docs(pattern)

    def count(self, pattern: str = "*") -> int:
        return self.upstream.count(pattern)

    def templates(self):
        return self.upstream.templates()

    def policies(self):
        return self.upstream.policies()

    def data_streams(self):
        return self.upstream.data_streams()

    def alias(self, name: str):
        return self.upstream.alias(name)


@contextlib.contextmanager
def es_target(faults: bool = False):
    """The test server, or with ES_URL the cluster (behind a FaultProxy when
    ``faults``); ``.prefix`` names what the test creates."""
    prefix = "pbt%s" % uuid.uuid4().hex[:8]
    if not ES_URL:
        with EsServer() as es:
            es.prefix = prefix
            yield es
        return
    real = RealCluster(ES_URL)
    target = FaultProxy(real).start() if faults else real
    target.prefix = prefix
    try:
        yield target
    finally:
        if faults:
            target.__exit__(None, None, None)
        real.cleanup(prefix)
