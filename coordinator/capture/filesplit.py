"""Several capture processes for one file input (``cluster.captures: C`` with ``-I``).

One capture process reads, decodes, shards, batches and sends every packet of
the file; beyond a few workers it is the stage that saturates first
(docs/benchmarks.md, "Fifth session: scaling model"). With ``C`` captures,
capture ``i`` still reads the whole file (reading is the cheap part: the page
cache serves the other readers) but forwards only the flows of the shards it
owns, shard ``s`` belonging to capture ``s % C``. So every worker is fed by
exactly one capture, the packets of its shard in file order: a worker's input,
and therefore its events, packet-time time-outs included, are those of a
one-capture run. Each capture still sends an end-of-stream to every worker
(workers count one per capture, ``cluster.captures``).

Ownership is decided per record before the capture's ``Sharder`` sees it,
with the same hash (``shared/shard.py``): read from fixed offsets for an
untagged Ethernet frame with an IPv4 header without options, not a fragment,
TCP or UDP (``_fast_shard``, compiled by setup.py), else from the decoder
(``shared/decode.py``):

- a decodable packet goes to the owner of its shard only;
- an undecodable record goes to capture 0 only (counted once, as with one capture);
- an IP fragment goes to every capture (a non-first fragment carries no ports):
  each reassembles, and the shard of the reassembled datagram decides; the
  batches a capture makes for a shard it does not own are dropped by
  :meth:`ShareFilter.send`, their packets taken out of ``capture.packets`` and
  counted in ``capture.foreign_datagrams``.
  The reassembly counters (``capture.reasm.*``) then count in every capture.

``file_captures`` bounds ``C`` by the number of workers (a capture without a
shard would only read the file).
"""
from __future__ import annotations

import logging
from zlib import crc32

from shared.decode import FRAGMENT, decode

log = logging.getLogger("packetbeat.capture")


def file_captures(cluster: dict) -> int:
    """How many capture processes read a file input: ``cluster.captures``, at most
    one per shard (``cluster.workers``, or the length of ``cluster.shards`` on a capture
    host), at least 1."""
    want = int(cluster.get("captures") or 1)
    shards = len(cluster.get("shards") or ()) if cluster.get("role") == "capture" else int(cluster.get("workers") or 1)
    if want > shards >= 1:
        log.info("cluster.captures=%d: a file is read by at most one capture per shard, %d", want, shards)
        return shards
    return max(1, want)


def _fast_shard(raw: bytes, shards: int) -> int:
    """The shard of an untagged Ethernet / IPv4 (no options, not a fragment) TCP or UDP
    frame, the bytes read where ``decode`` reads them; -1 for any other frame. (A frame
    that ``decode`` then refuses, e.g. truncated, goes to one capture and is counted there.)"""
    if len(raw) < 38 or raw[12] != 0x08 or raw[13] != 0 or raw[14] != 0x45 or raw[20] & 0x3F or raw[21]:
        return -1
    t = raw[23]
    if t != 6 and t != 17:
        return -1
    if _COMPILED:
        return crc32(_pair_key_c(raw), t) % shards       # filesplit.pxd: the same key, one allocation
    a = raw[26:30] + raw[34:36]           # (address, port) of each end, as shared/shard.py orders them
    b = raw[30:34] + raw[36:38]
    return (crc32(a + b, t) if a < b else crc32(b + a, t)) % shards


SKIP = -2          # fast_class: a TCP segment without payload nor SYN/FIN/RST, to skip


