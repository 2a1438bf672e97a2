"""The capture process, live mode: AF_PACKET rings -> Sharder -> PUSH, dropping rather than growing.

One capture process reads every configured interface (one TPACKET_V3 ring
each, or one libpcap handle for ``type: pcap``, see ``libpcap.py``; both
sources have the same ``read_block`` / ``kernel_stats`` interface). With
``cluster.captures: N`` the N processes join one PACKET_FANOUT_HASH group per interface, so the kernel splits the load, and
each still shards by the same 5-tuple hash, so a flow keeps its worker.

Differences from file mode:

- when a worker's queue (its HWM) is full the capture waits for room up to
  ``_SEND_WAIT_MS`` without reading: meanwhile the kernel ring
  (``buffer_size_mb``) is the buffer, as in Packetbeat, whose sniffer blocks
  on a full pipeline. A batch still refused after that is dropped and its
  packets counted (``capture.dropped_queue_full``), and that worker is not
  waited for again until it takes a batch (a stuck worker does not stall
  the others). Nothing grows: the ring's overflow is the kernel's drop,
  counted from PACKET_STATISTICS / pcap_stats;
- batches leave when full or ``cluster.batch_age_ms`` old, so a quiet link
  still delivers promptly;
- counters go to the coordinator every second as deltas, with the kernel's
  own drops (PACKET_STATISTICS) as ``capture.kernel_drops``;
- SIGTERM/SIGINT stop reading; what was read is flushed, then ``eos``.

The sockets are opened first, then privileges are dropped to
``cluster.run_as_user`` (when set): nothing of root is kept.
"""
from __future__ import annotations

import collections
import grp
import logging
import os
import pwd
import select
import signal
import struct
import time

import zmq

from coordinator.capture.afpacket import AfPacketSource, CaptureError, cooked_device
from coordinator.capture.bpf import DLT_EN10MB, DLT_RAW, BpfError, compile_filter, generate_filter
from coordinator.capture.devices import resolve_device
from coordinator.capture.process import PeerWatch, Sharder
from shared import endpoints, transport
from shared.procs import make_tagger
from shared.replay import InFlight
from shared.wire import WireError, decode_batch, encode_batch

log = logging.getLogger("packetbeat.capture")

_EOS_WAIT_MS = 60_000   # a worker drains a full queue (hwm batches) well within this
_REMOTE_LINGER_MS = 10_000   # a capture host's stop: how long batches still queued for a worker host may take
_SEND_WAIT_MS = 1000    # how long a batch waits for room in a full worker queue before it is dropped
EXIT_FATAL = 2          # configuration/permission problem: restarting would not help


