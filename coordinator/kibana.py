"""``setup.kibana`` / ``setup.dashboards``: import the saved objects of deploy/kibana into Kibana.

``packetbeat setup`` (after the Elasticsearch part, when ``setup.kibana`` or
``setup.dashboards.enabled`` is set) and ``packetbeat setup --dashboards``
(Kibana only) call :func:`main`:

1. ``GET /api/status`` for the version. While Kibana answers 503 ("not ready",
   it is still starting or migrating its index) or refuses connections, the
   request is retried every ``setup.dashboards.retry.interval`` up to
   ``retry.maximum`` attempts. The objects are written for Kibana 8.8 or later;
   an older Kibana is an error naming both versions.
2. For each ``*.ndjson`` in ``setup.dashboards.directory`` (default: this
   checkout's ``deploy/kibana``): ``POST [/s/<space.id>]/api/saved_objects/_import?overwrite=true``
   with header ``kbn-xsrf`` and a ``multipart/form-data`` body whose ``file``
   part is the NDJSON. ``setup.dashboards.index`` replaces the data view's
   title; without it, an ``output.elasticsearch.index`` outside ``packetbeat-*``
   gives the title (its ``%{...}`` parts as ``*``).
   Kibana's answer ``{success, successCount, errors}`` is checked: any error
   ends the command with the objects Kibana rejected and why.

401/403 and other 4xx answers are not retried: they end the command with a
message naming the URL, the status and Kibana's own message. Exit status 0
when every file was imported, 1 otherwise (the same as the Elasticsearch setup).
"""
from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import os
import pathlib
import re
import socket
import ssl
import sys
import time
import uuid
from urllib.parse import quote, urlsplit

from coordinator.publisher.elasticsearch import SslConfig, check_http_client
from shared.confutil import ConfigError, Duration, build

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DIRECTORY = ROOT / "deploy" / "kibana"
MIN_VERSION = (8, 8)             # the objects' coreMigrationVersion
_SPACE = re.compile(r"^[a-z0-9_-]+$")


# --- configuration -----------------------------------------------------------

@dataclasses.dataclass
class KibanaSslConfig(SslConfig):
    """The Elasticsearch output's ``ssl`` options; a CA may also be given inline (PEM)."""

    def validate(self, path: str) -> None:
        super().validate(path)
        for i, ca in enumerate(self.certificate_authorities):
            if not ca.lstrip().startswith("-----BEGIN") and not os.path.isfile(ca):
                raise ConfigError("%s.certificate_authorities[%d]" % (path, i), "no such file: %s" % ca)


@dataclasses.dataclass
class SpaceConfig:
    id: str = ""

    def validate(self, path: str) -> None:
        if self.id and not _SPACE.match(self.id):
            raise ConfigError(path + ".id", "a space id is lowercase letters, digits, '_' and '-', got %r" % self.id)


@dataclasses.dataclass
class KibanaConfig:
    host: str = "localhost:5601"
    protocol: str = ""
    path: str = ""
    username: str = ""
    password: str = ""
    api_key: str = ""
    ssl: KibanaSslConfig = dataclasses.field(default_factory=KibanaSslConfig)
    space: SpaceConfig = dataclasses.field(default_factory=SpaceConfig)
    timeout: Duration = Duration(90.0)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def validate(self, path: str) -> None:
        if not self.host or " " in self.host:
            raise ConfigError(path + ".host", "not a host: %r" % self.host)
        if "://" in self.host and not self.host.startswith(("http://", "https://")):
            raise ConfigError(path + ".host", "scheme must be http or https: %r" % self.host)
        try:
            urlsplit(self.host if "://" in self.host else "http://" + self.host).port
        except ValueError:
            raise ConfigError(path + ".host", "bad port in %r" % self.host) from None
        check_http_client(self, path)
        if self.timeout <= 0:
            raise ConfigError(path + ".timeout", "must be positive")


@dataclasses.dataclass
class RetryConfig:
    enabled: bool = True
    interval: Duration = Duration(1.0)
    maximum: int = 60                   # attempts while Kibana is not ready (0: no limit)

    def validate(self, path: str) -> None:
        if self.interval < 0:
            raise ConfigError(path + ".interval", "must not be negative")
        if self.maximum < 0:
            raise ConfigError(path + ".maximum", "must be >= 0 (0 = no limit)")


