"""``packetbeat.interfaces.type: pcap``: live capture through libpcap (ctypes).

Theory of operation
-------------------
The handle is made with ``pcap_create`` and configured before
``pcap_activate``: snap length, ``buffer_size_mb`` (``pcap_set_buffer_size``),
promiscuous mode (``auto_promisc_mode``), nanosecond timestamps when the
platform has them, and a 20 ms read time-out (libpcap on Linux then reads a
TPACKET_V3 ring whose blocks the kernel retires at least every 20 ms, so a
quiet link still delivers promptly). After activation: the filter
(``pcap_compile`` against the live handle, so the link type is the device's
own, then ``pcap_setfilter``), ``pcap_setdirection(PCAP_D_IN)`` for
``ignore_outgoing``, non-blocking mode, and, for ``cluster.captures > 1``,
the packet socket joins a PACKET_FANOUT_HASH group (``pcap_fileno``).

Packets are read with ``pcap_dispatch`` and a C callback that copies each
frame out (two ``ctypes.string_at``); nothing of scapy is on this path. The
source has the interface of :class:`~coordinator.capture.afpacket.AfPacketSource`
(``read_block``, ``kernel_stats``, ``fileno``, ``linktype``, ``close``), so the
live capture loop is the same for both types. Records are ``(ts_ns,
linktype, raw)``; libpcap's DLT is mapped to the decoder's LINKTYPE
(``DLT_RAW`` 12/14 -> 101; Ethernet, Linux SLL/SLL2, NULL, LOOP, IPv4, IPv6 as
they are); any other link type is refused with its name.

libpcap puts VLAN tags the kernel stripped back into the frame, and skips
the outgoing copy of loopback packets, as the AF_PACKET source does.
Kernel drops come from ``pcap_stats`` (``ps_drop``, cumulative).
"""
from __future__ import annotations

import ctypes
import logging
import os
import select
import socket
import struct

from coordinator.capture.afpacket import PACKET_FANOUT, PACKET_FANOUT_FLAG_DEFRAG, PACKET_FANOUT_HASH, SOL_PACKET
from coordinator.capture.afpacket import CaptureError

log = logging.getLogger("packetbeat.capture")

# the names tried, in order (tests replace it to check the "not installed" message)
LIBRARY_NAMES: tuple = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")

PCAP_ERRBUF_SIZE = 256
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
PCAP_D_IN = 1
PCAP_TSTAMP_PRECISION_NANO = 1
READ_TIMEOUT_MS = 20
DISPATCH_MAX = 4096           # packets per pcap_dispatch call (bounds the time away from flushing)

# libpcap DLT_* -> LINKTYPE_* (what shared.decode and pcap files use)
DLT_TO_LINKTYPE = {0: 0, 1: 1, 12: 101, 14: 101, 101: 101, 108: 108, 113: 113, 228: 228, 229: 229, 276: 276}

_HDR = struct.Struct("@qqII")            # struct pcap_pkthdr: timeval (2 longs), caplen, len
_STAT = struct.Struct("@III")            # struct pcap_stat: ps_recv, ps_drop, ps_ifdrop
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


_lib = None


