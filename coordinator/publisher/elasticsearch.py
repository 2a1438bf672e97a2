"""``output.elasticsearch``: bulk indexing through the official client, idempotently.

Every event is written with ``op_type: create`` and a deterministic ``_id``
(:func:`event_id`: sha1 of the event's origin and of the JSON text the worker
sent, which has none of the publisher's keys, so it does not change when the
publisher restarts). A retry after a timeout, a dropped connection or a
publisher crash therefore never makes a duplicate: Elasticsearch answers 409
for an id it already holds, and 409 on create counts as success. ``create``
is also the only operation a data stream takes.

``publish_encoded(items)`` sends ``(index, id, line)`` items, already
encoded: the ``_bulk`` body is built by concatenation (each action line from
its parts, each source line as it is) and sent with the client's
``perform_request`` (its node pool, retries off, serializer untouched);
building it through ``elasticsearch.helpers.streaming_bulk`` cost a dict and a
serialization per action, more than everything else of the output. The
per-item results are read in order:

- 2xx, and 409 on create: done;
- 429, 5xx and transport errors (refused, timeout, dropped connection): only
  those items are sent again, with capped exponential backoff
  (``backoff.init`` doubling to ``backoff.max``), at most ``max_retries``
  times in one call; items still failing come back as
  ``Result(ok=False, retry=True)`` and the caller (the spool) keeps them;
- other 4xx (mapping errors...): logged with the document's key fields,
  counted in ``stats.errors`` and returned as ``Result(ok=False)``; they are
  not retried.

Items that succeeded are never sent again. Several ``hosts`` are load
balanced by the client's node pool, which backs failed hosts off
(``dead_node_backoff_factor``/``max_dead_node_backoff``). ``worker`` > 1 sends
that many bulk requests per host at once. ``compression_level`` > 0 gzips
request bodies at that level (through a node class: the client's own
``http_compress`` is fixed at level 9).

``index`` is expanded per event: ``%{[a.b]}`` is the event's field,
``%{+yyyy.MM.dd}`` (any of ``yyyy``, ``MM``, ``dd``, ``HH``) the UTC date of
its ``@timestamp``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.publisher.outputs import OK, EncodeError, OutputStats, Result, encode_event
from shared.confutil import ConfigError, Duration

log = logging.getLogger("packetbeat.output.elasticsearch")

# Packetbeat 8's: the data stream packetbeat-<version> (coordinator/setup.py loads its
# index template and ILM policy when the output first connects)
DEFAULT_INDEX = "packetbeat-%{[agent.version]}"


# --- configuration -----------------------------------------------------------

def check_http_client(cfg, path: str) -> None:
    """The options an HTTP client section shares (Elasticsearch output, setup.kibana):
    ``protocol``, ``path`` (a leading / added), ``username``/``password``, ``api_key``."""
    if cfg.protocol not in ("", "http", "https"):
        raise ConfigError(path + ".protocol", "must be http or https, got %r" % cfg.protocol)
    if cfg.path and not cfg.path.startswith("/"):
        cfg.path = "/" + cfg.path
    if cfg.password and not cfg.username:
        raise ConfigError(path + ".password", "a password needs a username")
    if cfg.api_key and cfg.username:
        raise ConfigError(path + ".api_key", "use either api_key or username/password, not both")
    if cfg.api_key and ":" not in cfg.api_key:
        raise ConfigError(path + ".api_key", "expected id:api_key")


@dataclasses.dataclass
class SslConfig:
    enabled: bool = True
    certificate_authorities: list[str] = dataclasses.field(default_factory=list)
    verification_mode: str = "full"        # full | strict | certificate | none

    def validate(self, path: str) -> None:
        if self.verification_mode not in ("full", "strict", "certificate", "none"):
            raise ConfigError(path + ".verification_mode",
                              "must be full, strict, certificate or none, got %r" % self.verification_mode)


@dataclasses.dataclass
class BackoffConfig:
    init: Duration = Duration(1.0)
    max: Duration = Duration(60.0)


# output.elasticsearch.preset (libbeat 8.12+, config_presets.go and the output's documentation):
# a preset other than custom sets these, over what the configuration says (a warning names the
# user's settings it replaced, see presets_overrides); "queue" is the memory queue
# (queue.mem.events, queue.mem.flush.min_events, queue.mem.flush.timeout), which replaces a
# configured queue.mem (a configured queue.disk is kept: see docs/elasticsearch.md).
PRESETS: dict[str, dict] = {
    "custom": {},
    "balanced": {"bulk_max_size": 1600, "worker": 1, "compression_level": 1, "idle_connection_timeout": 3.0,
                 "queue": {"mem": {"events": 3200, "flush": {"min_events": 1600, "timeout": 10.0}}}},
    "throughput": {"bulk_max_size": 1600, "worker": 4, "compression_level": 1, "idle_connection_timeout": 15.0,
                   "queue": {"mem": {"events": 12800, "flush": {"min_events": 1600, "timeout": 5.0}}}},
    "scale": {"bulk_max_size": 1600, "worker": 1, "compression_level": 1, "idle_connection_timeout": 1.0,
              "backoff": {"init": 5.0, "max": 300.0},
              "queue": {"mem": {"events": 3200, "flush": {"min_events": 1600, "timeout": 20.0}}}},
    "latency": {"bulk_max_size": 50, "worker": 1, "compression_level": 1, "idle_connection_timeout": 60.0,
                "queue": {"mem": {"events": 4100, "flush": {"min_events": 2050, "timeout": 1.0}}}},
}


def _flat(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out += _flat(v, prefix + k + ".")
        else:
            out.append(prefix + k)
    return out


def preset_overrides(preset: str, user: dict) -> list[str]:
    """The keys of the user's ``output.elasticsearch`` mapping (nested form) that
    ``preset`` replaces: any of its keys, and with it every ``queue.*`` key."""
    keys = set(_flat(PRESETS.get(preset) or {}))
    return sorted(k for k in _flat(user or {})
                  if k in keys or (k.startswith("queue.") and any(p.startswith("queue.") for p in keys)))


@dataclasses.dataclass
class ElasticsearchConfig:
    enabled: bool = True
    hosts: list[str] = dataclasses.field(default_factory=lambda: ["localhost:9200"])
    protocol: str = ""
    path: str = ""
    username: str = ""
    password: str = ""
    api_key: str = ""
    ssl: SslConfig = dataclasses.field(default_factory=SslConfig)
    index: str = DEFAULT_INDEX
    bulk_max_size: int = 1600
    worker: int = 1
    compression_level: int = 1
    timeout: Duration = Duration(90.0)
    backoff: BackoffConfig = dataclasses.field(default_factory=BackoffConfig)
    max_retries: int = 3
    pipeline: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    preset: str = "custom"
    idle_connection_timeout: Duration = Duration(3.0)   # 0: idle connections stay open
    queue: dict[str, Any] = dataclasses.field(default_factory=dict)   # the output's own queue (mem or disk)

    def validate(self, path: str) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(path + ".preset", "unknown preset %r (known: %s)"
                              % (self.preset, ", ".join(sorted(PRESETS))))
        for key, value in PRESETS[self.preset].items():
            if key == "backoff":
                self.backoff = BackoffConfig(Duration(value["init"]), Duration(value["max"]))
            elif key == "queue":
                self.queue = json.loads(json.dumps(value))
            elif key == "idle_connection_timeout":
                self.idle_connection_timeout = Duration(value)
            else:
                setattr(self, key, value)
        if self.idle_connection_timeout < 0:
            raise ConfigError(path + ".idle_connection_timeout", "must not be negative")
        if self.queue:
            from coordinator.publisher.memqueue import check_queue
            check_queue(self.queue, path + ".queue")
        if not self.hosts:
            raise ConfigError(path + ".hosts", "at least one host is required")
        for i, h in enumerate(self.hosts):
            if not h or " " in h:
                raise ConfigError("%s.hosts[%d]" % (path, i), "not a host: %r" % h)
            if "://" in h and not h.startswith(("http://", "https://")):
                raise ConfigError("%s.hosts[%d]" % (path, i), "scheme must be http or https: %r" % h)
        check_http_client(self, path)
        if not self.index:
            raise ConfigError(path + ".index", "must not be empty")
        try:
            IndexFormat(self.index)
        except ValueError as e:
            raise ConfigError(path + ".index", str(e)) from None
        if self.bulk_max_size < 0:
            raise ConfigError(path + ".bulk_max_size", "must not be negative")
        if not 1 <= self.worker <= 64:
            raise ConfigError(path + ".worker", "must be between 1 and 64")
        if not 0 <= self.compression_level <= 9:
            raise ConfigError(path + ".compression_level", "must be between 0 and 9")
        if self.timeout <= 0:
            raise ConfigError(path + ".timeout", "must be positive")
        if self.backoff.init <= 0:
            raise ConfigError(path + ".backoff.init", "must be positive")
        if self.backoff.max < self.backoff.init:
            raise ConfigError(path + ".backoff.max", "must be at least backoff.init")
        if self.max_retries < 0:
            raise ConfigError(path + ".max_retries", "must not be negative")


# --- index names -----------------------------------------------------------------

_FIELD = re.compile(r"%\{\[([^\]]+)\]\}|%\{\+([^}]+)\}")
_DATE_TOKENS = {"yyyy": (0, 4), "MM": (5, 7), "dd": (8, 10), "HH": (11, 13)}
_DATE_TOKEN = re.compile(r"yyyy|MM|dd|HH")


class IndexFormat:
    """``index`` option expansion for one event; ValueError on a bad format."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self._parts: list[tuple[str, object]] = []
        pos = 0
        for m in _FIELD.finditer(fmt):
            if m.start() > pos:
                self._parts.append(("lit", fmt[pos:m.start()]))
            if m.group(1):
                self._parts.append(("field", m.group(1).split(".")))
            else:
                date = m.group(2)
                if not _DATE_TOKEN.search(date):
                    raise ValueError("date format %r has none of yyyy, MM, dd, HH" % date)
                pieces: list = []          # literal text and (start, end) slices of @timestamp
                at = 0
                for t in _DATE_TOKEN.finditer(date):
                    if t.start() > at:
                        pieces.append(date[at:t.start()])
                    pieces.append(_DATE_TOKENS[t.group()])
                    at = t.end()
                if at < len(date):
                    pieces.append(date[at:])
                self._parts.append(("date", pieces))
            pos = m.end()
        rest = fmt[pos:]
        if "%{" in rest:
            raise ValueError("unterminated or unknown %%{...} in %r" % fmt)
        if rest:
            self._parts.append(("lit", rest))
        self.static = all(k == "lit" for k, _ in self._parts)
        self._dotted = [".".join(v) if k == "field" else None for k, v in self._parts]
        self._cache: dict = {}

    def __call__(self, event: dict) -> str:
        if self.static:
            return self.fmt
        out = []
        for kind, val in self._parts:
            if kind == "lit":
                out.append(val)
            elif kind == "field":
                v = event
                for k in val:
                    v = v.get(k) if isinstance(v, dict) else None
                if v is None:
                    raise KeyError("index: event has no field %s" % ".".join(val))
                out.append(str(v))
            else:
                ts = event.get("@timestamp")
                if not isinstance(ts, str) or len(ts) < 13:
                    raise KeyError("index: event has no @timestamp")
                for p in val:
                    out.append(p if type(p) is str else ts[p[0]:p[1]])
        return "".join(out).lower()


    def from_line(self, line: bytes, known: dict | None = None) -> str:
        """The index of the event whose JSON text is ``line``: fields from
        ``known`` (dotted name -> value, e.g. the enricher's agent.version),
        the date from a leading ``@timestamp`` (every event of ours starts with
        it); anything else decodes the line. KeyError as ``__call__``."""
        if self.static:
            return self.fmt
        key = None
        if line.startswith(b'{"@timestamp":"'):      # the name depends on the hour at most: cached
            key = line[15:28]
            hit = self._cache.get(key)
            if hit is not None and hit[0] is known:
                return hit[1]
        out = []
        ev = None
        for (kind, val), dotted in zip(self._parts, self._dotted):
            if kind == "lit":
                out.append(val)
            elif kind == "field":
                v = known.get(dotted) if known else None
                if v is None:
                    if ev is None:
                        ev = _loads(line)
                    v = ev
                    for k in val:
                        v = v.get(k) if isinstance(v, dict) else None
                    if v is None:
                        raise KeyError("index: event has no field %s" % dotted)
                out.append(str(v))
            else:
                if line.startswith(b'{"@timestamp":"'):
                    ts = line[15:line.find(b'"', 15)].decode("utf-8", "replace")
                else:
                    if ev is None:
                        ev = _loads(line)
                    ts = ev.get("@timestamp")
                if not isinstance(ts, str) or len(ts) < 13:
                    raise KeyError("index: event has no @timestamp")
                for p in val:
                    out.append(p if type(p) is str else ts[p[0]:p[1]])
        name = "".join(out).lower()
        if key is not None and ev is None:     # nothing came from this event but its date
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = (known, name)      # holding known: its identity stays its own
        return name


