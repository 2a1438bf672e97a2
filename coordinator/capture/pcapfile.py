"""Capture files: classic pcap and pcapng -> ``(ts_ns, linktype, raw)`` records.

Theory of operation
-------------------
``open_capture(path)`` looks at the first four bytes:

- ``a1b2c3d4`` / ``a1b23c4d`` (either byte order): classic pcap with
  microsecond / nanosecond timestamps (``a1b2cd34``, Kuznetsov's patched
  format with 8 extra bytes per record header, is read too);
- ``0a0d0d0a``: pcapng (Section Header Block);
- anything else: ``CaptureFileError``.

The file is read in large chunks (``CHUNK`` bytes) and records are sliced out
of the chunk, so there is one ``read`` per few thousand packets. Every length
field is checked before it is used: a record header that claims more bytes
than the sanity limit (``max(snaplen, 256 KiB)``, capped at 16 MiB) or than
the file still holds ends the iteration with ``CaptureFileError`` after every
readable record has been yielded. Nothing else escapes: no ``struct.error``,
no ``MemoryError`` from a bogus length, no endless loop (every step consumes at
least 12 bytes).

pcapng (draft-ietf-opsawg-pcapng): a Section Header Block fixes the byte order
and resets the interface list; an Interface Description Block adds an
interface (link type, snaplen, ``if_tsresol`` as a power of 10 or of 2,
default microseconds, ``if_tsoffset`` in seconds); Enhanced, Simple (interface
0, captured length = min(original length, snaplen, block room)) and obsolete
Packet Blocks give records (a Simple Packet Block carries no time: it gets the
timestamp of the record before it, 0 if none); every other block is skipped and counted.
"""
from __future__ import annotations

import os
import stat
from operator import length_hint
from struct import Struct
from typing import Iterator

CHUNK = 4 << 20                 # bytes per read()
MIN_RECORD_LIMIT = 256 << 10    # libpcap's largest snaplen for any DLT
MAX_RECORD_LIMIT = 16 << 20     # no record or block is ever larger than this

_NS_PER_S = 1_000_000_000

