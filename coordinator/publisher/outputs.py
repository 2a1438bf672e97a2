"""Publisher outputs: ``console`` and rotating ``file``, behind one contract.

Contract (STYLE.md section 6, after ``elasticsearch.helpers.actions``)
-------------------------------------------------------------------
Every output has

- ``publish_batch(events, lines=None) -> list[Result]``: one ``Result`` per
  event, in order. It never raises for I/O or encoding trouble: a full disk, a
  missing permission or an unencodable value become ``Result(ok=False,
  error=...)`` for the events concerned.
- ``close()``: idempotent; later batches fail with ``"output closed"``.
- ``stats``: an ``OutputStats`` (events written, bytes written, errors).

Encoding, done once
-------------------
:func:`encode_event` (shared/jsonenc.py, so that the workers use it without the publisher's code) is the canonical encoding: compact JSON (``,`` and ``:``
separators), ``ensure_ascii=False``, keys in insertion order, UTF-8, no
trailing newline. ``bytes`` values (events should be msgpack-native ``str``)
are decoded as UTF-8 with U+FFFD replacement; sets become lists. NaN,
infinities, cycles and other unencodable values raise :class:`EncodeError`.

It is the publisher's hot spot, so when ``orjson`` is installed it writes the
text (about six times faster than the stdlib encoder) and the stdlib encoder
is the reference: it takes over whenever orjson fails (large integers,
non-string keys, lone surrogates, cycles...) or its text could differ from
the stdlib's (``null``, which may stand for NaN; small floats written without
an exponent). Either way the bytes are those of ``json.JSONEncoder``.

``Chunker`` (chunker.py) encodes each event with it once, to measure the
batch's size, and hands the lines along (``Batch.lines``). An output whose
codec is the compact one writes those lines as they are (``escape_html`` is a
byte substitution on them); a ``pretty`` codec encodes again. Callers that
have no pre-encoded lines simply pass the event dicts.

The file output follows libbeat 8.x (``outputs/fileout`` with
elastic-agent-libs ``file/rotator.go``): the active file is
``<path>/<filename>-YYYYMMDD.ndjson`` (local date); a rotation starts a new
file, ``<filename>-YYYYMMDD-N.ndjson`` with the next free ``N`` of that day,
and older files are never renamed. After a rotation, the oldest rotated
files are deleted so that at most ``number_of_files`` remain besides the
active one (libbeat's ``MaxBackups(number_of_files)``). With
``rotate_on_startup`` an existing active file is rotated away at the first
write; without it, writing appends to it.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from shared.confutil import ConfigError, build
from shared.jsonenc import _PRETTY, EncodeError, _encode_with, encode_event, orjson  # noqa: F401 (re-exported)

DATE_FORMAT = "%Y%m%d"
EXTENSION = ".ndjson"
MAX_BACKUPS_LIMIT = 1024     # libbeat file.MaxBackupsLimit


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one event: ``ok``, else ``error`` says why; ``retry``: a
    temporary failure (the event may be sent again later); ``unreachable``:
    the output could not be reached at all (refused, timed out, the whole
    request refused): the memory queue sends such events again until it
    can, as Beats do (see process.py)."""
    ok: bool
    error: str = ""
    retry: bool = False
    unreachable: bool = False


OK = Result(True)


@dataclasses.dataclass(slots=True)
class OutputStats:
    events: int = 0     # events written
    bytes: int = 0      # bytes written, newlines included
    errors: int = 0     # events not written


class Output(Protocol):
    stats: OutputStats

    def publish_batch(self, events: Sequence[dict],
                      lines: Sequence[bytes | None] | None = None) -> list[Result]: ...

    def close(self) -> None: ...


# --- JSON (shared/jsonenc.py) ----------------------------------------------

def _escape_html(data: bytes) -> bytes:
    # In JSON text '<', '>' and '&' only occur inside strings, so a byte
    # substitution gives what Go's encoder writes with SetEscapeHTML(true).
    return data.replace(b"&", b"\\u0026").replace(b"<", b"\\u003c").replace(b">", b"\\u003e")