# --- ids -----------------------------------------------------------------------

def _metadata(doc_id: str, line: bytes, index: str = "") -> tuple[str, bytes, str, str]:
    """An event's ``@metadata`` (set by processors: add_id, decode_json_fields'
    document_id, ...; by a protocol's ``index`` and ``pipeline`` options) is not
    part of the document, as in libbeat: its ``_id`` becomes the document id,
    ``raw_index`` the index and ``pipeline`` the ingest pipeline, and the rest is
    left out. -> (doc_id, line, index, pipeline or "")."""
    try:
        ev = json.loads(line)
    except ValueError:
        return doc_id, line, index, ""
    meta = ev.pop("@metadata", None) if isinstance(ev, dict) else None
    if meta is None:
        return doc_id, line, index, ""
    pipeline = ""
    if isinstance(meta, dict):
        if isinstance(meta.get("_id"), str) and meta["_id"]:
            doc_id = meta["_id"]
        if isinstance(meta.get("raw_index"), str) and meta["raw_index"]:
            index = meta["raw_index"]
        if isinstance(meta.get("pipeline"), str) and meta["pipeline"]:
            pipeline = meta["pipeline"].lower()
    return doc_id, encode_event(ev), index, pipeline


def event_id(origin: str, line: bytes, ephemeral_id: str = "") -> str:
    """Deterministic document id: sha1 over the origin (e.g. ``worker-0:17:3``)
    and the event's JSON text with its ``agent.ephemeral_id`` value blanked
    (that one changes when the publisher restarts)."""
    h = hashlib.sha1(origin.encode())
    h.update(b"\0")
    h.update(line.replace(ephemeral_id.encode(), b"") if ephemeral_id else line)
    return h.hexdigest()


