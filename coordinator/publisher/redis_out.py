"""``output.redis``: events as JSON onto a Redis list (RPUSH) or channel (PUBLISH).

libbeat's options: ``hosts`` (``host[:port]``; several are tried in turn,
a failed one is backed off), ``password``, ``db``, ``key`` (may be a format
like ``index``: ``%{[type]}``), ``datatype`` (``list`` or ``channel``),
``timeout``, ``bulk_max_size``, ``backoff.init``/``backoff.max``,
``max_retries``. A batch is one pipeline (MULTI-less: RPUSH/PUBLISH per
key group); a connection failure fails the whole batch with
``Result(retry=True)`` after ``max_retries`` attempts on the next hosts.
Redis has no idempotent push: when a connection drops after Redis applied
part of a pipeline, the retry repeats those list entries (at-least-once).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from coordinator.publisher.elasticsearch import IndexFormat
from coordinator.publisher.outputs import OK, EncodeError, OutputStats, Result, encode_event
from shared.confutil import ConfigError, Duration

log = logging.getLogger("packetbeat.output.redis")


@dataclasses.dataclass
class RedisBackoff:
    init: Duration = Duration(1.0)
    max: Duration = Duration(60.0)


@dataclasses.dataclass
class RedisConfig:
    enabled: bool = True
    hosts: list[str] = dataclasses.field(default_factory=lambda: ["localhost:6379"])
    password: str = ""
    db: int = 0
    key: str = "packetbeat"
    datatype: str = "list"
    timeout: Duration = Duration(5.0)
    bulk_max_size: int = 2048
    max_retries: int = 3
    backoff: RedisBackoff = dataclasses.field(default_factory=RedisBackoff)

    def validate(self, path: str) -> None:
        if not self.hosts:
            raise ConfigError(path + ".hosts", "at least one host is required")
        for i, h in enumerate(self.hosts):
            try:
                _split(h)
            except ValueError as e:
                raise ConfigError("%s.hosts[%d]" % (path, i), str(e)) from None
        if self.datatype not in ("list", "channel"):
            raise ConfigError(path + ".datatype", "must be list or channel, got %r" % self.datatype)
        if not 0 <= self.db <= 15:
            raise ConfigError(path + ".db", "must be between 0 and 15")
        if not self.key:
            raise ConfigError(path + ".key", "must not be empty")
        try:
            IndexFormat(self.key)
        except ValueError as e:
            raise ConfigError(path + ".key", str(e)) from None
        if self.timeout <= 0:
            raise ConfigError(path + ".timeout", "must be positive")
        if self.max_retries < 0:
            raise ConfigError(path + ".max_retries", "must not be negative")


def _split(host: str) -> tuple[str, int]:
    host = host.removeprefix("redis://")
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "6379")
    if not name:
        raise ValueError("not a host: %r" % host)
    try:
        n = int(port)
    except ValueError:
        raise ValueError("bad port in %r" % host) from None
    if not 0 < n < 65536:
        raise ValueError("bad port in %r" % host)
    return name, n


class RedisOutput:
    def __init__(self, cfg: RedisConfig, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        import redis
        self.cfg = cfg
        self.key = IndexFormat(cfg.key)
        self.stats = OutputStats()
        self.bulk_max_size = cfg.bulk_max_size if cfg.bulk_max_size > 0 else 2048
        self._sleep = sleep
        self._clock = clock
        self._clients = []
        for h in cfg.hosts:
            host, port = _split(h)
            self._clients.append(redis.Redis(host=host, port=port, db=cfg.db, password=cfg.password or None,
                                             socket_timeout=float(cfg.timeout),
                                             socket_connect_timeout=float(cfg.timeout)))
        self._dead_until = [0.0] * len(self._clients)
        self._fails = [0] * len(self._clients)
        self._next = 0
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._closed = False

    def _pick(self) -> int | None:
        now = self._clock()
        for k in range(len(self._clients)):
            i = (self._next + k) % len(self._clients)
            if self._dead_until[i] <= now:
                self._next = i + 1
                return i
        return None

    def _send(self, i: int, groups: dict[str, list[bytes]]) -> None:
        pipe = self._clients[i].pipeline(transaction=False)
        for key, lines in groups.items():
            if self.cfg.datatype == "list":
                pipe.rpush(key, *lines)
            else:
                for line in lines:
                    pipe.publish(key, line)
        pipe.execute()

    def publish_batch(self, events: Sequence[dict], lines: Sequence[bytes | None] | None = None) -> list[Result]:
        results: list = [OK] * len(events)
        if self._closed:
            self.stats.errors += len(events)
            return [Result(False, "redis output: output closed")] * len(events)
        if lines is None:
            lines = getattr(events, "lines", None)
        groups: dict[str, list[bytes]] = {}
        members: list[int] = []
        for i, ev in enumerate(events):
            try:
                line = lines[i] if lines is not None and lines[i] is not None else encode_event(ev)
                key = self.key(ev)
            except (EncodeError, KeyError) as e:
                results[i] = Result(False, "redis output: %s" % (e.args[0] if e.args else e))
                continue
            groups.setdefault(key, []).append(line)
            members.append(i)
        if not members:
            self.stats.errors += len(results)
            return results
        delay = float(self.cfg.backoff.init)
        error = ""
        for attempt in range(self.cfg.max_retries + 1):
            i = self._pick()
            if i is not None:
                try:
                    self._send(i, groups)
                except self._errors as e:
                    self._fails[i] += 1
                    back = min(float(self.cfg.backoff.init) * 2 ** (self._fails[i] - 1), float(self.cfg.backoff.max))
                    self._dead_until[i] = self._clock() + back
                    error = "redis output: %s: %s" % (self.cfg.hosts[i], e)
                    log.warning("%s; host backed off for %.1fs", error, back)
                else:
                    self._fails[i] = 0
                    self.stats.events += len(members)
                    self.stats.bytes += sum(len(x) for g in groups.values() for x in g)
                    self.stats.errors += len(results) - len(members)
                    return results
            else:
                error = error or "redis output: every host is backed off"
            if attempt < self.cfg.max_retries:
                self._sleep(delay)
                delay = min(delay * 2, float(self.cfg.backoff.max))
        for i in members:
            results[i] = Result(False, error, retry=True, unreachable=True)
        self.stats.errors += len(results)
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for c in self._clients:
            c.close()