@dataclasses.dataclass
class DashboardsConfig:
    enabled: bool = False               # plain `packetbeat setup` loads them even without setup.kibana
    directory: str = ""                 # default: deploy/kibana of this checkout
    index: str = ""                     # data view title (default packetbeat-*)
    retry: RetryConfig = dataclasses.field(default_factory=RetryConfig)

    def validate(self, path: str) -> None:
        if self.directory and not os.path.isdir(self.directory):
            raise ConfigError(path + ".directory", "no such directory: %s" % self.directory)
        if self.index and (" " in self.index or "," in self.index):
            raise ConfigError(path + ".index", "one index pattern without spaces or commas, got %r" % self.index)


def kibana_configs(setup_raw) -> tuple[KibanaConfig | None, DashboardsConfig]:
    """``setup.kibana`` (None when absent) and ``setup.dashboards``, checked (ConfigError names the key)."""
    setup_raw = setup_raw or {}
    if not isinstance(setup_raw, dict):
        raise ConfigError("setup", "expected a mapping")
    kb = setup_raw.get("kibana")
    kibana = None if kb is None else build(KibanaConfig, dict(kb), "setup.kibana")
    dash = build(DashboardsConfig, dict(setup_raw.get("dashboards") or {}), "setup.dashboards")
    return kibana, dash


def wanted(setup_raw) -> bool:
    """Whether plain ``packetbeat setup`` loads the dashboards."""
    kibana, dash = kibana_configs(setup_raw)
    return kibana is not None or dash.enabled


# --- client ------------------------------------------------------------------

class KibanaError(Exception):
    """Kibana could not be reached, refused the request or rejected objects."""


class NotReady(KibanaError):
    """Kibana is starting (503) or not listening yet: worth another attempt."""


def base_url(cfg: KibanaConfig) -> str:
    host = cfg.host
    if "://" in host:
        parts = urlsplit(host)
        scheme = cfg.protocol or parts.scheme
        netloc, path = parts.netloc, parts.path.rstrip("/")
    else:
        scheme = cfg.protocol or "http"
        netloc, _, path = host.partition("/")
        path = ("/" + path).rstrip("/") if path else ""
    if urlsplit("//" + netloc).port is None:
        netloc += ":5601"
    return "%s://%s%s%s" % (scheme, netloc, path, (cfg.path or "").rstrip("/"))


