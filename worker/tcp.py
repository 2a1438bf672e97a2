"""TCP stream tracking for one worker: sequence numbers, reordering, gaps, close.

Theory of operation
-------------------
A port of the logic of Packetbeat's ``packetbeat/protos/tcp/tcp.go`` with a
bounded out-of-order buffer added (Packetbeat has none: it declares a gap at
the first hole).

- **Connections.** The side whose port is a configured protocol port is the
  server. The key is client-oriented, one bytes object ``client_ip +
  server_ip + client_port + server_port`` (``_key_parts``), so both directions find the same
  :class:`Conn`; direction 0 (``DIR_ORIGINAL``) is client -> server. Text
  addresses, the per-direction ``IpPortTuple`` and the ``TcpTuple`` are built
  once, when the connection is created, which is when its first payload (or
  FIN after data-less SYNs is ignored) arrives: a packet without payload never
  opens a connection. A data-less SYN or SYN-ACK of an unknown connection is
  remembered in a small bounded table (key -> initial sequence numbers and
  time, oldest evicted first, ``tcp.syns_evicted``), so a SYN flood costs a few
  hundred bytes per SYN up to ``max_pending_syns`` and no plugin state; the
  connection's first payload then starts from the remembered ISNs (a lost
  first segment is still a gap). Packetbeat creates a stream per SYN.
- **Bounds.** At most ``max_buffered_bytes`` held after holes over all the
  worker's connections: past it, the stream that just added a segment has
  its holes declared gaps at once (``tcp.buffer_full``). At most
  ``max_connections`` connections per worker: opening one
  more evicts the least recently active one (``tcp.evicted``, logged every
  10,000), whose plugin is flushed so its open transactions are published, as
  on an idle timeout, after ``plugin.note_evicted(state)`` (optional) has
  noted the eviction on them.
- **Sequence numbers.** Each direction keeps ``nxt``, the next expected
  sequence number as an *unbounded* integer: an incoming 32-bit ``seq`` is
  placed by its signed 32-bit distance from ``nxt`` (wraparound safe), so the
  buffer can be ordered by plain integers. A SYN consumes one number; so does
  a FIN. The first segment seen in a direction initialises it (mid-stream
  start). Segments wholly before ``nxt`` are retransmissions (dropped,
  counted); segments straddling ``nxt`` are trimmed (counted).
- **Reordering.** A segment after a hole is held (up to ``ooo_max_segments``
  per direction and ``max_stream_bytes`` buffered bytes). When the hole is
  filled the held segments are delivered in order, each with its own
  timestamp. When the segment bound overflows, or a FIN arrives with a hole
  outstanding, or the connection closes / expires, the hole is declared a
  gap: ``plugin.gap_in_stream(tcptuple, dir, nbytes, state) -> (state, drop)``
  and delivery resumes after it (``drop=True``: state ``None`` and, as in
  Packetbeat, a new ``conn_id`` in the ``TcpTuple``). Going over ``max_stream_bytes`` drops the
  stream: the plugin is flushed and the connection forgotten.
- **Close.** A FIN (once in order) calls ``plugin.received_fin``. When both
  sides have sent FIN, or on RST, the plugin is flushed
  (``plugin.flush(tcptuple, state, ts)``) and the connection forgotten; its
  key is remembered for a while (a bounded "closed" table) so that the last
  ACK or a late retransmission does not resurrect it. A client SYN on such a
  key starts a new connection unless it repeats the closed connection's
  initial sequence number (a duplicate; a SYN-ACK never starts one there).
  A client SYN with a new initial sequence number on an open connection
  starts a new connection too (a duplicate of the SYN already
  seen, or a SYN-ACK, arriving after data is ignored).
- **Idle timeout** follows packet time. Connections live in one
  ``OrderedDict`` per distinct timeout, ordered by last activity
  (``move_to_end`` on every packet), so :meth:`TcpTracker.expire` pops expired
  connections from the front and stops at the first live one.
- **Plugin boundary.** ``ParseError`` (the base of every parser's error) from
  any callback drops the plugin state (``None``) and counts
  ``tcp.parse_errors``; any other exception is logged once per protocol with
  its traceback, counts ``tcp.plugin_errors`` and drops the state. Nothing
  escapes :meth:`TcpTracker.process`.

Counters: ``tcp.packets`` and ``tcp.payload_bytes`` (every packet) are kept
as ints and added to the shared ``Counter`` by ``expire()`` / ``flush_all()``;
every other counter is updated immediately.

``plugin.flush`` is called only for a connection whose plugin state is not
``None`` (a ``None`` state has nothing left to publish).
"""
from __future__ import annotations

