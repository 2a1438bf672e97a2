"""Metadata processors: add_host_metadata, add_observer_metadata,
add_process_metadata, add_cloud_metadata, add_docker_metadata.

What they read (files under /proc and /etc, network interfaces, the cloud
metadata service, the Docker API socket) is read once and cached; nothing
here does I/O per event except a cache refresh (every ``cache.ttl``).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import platform
import socket
import threading
import time

from shared.confutil import ConfigError, parse_duration
from worker.processors import event as E
from worker.processors.conditions import is_global_unicast, parse_ip

MISSING = E.MISSING
log = logging.getLogger("packetbeat.processors")


# -- host facts ---------------------------------------------------------------------------

def _os_release() -> dict:
    out = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    k, sep, v = line.strip().partition("=")
                    if sep:
                        out[k] = v.strip().strip('"')
            break
        except OSError:
            continue
    return out


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def host_os() -> dict:
    rel = _os_release()
    osd = {"type": platform.system().lower(), "kernel": platform.release()}
    if rel:
        osd["platform"] = rel.get("ID", "")
        osd["name"] = rel.get("NAME", "")
        like = rel.get("ID_LIKE", "").split()
        osd["family"] = ("debian" if "debian" in like or rel.get("ID") == "debian" else
                         "redhat" if {"rhel", "fedora", "centos"} & set(like + [rel.get("ID", "")]) else
                         "suse" if "suse" in " ".join(like) else (like[0] if like else rel.get("ID", "")))
        if rel.get("VERSION"):
            osd["version"] = rel["VERSION"]
        elif rel.get("VERSION_ID"):
            osd["version"] = rel["VERSION_ID"]
        if rel.get("VERSION_CODENAME"):
            osd["codename"] = rel["VERSION_CODENAME"]
    return {k: v for k, v in osd.items() if v}


def host_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        v = _read(path)
        if v:
            return v
    return ""


def containerized() -> bool:
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    cg = _read("/proc/1/cgroup")
    return any(x in cg for x in ("docker", "kubepods", "containerd", "lxc"))


def interfaces() -> tuple[list[str], list[str]]:
    """(addresses, MACs) of the interfaces that are up, loopback left out
    (libbeat's netinfo: unicast addresses, MACs formatted AA-BB-CC-DD-EE-FF)."""
    ips, macs = [], []
    try:
        import psutil
        stats = psutil.net_if_stats()
        for name, addrs in psutil.net_if_addrs().items():
            st = stats.get(name)
            if st is not None and not st.isup:
                continue
            for a in addrs:
                if a.family == socket.AF_INET or a.family == socket.AF_INET6:
                    ip = a.address.split("%", 1)[0]
                    p = parse_ip(ip)
                    if p and not p.is_loopback and ip not in ips:
                        ips.append(ip)
                elif a.family == getattr(psutil, "AF_LINK", 17):
                    mac = a.address.upper().replace(":", "-")
                    if mac and mac != "00-00-00-00-00-00" and mac not in macs:
                        macs.append(mac)
    except Exception as e:       # psutil missing or /sys unreadable
        log.debug("cannot list interfaces: %s", e)
    return ips, macs


class _Cached:
    """A value recomputed at most every ``ttl`` seconds (``cache.ttl``)."""

    def __init__(self, fn, ttl, clock):
        self.fn, self.ttl, self.clock = fn, ttl, clock
        self.value = None
        self.expires = -1.0

    def get(self):
        now = self.clock()
        if self.value is None or now >= self.expires:
            self.value = self.fn()
            self.expires = now + self.ttl if self.ttl > 0 else now     # <= 0: no caching (libbeat)
        return self.value


def _geo(o) -> dict:
    g = o.mapping("geo", {})
    allowed = {"name", "location", "continent_name", "country_name", "country_iso_code", "region_name",
               "region_iso_code", "city_name"}
    out = {}
    for k, v in g.items():
        if k not in allowed:
            raise ConfigError("%s.%s" % (o.sub("geo"), k), "unknown option (known: %s)" % ", ".join(sorted(allowed)))
        if k == "location":
            try:
                lat, lon = (float(x) for x in str(v).split(","))
            except ValueError:
                raise ConfigError(o.sub("geo") + ".location", "expected 'lat, lon'") from None
            out["location"] = {"lat": lat, "lon": lon}
        else:
            out[k] = str(v)
    return out


def _cache_ttl(o, default=300.0) -> float:
    c = o.mapping("cache", {})
    for k in c:
        if k != "ttl":
            raise ConfigError("%s.%s" % (o.sub("cache"), k), "unknown option (known: ttl)")
    return parse_duration(c["ttl"], o.sub("cache") + ".ttl") if "ttl" in c else default


def _netinfo(o) -> bool:
    n = o.mapping("netinfo", {})
    for k in n:
        if k != "enabled":
            raise ConfigError("%s.%s" % (o.sub("netinfo"), k), "unknown option (known: enabled)")
    v = n.get("enabled", True)
    if not isinstance(v, bool):
        raise ConfigError(o.sub("netinfo") + ".enabled", "expected true or false")
    return v


class AddHostMetadata:
    def __init__(self, ttl, netinfo, geo, name, replace, ctx):
        self.netinfo, self.geo, self.name, self.replace = netinfo, geo, name, replace
        self.hostname = ctx.hostname
        self.cache = _Cached(self._facts, ttl, ctx.clock)

    def _facts(self) -> dict:
        host = {"hostname": self.hostname, "name": self.name or self.hostname,
                "architecture": platform.machine(), "os": host_os(), "containerized": containerized()}
        hid = host_id()
        if hid:
            host["id"] = hid
        if self.netinfo:
            ips, macs = interfaces()
            if ips:
                host["ip"] = ips
            if macs:
                host["mac"] = macs
        if self.geo:
            host["geo"] = dict(self.geo)
        return host

    def run(self, ev):
        host = ev.get("host")
        if not self.replace and isinstance(host, dict) and set(host) - {"name"}:
            return ev          # replace_fields: false and the event already has host fields
        facts = E.deep_copy(self.cache.get())
        if isinstance(host, dict):
            E.deep_update(host, facts)          # libbeat's DeepUpdate: other host.* keys stay
        else:
            ev["host"] = facts
        return ev


def add_host_metadata(o, ctx):
    return AddHostMetadata(_cache_ttl(o), _netinfo(o), _geo(o), o.str("name", ""), o.bool("replace_fields", True), ctx)


class AddObserverMetadata:
    def __init__(self, ttl, netinfo, geo, overwrite, ctx):
        self.netinfo, self.geo, self.overwrite, self.hostname = netinfo, geo, overwrite, ctx.hostname
        self.cache = _Cached(self._facts, ttl, ctx.clock)

    def _facts(self):
        obs = {"hostname": self.hostname}
        if self.netinfo:
            ips, macs = interfaces()
            if ips:
                obs["ip"] = ips
            if macs:
                obs["mac"] = macs
        if self.geo:
            obs["geo"] = dict(self.geo)
        return obs

    def run(self, ev):
        if "observer" in ev and not self.overwrite:
            return ev          # libbeat: an event that has observer already is left alone
        ev["observer"] = E.deep_copy(self.cache.get())
        return ev


def add_observer_metadata(o, ctx):
    return AddObserverMetadata(_cache_ttl(o), _netinfo(o), _geo(o), o.bool("overwrite", False), ctx)


# -- add_process_metadata --------------------------------------------------------------------

def _proc_info(pid: int, host_path: str) -> dict | None:
    base = os.path.join(host_path, "proc", str(pid))
    try:
        with open(os.path.join(base, "stat"), "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        with open(os.path.join(base, "cmdline"), "rb") as f:
            args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    name = stat[stat.find("(") + 1:stat.rfind(")")]
    rest = stat[stat.rfind(")") + 2:].split()
    info: dict = {"pid": pid, "name": name, "ppid": int(rest[1]) if len(rest) > 1 else 0}
    try:
        info["executable"] = os.readlink(os.path.join(base, "exe"))
    except OSError:
        pass
    if args:
        info["args"] = args
        info["title"] = " ".join(args)
    try:
        boot = float(_read(os.path.join(host_path, "proc", "stat")).split("btime ", 1)[1].split()[0])
        start = boot + int(rest[19]) / os.sysconf("SC_CLK_TCK")
        t = time.gmtime(start)
        info["start_time"] = time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % int((start % 1) * 1000)
    except (IndexError, ValueError, OSError):
        pass
    try:
        uid = os.stat(base).st_uid
        owner = {"id": str(uid)}
        try:
            import pwd
            owner["name"] = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            pass
        info["owner"] = owner
    except OSError:
        pass
    cid = container_id_of(pid, host_path)
    if cid:
        info["container_id"] = cid
    return info


def container_id_of(pid: int, host_path: str = "/") -> str:
    """The container id a process runs in, from its cgroup path (64 hex digits)."""
    import re
    cg = _read(os.path.join(host_path, "proc", str(pid), "cgroup"))
    m = re.search(r"([0-9a-f]{64})", cg)
    return m.group(1) if m else ""


class AddProcessMetadata:
    def __init__(self, match_pids, target, include, overwrite, ignore_missing, host_path, ttl, ctx):
        self.match_pids, self.target, self.include = match_pids, target, include
        self.overwrite, self.ignore_missing, self.host_path = overwrite, ignore_missing, host_path
        self.ttl, self.clock = ttl, ctx.clock
        self.cache: dict = {}

    def info(self, pid):
        now = self.clock()
        hit = self.cache.get(pid)
        if hit is not None and hit[1] > now:
            return hit[0]
        if len(self.cache) > 4096:
            self.cache.clear()
        info = _proc_info(pid, self.host_path)
        self.cache[pid] = (info, now + self.ttl)
        return info

    def run(self, ev):
        for f in self.match_pids:
            v = E.get(ev, f)
            if v is MISSING:
                continue
            try:
                pid = int(v)
            except (TypeError, ValueError):
                continue
            info = self.info(pid)
            if info is None:
                return ev
            fields = {"process": {k: v for k, v in info.items() if k != "container_id"}}
            if "ppid" in info:
                fields["process"]["parent"] = {"pid": info["ppid"]}
                del fields["process"]["ppid"]
            if info.get("container_id"):
                fields["container"] = {"id": info["container_id"]}
            for key in self.include or ("process", "container"):
                val = E.get(fields, key)
                if val is MISSING:
                    continue
                dst = "%s.%s" % (self.target, key) if self.target else key
                if type(val) is dict:
                    cur = E.get(ev, dst, None)
                    if type(cur) is dict:
                        E.deep_update(cur, val, self.overwrite)
                        continue
                    if cur is not None and not self.overwrite:
                        continue
                    E.put(ev, dst, E.deep_copy(val))
                elif self.overwrite or E.get(ev, dst) is MISSING:
                    E.put(ev, dst, E.deep_copy(val))
            return ev
        return ev


def add_process_metadata(o, ctx):
    match = o.strings("match_pids", required=True)
    o.bool("restricted_fields", False)
    o.strings("cgroup_prefixes")
    o.str("cgroup_regex", "")
    return AddProcessMetadata(match, o.str("target", ""), o.strings("include_fields"), o.bool("overwrite_keys", False),
                              o.bool("ignore_missing", True), o.str("host_path", "/") or "/",
                              o.duration("cache.ttl", 30.0) if "cache.ttl" in o.raw else _cache_ttl(o, 30.0), ctx)


# -- add_cloud_metadata --------------------------------------------------------------------------

METADATA_HOST = "169.254.169.254"


def _http(host, port, method, path, headers, timeout, body=None):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read(1 << 20)
        if r.status != 200:
            raise OSError("HTTP %d" % r.status)
        return data
    finally:
        conn.close()


def _aws(host, port, timeout):
    try:
        token = _http(host, port, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
                      timeout).decode()
        hdr = {"X-aws-ec2-metadata-token": token}
    except OSError:
        hdr = {}
    doc = json.loads(_http(host, port, "GET", "/latest/dynamic/instance-identity/document", hdr, timeout))
    return {"cloud": {"provider": "aws", "instance": {"id": doc["instanceId"]}, "machine": {"type": doc["instanceType"]},
                      "region": doc["region"], "availability_zone": doc["availabilityZone"],
                      "account": {"id": doc["accountId"]}, "image": {"id": doc.get("imageId", "")},
                      "service": {"name": "EC2"}}}


def _gcp(host, port, timeout):
    doc = json.loads(_http(host, port, "GET", "/computeMetadata/v1/?recursive=true&alt=json",
                           {"Metadata-Flavor": "Google"}, timeout))
    inst, proj = doc["instance"], doc.get("project", {})
    zone = inst.get("zone", "").rsplit("/", 1)[-1]
    return {"cloud": {"provider": "gcp", "instance": {"id": str(inst["id"]), "name": inst.get("name", "")},
                      "machine": {"type": inst.get("machineType", "").rsplit("/", 1)[-1]},
                      "availability_zone": zone, "region": zone.rsplit("-", 1)[0],
                      "project": {"id": proj.get("projectId", "")}, "account": {"id": proj.get("projectId", "")},
                      "service": {"name": "GCE"}}}


def _azure(host, port, timeout):
    doc = json.loads(_http(host, port, "GET", "/metadata/instance/compute?api-version=2021-02-01",
                           {"Metadata": "true"}, timeout))
    return {"cloud": {"provider": "azure", "instance": {"id": doc["vmId"], "name": doc.get("name", "")},
                      "machine": {"type": doc.get("vmSize", "")}, "region": doc.get("location", ""),
                      "account": {"id": doc.get("subscriptionId", "")}, "service": {"name": "Virtual Machines"}}}


def _digitalocean(host, port, timeout):
    doc = json.loads(_http(host, port, "GET", "/metadata/v1.json", {}, timeout))
    return {"cloud": {"provider": "digitalocean", "instance": {"id": str(doc["droplet_id"])},
                      "region": doc.get("region", ""), "service": {"name": "Droplets"}}}


def _openstack(host, port, timeout):
    iid = _http(host, port, "GET", "/2009-04-04/meta-data/instance-id", {}, timeout).decode()
    itype = _http(host, port, "GET", "/2009-04-04/meta-data/instance-type", {}, timeout).decode()
    out = {"cloud": {"provider": "openstack", "instance": {"id": iid}, "machine": {"type": itype},
                     "service": {"name": "Nova"}}}
    try:
        az = _http(host, port, "GET", "/2009-04-04/meta-data/placement/availability-zone", {}, timeout).decode()
        out["cloud"]["availability_zone"] = az
    except OSError:
        pass
    return out


def _hetzner(host, port, timeout):
    iid = _http(host, port, "GET", "/hetzner/v1/metadata/instance-id", {}, timeout).decode()
    az = _http(host, port, "GET", "/hetzner/v1/metadata/availability-zone", {}, timeout).decode()
    return {"cloud": {"provider": "hetzner", "instance": {"id": iid}, "availability_zone": az,
                      "region": az.rsplit("-", 1)[0]}}


PROVIDERS = {"aws": _aws, "gcp": _gcp, "azure": _azure, "digitalocean": _digitalocean, "openstack": _openstack,
             "hetzner": _hetzner}
PROVIDER_ALIASES = {"ec2": "aws", "alibaba": None, "ecs": None, "tencent": None, "qcloud": None,
                    "huawei": "openstack", "nova": "openstack", "openstack": "openstack"}


class AddCloudMetadata:
    """Providers are probed in parallel, once, in the background at start-up;
    the first answer wins. The first event waits for the probe at most
    ``timeout``; without an answer (no cloud) nothing is ever added."""

    def __init__(self, providers, timeout, overwrite, host=METADATA_HOST, port=80):
        self.providers, self.timeout, self.overwrite = providers, timeout, overwrite
        self.host, self.port = host, port
        self.result: dict | None = None
        self.done = threading.Event()
        self.started = False
        self.deadline = 0.0

    def start(self):
        if self.started:
            return
        self.started = True
        self.deadline = time.monotonic() + self.timeout
        threading.Thread(target=self._probe, name="add_cloud_metadata", daemon=True).start()

    def _probe(self):
        lock = threading.Lock()
        left = [len(self.providers)]

        def one(name):
            try:
                res = PROVIDERS[name](self.host, self.port, self.timeout)
                with lock:
                    if self.result is None:
                        self.result = res
                        self.done.set()
            except Exception as e:       # no such cloud: refused, timed out, bad document
                log.debug("add_cloud_metadata: %s: %s", name, e)
            finally:
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        self.done.set()
        for name in self.providers:
            threading.Thread(target=one, args=(name,), daemon=True).start()

    def run(self, ev):
        if not self.done.is_set():
            if not self.started:
                self.start()
            self.done.wait(max(0.0, self.deadline - time.monotonic()))
            if not self.done.is_set():
                self.done.set()        # gave up: the timeout passed without an answer
        res = self.result
        if res is None:
            return ev
        if self.overwrite:
            E.deep_update(ev, res, True)
        else:
            for k, v in res.items():
                if E.get(ev, k) is MISSING:
                    ev[k] = E.deep_copy(v)
        return ev


def add_cloud_metadata(o, ctx):
    timeout = o.duration("timeout", 3.0)
    names = o.strings("providers")
    chosen = []
    for n in names or PROVIDERS:
        real = PROVIDER_ALIASES.get(n, n)
        if n in PROVIDER_ALIASES and real is None:
            raise ConfigError(o.sub("providers"), "provider %s is not available in this version" % n)
        if real not in PROVIDERS:
            raise ConfigError(o.sub("providers"), "unknown provider %r (known: %s)" % (n, ", ".join(sorted(PROVIDERS))))
        if real not in chosen:
            chosen.append(real)
    p = AddCloudMetadata(chosen, timeout, o.bool("overwrite", False))
    if ctx.start:
        p.start()
    return p


# -- add_docker_metadata ---------------------------------------------------------------------------

class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class AddDockerMetadata:
    """Containers from the Docker API (``host``, a unix socket), listed again at
    most every ``cleanup_timeout``/10 when an unknown id shows up. Without a
    socket the processor adds nothing and reports nothing."""

    def __init__(self, sock_path, match_fields, match_pids, match_source, labels_dedot, ctx, refresh=10.0):
        self.sock_path, self.match_fields, self.match_pids = sock_path, match_fields, match_pids
        self.labels_dedot = labels_dedot
        self.clock = ctx.clock
        self.refresh = refresh
        self.containers: dict = {}
        self.listed = -1e18
        self.available = None
        self.pid_cache: dict = {}

    def _list(self):
        now = self.clock()
        if now - self.listed < self.refresh:
            return
        self.listed = now
        if not os.path.exists(self.sock_path):
            self.available = False
            self.containers = {}
            return
        try:
            conn = _UnixHTTP(self.sock_path, 2.0)
            try:
                conn.request("GET", "/containers/json")
                r = conn.getresponse()
                data = json.loads(r.read(16 << 20))
            finally:
                conn.close()
        except (OSError, ValueError, http.client.HTTPException) as e:
            log.debug("add_docker_metadata: %s", e)
            self.available = False
            return
        self.available = True
        out = {}
        for c in data if isinstance(data, list) else ():
            cid = c.get("Id", "")
            labels = c.get("Labels") or {}
            if self.labels_dedot:
                labels = {k.replace(".", "_"): v for k, v in labels.items()}
            names = c.get("Names") or [""]
            out[cid] = {"id": cid, "name": names[0].lstrip("/"), "image": {"name": c.get("Image", "")}}
            if labels:
                out[cid]["labels"] = labels
        self.containers = out

    def _lookup(self, cid):
        c = self.containers.get(cid)
        if c is None:
            self._list()
            c = self.containers.get(cid)
        return c

    def run(self, ev):
        if self.available is False and self.clock() - self.listed < self.refresh:
            return ev
        if self.available is None:
            self._list()
            if not self.available:
                return ev
        if isinstance(ev.get("container"), dict) and ev["container"].get("name"):
            return ev
        cid = None
        for f in self.match_fields:
            v = E.get(ev, f, None)
            if isinstance(v, str) and v:
                cid = v
                break
        if cid is None:
            for f in self.match_pids:
                v = E.get(ev, f, None)
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    hit = self.pid_cache.get(v)
                    if hit is None:
                        if len(self.pid_cache) > 4096:
                            self.pid_cache.clear()
                        hit = self.pid_cache[v] = container_id_of(v)
                    if hit:
                        cid = hit
                        break
        if not cid:
            return ev
        c = self._lookup(cid)
        if c is None:
            return ev
        cur = ev.get("container")
        if isinstance(cur, dict):
            E.deep_update(cur, c, True)
        else:
            ev["container"] = E.deep_copy(c)
        return ev


def add_docker_metadata(o, ctx):
    host = o.str("host", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise ConfigError(o.sub("host"), "only a unix:// Docker socket is available in this version")
    if o.mapping("ssl", {}):
        raise ConfigError(o.sub("ssl"), "TLS to the Docker API is not available in this version")
    o.bool("match_source", True)
    o.int("match_short_id", 0) if not isinstance(o.raw.get("match_short_id"), bool) else o.bool("match_short_id")
    o.str("source_index", "")
    cleanup = o.duration("cleanup_timeout", 60.0)
    return AddDockerMetadata(host[len("unix://"):], o.strings("match_fields"),
                             o.strings("match_pids", ["process.pid", "process.parent.pid"]), True,
                             o.bool("labels.dedot", True) if "labels.dedot" in o.raw else
                             bool(o.mapping("labels", {}).get("dedot", True)), ctx,
                             refresh=min(10.0, max(1.0, cleanup / 6)))


PROCESSORS = {
    "add_host_metadata": add_host_metadata, "add_observer_metadata": add_observer_metadata,
    "add_process_metadata": add_process_metadata, "add_cloud_metadata": add_cloud_metadata,
    "add_docker_metadata": add_docker_metadata,
}
