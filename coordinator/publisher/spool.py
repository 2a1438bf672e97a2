"""``queue.disk``: an append-only, checksummed disk spool between accept and output.

Layout in ``path``::

    00000000000000000000.seg   records 0.. (file name = number of its first record)
    00000000000000001234.seg   the next segment, started once the previous one
                               passed ``segment_size`` bytes
    state.json                 {"next": N, "meta": {...}}: every record < N is
                               acknowledged by the output (written atomically)

A record is ``<u32 length><u32 crc32(payload)><payload>``. Records are
numbered from 0 without gaps in one segment; ``append`` returns the number.
``fsync``: ``always`` syncs each append before it returns (an acknowledged
record survives a power cut), ``never`` leaves it to the OS (it survives a
process crash, which is what SIGKILL tests).

Opening an existing spool scans every segment: a torn tail (short header,
short payload or bad checksum at the end of the newest segment) is cut off;
a bad record inside an older segment ends that segment (the rest of it is
lost, counted in ``stats["corrupt"]`` and logged). Reading starts at the
first record not acknowledged, in order. ``ack(n)`` records that every record
< n is done and deletes the segments that hold nothing else. The active
segment is never deleted while being written.

``max_size`` bounds the bytes on disk: ``append`` raises :class:`SpoolFull`
when the record does not fit (the caller waits for acks: backpressure).
Thread safety: one writer thread and one reader thread may share a spool.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import struct
import threading
import zlib

from shared.confutil import ConfigError

log = logging.getLogger("packetbeat.spool")

_HDR = struct.Struct("<II")
_SUFFIX = ".seg"
STATE = "state.json"


class SpoolError(Exception):
    """The spool cannot be used (bad path, record larger than the spool...)."""


class SpoolFull(SpoolError):
    """No room for this record until the output acknowledges more."""


class SpoolDiskFull(SpoolFull):
    """The file system under the spool is full (ENOSPC / EDQUOT): no room until
    space is freed there or the output acknowledges more."""


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(path: str, nbytes: int, e: OSError) -> SpoolDiskFull:
    return SpoolDiskFull("disk queue %s: no space left on its file system (%s); %d more bytes are needed: "
                         "free space there or lower queue.disk.max_size"
                         % (path, e.strerror or e, nbytes))


@dataclasses.dataclass
class DiskQueueConfig:
    """``queue.disk`` options (libbeat names; ``fsync`` is ours)."""
    path: str = ""
    max_size: int | str = "10GB"
    segment_size: int | str = 0          # 0: max_size / 10, at most 64 MiB
    fsync: str = "always"

    def validate(self, path: str) -> None:
        self.max_size = parse_size(self.max_size, path + ".max_size")
        self.segment_size = parse_size(self.segment_size, path + ".segment_size") if self.segment_size else \
            max(4096, min(self.max_size // 10, 64 << 20))
        if self.max_size < 4096:
            raise ConfigError(path + ".max_size", "must be at least 4KB")
        if self.segment_size > self.max_size:
            raise ConfigError(path + ".segment_size", "must not exceed max_size")
        if self.fsync not in ("always", "never"):
            raise ConfigError(path + ".fsync", "must be always or never, got %r" % self.fsync)


_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20,
          "gb": 1 << 30, "gib": 1 << 30, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(value, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        num = text.rstrip("kmgtib")
        unit = text[len(num):]
        try:
            n = int(float(num) * _UNITS[unit])
        except (ValueError, KeyError):
            raise ConfigError(path, "expected a size such as 512MB, got %r" % value) from None
    else:
        raise ConfigError(path, "expected a size such as 512MB, got %r" % (value,))
    if n <= 0:
        raise ConfigError(path, "must be positive")
    return n


@dataclasses.dataclass
class _Segment:
    first: int            # number of its first record
    path: str
    count: int = 0        # records in it
    size: int = 0         # bytes in it


class Spool:
    def __init__(self, path: str, max_size: int = 1 << 30, segment_size: int = 0, fsync: str = "always"):
        self.path = os.path.abspath(path)
        self.max_size = max_size
        self.segment_size = segment_size or max(4096, min(max_size // 10, 64 << 20))
        self.fsync = fsync == "always"
        self.stats = {"torn": 0, "corrupt": 0, "appended": 0, "acked": 0, "deleted_segments": 0}
        self._lock = threading.Condition()
        self._segments: list[_Segment] = []
        self._fd: int | None = None
        self.acked = 0                         # every record < acked is done
        self.meta: dict = {}
        try:
            os.makedirs(self.path, 0o700, exist_ok=True)
        except OSError as e:
            raise SpoolError("cannot create spool directory %s: %s" % (self.path, e.strerror)) from None
        self._load_state()
        self._scan()
        self._read_off = 0                     # reader: file offset and record number
        self._read_no = 0
        self._read_fh = None
        self.rewind()

    # -- opening ------------------------------------------------------------------
    def _load_state(self) -> None:
        try:
            with open(os.path.join(self.path, STATE), encoding="utf-8") as fh:
                st = json.load(fh)
            self.acked = int(st["next"])
            self.meta = dict(st.get("meta") or {})
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as e:
            raise SpoolError("spool state %s is unreadable: %s" % (os.path.join(self.path, STATE), e)) from None

    def _scan(self) -> None:
        names = sorted(n for n in os.listdir(self.path) if n.endswith(_SUFFIX) and n[:-4].isdigit())
        for i, name in enumerate(names):
            seg = _Segment(int(name[:-4]), os.path.join(self.path, name))
            good, count, reason = _scan_file(seg.path)
            size = os.path.getsize(seg.path)
            if good < size:
                if i == len(names) - 1:
                    self.stats["torn"] += 1
                    log.warning("spool %s: cutting a torn tail (%d bytes: %s)", name, size - good, reason)
                else:
                    self.stats["corrupt"] += 1
                    log.error("spool %s: %s at offset %d; %d bytes after it are lost", name, reason, good,
                              size - good)
                with open(seg.path, "r+b") as fh:
                    fh.truncate(good)
                    os.fsync(fh.fileno())
            seg.count, seg.size = count, good
            if seg.first + seg.count <= self.acked and i < len(names) - 1:
                os.remove(seg.path)          # acknowledged before the crash, not yet deleted
                continue
            self._segments.append(seg)
        if self._segments:
            last = self._segments[-1]
            self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        if self._segments and self.acked > self.end:
            self.acked = self.end

    # -- writer -----------------------------------------------------------------------
    @property
    def end(self) -> int:
        """Number the next appended record gets."""
        if not self._segments:
            return self.acked
        last = self._segments[-1]
        return last.first + last.count

    @property
    def size(self) -> int:
        return sum(s.size for s in self._segments)

    def _roll(self) -> None:
        if self._fd is not None:
            if self.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
        seg = _Segment(self.end, os.path.join(self.path, "%020d%s" % (self.end, _SUFFIX)))
        self._fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                           0o600)
        self._segments.append(seg)
        if self.fsync:
            dfd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, payload: bytes) -> int:
        """Write one record; its number. SpoolFull when it does not fit now."""
        rec = _HDR.pack(len(payload), zlib.crc32(payload)) + payload
        if len(rec) > self.max_size:
            raise SpoolError("record of %d bytes is larger than the spool (%d bytes)" % (len(rec), self.max_size))
        with self._lock:
            if self.size + len(rec) > self.max_size:
                raise SpoolFull("spool full: %d of %d bytes in use" % (self.size, self.max_size))
            if not self._segments or self._segments[-1].size >= self.segment_size:
                try:
                    self._roll()
                except OSError as e:
                    if e.errno in _DISK_FULL:
                        raise _disk_full(self.path, len(rec), e) from None
                    raise SpoolError("disk queue %s: cannot open a segment: %s" % (self.path, e.strerror or e)) from None
            seg = self._segments[-1]
            view = memoryview(rec)
            done = 0
            try:
                while done < len(view):
                    done += os.write(self._fd, view[done:])
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as e:
                try:
                    os.ftruncate(self._fd, seg.size)
                except OSError:
                    pass
                if e.errno in _DISK_FULL:
                    raise _disk_full(self.path, len(rec), e) from None
                raise SpoolError("disk queue %s: write failed: %s" % (self.path, e.strerror or e)) from None
            seg.size += len(rec)
            seg.count += 1
            self.stats["appended"] += 1
            self._lock.notify_all()
            return seg.first + seg.count - 1

    def wait_for_room(self, nbytes: int, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.size + nbytes + _HDR.size <= self.max_size, timeout)

    # -- reader ---------------------------------------------------------------------
    def read(self, limit: int, timeout: float = 0.0) -> list[tuple[int, bytes]]:
        """Up to ``limit`` records after the last one read, in order: [(number, payload)].
        Waits up to ``timeout`` seconds for a first one."""
        with self._lock:
            if timeout and self._read_no >= self.end:
                self._lock.wait_for(lambda: self._read_no < self.end, timeout)
            segs = list(self._segments)
        out: list[tuple[int, bytes]] = []
        while len(out) < limit:
            seg_i = next((i for i, s in enumerate(segs) if s.first <= self._read_no < s.first + s.count), None)
            if seg_i is None:
                later = [s for s in segs if s.first > self._read_no and s.count]
                if not later:
                    break
                self._read_no = later[0].first       # records lost to corruption: skip the gap
                continue
            seg = segs[seg_i]
            if self._read_fh is None or self._read_fh.name != seg.path:
                if self._read_fh is not None:
                    self._read_fh.close()
                self._read_fh = open(seg.path, "rb")
                self._read_off = 0
                skip = self._read_no - seg.first
                for _ in range(skip):
                    n, _crc = _HDR.unpack(self._read_fh.read(_HDR.size))
                    self._read_fh.seek(n, os.SEEK_CUR)
                self._read_off = self._read_fh.tell()
            self._read_fh.seek(self._read_off)
            while len(out) < limit and self._read_no < seg.first + seg.count:
                n, crc = _HDR.unpack(self._read_fh.read(_HDR.size))
                payload = self._read_fh.read(n)
                if len(payload) != n or zlib.crc32(payload) != crc:
                    raise SpoolError("spool record %d changed on disk" % self._read_no)
                out.append((self._read_no, payload))
                self._read_no += 1
            self._read_off = self._read_fh.tell()
        return out

    def rewind(self) -> None:
        """Read again from the first record not acknowledged."""
        with self._lock:
            if self._read_fh is not None:
                self._read_fh.close()
                self._read_fh = None
            self._read_no = max(self.acked, self._segments[0].first if self._segments else self.acked)

    def ack(self, upto: int, meta: dict | None = None) -> None:
        """Every record < ``upto`` is done; persist that (and ``meta``) and free segments."""
        with self._lock:
            upto = min(upto, self.end)
            if meta is not None:
                self.meta = dict(meta)
            if upto < self.acked:
                return
            tmp = os.path.join(self.path, STATE + ".tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump({"next": upto, "meta": self.meta}, fh)
                    fh.flush()
                    if self.fsync:
                        os.fsync(fh.fileno())
                os.replace(tmp, os.path.join(self.path, STATE))
            except OSError as e:
                if e.errno in _DISK_FULL:
                    raise _disk_full(self.path, 4096, e) from None
                raise SpoolError("disk queue %s: cannot write its state: %s" % (self.path, e.strerror or e)) from None
            self.stats["acked"] += upto - self.acked
            self.acked = upto
            while len(self._segments) > 1 and self._segments[0].first + self._segments[0].count <= upto:
                seg = self._segments.pop(0)
                if self._read_fh is not None and self._read_fh.name == seg.path:
                    self._read_fh.close()
                    self._read_fh = None
                os.remove(seg.path)
                self.stats["deleted_segments"] += 1
            self._lock.notify_all()

    @property
    def pending(self) -> int:
        """Records appended and not acknowledged."""
        return self.end - max(self.acked, self._segments[0].first if self._segments else self.acked)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                if self.fsync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            if self._read_fh is not None:
                self._read_fh.close()
                self._read_fh = None


def _scan_file(path: str) -> tuple[int, int, str]:
    """(bytes of whole good records, their count, why the scan stopped early or '')."""
    good = count = 0
    with open(path, "rb") as fh:
        data = fh.read()
    n = len(data)
    while good < n:
        if good + _HDR.size > n:
            return good, count, "short record header"
        length, crc = _HDR.unpack_from(data, good)
        end = good + _HDR.size + length
        if end > n:
            return good, count, "short record"
        if zlib.crc32(memoryview(data)[good + _HDR.size:end]) != crc:
            return good, count, "checksum mismatch"
        good = end
        count += 1
    return good, count, ""