@dataclasses.dataclass(frozen=True, slots=True)
class JsonCodec:
    """libbeat's ``codec.json``: ``pretty`` (2-space indent) and ``escape_html``."""
    pretty: bool = False
    escape_html: bool = False

    @property
    def reuses_lines(self) -> bool:
        """True when the compact lines from encode_event can be written as they are."""
        return not self.pretty

    def encode(self, event: dict) -> bytes:
        data = _encode_with(_PRETTY, event) if self.pretty else encode_event(event)
        return _escape_html(data) if self.escape_html else data

    def adapt(self, line: bytes) -> bytes:
        """This codec's text from a canonical compact line (only if reuses_lines)."""
        return _escape_html(line) if self.escape_html else line


def _resolve_lines(events, lines):
    if lines is None:
        lines = getattr(events, "lines", None)    # chunker.Batch carries its lines
    if lines is not None and len(lines) != len(events):
        raise ValueError("publish_batch: %d lines for %d events" % (len(lines), len(events)))
    return lines


def _encode_all(codec: JsonCodec, events, lines, results: list) -> list:
    """Encoded text per event (None where encoding failed, with its Result set)."""
    out = []
    reuse = lines is not None and codec.reuses_lines
    for i, ev in enumerate(events):
        line = lines[i] if reuse else None
        try:
            out.append(codec.encode(ev) if line is None else codec.adapt(line))
        except EncodeError as e:
            out.append(None)
            results[i] = Result(False, str(e))
    return out


def _os_error_text(e: OSError) -> str:
    return e.strerror or str(e)


# --- console ---------------------------------------------------------------

class ConsoleOutput:
    """``output.console``: one JSON document per line on stdout."""

    def __init__(self, pretty: bool = False, escape_html: bool = False, stream=None):
        self.codec = JsonCodec(pretty=pretty, escape_html=escape_html)
        self._stream = stream if stream is not None else sys.stdout
        self._closed = False
        self.stats = OutputStats()
        self.bulk_max_size = 2048     # suggested chunk_size (option bulk_max_size)

    def publish_batch(self, events: Sequence[dict],
                      lines: Sequence[bytes | None] | None = None) -> list[Result]:
        results: list = [OK] * len(events)
        if self._closed:
            return self._fail_all(results, "console output: output closed")
        texts = _encode_all(self.codec, events, _resolve_lines(events, lines), results)
        good = [t for t in texts if t is not None]
        if good:
            data = b"\n".join(good) + b"\n"
            try:
                self._write(data)
            except (OSError, ValueError) as e:
                msg = "console output: write failed: %s" % (
                    _os_error_text(e) if isinstance(e, OSError) else e)
                for i, t in enumerate(texts):
                    if t is not None:
                        results[i] = Result(False, msg)
                good = []
            else:
                self.stats.bytes += len(data)
        self.stats.events += len(good)
        self.stats.errors += len(results) - len(good)
        return results

    def _write(self, data: bytes) -> None:
        buf = getattr(self._stream, "buffer", None)
        if buf is not None:
            self._stream.flush()        # keep order with text already written
            buf.write(data)
            buf.flush()
        else:
            self._stream.write(data.decode("utf-8"))
            self._stream.flush()

    def _fail_all(self, results: list, msg: str) -> list:
        self.stats.errors += len(results)
        return [Result(False, msg)] * len(results)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._stream.flush()
            except (OSError, ValueError):
                pass


# --- rotating file ---------------------------------------------------------