# Classic pcap magic numbers as read little-endian from the first 4 bytes.
_PCAP_MAGICS = {
    # magic as LE u32: (byte order, ns per fraction unit, record header size)
    0xA1B2C3D4: ("<", 1000, 16),
    0xD4C3B2A1: (">", 1000, 16),
    0xA1B23C4D: ("<", 1, 16),
    0x4D3CB2A1: (">", 1, 16),
    0xA1B2CD34: ("<", 1000, 24),      # Kuznetsov/"modified" pcap
    0x34CDB2A1: (">", 1000, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D

_BT_IDB = 1
_BT_PB = 2
_BT_SPB = 3
_BT_EPB = 6

_OPT_ENDOFOPT = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

_LE_U32 = Struct("<I")


class CaptureFileError(Exception):
    """A capture file that cannot be read (any further); the message names the
    file, the byte offset and the packet number."""


class CaptureReader:
    """Iterate the records of one capture file: ``(ts_ns, linktype, raw)``.

    Single pass: iterating twice continues where the first iteration stopped.
    ``counters`` holds ``records``, ``bytes`` (captured bytes yielded),
    ``skipped_blocks`` (pcapng blocks that carry no packet), ``sections`` and
    ``interfaces`` (pcapng). ``records`` and ``bytes`` are brought up to date at
    every chunk read and when the iteration ends (not per packet: hot path).
    """

    def __init__(self, path: str, fileobj, kind: str, head: bytes):
        self.path = path
        self._f = fileobj
        st = os.fstat(fileobj.fileno())
        # bytes the file holds; unknown (a pipe) -> no early truncation check
        self._size = st.st_size if stat.S_ISREG(st.st_mode) else 1 << 62
        self._kind = kind
        self._buf = head        # bytes already read, starting at file offset 0
        self._base = 0          # file offset of self._buf[0]
        self.counters = {"records": 0, "bytes": 0, "skipped_blocks": 0,
                         "sections": 0, "interfaces": 0}
        self._gen = None

    # -- public API -------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        if self._gen is None:
            self._gen = self._pcap() if self._kind == "pcap" else self._pcapng()
        return self._gen

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------

    def _error(self, what: str, offset: int, records: int | None = None) -> CaptureFileError:
        """The error for the record after ``records`` (default: the counters)."""
        if records is None:
            records = self.counters["records"]
        return CaptureFileError("%s: %s at offset %d (packet %d)" % (self.path, what, offset, records + 1))

    def _refill(self, buf: bytes, pos: int, need: int) -> bytes:
        """Return a buffer that starts at file offset ``base + pos`` and holds at
        least ``need`` bytes, or fewer if the file ends first."""
        self._base += pos
        rest = buf[pos:]
        want = max(CHUNK, need - len(rest))
        try:
            more = self._f.read(want)
        except OSError as exc:
            raise self._error("read error (%s)" % exc, self._base + len(rest)) from None
        return rest + more if rest else more

    # -- classic pcap -----------------------------------------------------

    def _pcap(self) -> Iterator[tuple[int, int, bytes]]:
        buf = self._buf
        self._buf = b""
        if len(buf) < 24:
            buf = self._refill(buf, 0, 24)
            if len(buf) < 24:
                raise self._error("truncated file header", self._base + len(buf))
        order, frac_ns, hlen = _PCAP_MAGICS[_LE_U32.unpack_from(buf, 0)[0]]
        major, _minor, _zone, _sigfigs, snaplen, linktype = Struct(order + "HHiIII").unpack_from(buf, 4)
        if major != 2:
            raise self._error("unsupported pcap version %d" % major, 4)
        linktype &= 0xFFFF              # upper bits carry FCS information
        limit = min(max(snaplen, MIN_RECORD_LIMIT), MAX_RECORD_LIMIT)
        rec = Struct(order + "IIII").unpack_from
        big = order == ">"
        counters = self.counters
        records = 0
        nbytes = 0
        pos = 24
        n = len(buf)
        try:
            while True:
                # the records that lie whole in the buffer, read in one call (compiled: a C loop);
                # the one after them (not whole, or bogus) takes the checks below
                got: list = []
                start = pos
                pos = _pcap_records(buf, pos, hlen, big, frac_ns, limit, linktype, got)
                if got:
                    records += len(got)
                    nbytes += pos - start - hlen * len(got)
                    rest = iter(got)
                    try:
                        yield from rest
                    finally:             # stopped early: only the records taken count
                        left = length_hint(rest)
                        if left:
                            records -= left
                            nbytes -= sum(len(r[2]) for r in got[len(got) - left:])
                if pos + hlen > n:
                    counters["records"] = records
                    counters["bytes"] = nbytes
                    buf = self._refill(buf, pos, hlen)
                    pos = 0
                    n = len(buf)
                    if n == 0:
                        return
                    if n < hlen:
                        raise self._error("truncated record header", self._base)
                sec, frac, incl, _orig = rec(buf, pos)
                if incl > limit:
                    counters["records"] = records
                    raise self._error("bogus record length %d (limit %d)" % (incl, limit), self._base + pos)
                start = pos + hlen
                end = start + incl
                if end > n:
                    counters["records"] = records
                    counters["bytes"] = nbytes
                    if self._base + end > self._size:
                        raise self._error("truncated record (%d bytes announced, %d left)"
                                          % (incl, self._size - self._base - start), self._base + pos)
                    buf = self._refill(buf, pos, hlen + incl)
                    pos = 0
                    n = len(buf)
                    start = hlen
                    end = start + incl
                    if end > n:
                        raise self._error("truncated record", self._base)
                records += 1
                nbytes += incl
                yield (sec * _NS_PER_S + frac * frac_ns, linktype, buf[start:end])
                pos = end
        finally:
            counters["records"] = records
            counters["bytes"] = nbytes

    # -- pcapng -----------------------------------------------------------

    def _pcapng(self) -> Iterator[tuple[int, int, bytes]]:
        buf = self._buf
        self._buf = b""
        counters = self.counters
        records = 0
        nbytes = 0
        pos = 0
        n = len(buf)
        order = "<"
        hdr = Struct("<II").unpack_from
        u32 = Struct("<I").unpack_from
        epb_hdr = Struct("<IIIIII").unpack_from    # type, length, interface, ts high, ts low, caplen
        pb = Struct("<HHIIII").unpack_from
        ifaces: list[tuple[int, int, int, int, int]] = []  # linktype, snaplen, mul, div, offset_ns
        nif = 0
        last_ts = 0     # a Simple Packet Block has no timestamp: it gets the previous one
        try:
            while True:
                if pos + 28 <= n:
                    # Fast path: a whole, well-formed Enhanced Packet Block in the buffer.
                    btype, blen, ifid, hi, lo, incl = epb_hdr(buf, pos)
                    if (btype == _BT_EPB and 32 <= blen <= n - pos and not blen & 3
                            and incl <= blen - 32 and ifid < nif and u32(buf, pos + blen - 4)[0] == blen):
                        linktype, _snap, mul, div, tsoff = ifaces[ifid]
                        records += 1
                        nbytes += incl
                        last_ts = (hi << 32 | lo) * mul // div + tsoff
                        yield (last_ts, linktype, buf[pos + 28:pos + 28 + incl])
                        pos += blen
                        continue
                elif pos + 12 > n:
                    counters["records"] = records
                    counters["bytes"] = nbytes
                    buf = self._refill(buf, pos, 12)
                    pos = 0
                    n = len(buf)
                    if n == 0:
                        return
                    if n < 12:
                        raise self._error("truncated block header", self._base, records)
                    continue
                btype = u32(buf, pos)[0]
                if btype == _PCAPNG_SHB:          # palindromic: same in both byte orders
                    bom = _LE_U32.unpack_from(buf, pos + 8)[0]
                    if bom == _BOM:
                        order = "<"
                    elif bom == 0x4D3C2B1A:
                        order = ">"
                    else:
                        raise self._error("bad byte-order magic in section header", self._base + pos, records)
                    hdr = Struct(order + "II").unpack_from
                    u32 = Struct(order + "I").unpack_from
                    epb_hdr = Struct(order + "IIIIII").unpack_from
                    pb = Struct(order + "HHIIII").unpack_from
                btype, blen = hdr(buf, pos)
                if blen < 12 or blen & 3 or blen > MAX_RECORD_LIMIT:
                    raise self._error("bogus block length %d" % blen, self._base + pos, records)
                if pos + blen > n:
                    if self._base + pos + blen > self._size:
                        raise self._error("truncated block (%d bytes announced, %d left)"
                                          % (blen, self._size - self._base - pos), self._base + pos, records)
                    counters["records"] = records
                    counters["bytes"] = nbytes
                    buf = self._refill(buf, pos, blen)
                    pos = 0
                    n = len(buf)
                    if blen > n:
                        raise self._error("truncated block", self._base, records)
                    continue
                if u32(buf, pos + blen - 4)[0] != blen:
                    raise self._error("block length mismatch", self._base + pos, records)
                if btype == _BT_EPB:
                    if blen < 32:
                        raise self._error("enhanced packet block too short", self._base + pos, records)
                    _t, _l, ifid, hi, lo, incl = epb_hdr(buf, pos)
                    if incl > blen - 32:
                        raise self._error("packet length %d exceeds block" % incl, self._base + pos, records)
                    if ifid >= nif:
                        raise self._error("packet for undeclared interface %d" % ifid, self._base + pos,
                                          records)
                    # (a well-formed EPB normally takes the fast path above)
                    linktype, _snap, mul, div, tsoff = ifaces[ifid]
                    records += 1
                    nbytes += incl
                    last_ts = (hi << 32 | lo) * mul // div + tsoff
                    yield (last_ts, linktype, buf[pos + 28:pos + 28 + incl])
                elif btype == _BT_SPB:
                    if blen < 16:
                        raise self._error("simple packet block too short", self._base + pos, records)
                    if not ifaces:
                        raise self._error("simple packet block before any interface", self._base + pos,
                                          records)
                    linktype, snap, _mul, _div, _off = ifaces[0]
                    incl = min(u32(buf, pos + 8)[0], blen - 16)
                    if snap:
                        incl = min(incl, snap)
                    records += 1
                    nbytes += incl
                    yield (last_ts, linktype, buf[pos + 12:pos + 12 + incl])
                elif btype == _BT_PB:
                    if blen < 32:
                        raise self._error("packet block too short", self._base + pos, records)
                    ifid, _drops, hi, lo, incl, _orig = pb(buf, pos + 8)
                    if incl > blen - 32:
                        raise self._error("packet length %d exceeds block" % incl, self._base + pos, records)
                    if ifid >= nif:
                        raise self._error("packet for undeclared interface %d" % ifid, self._base + pos,
                                          records)
                    linktype, _snap, mul, div, tsoff = ifaces[ifid]
                    records += 1
                    nbytes += incl
                    last_ts = (hi << 32 | lo) * mul // div + tsoff
                    yield (last_ts, linktype, buf[pos + 28:pos + 28 + incl])
                elif btype == _BT_IDB:
                    if blen < 20:
                        raise self._error("interface description block too short", self._base + pos,
                                          records)
                    ifaces.append(self._idb(buf, pos, blen, order))
                    nif = len(ifaces)
                    counters["interfaces"] += 1
                elif btype == _PCAPNG_SHB:
                    if blen < 28:
                        raise self._error("section header block too short", self._base + pos, records)
                    major = Struct(order + "H").unpack_from(buf, pos + 12)[0]
                    if major != 1:
                        raise self._error("unsupported pcapng version %d" % major, self._base + pos, records)
                    ifaces = []
                    nif = 0
                    counters["sections"] += 1
                else:
                    counters["skipped_blocks"] += 1
                pos += blen
        finally:
            counters["records"] = records
            counters["bytes"] = nbytes

    def _idb(self, buf: bytes, pos: int, blen: int, order: str) -> tuple[int, int, int, int, int]:
        """Parse an Interface Description Block -> (linktype, snaplen, mul, div, offset_ns).

        A timestamp ``t`` in interface units is ``t * mul // div + offset_ns`` ns.
        """
        linktype, _res, snaplen = Struct(order + "HHI").unpack_from(buf, pos + 8)
        mul, div, offset_ns = 1000, 1, 0          # default resolution: 10^-6 s
        opt = pos + 16
        stop = pos + blen - 4
        ohdr = Struct(order + "HH").unpack_from
        while opt + 4 <= stop:
            code, olen = ohdr(buf, opt)
            val = opt + 4
            if code == _OPT_ENDOFOPT or val + olen > stop:
                break
            if code == _OPT_IF_TSRESOL and olen >= 1:
                r = buf[val]
                exp = r & 0x7F
                if r & 0x80:                       # 2^-exp seconds
                    mul, div = _NS_PER_S, 1 << exp
                elif exp <= 9:                     # 10^-exp seconds
                    mul, div = 10 ** (9 - exp), 1
                else:
                    mul, div = 1, 10 ** (exp - 9)
            elif code == _OPT_IF_TSOFFSET and olen >= 8:
                offset_ns = Struct(order + "q").unpack_from(buf, val)[0] * _NS_PER_S
            opt = val + ((olen + 3) & ~3)
        return (linktype, snaplen, mul, div, offset_ns)


_PCAP_REC = {False: Struct("<IIII").unpack_from, True: Struct(">IIII").unpack_from}


def _pcap_records(buf: bytes, pos: int, hlen: int, big: bool, frac_ns: int, limit: int, linktype: int,
                  out: list) -> int:
    """Append to ``out`` the ``(ts_ns, linktype, raw)`` of the classic pcap records that
    lie whole in ``buf`` from offset ``pos`` on (``hlen``-byte record headers, big-endian
    when ``big``), stopping before the first one that does not or whose length is over
    ``limit``; returns the offset after the last one appended. Compiled, a C loop
    (pcapfile.pxd ``_pcap_records_c``: no Struct call, no int objects but the timestamp)."""
    if _COMPILED:
        return _pcap_records_c(buf, pos, hlen, big, frac_ns, limit, linktype, out)
    rec = _PCAP_REC[big]
    n = len(buf)
    while pos + hlen <= n:
        sec, frac, incl, _orig = rec(buf, pos)
        end = pos + hlen + incl
        if incl > limit or end > n:
            break
        out.append((sec * _NS_PER_S + frac * frac_ns, linktype, buf[pos + hlen:end]))
        pos = end
    return pos


def _probe():
    pass


# True when this module runs compiled (setup.py)
_COMPILED = type(_probe).__name__ != "function"


def open_capture(path: str) -> CaptureReader:
    """Open a pcap or pcapng file; ``CaptureFileError`` if it is neither or
    cannot be opened."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CaptureFileError("%s: cannot open (%s)" % (path, exc.strerror or exc)) from None
    try:
        head = f.read(CHUNK)
    except OSError as exc:
        f.close()
        raise CaptureFileError("%s: cannot read (%s)" % (path, exc.strerror or exc)) from None
    if len(head) < 4:
        f.close()
        raise CaptureFileError("%s: not a capture file (%d bytes)" % (path, len(head)))
    magic = _LE_U32.unpack_from(head, 0)[0]
    if magic in _PCAP_MAGICS:
        kind = "pcap"
    elif magic == _PCAPNG_SHB:
        kind = "pcapng"
    else:
        f.close()
        raise CaptureFileError("%s: unknown file format (magic %08x)" % (path, magic))
    return CaptureReader(path, f, kind, head)