def fast_class(raw: bytes, shards: int, skip_empty: bool) -> int:
    """The capture's ``Sharder`` without ``decode`` for the common frame: an
    untagged Ethernet / IPv4 (no options, not a fragment) TCP or UDP frame of
    at least 54 bytes that ``decode``'s own fast path takes as valid. Returns its
    shard (as ``Sharder``: ``crc32`` of the ordered (address, port) pair seeded
    with the protocol, modulo ``shards``), or ``SKIP`` for a TCP segment with no
    payload and no SYN/FIN/RST when ``skip_empty``; -1 for any other frame
    (``decode`` decides: other link or network layers, fragments, options,
    truncated or malformed headers). The checks are ``decode``'s
    (shared/decode.py ``_eth_ip4_fast``), so a frame gets the same shard and the
    same skip decision either way (tests/unit/test_filesplit.py). Only the
    compiled build uses it (``FAST_CLASS``): in CPython each ``raw[i]`` costs
    more than ``decode``'s one ``Struct`` read."""
    n = len(raw)
    if n < 54 or raw[12] != 0x08 or raw[13] != 0 or raw[14] != 0x45 or raw[20] & 0x3F or raw[21]:
        return -1
    total = raw[16] << 8 | raw[17]
    if total < 28:
        return -1
    t = raw[23]
    if t == 6:
        end = 14 + total
        if end > n:
            end = n
        doff = 34 + ((raw[46] >> 4) << 2)
        if doff < 54 or doff > end:
            return -1                  # decode refuses it: counted as undecodable there
        if skip_empty and doff == end and not raw[47] & 0x07:
            return -2                  # SKIP
    elif t == 17:
        ulen = raw[38] << 8 | raw[39]
        if ulen and ulen < 8:
            return -1
    else:
        return -1
    if shards == 1:
        return 0
    if _COMPILED:
        return crc32(_pair_key_c(raw), t) % shards       # filesplit.pxd: the same key, one allocation
    a = raw[26:30] + raw[34:36]           # (address, port) of each end, as shared/shard.py orders them
    b = raw[30:34] + raw[36:38]
    return (crc32(a + b, t) if a < b else crc32(b + a, t)) % shards


def _probe():
    pass


# True when this module runs compiled (setup.py): Sharder then classifies with fast_class.
_COMPILED = type(_probe).__name__ != "function"
FAST_CLASS = _COMPILED


class ShareFilter:
    """Capture ``index`` of ``captures`` over ``shards`` shards: which records and batches it forwards."""

    def __init__(self, index: int, captures: int, shards: int, counters=None):
        if not 0 <= index < captures:
            raise ValueError("capture %d of %d" % (index, captures))
        self.index = index
        self.captures = captures
        self.shards = shards
        self.counters = counters
        self.last_ts = None          # the timestamp of the file's last record read (owned or not)

    def owns(self, shard: int) -> bool:
        return shard % self.captures == self.index

    def records(self, records):
        """The records of ``records`` (``(ts, linktype, raw)``) this capture forwards, in order."""
        index = self.index
        captures = self.captures
        n = self.shards
        ts = None
        try:
            for rec in records:
                ts = rec[0]
                raw = rec[2]
                if rec[1] == 1 and type(raw) is bytes:
                    shard = _fast_shard(raw, n)
                    if shard >= 0:
                        if shard % captures == index:
                            yield rec
                        continue
                dec = decode(rec[1], raw)
                if dec is None:
                    if index == 0:
                        yield rec
                    continue
                t = dec[0]
                if t == FRAGMENT:
                    yield rec
                    continue
                a = dec[1] + dec[3].to_bytes(2, "big")
                b = dec[2] + dec[4].to_bytes(2, "big")
                if ((crc32(a + b, t) if a < b else crc32(b + a, t)) % n) % captures == index:
                    yield rec
        finally:
            self.last_ts = ts

    def send(self, send):
        """``send(shard, records)`` that forwards only this capture's shards: a batch of
        another capture's shard (reassembled fragments) is dropped and its packets
        taken out of ``capture.packets``."""
        counters = self.counters

        def own_send(shard: int, records: list) -> None:
            if shard % self.captures == self.index:
                send(shard, records)
            elif counters is not None:
                counters["capture.packets"] -= len(records)
                counters["capture.foreign_datagrams"] += len(records)
        return own_send