import collections
import logging
from bisect import insort
from operator import itemgetter
from struct import Struct
from typing import Any

from shared.addr import ip_text
from worker.plugin import DIR_ORIGINAL, DIR_REVERSE, TCP, IpPortTuple, Packet, ParseError, TcpTuple

FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10

_M32 = 0xFFFFFFFF
_HALF = 0x80000000
_WRAP = 0x100000000
_NS = 1_000_000_000

# Keys of connections closed by FIN/RST are remembered this long (packet
# time) and at most this many, so stray packets after close are ignored.
_CLOSED_LINGER_NS = 30 * _NS
_CLOSED_MAX = 65536

_seg_start = itemgetter(0)
_PORTS = Struct("!HH").pack
_ADDR_CACHE_MAX = 65536


def _key_parts(key: bytes) -> tuple:
    """A connection key -> (client address, client port, server address, server port).

    A key is ``client address + server address + client port + server port``
    (addresses as 4 or 16 bytes, ports big-endian), one bytes object: cheaper to
    build, hash and compare per packet than a tuple. For an untagged IPv4 frame
    from the client it is the frame's bytes 26-38 as they are."""
    m = len(key) - 4
    h = m >> 1
    return key[:h], key[m] << 8 | key[m + 1], key[h:m], key[m + 2] << 8 | key[m + 3]


def _reverse_key(key: bytes) -> bytes:
    """The key with client and server swapped."""
    m = len(key) - 4
    h = m >> 1
    return key[h:m] + key[:h] + key[m + 2:] + key[m:m + 2]


def _rkey4(raw: bytes) -> bytes:
    """The key of an untagged Ethernet/IPv4 (no options) TCP frame sent by the
    server: its addresses and ports swapped (the compiled build uses the
    one-allocation ``_rkey4_c`` of tcp.pxd)."""
    if _COMPILED:
        return _rkey4_c(raw)
    return raw[30:34] + raw[26:30] + raw[36:38] + raw[34:36]


def _probe():
    pass


# True when this module runs compiled (setup.py): functions are then Cython's, not CPython's.
_COMPILED = type(_probe).__name__ != "function"


_SYN_TIMEOUT_NS = 10 * _NS      # a remembered SYN without data is forgotten after this (packet time)


_tuple_new = tuple.__new__


class Conn:
    """One tracked TCP connection (both directions)."""

    __slots__ = ("key", "table", "plugin", "name", "tcptuple", "tup", "state",
                 "nxt", "fin", "ooo", "ooo_bytes", "last_ts", "closing", "syn_seq")

    def __init__(self, key: bytes, table: collections.OrderedDict, plugin: Any, name: str,
                 tcptuple: TcpTuple, ts: int):
        self.key = key
        self.table = table
        self.plugin = plugin
        self.name = name
        self.tcptuple = tcptuple
        # IpPortTuple per direction (tcptuple.ip_port() and its reverse(), made as
        # NamedTuple.__new__ makes them, without its interpreted frame)
        src_ip, src_port, dst_ip, dst_port, _ = tuple(tcptuple)
        self.tup = (_tuple_new(IpPortTuple, (TCP, src_ip, src_port, dst_ip, dst_port)),
                    _tuple_new(IpPortTuple, (TCP, dst_ip, dst_port, src_ip, src_port)))
        self.state: Any = None                   # opaque plugin state
        self.nxt: list = [None, None]            # next expected seq (unbounded int) per direction
        self.fin = [False, False]                # FIN delivered per direction
        # Held segments per direction, sorted by start:
        # (start, ts, flags, raw, off, end); start is unbounded like nxt.
        self.ooo: list = [[], []]
        self.ooo_bytes = [0, 0]
        self.last_ts = ts
        self.closing = False
        self.syn_seq: int | None = None          # seq of the client SYN, when seen


