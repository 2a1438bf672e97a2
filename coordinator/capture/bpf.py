"""The capture filter: generated from the configured protocols, compiled with libpcap.

``generate_filter`` follows Packetbeat's ``ProtocolsStruct.BpfFilter``: one
``tcp port N`` / ``udp port N`` / ``port N`` term per configured port (by the
transports the analyser uses), ``icmp or icmp6`` when ICMP is analysed, all
joined with ``or``; ``with_vlans`` appends ``or (vlan and (...))``. With
flows enabled Packetbeat captures everything, and so does this (empty filter).

``compile_filter`` turns a filter expression into a classic BPF program
(bytes of 8-byte ``sock_filter`` entries) with libpcap through ctypes
(``pcap_open_dead`` + ``pcap_compile``), ready for SO_ATTACH_FILTER. The
program's accept value is the snap length, so the kernel truncates too.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from shared.confutil import build


class BpfError(Exception):
    """A filter expression libpcap cannot compile (message from libpcap)."""


# IPv4 TCP segments without payload and without SYN/FIN/RST: the capture drops
# them anyway when flows are off (they carry nothing for the analysers), so the
# kernel can leave them out. IPv6 ones still pass (libpcap's ip[] is IPv4-only).
EMPTY_TCP = "tcp[13] & 7 == 0 and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) == 0"


def generate_filter(protocols: list[dict], registry, with_vlans: bool = False,
                    flows_enabled: bool = False, skip_empty_tcp: bool = False) -> str:
    """The filter for the analysers configured in ``protocols`` (settings
    entries ``{"type": name, ...}``); ``""`` means capture everything.
    ``skip_empty_tcp`` puts ``not (EMPTY_TCP) and`` in front (before any
    ``vlan``, whose offset shift would otherwise apply to it)."""
    if flows_enabled:
        return ""
    terms: list[str] = []
    icmp = False
    for i, entry in enumerate(protocols):
        spec = registry.get(entry["type"])
        if spec is None or not spec.implemented:
            continue
        if "icmp" in spec.transports:
            icmp = True
        tcp = "tcp" in spec.transports
        udp = "udp" in spec.transports
        if not (tcp or udp):
            continue
        cfg = build(spec.config_class, entry, "packetbeat.protocols[%d]" % i, ignore=("type",))
        form = "port %d" if tcp and udp else ("tcp port %d" if tcp else "udp port %d")
        for port in sorted(set(cfg.ports)):
            terms.append(form % port)
    if icmp:
        terms += ["icmp", "icmp6"]
    expr = " or ".join(terms)
    if with_vlans and expr:
        expr = "%s or (vlan and (%s))" % (expr, expr)
    if skip_empty_tcp and expr:
        expr = "not (%s) and (%s)" % (EMPTY_TCP, expr)
    return expr


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


def _libpcap():
    for name in ("libpcap.so.0.8", "libpcap.so.1", ctypes.util.find_library("pcap")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        return lib
    raise BpfError("libpcap is not installed (needed to compile the BPF filter)")


DLT_EN10MB = 1
DLT_RAW = 12           # what a SOCK_DGRAM packet socket's filter sees: the network header first


def compile_filter(expr: str, linktype: int = DLT_EN10MB, snaplen: int = 65535) -> bytes:
    """Compile ``expr`` for ``linktype`` into SO_ATTACH_FILTER bytes; an
    empty expression gives the accept-all program."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise BpfError("pcap_open_dead(%d) failed" % linktype)
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, 0xFFFFFFFF) != 0:
            msg = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
            raise BpfError("invalid BPF filter %r: %s" % (expr, msg))
        try:
            return ctypes.string_at(prog.bf_insns, prog.bf_len * ctypes.sizeof(_BpfInsn))
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)


def disassemble(code: bytes) -> list[tuple[int, int, int, int]]:
    """``(code, jt, jf, k)`` per instruction (for tests and debugging)."""
    import struct
    return [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]