_PLAIN = re.compile(rb'[^"\\\x00-\x1f\x7f-\xff]*')


def _json_str(value: str) -> bytes:
    """``value`` as a JSON string (index names and ids are plain ASCII: fast path)."""
    raw = value.encode()
    if _PLAIN.fullmatch(raw):
        return b'"' + raw + b'"'
    return json.dumps(value, ensure_ascii=False).encode()


# --- output --------------------------------------------------------------------

UNREACHABLE = -1       # _bulk's status of an item whose request got no usable answer

_KEY_FIELDS = ("@timestamp", "type", "status", "source.ip", "source.port", "destination.ip",
               "destination.port")


def _key_fields(event: dict) -> str:
    out = []
    for f in _KEY_FIELDS:
        v = event
        for k in f.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            out.append("%s=%s" % (f, v))
    return " ".join(out)


def _loads(line: bytes) -> dict:
    try:
        ev = json.loads(line)
    except ValueError:
        return {}
    return ev if isinstance(ev, dict) else {}


def _host_url(host: str, cfg: ElasticsearchConfig) -> str:
    if "://" not in host:
        scheme = cfg.protocol or "http"
        host = "%s://%s" % (scheme, host)
    if ":" not in host.split("://", 1)[1].split("/", 1)[0]:
        host = host.rstrip("/") + ":9200"
    if cfg.path and host.count("/") == 2:
        host += cfg.path
    return host