class TcpTracker:
    """Tracks the TCP connections of one worker and feeds their plugins."""

    def __init__(self, plugins_by_port: dict[int, Any], counters: collections.Counter, *,
                 max_stream_bytes: int = 10 * 1024 * 1024, ooo_max_segments: int = 64,
                 default_idle_timeout: float = 10.0, log: logging.Logger | None = None,
                 max_connections: int = 32_768, max_pending_syns: int = 65536,
                 max_buffered_bytes: int = 128 * 1024 * 1024):
        self._counters = counters
        self._max_conns = max(1, int(max_connections))
        self._max_syns = max(0, int(max_pending_syns))
        # client-oriented key -> (client ISN or None, server ISN or None, ts), oldest first
        self._syns: collections.OrderedDict = collections.OrderedDict()
        self._n_conns = 0
        # bytes held after holes (out of order) over all connections, and their bound
        self._held = 0
        self._max_held = max(0, int(max_buffered_bytes))
        self._max_stream_bytes = int(max_stream_bytes)
        self._ooo_max = max(0, int(ooo_max_segments))
        self._log = log if log is not None else logging.getLogger("packetbeat.tcp")
        self._logged: set[str] = set()
        self._next_id = 0
        # One OrderedDict per distinct idle timeout (ns), ordered by last activity.
        self._tables: dict[int, collections.OrderedDict] = {}
        # port -> (plugin, table, timeout_ns, protocol name, table.move_to_end)
        self._ports: dict[int, tuple] = {}
        for port, plugin in plugins_by_port.items():
            timeout = plugin.connection_timeout()
            if not timeout or timeout <= 0:
                timeout = default_idle_timeout
            timeout_ns = int(round(timeout * _NS))
            table = self._tables.setdefault(timeout_ns, collections.OrderedDict())
            name = getattr(plugin, "name", None) or type(plugin).__name__
            self._ports[int(port)] = (plugin, table, timeout_ns, str(name), table.move_to_end)
        self._closed: collections.OrderedDict = collections.OrderedDict()   # key -> forget-at ns
        # The two per-packet counters are plain ints, folded into ``counters``
        # by expire() / flush_all() (once per batch): a Counter update costs
        # several times an attribute increment.
        self._n_packets = 0
        self._n_bytes = 0
        self._addr: dict[bytes, str] = {}        # address bytes -> text (bounded cache)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def pending_syns(self) -> int:
        return len(self._syns)

    # ------------------------------------------------------------------ hot path

    def process(self, ts: int, dec: tuple, raw: bytes) -> None:
        """Handle one decoded TCP packet (see ``shared.decode``)."""
        _t, src, dst, sport, dport, flags, seq, _a, off, end, _l3 = dec
        ent = self._ports.get(dport)
        if ent is not None:
            self._track(ts, ent, src + dst + _PORTS(sport, dport), DIR_ORIGINAL, sport, dport,
                        flags, seq, raw, off, end)
            return
        ent = self._ports.get(sport)
        if ent is None:
            self._n_packets += 1
            self._counters["tcp.no_protocol"] += 1
            return
        self._track(ts, ent, dst + src + _PORTS(dport, sport), DIR_REVERSE, sport, dport,
                    flags, seq, raw, off, end)

    def process_eth4(self, ts: int, raw: bytes) -> bool:
        """``process`` for the common frame, read from ``raw`` without ``decode``:
        untagged Ethernet, IPv4 without options, unfragmented, TCP, with headers
        that ``decode`` accepts. False (nothing done) for any other frame: the
        caller then decodes it. The engine calls it only when compiled (the
        byte reads are C array reads there); the result is the same as
        ``process(ts, decode(1, raw), raw)``."""
        n = len(raw)
        if n < 54 or raw[12] != 0x08 or raw[13] != 0x00 or raw[14] != 0x45 or raw[23] != TCP:
            return False
        if (raw[20] & 0x3F) or raw[21]:
            return False                             # a fragment
        end = 14 + (raw[16] << 8 | raw[17])
        if end > n:
            end = n
        off = 34 + ((raw[46] >> 4) << 2)
        if end < 54 or off < 54 or off > end:
            return False                             # decode() refuses it: counted there
        sport = raw[34] << 8 | raw[35]
        dport = raw[36] << 8 | raw[37]
        seq = raw[38] << 24 | raw[39] << 16 | raw[40] << 8 | raw[41]
        ent = self._ports.get(dport)
        if ent is not None:
            self._track(ts, ent, raw[26:38], DIR_ORIGINAL, sport, dport, raw[47], seq, raw, off, end)
            return True
        ent = self._ports.get(sport)
        if ent is None:
            self._n_packets += 1
            self._counters["tcp.no_protocol"] += 1
            return True
        self._track(ts, ent, _rkey4(raw), DIR_REVERSE, sport, dport, raw[47], seq, raw, off, end)
        return True

    def _track(self, ts: int, ent: tuple, key: bytes, d: int, sport: int, dport: int, flags: int,
               seq: int, raw: bytes, off: int, end: int) -> None:
        """One packet of the protocol ``ent`` (``_ports``), client-oriented ``key``,
        travelling in direction ``d``."""
        self._n_packets += 1
        n = end - off
        if n > 0:
            self._n_bytes += n
        conn = ent[1].get(key)
        if conn is None:
            conn, d = self._lookup_miss(ts, key, d, flags, n, ent, sport, dport, seq)
            if conn is None:
                return
        else:
            ent[4](key)                              # table.move_to_end(key)
        conn.last_ts = ts
        if flags & 0x07:
            self._control(conn, d, ts, seq, flags, raw, off, end)
            return
        if n == 0:
            return                                   # empty ACK: activity only
        nxt = conn.nxt[d]
        if nxt is not None and not conn.ooo[d]:
            inxt = nxt
            if (inxt & _M32) == seq:
                # In order, nothing held: the common case.
                conn.nxt[d] = inxt + n
                pkt = Packet.__new__(Packet)
                pkt.ts = ts
                pkt.tuple = conn.tup[d]
                pkt.payload = memoryview(raw[off:end])
                try:
                    conn.state = conn.plugin.parse(pkt, conn.tcptuple, d, conn.state)
                except Exception as exc:  # noqa: BLE001 - the plugin boundary
                    self._plugin_failed(conn, exc)
                return
        self._segment(conn, d, ts, seq, flags, raw, off, end)

    def _text(self, addr: bytes) -> str:
        """Address text through a bounded cache (peers repeat over connections)."""
        cache = self._addr
        text = cache.get(addr)
        if text is None:
            if len(cache) >= _ADDR_CACHE_MAX:
                cache.clear()
            text = cache[addr] = ip_text(addr)
        return text

    def _lookup_miss(self, ts: int, key: bytes, d: int, flags: int, n: int, ent: tuple,
                     sport: int, dport: int, seq=None):
        """No connection under ``key``: try the other orientation (both ports
        configured), then decide whether this packet opens a new connection."""
        ports = self._ports
        if sport in ports and dport in ports:
            other = ports[sport] if d == DIR_ORIGINAL else ports[dport]
            rkey = _reverse_key(key)
            conn = other[1].get(rkey)
            if conn is not None:
                other[1].move_to_end(rkey)
                return conn, 1 - d
        closed = self._closed
        if key in closed:
            if closed[key][0] <= ts:
                del closed[key]              # remembered long enough (expire() runs after a batch)
            elif not flags & SYN or flags & ACK or seq == closed[key][1]:
                # data, a SYN-ACK, or the closed connection's own SYN again
                # (same ISN: a duplicate, not a new connection)
                if n > 0 or flags & SYN:
                    self._counters["tcp.retransmits"] += 1
                return None, d
            else:
                del closed[key]
        syns = self._syns
        if n == 0 and not (flags & FIN and not flags & (SYN | RST) and key in syns):
            if flags & SYN and not flags & (FIN | RST):
                self._remember_syn(ts, key, d, seq, flags)
            elif flags & RST:
                syns.pop(key, None)
            return None, d                           # no payload: no connection (yet)
        # payload, or a FIN after a remembered SYN (the data in between was lost: a gap)
        plugin, table, _timeout, name, _move = ent
        if self._n_conns >= self._max_conns:
            self._evict_oldest(ts)
        self._next_id += 1
        cip, cport, sip, sport_ = _key_parts(key)
        # TcpTuple(...) as its NamedTuple.__new__ makes it, without the interpreted frame
        tcptuple = _tuple_new(TcpTuple, (self._text(cip), cport, self._text(sip), sport_, self._next_id))
        conn = Conn(key, table, plugin, name, tcptuple, ts)
        table[key] = conn
        self._n_conns += 1
        self._counters["tcp.connections"] += 1
        syn = syns.pop(key, None) if syns else None
        if syn is not None:
            c_isn, s_isn, _ts = syn
            if c_isn is not None:
                conn.nxt[DIR_ORIGINAL] = (c_isn + 1) & _M32
                conn.syn_seq = c_isn
            if s_isn is not None:
                conn.nxt[DIR_REVERSE] = (s_isn + 1) & _M32
        return conn, d

    def _remember_syn(self, ts: int, key: bytes, d: int, seq: int, flags: int) -> None:
        """A data-less SYN (client) or SYN-ACK (server) of an unknown connection."""
        if not self._max_syns:
            return
        syns = self._syns
        old = syns.pop(key, None)
        if d == DIR_ORIGINAL and not flags & ACK:
            entry = (seq, None, ts)
        elif old is not None:
            entry = (old[0], seq, old[2])
        else:
            entry = (None, seq, ts)
        syns[key] = entry
        if len(syns) > self._max_syns:
            syns.popitem(last=False)
            self._counters["tcp.syns_evicted"] += 1

    def _evict_oldest(self, ts: int) -> None:
        """The connection table is full: forget the least recently active
        connection (its plugin publishes what is open, as on a timeout)."""
        oldest = None
        for table in self._tables.values():
            if table:
                conn = next(iter(table.values()))
                if oldest is None or conn.last_ts < oldest.last_ts:
                    oldest = conn
        if oldest is None:
            return
        counters = self._counters
        counters["tcp.evicted"] += 1
        if counters["tcp.evicted"] % 10000 == 1:
            self._log.warning("more than %d TCP connections on this worker: the least recently active "
                              "ones are flushed and forgotten (tcp.evicted = %d; cluster.max_connections "
                              "sets the bound)", self._max_conns, counters["tcp.evicted"])
        note = getattr(oldest.plugin, "note_evicted", None)
        if note is not None and oldest.state is not None:
            try:
                note(oldest.state)
            except Exception as exc:  # noqa: BLE001 - the plugin boundary
                self._plugin_failed(oldest, exc)
        self._close(oldest, ts)

    # ------------------------------------------------------------------ slow path

    def _control(self, conn: Conn, d: int, ts: int, seq: int, flags: int,
                 raw: bytes, off: int, end: int) -> None:
        """A packet with SYN, FIN or RST set."""
        if flags & RST:
            self._counters["tcp.rst"] += 1
            self._close(conn, ts)
            self._remember_closed(conn, ts)
            return
        if flags & SYN:
            isn_next = (seq + 1) & _M32
            nxt = conn.nxt[d]
            if nxt is not None and (nxt & _M32) != isn_next:
                if d != DIR_ORIGINAL or flags & ACK or conn.syn_seq == seq:
                    return                           # SYN / SYN-ACK retransmitted after data
                # A client SYN with a new ISN: the port pair was reused.
                self._close(conn, ts)
                _cip, cport, _sip, sport = _key_parts(conn.key)
                ent = self._ports[sport]
                conn, d = self._lookup_miss(ts, conn.key, d, flags, end - off, ent, cport, sport, seq)
                if conn is None:
                    return
            if conn.nxt[d] is None:
                conn.nxt[d] = isn_next
            if d == DIR_ORIGINAL and not flags & ACK:
                conn.syn_seq = seq
            if end == off and not flags & FIN:
                return
            seq = isn_next                           # data on a SYN starts after it
        self._segment(conn, d, ts, seq, flags, raw, off, end)

    def _segment(self, conn: Conn, d: int, ts: int, seq: int, flags: int,
                 raw: bytes, off: int, end: int) -> None:
        """Place one segment (payload and/or FIN) relative to ``nxt``."""
        n = end - off
        fin = flags & FIN
        if n == 0 and not fin:
            return
        if conn.fin[d]:
            if n > 0:
                self._counters["tcp.retransmits"] += 1  # after our FIN: stale
            return
        nxt = conn.nxt[d]
        if nxt is None:
            nxt = conn.nxt[d] = seq                  # mid-stream start
        diff = (seq - nxt) & _M32
        if diff >= _HALF:
            diff -= _WRAP
        start = nxt + diff
        if diff > 0:
            self._hold(conn, d, (start, ts, flags, raw, off, end), n)
            return
        if not self._accept(conn, d, ts, start, fin, raw, off, end):
            return
        if conn.ooo[d]:
            self._drain(conn, d)

    def _accept(self, conn: Conn, d: int, ts: int, start: int, fin: int,
                raw: bytes, off: int, end: int) -> bool:
        """Deliver a segment that starts at or before ``nxt``. Returns False if
        the connection went away while doing so."""
        nxt = conn.nxt[d]
        stop = start + (end - off)
        if start < nxt:
            if stop < nxt or (stop == nxt and not fin):
                self._counters["tcp.retransmits"] += 1
                return True
            trim = nxt - start
            if off + trim < end:
                self._counters["tcp.overlaps_trimmed"] += 1
            off += trim
        if off < end:
            conn.nxt[d] = stop
            try:
                conn.state = conn.plugin.parse(Packet(ts, conn.tup[d], memoryview(raw[off:end])),
                                               conn.tcptuple, d, conn.state)
            except Exception as exc:  # noqa: BLE001 - the plugin boundary
                self._plugin_failed(conn, exc)
        if fin:
            return self._fin(conn, d, ts)
        return True

    def _fin(self, conn: Conn, d: int, ts: int) -> bool:
        """An in-order FIN in direction ``d``."""
        conn.nxt[d] += 1
        conn.fin[d] = True
        self._counters["tcp.fin"] += 1
        if conn.ooo[d]:
            conn.ooo[d] = []                         # nothing is valid after a FIN
            self._held -= conn.ooo_bytes[d]
            conn.ooo_bytes[d] = 0
        try:
            conn.state = conn.plugin.received_fin(conn.tcptuple, d, conn.state)
        except Exception as exc:  # noqa: BLE001 - the plugin boundary
            self._plugin_failed(conn, exc)
        if conn.fin[1 - d] and not conn.closing:
            self._close(conn, ts)
            self._remember_closed(conn, ts)
            return False
        return True

    def _hold(self, conn: Conn, d: int, seg: tuple, n: int) -> None:
        """Buffer a segment that lies after a hole; enforce the bounds."""
        counters = self._counters
        counters["tcp.ooo_segments"] += 1
        held = conn.ooo[d]
        insort(held, seg, key=_seg_start)
        conn.ooo_bytes[d] += n
        self._held += n
        if conn.ooo_bytes[d] > self._max_stream_bytes:
            counters["tcp.stream_dropped"] += 1
            self._close(conn, seg[1], drain=False)
            return
        if self._held > self._max_held:
            # the worker holds too many bytes after holes: this stream's holes become gaps now
            counters["tcp.buffer_full"] += 1
            self._force_drain(conn, d)
        elif seg[2] & FIN:
            self._force_drain(conn, d)               # FIN with a hole outstanding
        elif len(held) > self._ooo_max:
            self._gap(conn, d)
            if not conn.closing:
                self._drain(conn, d)

    def _drain(self, conn: Conn, d: int) -> None:
        """Deliver held segments that have become contiguous with ``nxt``."""
        held = conn.ooo[d]
        while held and held[0][0] <= conn.nxt[d]:
            start, ts, flags, raw, off, end = held.pop(0)
            conn.ooo_bytes[d] -= end - off
            self._held -= end - off
            if not self._accept(conn, d, ts, start, flags & FIN, raw, off, end):
                return
            held = conn.ooo[d]

    def _gap(self, conn: Conn, d: int) -> None:
        """Declare the hole before the first held segment lost."""
        nbytes = conn.ooo[d][0][0] - conn.nxt[d]
        counters = self._counters
        counters["tcp.gaps"] += 1
        counters["tcp.gap_bytes"] += nbytes
        conn.nxt[d] += nbytes
        try:
            state, drop = conn.plugin.gap_in_stream(conn.tcptuple, d, nbytes, conn.state)
        except Exception as exc:  # noqa: BLE001 - the plugin boundary
            self._plugin_failed(conn, exc)
            return
        if drop:
            # As Packetbeat: forget the application state and give the stream
            # a new id, so analysers keyed by it do not mix old and new.
            conn.state = None
            self._next_id += 1
            conn.tcptuple = conn.tcptuple._replace(conn_id=self._next_id)
        else:
            conn.state = state

    def _force_drain(self, conn: Conn, d: int) -> None:
        """Declare every outstanding hole a gap and deliver all held data."""
        while conn.ooo[d]:                      # _fin and _close empty it
            if conn.ooo[d][0][0] > conn.nxt[d]:
                self._gap(conn, d)
            self._drain(conn, d)

    # ------------------------------------------------------------------ closing

    def _close(self, conn: Conn, ts: int, drain: bool = True) -> None:
        """Flush the plugin and forget ``conn`` (it may still be referenced by
        the caller, which must not use it afterwards)."""
        if conn.closing:
            return
        conn.closing = True
        self._n_conns -= 1
        conn.table.pop(conn.key, None)
        if drain:
            for d in (DIR_ORIGINAL, DIR_REVERSE):
                if conn.ooo[d]:
                    self._force_drain(conn, d)
        conn.ooo = [[], []]
        self._held -= conn.ooo_bytes[0] + conn.ooo_bytes[1]
        conn.ooo_bytes = [0, 0]
        if conn.state is not None:
            try:
                conn.plugin.flush(conn.tcptuple, conn.state, ts)
            except Exception as exc:  # noqa: BLE001 - the plugin boundary
                self._plugin_failed(conn, exc)
            conn.state = None

    def _remember_closed(self, conn: Conn, ts: int) -> None:
        closed = self._closed
        closed[conn.key] = (ts + _CLOSED_LINGER_NS, conn.syn_seq)
        closed.move_to_end(conn.key)
        while len(closed) > _CLOSED_MAX:
            closed.popitem(last=False)

    def _plugin_failed(self, conn: Conn, exc: Exception) -> None:
        conn.state = None
        if isinstance(exc, ParseError):
            self._counters["tcp.parse_errors"] += 1
            return
        self._counters["tcp.plugin_errors"] += 1
        if conn.name not in self._logged:
            self._logged.add(conn.name)
            self._log.error("protocol %s raised %s on %s; dropping its stream state "
                            "(logged once per protocol)", conn.name, type(exc).__name__,
                            conn.tcptuple, exc_info=exc)

    # ------------------------------------------------------------------ time

    def _fold_counters(self) -> None:
        counters = self._counters
        if self._n_packets:
            counters["tcp.packets"] += self._n_packets
            self._n_packets = 0
        if self._n_bytes:
            counters["tcp.payload_bytes"] += self._n_bytes
            self._n_bytes = 0

    def expire(self, now: int) -> None:
        """Flush and forget connections idle for their timeout at packet time
        ``now``; also brings ``tcp.packets`` / ``tcp.payload_bytes`` up to date."""
        self._fold_counters()
        counters = self._counters
        for timeout_ns, table in self._tables.items():
            limit = now - timeout_ns
            while table:
                conn = next(iter(table.values()))
                if conn.last_ts > limit:
                    break
                table.popitem(last=False)
                counters["tcp.timeouts"] += 1
                self._close(conn, now)
        closed = self._closed
        while closed:
            key, until = next(iter(closed.items()))
            if until[0] > now:
                break
            closed.popitem(last=False)
        syns = self._syns
        limit = now - _SYN_TIMEOUT_NS
        while syns:
            if next(iter(syns.values()))[2] > limit:
                break
            syns.popitem(last=False)

    def flush_all(self, now: int) -> None:
        """End of stream: flush every connection and forget them all."""
        self._fold_counters()
        for table in self._tables.values():
            while table:
                _key, conn = table.popitem(last=False)
                self._close(conn, now)
        self._closed.clear()
        self._syns.clear()
