"""AF_PACKET socket with a TPACKET_V3 mmap RX ring, read in pure Python.

Theory of operation
-------------------
The kernel fills *blocks* of a shared ring (``buffer_size_mb`` of 256 KiB
blocks; larger when the snap length needs it). A block is retired after
``RETIRE_TOV_MS`` even when not full, so when the reader is behind, the part
of each block left empty is lost buffer: small blocks waste less (measured
with bench_live at 60k packets/s, 64 MiB ring: 1 MiB blocks 26.7k and 45.9k
kernel drops, 256 KiB blocks 11.9k and 0, runs interleaved).

A block belongs to us once its ``block_status`` has ``TP_STATUS_USER``; we walk its ``num_pkts`` frames (``tpacket3_hdr``
chained by ``tp_next_offset``), copy each frame out, then hand the block back
by writing ``TP_STATUS_KERNEL``. A block is retired by the kernel when full or
after ``tp_retire_blk_tov`` ms, so quiet links still deliver promptly. One
``poll`` per block instead of one ``recv`` per packet is what makes a Python
reader viable.

Records out are ``(ts_ns, linktype, raw)``, like the file reader, so the
capture's ``Sharder.feed`` is reused unchanged:

- an Ethernet-like device (ARPHRD_ETHER / loopback) is read with SOCK_RAW and
  gives LINKTYPE_ETHERNET frames; VLAN tags the kernel stripped are put back
  from ``tp_vlan_tci`` / ``tp_vlan_tpid`` (``TP_STATUS_VLAN_VALID``) as an
  802.1Q header, so the decoder sees the frame as it was on the wire;
- ``any`` and other link types are read with SOCK_DGRAM and given a Linux
  SLL header built from the ring's ``sockaddr_ll`` (LINKTYPE_LINUX_SLL).

Kernel drops come from PACKET_STATISTICS (``tp_drops``; the kernel resets
the counters on each read, so :meth:`AfPacketSource.kernel_stats` adds them
up). Several processes may share one PACKET_FANOUT_HASH group: the kernel's
flow hash is symmetric, so both directions of a flow reach the same member.
"""
from __future__ import annotations

import mmap
import os
import select
import socket
import struct

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
PACKET_OUTGOING = 4
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

BLOCK_SIZE = 1 << 18
FRAME_SIZE = 2048
RETIRE_TOV_MS = 20

# tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 from offset 8
_BLOCK = struct.Struct("<III")                 # block_status, num_pkts, offset_to_first_pkt (at 8)
_STATUS = struct.Struct("<I")
# tpacket3_hdr: next_offset sec nsec snaplen len status mac net | rxhash vlan_tci vlan_tpid
_FRAME = struct.Struct("<IIIIIIHHIIH")
_SLL_AT = 48                                   # TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
_SOCKADDR_LL = struct.Struct("<HHiHBB8s")      # family proto(be) ifindex hatype pkttype halen addr
_SLL_HDR = struct.Struct(">HHH8sH")
_REQ3 = struct.Struct("7I")
_STATS3 = struct.Struct("III")                 # tp_packets tp_drops tp_freeze_q_cnt
_VLAN = struct.Struct(">HH")


class CaptureError(Exception):
    """A live capture could not be opened or configured (message says why)."""