def _node_class(level: int):
    """The client's urllib3 node, gzipping request bodies at ``level`` (0: not
    at all; the client's own http_compress always uses level 9, several times
    slower), naming itself in the transport errors it raises (``pb_node``:
    :func:`describe_error`) and able to close its idle connections
    (``idle_connection_timeout``)."""
    import gzip
    import queue as queue_mod

    from elastic_transport import HttpHeaders, TransportError, Urllib3HttpNode

    class PacketbeatNode(Urllib3HttpNode):
        last_used = 0.0

        def perform_request(self, method, target, body=None, headers=None, **kw):
            if body and level:
                body = gzip.compress(body, compresslevel=level)
                headers = HttpHeaders(headers or {})
                headers["content-encoding"] = "gzip"
            try:
                return super().perform_request(method, target, body, headers, **kw)
            except TransportError as e:
                e.pb_node = self.base_url
                raise
            finally:
                self.last_used = time.monotonic()

        def close_idle(self, timeout: float) -> int:
            """Close the pooled connections when none was used for ``timeout`` s."""
            if not self.last_used or time.monotonic() - self.last_used < timeout:
                return 0
            q = getattr(self.pool, "pool", None)
            closed = 0
            if q is None:
                return 0
            for _ in range(q.qsize()):
                try:
                    conn = q.get(block=False)
                except queue_mod.Empty:
                    break
                if conn is not None and getattr(conn, "sock", None) is not None:
                    conn.close()          # urllib3 opens it again when it is next used
                    closed += 1
                q.put(conn)
            return closed

    return PacketbeatNode