def _ssl_context(cfg: KibanaSslConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    for ca in cfg.certificate_authorities:
        try:
            if ca.lstrip().startswith("-----BEGIN"):
                ctx.load_verify_locations(cadata=ca)
            else:
                ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise KibanaError("setup.kibana.ssl.certificate_authorities: cannot load %s: %s" % (ca[:60], e)) from None
    if cfg.verification_mode == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.verification_mode == "certificate":
        ctx.check_hostname = False
    return ctx


def multipart(filename: str, data: bytes, boundary: str | None = None) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data upload with one ``file`` part."""
    boundary = boundary or "packetbeat-" + uuid.uuid4().hex
    head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
            "Content-Type: application/ndjson\r\n\r\n" % (boundary, filename.replace('"', ""))).encode()
    return "multipart/form-data; boundary=%s" % boundary, head + data + ("\r\n--%s--\r\n" % boundary).encode()


class KibanaClient:
    def __init__(self, cfg: KibanaConfig):
        self.cfg = cfg
        self.url = base_url(cfg)
        parts = urlsplit(self.url)
        self.scheme, self.netloc, self.prefix = parts.scheme, parts.netloc, parts.path
        self._ctx = _ssl_context(cfg.ssl) if self.scheme == "https" else None
        self.headers = {"kbn-xsrf": "packetbeat", "Accept": "application/json"}
        self.headers.update(cfg.headers)
        if cfg.api_key:
            self.headers["Authorization"] = "ApiKey " + base64.b64encode(cfg.api_key.encode()).decode()
        elif cfg.username:
            creds = "%s:%s" % (cfg.username, cfg.password)
            self.headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, object]:
        """(status, parsed JSON or text). Connection problems and 503 raise NotReady;
        401/403 and other errors raise KibanaError."""
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.netloc, timeout=float(self.cfg.timeout), context=self._ctx)
        else:
            conn = http.client.HTTPConnection(self.netloc, timeout=float(self.cfg.timeout))
        try:
            conn.request(method, self.prefix + path, body=body, headers=dict(self.headers, **(headers or {})))
            resp = conn.getresponse()
            raw = resp.read()
        except ssl.SSLError as e:
            raise KibanaError("TLS with Kibana at %s failed: %s" % (self.url, e)) from None
        except (ConnectionError, socket.timeout, OSError, http.client.HTTPException) as e:
            raise NotReady("Kibana at %s is not reachable: %s" % (self.url, e)) from None
        finally:
            conn.close()
        text = raw.decode("utf-8", "replace")
        try:
            payload: object = json.loads(text) if text else {}
        except ValueError:
            payload = text
        status = resp.status
        if status == 503:
            raise NotReady("Kibana at %s is not ready (503): %s" % (self.url, _message(payload)))
        if status in (401, 403):
            raise KibanaError("Kibana at %s refused %s %s (%d %s): %s; check setup.kibana.username/password "
                              "or setup.kibana.api_key" % (self.url, method, path, status,
                                                           "Unauthorized" if status == 401 else "Forbidden",
                                                           _message(payload)))
        if status >= 400:
            raise KibanaError("Kibana at %s answered %s %s with %d: %s" % (self.url, method, path.split("?")[0],
                                                                           status, _message(payload)))
        return status, payload

    def version(self) -> str:
        _, payload = self.request("GET", "/api/status")
        try:
            return payload["version"]["number"]      # type: ignore[index]
        except (TypeError, KeyError):
            raise KibanaError("Kibana at %s: /api/status has no version.number (is this Kibana?)" % self.url) from None

    def import_ndjson(self, filename: str, data: bytes, space: str = "") -> dict:
        ctype, body = multipart(filename, data)
        path = ("/s/%s" % quote(space) if space else "") + "/api/saved_objects/_import?overwrite=true"
        _, payload = self.request("POST", path, body=body, headers={"Content-Type": ctype})
        if not isinstance(payload, dict) or "success" not in payload:
            raise KibanaError("Kibana at %s: unexpected import answer: %s" % (self.url, str(payload)[:300]))
        return payload


def _message(payload) -> str:
    if isinstance(payload, dict):
        msg = payload.get("message") or payload.get("error") or payload
        return str(msg)[:300]
    return str(payload)[:300] or "(empty body)"


def parse_version(text: str) -> tuple[int, int]:
    m = re.match(r"^(\d+)\.(\d+)", text or "")
    if not m:
        raise KibanaError("Kibana reports an unreadable version %r" % text)
    return int(m.group(1)), int(m.group(2))


# --- setup -------------------------------------------------------------------

def ndjson_files(directory: str = "") -> list[pathlib.Path]:
    d = pathlib.Path(directory) if directory else DEFAULT_DIRECTORY
    files = sorted(d.glob("*.ndjson"), key=lambda p: (not p.name.endswith("-overview.ndjson"), p.name))
    if not files:
        raise KibanaError("no *.ndjson saved objects in %s (set setup.dashboards.directory)" % d)
    return files


def prepare(data: bytes, index: str = "") -> bytes:
    """The file's NDJSON, with the data view's title replaced by ``index`` when given."""
    if not index:
        return data
    out = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            if obj.get("type") == "index-pattern":
                obj["attributes"]["title"] = index
            line = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8")


def _with_retry(fn, retry: RetryConfig, out, sleep=time.sleep):
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except NotReady as e:
            if not retry.enabled or (retry.maximum and attempt >= retry.maximum):
                suffix = "" if not retry.enabled else " after %d attempts" % attempt
                raise KibanaError("%s%s" % (e, suffix)) from None
            if attempt == 1:
                out("%s; retrying every %gs" % (e, retry.interval))
            sleep(retry.interval)


def load_dashboards(kibana: KibanaConfig, dash: DashboardsConfig, out=print) -> int:
    """Import every NDJSON file; returns the number of objects imported. Raises KibanaError."""
    files = ndjson_files(dash.directory)
    client = KibanaClient(kibana)
    version = _with_retry(client.version, dash.retry, out)
    if parse_version(version) < MIN_VERSION:
        raise KibanaError("Kibana %s at %s is too old: the saved objects need Kibana %d.%d or later"
                          % (version, client.url, *MIN_VERSION))
    out("Kibana %s at %s%s" % (version, client.url, " (space %s)" % kibana.space.id if kibana.space.id else ""))
    total = 0
    for f in files:
        try:
            data = prepare(f.read_bytes(), dash.index)
        except (OSError, ValueError) as e:
            raise KibanaError("cannot read %s: %s" % (f, e)) from None
        result = _with_retry(lambda: client.import_ndjson(f.name, data, kibana.space.id), dash.retry, out)
        errors = result.get("errors") or []
        if not result.get("success") or errors:
            detail = "; ".join("%s %s: %s" % (e.get("type"), e.get("id"), json.dumps(e.get("error"), sort_keys=True))
                               for e in errors[:10])
            raise KibanaError("Kibana rejected objects of %s (%d imported, %d errors): %s"
                              % (f.name, result.get("successCount", 0), len(errors), detail or "no detail"))
        n = int(result.get("successCount", 0))
        total += n
        out("  %s: %d objects imported" % (f.name, n))
    out("Loaded dashboards (%d files, %d objects)" % (len(files), total))
    return total


def index_pattern_object(settings) -> dict:
    """``packetbeat export index-pattern``: the data view saved object of the shipped
    files (setup.dashboards.directory), titled as ``setup`` would import it."""
    _, dash = kibana_configs((settings.raw or {}).get("setup"))
    title = dash.index or data_view_title(settings)
    for f in ndjson_files(dash.directory):
        for line in prepare(f.read_bytes(), title).decode("utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                if obj.get("type") == "index-pattern":
                    return obj
    raise KibanaError("no index-pattern object in %s" % (dash.directory or DEFAULT_DIRECTORY))


def export_dashboard(settings, dashboard_id: str) -> str:
    """``packetbeat export dashboard --id ID``: the dashboard and every object it
    refers to, as Kibana's saved-objects export (NDJSON) from ``setup.kibana``."""
    kibana, dash = kibana_configs((settings.raw or {}).get("setup"))
    client = KibanaClient(kibana or KibanaConfig())
    space = (kibana or KibanaConfig()).space.id
    body = json.dumps({"objects": [{"type": "dashboard", "id": dashboard_id}],
                       "includeReferencesDeep": True}).encode()
    path = ("/s/%s" % quote(space) if space else "") + "/api/saved_objects/_export"
    try:
        _, payload = _with_retry(lambda: client.request("POST", path, body=body,
                                                        headers={"Content-Type": "application/json"}),
                                 dash.retry, lambda msg: None)
    except KibanaError as e:
        if " with 404" in str(e) or " 400:" in str(e) or "with 400" in str(e):
            raise KibanaError("no dashboard with id %s in Kibana at %s%s (%s)"
                              % (dashboard_id, client.url, " (space %s)" % space if space else "", e)) from None
        raise
    text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True)
    return text if text.endswith("\n") else text + "\n"