def load_libpcap():
    """The libpcap shared library with the prototypes this module uses;
    :class:`CaptureError` saying what to install when it is missing."""
    global _lib
    if _lib is not None:
        return _lib
    names = list(LIBRARY_NAMES)
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise CaptureError("packetbeat.interfaces.type pcap needs libpcap, which is not installed "
                           "(tried %s; on Debian: apt-get install libpcap0.8), or use type af_packet"
                           % ", ".join(names))
    vp, i, u32, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
    protos = {
        "pcap_create": (vp, [cp, cp]),
        "pcap_set_snaplen": (i, [vp, i]),
        "pcap_set_promisc": (i, [vp, i]),
        "pcap_set_timeout": (i, [vp, i]),
        "pcap_set_buffer_size": (i, [vp, i]),
        "pcap_set_tstamp_precision": (i, [vp, i]),
        "pcap_activate": (i, [vp]),
        "pcap_datalink": (i, [vp]),
        "pcap_datalink_val_to_name": (cp, [i]),
        "pcap_compile": (i, [vp, ctypes.POINTER(_BpfProgram), cp, i, u32]),
        "pcap_setfilter": (i, [vp, ctypes.POINTER(_BpfProgram)]),
        "pcap_freecode": (None, [ctypes.POINTER(_BpfProgram)]),
        "pcap_setdirection": (i, [vp, i]),
        "pcap_setnonblock": (i, [vp, i, cp]),
        "pcap_get_selectable_fd": (i, [vp]),
        "pcap_fileno": (i, [vp]),
        "pcap_dispatch": (i, [vp, i, _HANDLER, vp]),
        "pcap_stats": (i, [vp, vp]),
        "pcap_geterr": (cp, [vp]),
        "pcap_statustostr": (cp, [i]),
        "pcap_close": (None, [vp]),
    }
    for fname, (res, args) in protos.items():
        fn = getattr(lib, fname)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


def pcap_linktype(dlt: int, name: str = "") -> int:
    """The decoder's LINKTYPE for libpcap's ``dlt`` (CaptureError if none)."""
    try:
        return DLT_TO_LINKTYPE[dlt]
    except KeyError:
        raise CaptureError("link type %d (%s) is not supported by the decoder" % (dlt, name or "?")) from None