def node_url(node) -> str:
    """``scheme://host:port[/path]`` of a client NodeConfig (an ApiError's meta.node)."""
    try:
        return "%s://%s:%s%s" % (node.scheme, node.host, node.port, node.path_prefix or "")
    except AttributeError:
        return "?"


def describe_error(e: BaseException, host: str = "") -> str:
    """``Elasticsearch at URL: cause`` for a transport error: the node that failed
    (or ``host``) and the root cause in words (refused, unresolvable name,
    timeout, TLS, reset), not the client's nested exception text."""
    import socket
    import ssl

    from elastic_transport import ConnectionTimeout
    url = getattr(e, "pb_node", "") or host
    cause = None
    seen = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        if isinstance(c, OSError):
            cause = c
        c = c.__cause__ or c.__context__
    if isinstance(e, ConnectionTimeout) or isinstance(cause, (TimeoutError, socket.timeout)):
        why = "no answer in time (output.elasticsearch.timeout)"
    elif isinstance(cause, ConnectionRefusedError):
        why = "connection refused (is Elasticsearch running and listening there?)"
    elif isinstance(cause, socket.gaierror):
        why = "cannot resolve the host name (%s)" % (cause.strerror or cause)
    elif isinstance(cause, ssl.SSLError):
        why = "TLS error: %s (see output.elasticsearch.ssl)" % (getattr(cause, "reason", None) or cause)
    elif isinstance(cause, ConnectionResetError):
        why = "connection reset by the server"
    elif cause is not None:
        why = cause.strerror or str(cause)
    else:
        why = str(e) or type(e).__name__
    return "Elasticsearch at %s: %s" % (url or "?", why)


def make_client(cfg: ElasticsearchConfig):
    from elasticsearch import Elasticsearch
    kw: dict = {
        "hosts": [_host_url(h, cfg) for h in cfg.hosts],
        "request_timeout": float(cfg.timeout),
        "max_retries": 0,                 # retries are ours, per item
        "retry_on_timeout": False,
        "http_compress": False,           # gzip at compression_level: _node_class
        "connections_per_node": max(10, cfg.worker * 2),
        "dead_node_backoff_factor": float(cfg.backoff.init),
        "max_dead_node_backoff": float(cfg.backoff.max),
    }
    try:                                   # orjson: ~10x faster action lines and responses
        from elasticsearch.serializer import OrjsonSerializer
        kw["serializer"] = OrjsonSerializer()
    except ImportError:
        pass
    kw["node_class"] = _node_class(cfg.compression_level)
    if cfg.headers:
        kw["headers"] = dict(cfg.headers)
    if cfg.username:
        kw["basic_auth"] = (cfg.username, cfg.password)
    if cfg.api_key:
        kw["api_key"] = tuple(cfg.api_key.split(":", 1))
    if any(u.startswith("https://") for u in kw["hosts"]):
        if cfg.ssl.certificate_authorities:
            kw["ca_certs"] = cfg.ssl.certificate_authorities[0]
        if cfg.ssl.verification_mode == "none":
            kw["verify_certs"] = False
            kw["ssl_show_warn"] = False
        elif cfg.ssl.verification_mode == "certificate":
            kw["ssl_assert_hostname"] = False
    return Elasticsearch(**kw)