class PcapDumper:
    """Writes records to a nanosecond-resolution pcap file (``--dump``)."""

    _REC = struct.Struct("<IIII")

    def __init__(self, path: str, linktype: int, snaplen: int = 262144):
        self.fh = open(path, "wb")
        self.fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, snaplen, linktype))
        self.linktype = linktype

    def write(self, records) -> None:
        rec = self._REC.pack
        out = []
        for ts, _lt, raw in records:
            out.append(rec(ts // 1_000_000_000, ts % 1_000_000_000, len(raw), len(raw)))
            out.append(raw)
        self.fh.write(b"".join(out))

    def close(self) -> None:
        self.fh.close()


def drop_privileges(user: str) -> None:
    """Become ``user`` (name or uid) with its primary group and no
    supplementary groups; a no-op when ``user`` is empty."""
    if not user:
        return
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise CaptureError("run_as_user: no such user %r" % user) from None
    if os.getuid() == pw.pw_uid and os.geteuid() == pw.pw_uid:
        return
    try:
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except PermissionError:
        raise CaptureError("cannot switch to user %r: operation not permitted" % user) from None
    if os.geteuid() == 0:
        raise CaptureError("still root after switching to %r" % user)
    log.debug("running as %s (uid %d, gid %d, group %s)", pw.pw_name, pw.pw_uid, pw.pw_gid,
              grp.getgrgid(pw.pw_gid).gr_name)


def interface_filter(settings, iface: dict, registry, cooked: bool = False) -> str:
    """``bpf_filter`` verbatim, else the filter generated from the protocols,
    which also leaves out IPv4 TCP segments the capture would skip anyway
    (no payload, no SYN/FIN/RST; kept when flows are on). A cooked socket
    (``any``) sees no VLAN tags, so ``with_vlans`` does not apply there."""
    if iface.get("bpf_filter"):
        return iface["bpf_filter"]
    return generate_filter(settings.protocols, registry, iface.get("with_vlans", False) and not cooked,
                           flows_enabled=bool(settings.flows), skip_empty_tcp=True)


def open_sources(settings, registry) -> list:
    """One source per configured interface: an AF_PACKET ring, or a libpcap
    handle for ``type: pcap`` (raises CaptureError / BpfError)."""
    sources = []
    captures = settings.cluster["captures"]
    try:
        for k, iface in enumerate(settings.interfaces):
            device = resolve_device(iface.get("device") or "any")
            cooked = cooked_device(device)
            expr = interface_filter(settings, iface, registry, cooked)
            snaplen = iface.get("snaplen", 65535)
            group = iface.get("fanout_group")
            if group is None and captures > 1:
                group = (os.getppid() + k) & 0xFFFF
            common = dict(promisc=iface.get("auto_promisc_mode", False), fanout_group=group,
                          ignore_outgoing=iface.get("ignore_outgoing", False))
            if iface.get("type") == "pcap":
                from coordinator.capture.libpcap import PcapSource
                sources.append(PcapSource(device, snaplen, iface.get("buffer_size_mb", 30), bpf_filter=expr,
                                          **common))
            else:
                code = compile_filter(expr, DLT_RAW if cooked else DLT_EN10MB, snaplen)
                sources.append(AfPacketSource(device, snaplen, iface.get("buffer_size_mb", 30),
                                              filter_code=code, **common))
            log.info("capturing on %s (%s, filter %r, fanout group %s)", device,
                     "libpcap" if iface.get("type") == "pcap" else "af_packet", expr, group)
    except (ValueError, CaptureError, BpfError):
        for s in sources:
            s.close()
        raise
    return sources


def dump_path(path: str, index: int, captures: int) -> str:
    if captures == 1:
        return path
    root, ext = os.path.splitext(path)
    return "%s.%d%s" % (root, index, ext)


def run_live_capture(settings, index: int, run_dir: str, registry, dump: str = "") -> int:
    stop = {"now": False}

    def on_term(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cluster = settings.cluster
    name = endpoints.capture_name(cluster, index)
    counters: collections.Counter = collections.Counter()
    ctx = zmq.Context()
    coord = ctx.socket(zmq.PUSH)
    coord.setsockopt(zmq.LINGER, 2000)
    coord.connect(endpoints.coordinator(run_dir))
    try:
        sources = open_sources(settings, registry)
        drop_privileges(cluster.get("run_as_user") or "")
    except (ValueError, CaptureError, BpfError) as exc:
        log.error("%s", exc)
        coord.send_multipart(encode_batch("stats", name, 0, [{"error": str(exc)}]))
        coord.close()
        ctx.term()
        return EXIT_FATAL
    dumper = None
    dump = dump or settings.interfaces[0].get("dumpfile") or ""
    if dump:
        dumper = PcapDumper(dump_path(dump, index, cluster["captures"]), sources[0].linktype)
    n = cluster["workers"]
    socks = []
    for i in range(n):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, cluster["hwm"])
        # the end-of-stream waits behind whatever the worker still has queued: give it time
        s.setsockopt(zmq.SNDTIMEO, _EOS_WAIT_MS)
        s.setsockopt(zmq.LINGER, _EOS_WAIT_MS)
        socks.append(s)
    remote = transport.remote_shards(cluster, run_dir)
    watch = PeerWatch(socks, remote, lambda i: transport.remote_closed(ctx, i))   # before connecting: no event missed
    for i, s in enumerate(socks):
        transport.connect_shard(s, settings, run_dir, i, name, counters)   # remote shards: curve, watched
    seqs = [0] * n

    congested = [False] * n
    inflight = InFlightAcks(ctx, run_dir, name, n, 4 * cluster["hwm"], counters) \
        if cluster.get("role", "all") == "all" else None

    def send(i: int, records: list) -> None:
        if inflight is not None:
            inflight.read()
        frames = encode_batch("pkts", name, seqs[i], records)
        try:
            socks[i].send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            # full queue: wait (the kernel ring buffers meanwhile), unless this worker is known stuck
            sent = False
            if not congested[i] and not stop["now"]:
                t0 = time.monotonic()
                if socks[i].poll(_SEND_WAIT_MS, zmq.POLLOUT):
                    try:
                        socks[i].send_multipart(frames, zmq.NOBLOCK)
                        sent = True
                    except zmq.Again:
                        pass
                counters["capture.queue_wait_ms"] += int((time.monotonic() - t0) * 1000)
            if not sent:
                congested[i] = True
                counters["capture.dropped_queue_full"] += len(records)
                return
        congested[i] = False
        if inflight is not None:
            inflight.win.add(i, seqs[i], len(records))
        seqs[i] += 1
        counters["capture.batches"] += 1

    def send_procs(i: int, records: list) -> None:
        # process attribution records go ahead of the batch holding the flow's first packet
        try:
            socks[i].send_multipart(encode_batch("procs", name, seqs[i], records), zmq.NOBLOCK)
        except zmq.Again:
            counters["capture.procs_dropped"] += len(records)

    sharder = Sharder(n, send, cluster["batch_packets"], counters, keep_empty_tcp=settings.flows is not None,
                      procs=make_tagger(settings.procs), send_procs=send_procs)
    age = cluster["batch_age_ms"] / 1000.0
    reported: collections.Counter = collections.Counter()
    poller = select.poll()
    for src in sources:
        poller.register(src.fileno(), select.POLLIN | select.POLLERR)
    single = sources[0] if len(sources) == 1 else None
    last_flush = last_stats = time.monotonic()
    parent = os.getppid()
    try:
        while not stop["now"]:
            got = 0
            if single is not None:
                recs = single.read_block(50)
                if recs:
                    got = len(recs)
                    if dumper is not None:
                        dumper.write(recs)
                    sharder.feed(recs)
            else:
                for src in sources:
                    recs = src.read_block(0)
                    if recs:
                        got += len(recs)
                        if dumper is not None:
                            dumper.write(recs)
                        sharder.feed(recs)
                if not got:
                    poller.poll(50)
            now = time.monotonic()
            if not got or now - last_flush >= age:
                sharder.flush()
                last_flush = now
                if inflight is not None:
                    inflight.read()
            if now - last_stats >= 1.0:
                last_stats = now
                _report(coord, name, counters, reported, sources)
                if os.getppid() != parent:
                    log.error("%s: the coordinator is gone; stopping", name)
                    break
    except OSError as exc:
        log.error("%s: capture failed: %s", name, exc)
        return 1
    finally:
        # only an orderly stop ends the stream: a capture that failed is restarted
        # and goes on with it (an end-of-stream now would make the workers finish)
        orderly = stop["now"]
        if orderly:
            sharder.flush()
            for i, s in enumerate(socks):
                if i in remote and not transport.remote_up(ctx, i):
                    # a live worker host does not end on it anyway; waiting 60 s per shard
                    # that is down would outlast a service manager's stop timeout
                    log.warning("%s: shard %d is not up: no end-of-stream sent to it", name, i)
                    continue
                try:
                    s.send_multipart(encode_batch("eos", name, seqs[i], []))
                except zmq.Again:
                    log.warning("%s: worker-%d did not take its end-of-stream", name, i)
        if inflight is not None:
            inflight.read()
        _report(coord, name, counters, reported, sources)
        if orderly:             # the coordinator's drain safety net counts from here
            coord.send_multipart(encode_batch("stats", name, 0, [{"eos_sent": 1}]))
        if dumper is not None:
            dumper.close()
        for src in sources:
            src.close()
        if orderly:
            # keep the sockets open until the workers have read everything and closed their
            # end: closing at once can lose the last batch and the end-of-stream of a worker
            # that is behind, LINGER notwithstanding (coordinator/capture/process.py). Not the
            # remote ones: a live worker host runs on until it is stopped itself.
            left = watch.wait_closed(_EOS_WAIT_MS / 1000.0, alive=lambda: os.getppid() == parent,
                                     local_only=True)
            if left:
                log.warning("%s: %s still reading after %d s; closing", name,
                            ", ".join("worker-%d" % i for i in left), _EOS_WAIT_MS // 1000)
        watch.close()
        if inflight is not None:
            inflight.sock.close(linger=0)
        for i, s in enumerate(socks):
            if i in remote and orderly:
                # what is still queued for a worker host goes out while the socket lingers (bounded)
                s.close(linger=_REMOTE_LINGER_MS)
            else:
                s.close(linger=0)
        coord.close()
        ctx.term()
    log.info("%s: stopped", name)
    return 0


class InFlightAcks:
    """The publisher's acknowledgements and the restarted workers' hellos
    (shared/replay.py InFlight): a dead worker's in-flight batches are counted
    as ``capture.dropped_worker_restart`` (packets)."""

    def __init__(self, ctx, run_dir: str, name: str, n: int, keep: int, counters):
        self.name = name
        self.counters = counters
        self.win = InFlight(n, keep)
        self.sock = ctx.socket(zmq.PULL)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.bind(endpoints.capture_acks(run_dir, name))

    def read(self) -> None:
        while self.sock.poll(0):
            try:
                header, _ = decode_batch(self.sock.recv_multipart())
                i = int(header["shard"])
                if not 0 <= i < len(self.win.acked):
                    raise WireError("no shard %r" % i)
            except (WireError, KeyError, TypeError, ValueError):
                self.counters["capture.bad_acks"] += 1
                continue
            if header.get("hello"):
                batches, packets = self.win.resumed(i, header["seq"])
                self.counters["capture.dropped_worker_restart"] += packets
                log.warning("%s: worker-%d was restarted: %d packets (%d batches) it had in flight are lost",
                            self.name, i, packets, batches)
            else:
                self.win.ack(i, header["seq"])


def _report(coord, name: str, counters, reported, sources) -> None:
    kp = kd = 0
    for src in sources:
        p, d = src.kernel_stats()
        kp += p
        kd += d
    counters["capture.kernel_packets"] = kp
    counters["capture.kernel_drops"] = kd
    delta = {k: v - reported.get(k, 0) for k, v in counters.items() if v != reported.get(k, 0)}
    if delta:
        coord.send_multipart(encode_batch("stats", name, 0, [delta]))
        reported.update(delta)