class FileOutput:
    """``output.file``: NDJSON files rotated by size, as libbeat 8.x does.

    Each batch is written with one ``os.write`` per file it lands in (one in
    the common case). There is no user-space buffer, so a batch is in the
    file when publish_batch returns (not fsync'ed). A failed write is cut
    back (``ftruncate``) so that no partial line stays behind.
    ``clock`` gives the wall time used to date file names.
    """

    def __init__(self, path: str, filename: str = "packetbeat", rotate_every_kb: int = 10240,
                 number_of_files: int = 7, permissions: int = 0o600, rotate_on_startup: bool = True,
                 *, pretty: bool = False, escape_html: bool = False,
                 clock: Callable[[], float] = time.time):
        if rotate_every_kb < 1:
            raise ValueError("rotate_every_kb must be at least 1")
        if not 2 <= number_of_files <= MAX_BACKUPS_LIMIT:
            raise ValueError("number_of_files must be between 2 and %d" % MAX_BACKUPS_LIMIT)
        if not 0 <= permissions <= 0o777:
            raise ValueError("permissions mask %o is invalid" % permissions)
        if not filename or os.sep in filename:
            raise ValueError("filename must be a plain file name, got %r" % filename)
        self.codec = JsonCodec(pretty=pretty, escape_html=escape_html)
        self.directory = os.path.abspath(path)
        self.filename = filename
        self.max_bytes = rotate_every_kb * 1024
        self.number_of_files = number_of_files
        self.permissions = permissions
        self._clock = clock
        self._pattern = re.compile(re.escape(filename) + r"-(\d{8})(?:-(\d+))?" + re.escape(EXTENSION) + r"\Z")
        self._fd: int | None = None
        self._size = 0
        self._closed = False
        self.stats = OutputStats()
        self.bulk_max_size = 2048     # suggested chunk_size (option bulk_max_size)
        existing = self._existing()
        # Continue from the newest file, as libbeat's dateRotator does.
        self.active = existing[-1][2] if existing else self._name(self._today(), 0)
        self._rotate_first = rotate_on_startup and os.path.exists(self.active)

    # names ------------------------------------------------------------------
    def _today(self) -> str:
        return time.strftime(DATE_FORMAT, time.localtime(self._clock()))

    def _name(self, date: str, index: int) -> str:
        suffix = "-%d" % index if index else ""
        return os.path.join(self.directory, "%s-%s%s%s" % (self.filename, date, suffix, EXTENSION))

    def _existing(self) -> list[tuple[str, int, str]]:
        """(date, index, path) of this output's files, oldest first."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found = []
        for n in names:
            m = self._pattern.match(n)
            if m:
                found.append((m.group(1), int(m.group(2) or 0), os.path.join(self.directory, n)))
        found.sort()
        return found

    def files(self) -> list[str]:
        """Paths of this output's files on disk, oldest first (active one last)."""
        return [p for _, _, p in self._existing()]

    # file handling -----------------------------------------------------------
    def _dir_mode(self) -> int:
        mode = 0o700
        if self.permissions & 0o070:
            mode |= 0o050
        if self.permissions & 0o007:
            mode |= 0o005
        return mode

    def _open(self, truncate: bool) -> None:
        os.makedirs(self.directory, self._dir_mode(), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= os.O_TRUNC if truncate else os.O_APPEND
        fd = os.open(self.active, flags, self.permissions)
        self._size = 0 if truncate else os.fstat(fd).st_size
        self._fd = fd

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _ensure_open(self) -> None:
        if self._fd is not None:
            return
        if os.path.exists(self.active):
            if self._rotate_first:
                self._rotate_first = False
                self._rotate()
                self._open(truncate=True)
            else:
                self._open(truncate=False)
        else:
            self._rotate_first = False
            self._open(truncate=True)

    def _rotate(self) -> None:
        """Close the active file, pick the next name, purge the oldest files."""
        self._close_fd()
        today = self._today()
        existing = self._existing()
        same_day = [idx for date, idx, _ in existing if date == today]
        self.active = self._name(today, max(same_day) + 1 if same_day else 0)
        rotated = [p for _, _, p in existing if p != self.active]
        for p in rotated[:max(0, len(rotated) - self.number_of_files)]:
            try:
                os.remove(p)
            except FileNotFoundError:
                pass

    def _write(self, data: bytes) -> int:
        """Write all of ``data``; on failure cut the file back and re-raise.

        Returns the bytes written. If the cut-back fails too, the OSError
        carries ``written`` (bytes that stayed in the file).
        """
        start = self._size
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
                e.written = 0
            except OSError:
                self._size = start + done
                e.written = done
            raise
        self._size = start + done
        return done

    # publishing ---------------------------------------------------------------
    def publish_batch(self, events: Sequence[dict],
                      lines: Sequence[bytes | None] | None = None) -> list[Result]:
        results: list = [OK] * len(events)
        if self._closed:
            self.stats.errors += len(results)
            return [Result(False, "file output: output closed")] * len(results)
        texts = _encode_all(self.codec, events, _resolve_lines(events, lines), results)
        try:
            self._ensure_open()
        except OSError as e:
            msg = "file output: cannot open %s: %s" % (self.active, _os_error_text(e))
            return self._finish(results, [i for i, t in enumerate(texts) if t is not None], msg)
        pending: list[int] = []
        pending_bytes = 0
        for i, text in enumerate(texts):
            if text is None:
                continue
            need = len(text) + 1
            if need > self.max_bytes:
                results[i] = Result(False, "file output: event size (%d bytes) is greater than the max "
                                           "file size (%d bytes)" % (need, self.max_bytes))
                continue
            if pending and self._size + pending_bytes + need > self.max_bytes:
                failed = self._flush(pending, texts, results)
                pending, pending_bytes = [], 0
                if failed:
                    rest = [j for j in range(i, len(texts)) if texts[j] is not None]
                    return self._finish(results, rest, failed)
            if self._size + need > self.max_bytes:
                try:
                    self._rotate()
                    self._open(truncate=True)
                except OSError as e:
                    msg = "file output: cannot rotate to %s: %s" % (self.active, _os_error_text(e))
                    rest = [j for j in range(i, len(texts)) if texts[j] is not None]
                    return self._finish(results, rest, msg)
            pending.append(i)
            pending_bytes += need
        if pending:
            self._flush(pending, texts, results)
        return self._finish(results, [], "")

    def _flush(self, pending: list[int], texts: list, results: list) -> str:
        """Write the pending events; returns an error message or ''."""
        data = b"\n".join([texts[i] for i in pending]) + b"\n"
        try:
            self.stats.bytes += self._write(data)
        except OSError as e:
            written = getattr(e, "written", 0)
            self.stats.bytes += written
            msg = "file output: write to %s failed: %s" % (self.active, _os_error_text(e))
            for i in pending:
                n = len(texts[i]) + 1
                if written >= n:
                    written -= n
                else:
                    results[i] = Result(False, msg)
            return msg
        return ""

    def _finish(self, results: list, failed: list[int], msg: str) -> list[Result]:
        for i in failed:
            results[i] = Result(False, msg)
        bad = sum(1 for r in results if not r.ok)
        self.stats.errors += bad
        self.stats.events += len(results) - bad
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._close_fd()
        except OSError:
            pass


# --- configuration -----------------------------------------------------------

@dataclasses.dataclass
class JsonCodecConfig:
    pretty: bool = False
    escape_html: bool = False


@dataclasses.dataclass
class CodecConfig:
    json: JsonCodecConfig = dataclasses.field(default_factory=JsonCodecConfig)


@dataclasses.dataclass
class ConsoleConfig:
    enabled: bool = True
    pretty: bool = False
    codec: CodecConfig = dataclasses.field(default_factory=CodecConfig)
    bulk_max_size: int = 2048


@dataclasses.dataclass
class FileConfig:
    enabled: bool = True
    path: str = "data"
    filename: str = "packetbeat"
    rotate_every_kb: int = 10240
    number_of_files: int = 7
    permissions: int | str = 0o600
    rotate_on_startup: bool = True
    codec: CodecConfig = dataclasses.field(default_factory=CodecConfig)
    bulk_max_size: int = 2048

    def validate(self, path: str) -> None:
        if not self.path:
            raise ConfigError(path + ".path", "required: the directory for the files")
        if not self.filename or "/" in self.filename:
            raise ConfigError(path + ".filename", "must be a plain file name, got %r" % self.filename)
        if self.rotate_every_kb < 1:
            raise ConfigError(path + ".rotate_every_kb", "must be at least 1")
        if not 2 <= self.number_of_files <= MAX_BACKUPS_LIMIT:
            raise ConfigError(path + ".number_of_files", "must be between 2 and %d" % MAX_BACKUPS_LIMIT)
        perm = self.permissions
        if isinstance(perm, str):
            try:
                perm = int(perm.strip().lower().removeprefix("0o"), 8)
            except ValueError:
                raise ConfigError(path + ".permissions", "expected an octal mode such as 0600, got %r"
                                  % self.permissions) from None
        if not 0 <= perm <= 0o777:
            raise ConfigError(path + ".permissions", "mode %o is invalid" % perm)
        self.permissions = perm


_TYPES = {"console": ConsoleConfig, "file": FileConfig}


def make_output(cfg: Mapping, path: str = "output", *, clock: Callable[[], float] = time.time,
                stream=None) -> ConsoleOutput | FileOutput:
    """The one enabled output of ``cfg`` (``{"console": {...}}`` or ``{"file": {...}}``).

    Keys are Packetbeat's option names. Outputs with ``enabled: false`` are
    skipped; exactly one must remain. Errors are ConfigError naming the key.
    ``bulk_max_size`` (default 2048; <= 0 means the default) is kept on the
    output as the suggested ``Chunker`` chunk_size. ``stream`` (console) and
    ``clock`` (file names) are for tests.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, "expected a mapping of output type to options")
    chosen = []
    for kind, raw in cfg.items():
        sub = "%s.%s" % (path, kind)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(sub, "expected a mapping, got %s" % type(raw).__name__)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(sub + ".enabled", "expected true or false, got %r" % (enabled,))
        if enabled:
            chosen.append((kind, raw, sub))
    if not chosen:
        raise ConfigError(path, "no output is enabled")
    if len(chosen) > 1:
        raise ConfigError(path, "exactly one output may be enabled, found: %s"
                          % ", ".join(k for k, _, _ in chosen))
    kind, raw, sub = chosen[0]
    if kind == "redis":
        from coordinator.publisher.redis_out import RedisConfig, RedisOutput
        return RedisOutput(build(RedisConfig, dict(raw), sub))
    if kind == "elasticsearch":
        from coordinator.publisher.elasticsearch import ElasticsearchConfig, ElasticsearchOutput
        return ElasticsearchOutput(build(ElasticsearchConfig, dict(raw), sub))
    if kind not in _TYPES:
        raise ConfigError(sub, "output type not built here (make_output knows: %s)"
                          % ", ".join(list(_TYPES) + ["elasticsearch", "redis"]))
    conf = build(_TYPES[kind], dict(raw), sub)
    out = _construct(kind, conf, clock, stream)
    out.bulk_max_size = conf.bulk_max_size if conf.bulk_max_size > 0 else 2048
    return out


def _construct(kind: str, conf, clock, stream) -> ConsoleOutput | FileOutput:
    if kind == "console":
        return ConsoleOutput(pretty=conf.pretty or conf.codec.json.pretty,
                             escape_html=conf.codec.json.escape_html, stream=stream)
    return FileOutput(conf.path, filename=conf.filename, rotate_every_kb=conf.rotate_every_kb,
                      number_of_files=conf.number_of_files, permissions=conf.permissions,
                      rotate_on_startup=conf.rotate_on_startup, pretty=conf.codec.json.pretty,
                      escape_html=conf.codec.json.escape_html, clock=clock)