def if_hwtype(name: str) -> int:
    """The ARPHRD_* type of a device (from sysfs)."""
    try:
        with open("/sys/class/net/%s/type" % name, encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        raise CaptureError("no such network device: %r" % name) from None


def cooked_device(device: str) -> bool:
    """Whether ``device`` is read with SOCK_DGRAM (Linux SLL records; its BPF
    filter sees the network header first) rather than as Ethernet frames."""
    return device in ("any", "") or if_hwtype(device) not in (ARPHRD_ETHER, ARPHRD_LOOPBACK)


class AfPacketSource:
    """One AF_PACKET TPACKET_V3 ring on ``device`` (``"any"``: every device).

    ``filter_code``: a compiled classic BPF program as bytes (8-byte
    ``sock_filter`` entries), attached with SO_ATTACH_FILTER before binding.
    """

    def __init__(self, device: str = "any", snaplen: int = 65535, buffer_size_mb: int = 30,
                 promisc: bool = False, fanout_group: int | None = None,
                 ignore_outgoing: bool = False, filter_code: bytes | None = None,
                 block_size: int = BLOCK_SIZE):
        self.device = device
        self.snaplen = max(64, int(snaplen))
        # on loopback every packet is seen leaving and arriving: keep one copy (as libpcap does)
        self.ignore_outgoing = ignore_outgoing or (device not in ("any", "") and if_hwtype(device) == ARPHRD_LOOPBACK)
        self.kernel_packets = 0
        self.kernel_drops = 0
        self.outgoing_skipped = 0
        any_dev = device in ("any", "")
        try:
            self._lo_index = socket.if_nametoindex("lo")
        except OSError:
            self._lo_index = -2
        self.cooked = cooked_device(device)
        self.linktype = LINKTYPE_LINUX_SLL if self.cooked else LINKTYPE_ETHERNET
        while block_size < self.snaplen + 128:
            block_size <<= 1
        self.block_size = block_size
        self.block_nr = max(2, (int(buffer_size_mb) << 20) // block_size)
        try:
            # "any" cannot be bound by name: its socket listens to every device from creation
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW,
                                 socket.htons(ETH_P_ALL) if any_dev else 0)
        except PermissionError:
            raise CaptureError("live capture on %r needs root or CAP_NET_RAW (socket: permission denied)"
                               % device) from None
        self.sock = sock
        self.ring: mmap.mmap | None = None
        try:
            self._setup(sock, filter_code, promisc, fanout_group, any_dev)
        except BaseException:
            self.close()
            raise
        self._block = 0
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)

    def _setup(self, sock, filter_code, promisc, fanout_group, any_dev) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        if filter_code is not None:
            attach_filter(sock, filter_code)
        if self.ignore_outgoing:
            try:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass                      # kernel < 4.20: filtered from sll_pkttype below
        frames_per_block = self.block_size // FRAME_SIZE
        req = _REQ3.pack(self.block_size, self.block_nr, FRAME_SIZE, frames_per_block * self.block_nr,
                         RETIRE_TOV_MS, 0, 0)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as exc:
            raise CaptureError("cannot set up a %d MiB TPACKET_V3 ring: %s"
                               % (self.block_size * self.block_nr >> 20, exc.strerror)) from None
        self.ring = mmap.mmap(sock.fileno(), self.block_size * self.block_nr,
                              mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        if not any_dev:
            try:
                sock.bind((self.device, ETH_P_ALL))
            except OSError as exc:
                raise CaptureError("cannot bind to device %r: %s" % (self.device, exc.strerror)) from None
        if fanout_group is not None:
            arg = (int(fanout_group) & 0xFFFF) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)
            try:
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", arg))
            except OSError as exc:
                raise CaptureError("cannot join fanout group %d: %s" % (fanout_group, exc.strerror)) from None
        if promisc and not any_dev:
            mreq = struct.pack("iHH8s", socket.if_nametoindex(self.device), PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    # -- reading -------------------------------------------------------------
    def read_block(self, timeout_ms: int) -> list[tuple[int, int, bytes]]:
        """Wait up to ``timeout_ms`` for the next block; return its packets
        (an empty list on time-out). The block goes back to the kernel before
        this returns."""
        ring = self.ring
        base = self._block * self.block_size
        status = _STATUS.unpack_from(ring, base + 8)[0]
        if not status & TP_STATUS_USER:
            for _fd, ev in self._poll.poll(timeout_ms):
                if ev & select.POLLERR:
                    self._raise_socket_error()
            status = _STATUS.unpack_from(ring, base + 8)[0]
            if not status & TP_STATUS_USER:
                return []
        out = self._walk(ring, base)
        _STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
        self._block = (self._block + 1) % self.block_nr
        return out

    def _walk(self, ring, base: int) -> list:
        _, num, off = _BLOCK.unpack_from(ring, base + 8)
        unpack = _FRAME.unpack_from
        snaplen = self.snaplen
        cooked = self.cooked
        skip_out = self.ignore_outgoing
        linktype = self.linktype
        out = []
        append = out.append
        pos = base + off
        lo = self._lo_index
        for _ in range(num):
            nxt, sec, nsec, caplen, _wirelen, st, mac, net, _h, tci, tpid = unpack(ring, pos)
            if cooked:
                _fam, proto, ifindex, hatype, pkttype, halen, addr = _SOCKADDR_LL.unpack_from(ring, pos + _SLL_AT)
            else:
                pkttype = ring[pos + _SLL_AT + 10]
                ifindex = -1
            if pkttype == PACKET_OUTGOING and (skip_out or ifindex == lo):
                self.outgoing_skipped += 1
                pos += nxt
                continue
            if caplen > snaplen:
                caplen = snaplen
            if cooked:
                proto = socket.ntohs(proto)
                if st & TP_STATUS_VLAN_VALID:
                    tag = tpid if st & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100
                    head = _SLL_HDR.pack(pkttype, hatype, halen, addr, tag) + _VLAN.pack(tci, proto)
                else:
                    head = _SLL_HDR.pack(pkttype, hatype, halen, addr, proto)
                raw = head + ring[pos + net:pos + net + caplen]
            elif st & TP_STATUS_VLAN_VALID:
                a = pos + mac
                raw = b"".join((ring[a:a + 12],
                                _VLAN.pack(tpid if st & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100, tci),
                                ring[a + 12:a + caplen]))
            else:
                raw = ring[pos + mac:pos + mac + caplen]
            append((sec * 1_000_000_000 + nsec, linktype, raw))
            pos += nxt
        return out

    def _raise_socket_error(self) -> None:
        """POLLERR: e.g. ENETDOWN when the device went away; raise it rather
        than spin on a poll that returns at once."""
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, "capture on %s: %s" % (self.device, os.strerror(err)))

    def kernel_stats(self) -> tuple[int, int]:
        """Cumulative ``(packets, drops)`` seen by the kernel for this socket."""
        if self.sock is not None:
            p, d, _ = _STATS3.unpack(self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS3.size))
            self.kernel_packets += p
            self.kernel_drops += d
        return self.kernel_packets, self.kernel_drops

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        if self.ring is not None:
            try:
                self.ring.close()
            except BufferError:
                pass
            self.ring = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def attach_filter(sock: socket.socket, code: bytes) -> None:
    """SO_ATTACH_FILTER with a classic BPF program (``len(code) // 8``
    ``sock_filter`` entries)."""
    import ctypes
    if len(code) % 8 or not code:
        raise CaptureError("a BPF program is a non-empty sequence of 8-byte instructions")
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(code) // 8, ctypes.addressof(buf))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise CaptureError("the kernel refused the BPF filter: %s" % exc.strerror) from None