class PcapSource:
    """One libpcap handle on ``device`` (``"any"``: every device)."""

    def __init__(self, device: str = "any", snaplen: int = 65535, buffer_size_mb: int = 30,
                 promisc: bool = False, fanout_group: int | None = None,
                 ignore_outgoing: bool = False, bpf_filter: str = ""):
        lib = self._lib = load_libpcap()
        self.device = device or "any"
        self.snaplen = max(64, int(snaplen))
        self.kernel_packets = 0
        self.kernel_drops = 0
        self.filter = bpf_filter
        err = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
        handle = lib.pcap_create(self.device.encode(), err)
        if not handle:
            raise CaptureError("pcap_create(%s): %s" % (self.device, err.value.decode(errors="replace")))
        self._h = handle
        try:
            self._setup(lib, handle, int(buffer_size_mb), promisc, fanout_group, ignore_outgoing, bpf_filter)
        except BaseException:
            self.close()
            raise
        self._out: list = []
        self._cb = _HANDLER(self._on_packet)     # kept alive as long as the handle
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLERR)

    def _setup(self, lib, h, buffer_mb, promisc, fanout_group, ignore_outgoing, expr) -> None:
        lib.pcap_set_snaplen(h, self.snaplen)
        lib.pcap_set_promisc(h, 1 if promisc and self.device != "any" else 0)
        lib.pcap_set_timeout(h, READ_TIMEOUT_MS)
        lib.pcap_set_buffer_size(h, max(1, buffer_mb) << 20)
        self._ts_scale = 1 if lib.pcap_set_tstamp_precision(h, PCAP_TSTAMP_PRECISION_NANO) == 0 else 1000
        rc = lib.pcap_activate(h)
        if rc < 0:
            detail = (lib.pcap_geterr(h) or b"").decode(errors="replace")
            status = (lib.pcap_statustostr(rc) or b"").decode(errors="replace")
            if rc == -8:                                  # PCAP_ERROR_PERM_DENIED
                raise CaptureError("live capture on %r needs root or CAP_NET_RAW (libpcap: %s)"
                                   % (self.device, detail or status))
            raise CaptureError("cannot capture on %r with libpcap: %s" % (self.device, detail or status))
        if rc > 0:                                        # e.g. PCAP_WARNING_PROMISC_NOTSUP
            log.warning("libpcap on %s: %s", self.device,
                        (lib.pcap_geterr(h) or b"").decode(errors="replace")
                        or (lib.pcap_statustostr(rc) or b"").decode(errors="replace"))
        dlt = lib.pcap_datalink(h)
        name = (lib.pcap_datalink_val_to_name(dlt) or b"").decode(errors="replace")
        self.dlt = dlt
        self.linktype = pcap_linktype(dlt, name)
        prog = _BpfProgram()
        if lib.pcap_compile(h, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            from coordinator.capture.bpf import BpfError
            raise BpfError("invalid BPF filter %r: %s" % (expr, (lib.pcap_geterr(h) or b"").decode(errors="replace")))
        try:
            if lib.pcap_setfilter(h, ctypes.byref(prog)) != 0:
                raise CaptureError("pcap_setfilter: %s" % (lib.pcap_geterr(h) or b"").decode(errors="replace"))
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
        if ignore_outgoing and lib.pcap_setdirection(h, PCAP_D_IN) != 0:
            raise CaptureError("pcap_setdirection(in) on %r: %s"
                               % (self.device, (lib.pcap_geterr(h) or b"").decode(errors="replace")))
        err = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
        if lib.pcap_setnonblock(h, 1, err) != 0:
            raise CaptureError("pcap_setnonblock: %s" % err.value.decode(errors="replace"))
        self._fd = lib.pcap_get_selectable_fd(h)
        if self._fd < 0:
            raise CaptureError("libpcap gives no selectable descriptor for %r" % self.device)
        if fanout_group is not None:
            arg = (int(fanout_group) & 0xFFFF) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)
            sock = socket.socket(fileno=os.dup(lib.pcap_fileno(h)))
            try:
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", arg))
            except OSError as exc:
                raise CaptureError("cannot join fanout group %d: %s" % (fanout_group, exc.strerror)) from None
            finally:
                sock.close()

    # -- reading -------------------------------------------------------------
    def _on_packet(self, _user, hdr, data) -> None:
        sec, frac, caplen, _wirelen = _HDR.unpack(ctypes.string_at(hdr, 24))
        self._out.append((sec * 1_000_000_000 + frac * self._ts_scale, self.linktype, ctypes.string_at(data, caplen)))

    def read_block(self, timeout_ms: int) -> list[tuple[int, int, bytes]]:
        """What libpcap has ready (at most DISPATCH_MAX packets), waiting up to
        ``timeout_ms`` when nothing is; an empty list on time-out."""
        n = self._lib.pcap_dispatch(self._h, DISPATCH_MAX, self._cb, None)
        if n == 0 and timeout_ms:
            for _fd, ev in self._poll.poll(timeout_ms):
                if ev & select.POLLERR:
                    break
            n = self._lib.pcap_dispatch(self._h, DISPATCH_MAX, self._cb, None)
        if n < 0:
            msg = (self._lib.pcap_geterr(self._h) or b"").decode(errors="replace")
            raise OSError(0, "capture on %s: %s" % (self.device, msg or "pcap_dispatch failed"))
        out, self._out = self._out, []
        return out

    def kernel_stats(self) -> tuple[int, int]:
        """Cumulative ``(packets, drops)`` from ``pcap_stats``."""
        if self._h:
            buf = ctypes.create_string_buffer(_STAT.size)
            if self._lib.pcap_stats(self._h, buf) == 0:
                recv, drop, _ifdrop = _STAT.unpack(buf.raw)
                self.kernel_packets, self.kernel_drops = recv, drop
        return self.kernel_packets, self.kernel_drops

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if getattr(self, "_h", None):
            self._lib.pcap_close(self._h)
            self._h = None


def pcap_filter_linktype(device: str) -> int:
    """The DLT libpcap gives ``device`` (for checking a filter before any
    process starts): Linux SLL for ``any`` and non-Ethernet devices, else
    Ethernet."""
    from coordinator.capture.afpacket import cooked_device
    return 113 if cooked_device(device) else 1