class ElasticsearchOutput:
    """See the module docstring. ``sleep`` is injectable for tests."""

    def __init__(self, cfg: ElasticsearchConfig, client=None, sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.client = client if client is not None else make_client(cfg)
        self.index = IndexFormat(cfg.index)
        self.stats = OutputStats()
        self.bulk_max_size = cfg.bulk_max_size if cfg.bulk_max_size > 0 else 1600
        self.retried = 0            # item sends beyond the first
        self.conflicts = 0          # 409 on create: already indexed
        self.last_error = ""        # the last "Elasticsearch at URL: cause"
        self._sleep = sleep
        self._closed = False
        self._pool = (concurrent.futures.ThreadPoolExecutor(cfg.worker * len(cfg.hosts))
                      if cfg.worker * len(cfg.hosts) > 1 else None)

    # one bulk request ------------------------------------------------------------
    def _bulk(self, items: list[tuple[int, str, str, bytes]]) -> list[tuple[int, int, str]]:
        """Send items (pos, index, id, line) in one ``_bulk`` request; [(pos,
        status, error)] in order. The body is built by concatenation: each
        action line from its pre-encoded parts, each source line as it is."""
        from elastic_transport import TransportError
        from elasticsearch import ApiError
        default = _json_str(self.cfg.pipeline) if self.cfg.pipeline else b""
        parts = []
        for item in items:      # (pos, index, id, line[, the event's own pipeline])
            _, index, doc_id, line = item[:4]
            pipeline = _json_str(item[4]) if len(item) > 4 and item[4] else default
            parts.append(b'{"create":{"_index":%s,"_id":%s%s}}\n%s\n' % (
                _json_str(index), _json_str(doc_id), b',"pipeline":' + pipeline if pipeline else b"", line))
        body = b"".join(parts)
        try:
            resp = self.client.perform_request(
                "PUT", "/_bulk", params=dict(self.cfg.params) or None, body=body,
                headers={"accept": "application/json", "content-type": "application/x-ndjson"})
        except ApiError as e:            # the whole request refused (500, 413...): every item
            status = e.meta.status if isinstance(e.meta.status, int) else 0
            if status == 429 or status >= 500:   # unavailable, overloaded: as unreachable
                msg = "Elasticsearch at %s: the bulk request was answered %d (%s)" % (
                    node_url(e.meta.node), status, e.message)
                return [(pos, UNREACHABLE, msg) for pos, *_ in items]
            return [(pos, status, "%s: %s" % (type(e).__name__, e)) for pos, *_ in items]
        except TransportError as e:      # refused, timeout, dropped connection
            msg = describe_error(e)
            return [(pos, UNREACHABLE, msg) for pos, *_ in items]
        answers = resp.body.get("items") if isinstance(resp.body, dict) else None
        if not isinstance(answers, list) or len(answers) != len(items):
            n = len(answers) if isinstance(answers, list) else 0
            return [(pos, 0, "bulk answer has %d items for %d sent" % (n, len(items))) for pos, *_ in items]
        out = []
        for (pos, *_), answer in zip(items, answers):
            info = next(iter(answer.values())) if isinstance(answer, dict) and answer else {}
            status = info.get("status", 0)
            if not isinstance(status, int):
                status = 0
            err = info.get("error") or ""
            if isinstance(err, dict):
                err = "%s: %s" % (err.get("type"), err.get("reason"))
            out.append((pos, status, str(err)))
        return out

    def _send(self, items):
        n = len(items)
        parts = self.cfg.worker * len(self.cfg.hosts)
        if self._pool is None or n < 2 * parts:
            return self._bulk(items)
        size = -(-n // parts)
        futs = [self._pool.submit(self._bulk, items[i:i + size]) for i in range(0, n, size)]
        out = []
        for f in futs:
            out += f.result()
        return out

    # the contract -------------------------------------------------------------------
    def publish_batch(self, events: Sequence[dict], lines: Sequence[bytes | None] | None = None,
                      ids: Sequence[str] | None = None) -> list[Result]:
        """One Result per event (see the module docstring); ``ids`` default to
        :func:`event_id` of the line alone (no origin)."""
        if lines is None:
            lines = getattr(events, "lines", None)
        items: list = []
        early: dict[int, Result] = {}
        for i, ev in enumerate(events):
            line = lines[i] if lines is not None else None
            try:
                if line is None:
                    line = encode_event(ev)
                index = self.index(ev)
            except (EncodeError, KeyError) as e:
                early[i] = Result(False, "elasticsearch output: %s" % (e.args[0] if e.args else e))
                items.append((None, "", b""))
                continue
            items.append((index, ids[i] if ids is not None else event_id("", line), line))
        results = self.publish_encoded(items, events)
        for i, r in early.items():
            results[i] = r
        return results

    def publish_encoded(self, items: Sequence[tuple[str | None, str, bytes]],
                        events: Sequence[dict] | None = None) -> list[Result]:
        """Bulk already encoded events: ``(index, _id, json_line)`` each (index
        None: the event could not be routed, it fails). ``events`` (optional)
        are only used to log key fields of rejected documents."""
        results: list = [OK] * len(items)
        if self._closed:
            self.stats.errors += len(items)
            return [Result(False, "elasticsearch output: output closed")] * len(items)
        pending = []
        for i, (index, doc_id, line) in enumerate(items):
            if index is None:
                results[i] = Result(False, "elasticsearch output: no index for this event")
            else:
                if b'"@metadata":' in line:
                    doc_id, line, index, pipeline = _metadata(doc_id, line, index)
                    pending.append((i, index, doc_id, line, pipeline))
                else:
                    pending.append((i, index, doc_id, line))
        delay = float(self.cfg.backoff.init)
        attempt = 0
        while pending:
            retry = []
            for pos, status, err in self._send(pending):
                if 200 <= status < 300:
                    continue
                if status == 409:
                    self.conflicts += 1
                    continue
                if status == UNREACHABLE:
                    # not retried here: the caller's queue waits and sends again (memory queue:
                    # until it can; disk queue: the events stay in the spool)
                    results[pos] = Result(False, err, retry=True, unreachable=True)
                    self.last_error = err
                    continue
                if status == 429 or status >= 500 or status == 0:
                    retry.append(pos)
                    results[pos] = Result(False, "elasticsearch output: %s %s" % (status or "error", err),
                                          retry=True)
                    continue
                results[pos] = Result(False, "elasticsearch output: %d %s" % (status, err))
                log.error("event dropped by Elasticsearch (%d %s): %s", status, err,
                          _key_fields(events[pos] if events is not None else _loads(items[pos][2])))
            if not retry or attempt >= self.cfg.max_retries:
                break
            attempt += 1
            self.retried += len(retry)
            keep = set(retry)
            pending = [p for p in pending if p[0] in keep]
            self._sleep(delay)
            delay = min(delay * 2, float(self.cfg.backoff.max))
            for pos in keep:
                results[pos] = OK
        bad = sum(1 for r in results if not r.ok)
        self.stats.errors += sum(1 for r in results if not r.ok and not r.retry)
        self.stats.events += len(results) - bad
        return results

    def close_idle(self) -> int:
        """Close connections idle for ``idle_connection_timeout`` (0: never); called
        by the publisher while it waits. The number closed."""
        t = float(self.cfg.idle_connection_timeout)
        if t <= 0 or self._closed:
            return 0
        n = 0
        for node in self.client.transport.node_pool.all():
            close_idle = getattr(node, "close_idle", None)
            if close_idle is not None:
                n += close_idle(t)
        return n

    def ping(self) -> dict:
        """Cluster info (``packetbeat test output``); raises the client's errors."""
        return dict(self.client.info())

    def close(self, wait: bool = True) -> None:
        """``wait=False``: do not wait for requests in flight (a stop that gave up)."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
        if wait:
            self.client.close()