def data_view_title(settings) -> str:
    """The data view title for the configured ``output.elasticsearch.index`` when its indices
    are not under ``packetbeat-*`` ("" keeps the title of the files)."""
    raw = (settings.output or {}).get("elasticsearch")
    if not raw or not raw.get("index"):
        return ""
    from coordinator.setup import index_pattern
    pattern = index_pattern(str(raw["index"]))
    if pattern == "packetbeat" or pattern.startswith("packetbeat-"):
        return ""
    return pattern if pattern.endswith("*") else pattern + "*"


def main(settings, out=print, err=None) -> int:
    """``packetbeat setup --dashboards`` (and the Kibana part of ``setup``): exit status."""
    err = err or sys.stderr
    try:
        kibana, dash = kibana_configs((settings.raw or {}).get("setup"))
    except ConfigError as e:
        err.write("Exiting: %s\n" % e)
        return 1
    if not dash.index:
        title = data_view_title(settings)
        if title:
            out("Data view title %s (the indices of output.elasticsearch.index)" % title)
            dash = dataclasses.replace(dash, index=title)
    try:
        load_dashboards(kibana or KibanaConfig(), dash, out)
    except KibanaError as e:
        err.write("Exiting: loading the dashboards failed: %s\n" % e)
        return 1
    return 0
