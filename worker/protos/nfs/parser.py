"""ONC-RPC (RFC 5531) message parser for the NFS analyser: NFSv3 calls
(RFC 1813) and NFSv4 COMPOUND calls (RFC 7530, minor versions 1 and 2 of
RFC 8881 / RFC 7862 read the same way).

Theory of operation
-------------------
Framing. Over UDP one datagram is one RPC message (:func:`decode_message`).
Over TCP messages are sent with *record marking* (RFC 5531 section 11): each
fragment starts with a 4-byte big-endian word whose top bit says "last
fragment of the record" and whose other 31 bits give the fragment length; a
record (= one RPC message) is one or more fragments. :class:`RecordParser`
reads one direction of a connection, a small state machine
(``HEADER`` -> ``BODY`` -> ``HEADER`` ...) fed bytes and returning the
messages completed. It keeps only the *head* of each record (the RPC header,
the credentials and the NFS arguments the event needs: at most
``CALL_HEAD_MAX`` bytes of a call, ``REPLY_HEAD_MAX`` of a reply) and counts
the rest, so a 1 MiB WRITE or READ costs no buffering; a record may not
exceed ``max_message_size`` bytes in all (Packetbeat's 10 MiB stream limit).
Packetbeat 8 gives up on records of several fragments; they are read here.

A lost segment (``on_gap``) inside a fragment body is skipped: the framing
holds and the message is kept with a loss note (if the gap cut into the head,
what follows the gap is not read). A gap across a record marker cannot be
crossed: the connection's parsing stops (``on_gap`` returns False).

Decoding (:func:`decode_message`): xid, message type; for a call the RPC
version (must be 2), program, program version, procedure, credentials
(AUTH_UNIX: stamp, machine name, uid, gid, gids), verifier, then for NFS
(program 100003) the NFS request info as Packetbeat 8 reads it
(``nfs.go: getRequestInfo``): v3: the procedure name; v4: NULL, or for
COMPOUND the tag, minor version and the *main* operation
(``nfs4.go: findV4MainOpcode``: the first "first class" operation, skipping
PUTFH, GETATTR, LOOKUP, SEQUENCE...; the last operation when there is none;
ILLEGAL for an unknown operation or an empty compound). For a reply: reply
status, then for an accepted reply the verifier, the accept status and the
first word of the result (the NFS status; which procedure it answers decides
whether it is one, so the event builder reads it).

Timestamps: as Packetbeat (``rpc.go: handleRPCFragment`` passes the packet
that completes the record), a message's ``ts`` is that of the packet that
completed it; ``ts_first`` is where it began.

Correlation key: the xid, per TCP connection (with the direction of the call,
so NFSv4.1 back-channel calls do not meet fore-channel ones), per (client
endpoint, server endpoint, xid) over UDP (``trans.py``).

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import struct

from worker.plugin import ParseError as _BaseParseError
from worker.protos.glue import SegmentParser

NFS_PROGRAM = 100003
RPC_CALL = 0
RPC_REPLY = 1
LAST_FRAGMENT = 0x80000000
SIZE_MASK = 0x7FFFFFFF

MAX_MESSAGE_SIZE = 10 * 1024 * 1024   # tcp.TCPMaxDataInStream: one record may not exceed it
CALL_HEAD_MAX = 64 * 1024             # bytes of a call kept for decoding
REPLY_HEAD_MAX = 1024                 # bytes of a reply kept (verifier <= 400 bytes, then the status)
MAX_OPAQUE = 1024 * 1024              # longest variable-length item believed
MAX_COMPOUND_OPS = 10000              # operations scanned in one COMPOUND

_U32 = struct.Struct("!I")
_U32x2 = struct.Struct("!II")
_U32x3 = struct.Struct("!III")
_U32x4 = struct.Struct("!IIII")
_u32 = _U32.unpack_from


def _w(b: bytes, off: int) -> int:
    """The big-endian 32-bit word at ``off`` of ``b`` (struct.error past the
    end, as ``unpack_from``); compiled (parser.pxd), C integers throughout."""
    if off < 0 or off + 4 > len(b):
        raise struct.error("unpack_from requires a buffer of at least %d bytes" % (off + 4))
    b0 = b[off]
    b1 = b[off + 1]
    b2 = b[off + 2]
    b3 = b[off + 3]
    return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3


def _as_bytes(data) -> bytes:
    """A segment as bytes: itself, or the bytes a whole contiguous memoryview
    shows (the TCP layer's payload), without a copy; else a copy."""
    if type(data) is bytes:
        return data
    if type(data) is memoryview:
        obj = data.obj
        if type(obj) is bytes and data.c_contiguous and data.nbytes == len(obj):
            return obj
    return bytes(data)


class ParseError(_BaseParseError):
    """The bytes are not ONC-RPC. ``messages`` holds the messages completed
    before the bad bytes (they are valid)."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class _Short(Exception):
    """Internal: an XDR item runs past the bytes held."""


class RpcMessage:
    """One message (a plain class rather than a dataclass: compiled, it is an
    extension type whose construction costs no Python ``__init__``)."""
    __slots__ = ("ts", "is_call", "xid", "size", "notes", "ts_first", "prog", "prog_vers", "proc",
                 "auth_flavor", "cred", "malformed", "tag", "minor_version", "opcode", "reply_stat",
                 "accept_stat", "reject_stat", "status_word", "integ_status", "gss_service")

    def __init__(self, ts, is_call, xid, size=0, notes=None, ts_first=0, prog=0, prog_vers=0,
                 proc=0, auth_flavor=-1, cred=None, malformed="", tag=None, minor_version=-1,
                 opcode="", reply_stat=-1, accept_stat=-1, reject_stat=-1, status_word=None,
                 integ_status=None, gss_service=0):
        self.ts = ts                                # ns of the packet that completed the message
        self.is_call = is_call
        self.xid = xid
        self.size = size                            # RPC message bytes (without record markers)
        self.notes = notes if notes is not None else list()
        self.ts_first = ts_first                    # ns of the packet where it began
        # call
        self.prog = prog
        self.prog_vers = prog_vers
        self.proc = proc
        self.auth_flavor = auth_flavor
        self.cred = cred                            # AUTH_UNIX: (stamp, machinename bytes, uid, gid, gids)
        self.malformed = malformed                  # why Packetbeat 8 would drop this call ("" when fine)
        self.tag = tag                              # v4 COMPOUND
        self.minor_version = minor_version          # v4 COMPOUND
        self.opcode = opcode                        # NFS operation name ("" when none)
        # reply
        self.reply_stat = reply_stat                # 0 accepted, 1 denied
        self.accept_stat = accept_stat
        self.reject_stat = reject_stat
        self.status_word = status_word              # first word of the result (the NFS status)
        self.integ_status = integ_status            # third word: the NFS status under RPCSEC_GSS integrity
        self.gss_service = gss_service  # call: RPCSEC_GSS data service (2 integrity, 3 privacy), else 0

    def __repr__(self) -> str:
        return "RpcMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


# --- NFS names (packetbeat/protos/nfs: nfs3.go, nfs4.go) --------------------

# NFSv3 procedure names, as Packetbeat spells them (SYM_LINK, MKNODE, PATHINFO).
V3_PROCS = ("NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
            "CREATE", "MKDIR", "SYM_LINK", "MKNODE", "REMOVE", "RMDIR", "RENAME", "LINK",
            "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHINFO", "COMMIT")

V4_OPS = {
    3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE", 8: "DELEGRETURN",
    9: "GETATTR", 10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU", 15: "LOOKUP",
    16: "LOOKUPP", 17: "NVERIFY", 18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM",
    21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH", 24: "PUTROOTFH", 25: "READ",
    26: "READDIR", 27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH",
    32: "SAVEFH", 33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM",
    37: "VERIFY", 38: "WRITE", 39: "RELEASE_LOCKOWNER", 40: "BACKCHANNEL_CTL",
    41: "BIND_CONN_TO_SESSION", 42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION",
    45: "FREE_STATEID", 46: "GET_DIR_DELEGATION", 47: "GETDEVICEINFO", 48: "GETDEVICELIST",
    49: "LAYOUTCOMMIT", 50: "LAYOUTGET", 51: "LAYOUTRETURN", 52: "SECINFO_NO_NAME",
    53: "SEQUENCE", 54: "SET_SSV", 55: "TEST_STATEID", 56: "WANT_DELEGATION",
    57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE", 59: "ALLOCATE", 60: "COPY",
    61: "COPY_NOTIFY", 62: "DEALLOCATE", 63: "IO_ADVISE", 64: "LAYOUTERROR", 65: "LAYOUTSTATS",
    66: "OFFLOAD_CANCEL", 67: "OFFLOAD_STATUS", 68: "READ_PLUS", 69: "SEEK", 70: "WRITE_SAME",
    71: "CLONE", 10044: "ILLEGAL",
}

# Operations that are not the "main" one of a compound, with the shape of
# their arguments (what must be skipped to reach the next operation).
# Everything else in V4_OPS but ILLEGAL is "first class".
_SKIP_NONE, _SKIP_BITMAP, _SKIP_OPAQUE, _SKIP_BITMAP_OPAQUE, _SKIP_HYPER, _SKIP_SEQUENCE = range(6)
_SECOND_CLASS = {
    9: _SKIP_BITMAP,             # GETATTR: attr_request bitmap4
    10: _SKIP_NONE,              # GETFH
    15: _SKIP_OPAQUE,            # LOOKUP: component4
    16: _SKIP_NONE,              # LOOKUPP
    17: _SKIP_BITMAP_OPAQUE,     # NVERIFY: fattr4
    22: _SKIP_OPAQUE,            # PUTFH: nfs_fh4
    23: _SKIP_NONE,              # PUTPUBFH
    24: _SKIP_NONE,              # PUTROOTFH
    30: _SKIP_HYPER,             # RENEW: clientid4
    31: _SKIP_NONE,              # RESTOREFH
    32: _SKIP_NONE,              # SAVEFH
    33: _SKIP_OPAQUE,            # SECINFO: component4
    37: _SKIP_BITMAP_OPAQUE,     # VERIFY: fattr4
    53: _SKIP_SEQUENCE,          # SEQUENCE: sessionid4, 3 x uint32, bool
    10044: _SKIP_NONE,           # ILLEGAL: not first class, no arguments
}
# READLINK is in Packetbeat's first-class list (and has no arguments).
_N_V3 = len(V3_PROCS)


# --- XDR helpers --------------------------------------------------------------

def _opaque_end(buf, off: int, end: int) -> tuple[int, int]:
    """(start, next offset) of the variable-length opaque at ``off``."""
    if off + 4 > end:
        raise _Short
    n = _w(buf, off)
    if n > MAX_OPAQUE:
        raise _Short
    start = off + 4
    nxt = start + ((n + 3) & ~3)
    if start + n > end:
        raise _Short
    return start, nxt


def _main_opcode(buf, off: int, end: int) -> str:
    """The main operation of the COMPOUND4args operations at ``off``."""
    if off + 4 > end:
        raise _Short
    count = _w(buf, off)
    off += 4
    name = "ILLEGAL"
    for _ in range(min(count, MAX_COMPOUND_OPS)):
        if off + 4 > end:
            raise _Short
        op = _w(buf, off)
        off += 4
        name = V4_OPS.get(op)
        if name is None:
            return "ILLEGAL"
        skip = _SECOND_CLASS.get(op)
        if skip is None:
            return name                      # first class
        if skip == _SKIP_NONE:
            continue
        if skip == _SKIP_OPAQUE:
            off = _opaque_end(buf, off, end)[1]
        elif skip == _SKIP_BITMAP or skip == _SKIP_BITMAP_OPAQUE:
            if off + 4 > end:
                raise _Short
            words = _w(buf, off)
            if words > MAX_OPAQUE // 4:
                raise _Short
            off += 4 + 4 * words
            if off > end:
                raise _Short
            if skip == _SKIP_BITMAP_OPAQUE:
                off = _opaque_end(buf, off, end)[1]
        elif skip == _SKIP_HYPER:
            off += 8
        else:                                # SEQUENCE
            off += 16 + 16
        if off > end:
            raise _Short
    return name


def _unix_cred(body) -> tuple:
    """(stamp, machinename, uid, gid, gids) of an authsys_parms body."""
    end = len(body)
    if end < 8:
        raise _Short
    stamp, mlen = _w(body, 0), _w(body, 4)
    off = 8 + ((mlen + 3) & ~3)
    if off + 12 > end:
        raise _Short
    uid, gid, ngids = _w(body, off), _w(body, off + 4), _w(body, off + 8)
    off += 12
    if off + 4 * ngids > end:
        raise _Short
    if ngids == 0:
        gids = []
    elif ngids == 1:
        gids = [_w(body, off)]
    else:
        gids = [_w(body, off + 4 * k) for k in range(ngids)]
    return stamp, bytes(body[8:8 + mlen]), uid, gid, gids


def _message(ts, is_call, xid, size) -> RpcMessage:
    """``RpcMessage(ts, is_call, xid, size, [], ts)`` (compiled: without a Python ``__init__`` call)."""
    m = RpcMessage.__new__(RpcMessage)
    m.ts = ts
    m.is_call = is_call
    m.xid = xid
    m.size = size
    m.notes = []
    m.ts_first = ts
    m.prog = 0
    m.prog_vers = 0
    m.proc = 0
    m.auth_flavor = -1
    m.cred = None
    m.malformed = ""
    m.tag = None
    m.minor_version = -1
    m.opcode = ""
    m.reply_stat = -1
    m.accept_stat = -1
    m.reject_stat = -1
    m.status_word = None
    m.integ_status = None
    m.gss_service = 0
    return m


def decode_message(data, ts: int, size: int, cut: bool = False) -> RpcMessage:
    """The :class:`RpcMessage` whose first bytes are ``data`` (the whole
    message unless ``cut``: bytes after ``data`` were not kept). ``size`` is
    the message's length. Raises :class:`ParseError` for bytes that are not
    an RPC call or reply."""
    head = bytes(data)          # read as bytes (compiled: C-level indexing); no copy when it is bytes
    end = len(head)
    if end < 8:
        raise ParseError("RPC message of %d bytes" % end)
    xid, mtype = _w(head, 0), _w(head, 4)
    if mtype == RPC_CALL:
        if end < 24:
            if cut:
                raise ParseError("RPC call header cut short")
            raise ParseError("RPC call of %d bytes" % end)
        rpcvers, prog, vers, proc = _w(head, 8), _w(head, 12), _w(head, 16), _w(head, 20)
        if rpcvers != 2:
            raise ParseError("RPC version %d" % rpcvers)
        msg = _message(ts, True, xid, size)
        msg.prog = prog
        msg.prog_vers = vers
        msg.proc = proc
        if prog == NFS_PROGRAM:
            _decode_nfs_call(msg, head, end, cut)
        return msg
    if mtype == RPC_REPLY:
        if end < 12:
            raise ParseError("RPC reply of %d bytes" % end)
        stat = _w(head, 8)
        msg = _message(ts, False, xid, size)
        msg.reply_stat = stat
        if stat == 0:
            try:
                off = _opaque_end(head, 16, end)[1]
                if off + 4 > end:
                    raise _Short
                msg.accept_stat = _w(head, off)
                if off + 8 <= end:
                    msg.status_word = _w(head, off + 4)
                    if off + 16 <= end:
                        msg.integ_status = _w(head, off + 12)
            except _Short:
                msg.malformed = "accepted reply cut short"
        elif stat == 1:
            if end >= 16:
                msg.reject_stat = _w(head, 12)
        else:
            raise ParseError("RPC reply status %d" % stat)
        return msg
    raise ParseError("RPC message type %d" % mtype)


def _decode_nfs_call(msg: RpcMessage, head, end: int, cut: bool) -> None:
    """Credentials and NFS request info of an NFS call. Packetbeat 8 drops a
    call whose fields run past its end: ``malformed`` says so. When the head
    was ``cut`` (bytes not kept), what could be read is kept."""
    try:
        if end < 32:
            raise _Short
        flavor, clen = _w(head, 24), _w(head, 28)
        msg.auth_flavor = flavor
        if clen > MAX_OPAQUE:
            raise _Short
        off = 32 + ((clen + 3) & ~3)
        if 32 + clen > end:
            raise _Short
        if flavor == 1:
            msg.cred = _unix_cred(head[32:32 + clen])
        if off + 8 > end:
            raise _Short
        vlen = _w(head, off + 4)                      # verifier
        if vlen > MAX_OPAQUE or off + 8 + vlen > end:
            raise _Short
        off += 8 + ((vlen + 3) & ~3)
        if flavor == 6 and clen >= 20:
            # RPCSEC_GSS (RFC 2203): rpc_gss_cred_vers_1_t = version, gss_proc,
            # seq_num, service, handle. Data calls with integrity carry their
            # arguments after a length and a sequence number; with privacy
            # they are encrypted.
            gss_proc, _seq, service = _w(head, 36), _w(head, 40), _w(head, 44)
            if gss_proc == 0 and service in (2, 3):
                msg.gss_service = service
                if service == 2:
                    off += 8
                elif msg.prog_vers == 4 and msg.proc == 1:
                    return                                  # the COMPOUND is encrypted
        vers = msg.prog_vers
        if vers == 3:
            proc = msg.proc
            msg.opcode = V3_PROCS[proc] if proc < _N_V3 else "ILLEGAL"
        elif vers == 4:
            if msg.proc == 0:
                msg.opcode = "NULL"
            elif msg.proc == 1:
                if off + 4 > end:
                    raise _Short
                tlen = _w(head, off)
                tstart, off = _opaque_end(head, off, end)
                msg.tag = bytes(head[tstart:tstart + tlen])
                if off + 4 > end:
                    raise _Short
                msg.minor_version = _w(head, off)
                try:
                    msg.opcode = _main_opcode(head, off + 4, end)
                except _Short:
                    if not cut:
                        raise
                    msg.opcode = _last_op_before(head, off + 4, end)
    except _Short:
        if not cut:
            msg.malformed = "NFS call fields run past the message"


def _last_op_before(head, off: int, end: int) -> str:
    """The last operation readable in a COMPOUND whose bytes were cut
    (a gap, or more than CALL_HEAD_MAX bytes of leading operations)."""
    name = "ILLEGAL"
    try:
        count = _w(head, off)
        off += 4
        for _ in range(min(count, MAX_COMPOUND_OPS)):
            if off + 4 > end:
                break
            op = _w(head, off)
            name = V4_OPS.get(op, "ILLEGAL")
            if name == "ILLEGAL" or op not in _SECOND_CLASS:
                break
            # re-run the skip of one operation
            sub = _main_opcode_step(head, off, end)
            if sub < 0:
                break
            off = sub
    except (_Short, struct.error):
        pass
    return name


def _main_opcode_step(head, off: int, end: int) -> int:
    """Offset after the second-class operation at ``off``; -1 when cut."""
    op = _w(head, off)
    off += 4
    skip = _SECOND_CLASS[op]
    try:
        if skip == _SKIP_OPAQUE:
            off = _opaque_end(head, off, end)[1]
        elif skip == _SKIP_BITMAP or skip == _SKIP_BITMAP_OPAQUE:
            if off + 4 > end:
                return -1
            off += 4 + 4 * _w(head, off)
            if skip == _SKIP_BITMAP_OPAQUE:
                off = _opaque_end(head, off, end)[1]
        elif skip == _SKIP_HYPER:
            off += 8
        elif skip == _SKIP_SEQUENCE:
            off += 32
    except _Short:
        return -1
    return off if off <= end else -1


# --- TCP record marking -----------------------------------------------------------

_HEADER, _BODY = 0, 1
# what follows the record marker and the xid at the start of a record (``_hunt``)
_CALL_PATTERN = b"\0\0\0\0\0\0\0\2"        # CALL, RPC version 2
_REPLY_PATTERN = b"\0\0\0\1\0\0\0\0"       # REPLY, MSG_ACCEPTED
_DENIED_PATTERN = b"\0\0\0\1\0\0\0\1"      # REPLY, MSG_DENIED


class RecordParser(SegmentParser):
    """Sans-I/O reader of one direction of an ONC-RPC TCP connection."""

    __slots__ = ("max_message_size", "_state", "_hdr", "_remaining", "_last", "_head",
                 "_head_max", "_size", "_ts_first", "_cut", "_lost", "_done", "dropped_bytes", "lost_messages",
                 "_hunting", "skipped_bytes")

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE):
        self.max_message_size = max_message_size
        self.dropped_bytes = 0      # bytes of records left incomplete at the end
        self.lost_messages = 0      # records whose RPC header a gap took
        self.skipped_bytes = 0      # bytes passed over while looking for a record start
        self.reset()
        self._hunting = False

    def reset(self) -> None:
        """Forget the record being read (after a ParseError or a gap). The
        next bytes are searched for the start of a record (``_hunt``): after
        bad bytes the next segment may well begin inside a large message."""
        self._hunting = True
        self._state = _HEADER
        self._hdr = b""             # bytes of a record marker split over segments
        self._remaining = 0         # bytes left in the current fragment
        self._last = False          # the current fragment ends the record
        self._head = bytearray()    # first bytes of the record
        self._head_max = CALL_HEAD_MAX
        self._size = 0              # record bytes so far
        self._ts_first = -1
        self._cut = False           # bytes of the record were not kept (limit or gap)
        self._lost = False          # bytes of the record were lost (gap)
        self._done: list = []       # messages a gap completed (drain)

    @property
    def buffered(self) -> int:
        return len(self._head) + len(self._hdr)

    def feed(self, data, ts: int) -> list[RpcMessage]:
        """Append ``data`` received at ``ts`` (ns); return the messages it completes."""
        out: list[RpcMessage] = []
        if self._hunting:
            start = self._hunt(data)
            if start < 0:
                self.skipped_bytes += len(data)
                return out
            self.skipped_bytes += start
            self._hunting = False
            data = memoryview(data)[start:]
        n = len(data)
        i = 0
        mv = memoryview(data)
        if self._state == _HEADER and not self._size and not self._hdr:
            # Fast path: whole one-fragment records at the start of the segment
            # are decoded from the segment's bytes (compiled: read at C level);
            # the rest goes the general way.
            b = _as_bytes(data)
            limit = self.max_message_size
            while n - i >= 20:
                word = _w(b, i)
                length = word & SIZE_MASK
                end = i + 4 + length
                if not word & LAST_FRAGMENT or end > n or length < 16 or length > limit:
                    break
                head_end = i + 4 + CALL_HEAD_MAX
                if head_end > end:
                    head_end = end
                try:
                    msg = decode_message(b[i + 4:head_end], ts, length, head_end < end)
                except ParseError as e:
                    e.messages = out
                    raise
                out.append(msg)
                i = end
            if i == n:
                return out
        try:
            while i < n:
                if self._state == _HEADER:
                    need = 4 - len(self._hdr)
                    if not self._hdr and n - i >= 4:
                        word = _u32(mv, i)[0]
                        i += 4
                    elif n - i < need:
                        self._hdr += bytes(mv[i:n])
                        break
                    else:
                        word = _u32(self._hdr + bytes(mv[i:i + need]), 0)[0]
                        i += need
                        self._hdr = b""
                    length = word & SIZE_MASK
                    self._last = bool(word & LAST_FRAGMENT)
                    if length == 0 and self._size == 0:
                        # no implementation starts a record with an empty fragment; after a
                        # resynchronisation inside data (zeros) this stops at once
                        raise ParseError("RPC record starting with an empty fragment")
                    if self._size + length > self.max_message_size:
                        raise ParseError("RPC record larger than %d bytes" % self.max_message_size)
                    if self._ts_first < 0:
                        self._ts_first = ts
                    self._remaining = length
                    self._state = _BODY
                    if length == 0:
                        if self._last:
                            msg = self._complete(ts)
                            if msg is not None:
                                out.append(msg)
                        else:
                            self._state = _HEADER
                    continue
                take = self._remaining
                if take > n - i:
                    take = n - i
                head = self._head
                room = self._head_max - len(head)
                if room > 0 and not self._cut:
                    had = len(head)
                    head += mv[i:i + (take if take < room else room)]
                    if had < 16 <= len(head):
                        self._check_start(head)
                    if len(head) >= self._head_max and take > room:
                        self._cut = True
                elif take:
                    self._cut = True
                i += take
                self._size += take
                self._remaining -= take
                if self._remaining == 0:
                    if self._last:
                        msg = self._complete(ts)
                        if msg is not None:
                            out.append(msg)
                    else:
                        self._state = _HEADER
        except ParseError as e:
            e.messages = out
            raise
        return out

    def _hunt(self, data) -> int:
        """Offset of the first plausible record start in ``data``, or -1: a
        marker with the last-fragment bit and a length within bounds, followed
        by an xid and either a call (type 0, RPC version 2) or an accepted or
        denied reply (type 1, status 0 or 1)."""
        b = bytes(data)
        n = len(b)
        limit = self.max_message_size
        best = -1
        for pattern, at in ((_CALL_PATTERN, 8), (_REPLY_PATTERN, 8), (_DENIED_PATTERN, 8)):
            pos = b.find(pattern, at)
            while pos >= 0 and (best < 0 or pos - at < best):
                start = pos - at
                word = _u32(b, start)[0]
                length = word & SIZE_MASK
                if word & LAST_FRAGMENT and 16 <= length <= limit and (
                        pattern is not _REPLY_PATTERN or n - start < 20 or _u32(b, start + 16)[0] in (0, 1, 6)):
                    best = start
                    break
                pos = b.find(pattern, pos + 1)
        return best

    def _check_start(self, head: bytearray) -> None:
        """The first 16 bytes of a record are there: refuse what is not an
        RPC call or reply at once (after a resynchronisation, a random word
        taken for a record marker must not swallow megabytes), and keep only
        the start of a reply."""
        mtype, word = _U32x2.unpack_from(head, 4)
        if mtype == RPC_REPLY:
            if word > 1:
                raise ParseError("RPC reply status %d" % word)
            self._head_max = REPLY_HEAD_MAX
            if len(head) > REPLY_HEAD_MAX:
                del head[REPLY_HEAD_MAX:]
        elif mtype != RPC_CALL:
            raise ParseError("RPC message type %d" % mtype)
        elif word != 2:
            raise ParseError("RPC version %d" % word)

    def _complete(self, ts: int) -> RpcMessage | None:
        head, size, cut, lost, first = self._head, self._size, self._cut, self._lost, self._ts_first
        self._head = bytearray()
        self._head_max = CALL_HEAD_MAX
        self._size = 0
        self._ts_first = -1
        self._cut = self._lost = False
        self._state = _HEADER
        try:
            msg = decode_message(head, ts, size, cut or size > len(head))
        except ParseError:
            if lost:
                # the gap took the RPC header: the framing held, the message is lost
                self.lost_messages += 1
                return None
            raise
        msg.ts_first = first
        if lost:
            msg.notes.append("Packet loss while capturing the " + ("request" if msg.is_call else "response"))
        return msg

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost: True when they fall inside the current
        fragment body (the framing holds), False otherwise."""
        if self._state != _BODY or nbytes > self._remaining or self._hdr:
            return False
        self._remaining -= nbytes
        self._size += nbytes
        self._cut = True
        self._lost = True
        if self._remaining == 0:
            if self._last:
                try:
                    msg = self._complete(self._ts_first)
                except ParseError:
                    return False
                if msg is not None:
                    self._done.append(msg)
            else:
                self._state = _HEADER
        return True

    def drain(self) -> list[RpcMessage]:
        """Messages a gap completed."""
        done, self._done = self._done, []
        return done

    def flush(self) -> list[RpcMessage]:
        """End of the stream: an incomplete record is dropped (counted)."""
        self.dropped_bytes += self._size
        self.reset()
        return []
