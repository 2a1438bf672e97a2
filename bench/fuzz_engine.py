#!/usr/bin/env python3
"""Fuzz job outside CI: every analyser fed mutated real traffic through the worker's engine.

    python bench/fuzz_engine.py [--packets 1000000] [--proto NAME ...] [--seed 1]

For each protocol, the packets of its committed real capture (tests/golden/pcaps/<name>_real.pcap,
the ports its generator used) are replayed again and again, each copy a distinct set of flows (as
bench_proto.py), and every payload is mutated with the copy's random generator: bit flips, bytes
replaced by random ones or by the bytes of another packet, a span zeroed or filled with 0xff,
length-like fields (the first bytes) set to extremes. L2-L4 headers are kept, so every mutated
payload reaches the analyser (TCP sequence numbers are kept too: holes and overlaps follow from
the copies' timing). The engine is the worker's (decode, TCP/UDP layers, the analyser), so a crash
is any exception other than the parser's ParseError escaping an analyser: the TCP/UDP layers catch
and count those as ``tcp.plugin_errors`` / ``udp.plugin_errors``, which must stay 0. Also reported:
packets, events, parse errors, and the peak of the engine's open connections.
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import env_line, read_records  # noqa: E402
from shared.decode import decode  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.registry import load_registry  # noqa: E402

PCAPS = ROOT / "tests" / "golden" / "pcaps"
# protocol -> (capture, ports, extra options)
TARGETS = {
    "http": ("http_real", [80, 8080, 8000], {}),
    "dns": ("dns_real", [53, 10053], {}),
    "icmp": ("icmp_real", [], {}),
    "redis": ("redis_real", [6379], {}),
    "memcache": ("memcache_real", [11211, 11311, 11315], {}),
    "mysql": ("mysql_real", [3306], {}),
    "pgsql": ("pgsql_real", [5432], {}),
    "amqp": ("amqp_real", [5672], {}),
    "cassandra": ("cassandra_real", [19042, 19043], {}),
    "mongodb": ("mongodb_real", [27117], {}),
    "nfs": ("nfs_real", [2049], {}),
    "thrift": ("thrift_real", list(range(19090, 19098)), {}),
    "tls": ("tls_real", [8443, 14430], {}),
    "sip": ("sip_real", [5060], {}),
    "dhcpv4": ("dhcpv4_real", [67, 68], {}),
}


def mutate(rng: random.Random, payload: bytes, pool: list[bytes]) -> bytes:
    if not payload:
        return payload
    b = bytearray(payload)
    n = len(b)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(7)
        i = rng.randrange(n)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            j = min(n, i + rng.randrange(1, 64))
            b[i:j] = bytes(j - i)
        elif op == 3:
            j = min(n, i + rng.randrange(1, 64))
            b[i:j] = b"\xff" * (j - i)
        elif op == 4:                               # bytes of another packet, same length
            other = rng.choice(pool)
            if other:
                j = min(n, i + rng.randrange(1, 256))
                k = rng.randrange(len(other))
                chunk = (other[k:] + other)[:j - i]
                b[i:i + len(chunk)] = chunk
        elif op == 5:                               # a length-like field at the start
            w = rng.choice((1, 2, 4))
            if w <= n:
                b[0:w] = rng.choice((b"\xff" * w, bytes(w), b"\x7f" + b"\xff" * (w - 1)))
        else:
            j = min(n, i + rng.randrange(1, 16))
            b[i:j] = bytes(rng.randrange(256) for _ in range(j - i))
    return bytes(b)


def move(raw: bytes, l3: int, k: int) -> bytes:
    b = bytearray(raw)
    offs = (l3 + 13, l3 + 17) if b[l3] >> 4 == 4 else (l3 + 9, l3 + 25)
    for o in offs:
        b[o] ^= (k >> 8) & 0xFF
        b[o + 1] ^= k & 0xFF
    return bytes(b)


def fuzz(proto: str, packets: int, seed: int) -> dict:
    capture, ports, extra = TARGETS[proto]
    records = read_records(PCAPS / (capture + ".pcap"))
    decoded = [(ts, lt, raw, decode(lt, raw)) for ts, lt, raw in records]
    decoded = [r for r in decoded if r[3] is not None]
    pool = [bytes(raw[d[8]:d[9]]) for _, _, raw, d in decoded]
    entry = dict({"type": proto}, **({"ports": ports} if ports else {}), **extra)
    counters: collections.Counter = collections.Counter()
    eng = Engine([entry], load_registry(False), counters)
    rng = random.Random("%s:%d" % (proto, seed))
    sent = events = peak = 0
    copy = 0
    t0 = time.monotonic()
    while sent < packets:
        copy += 1
        shift = copy * 50_000_000
        batch = []
        for ts, lt, raw, d in decoded:
            off, end, l3 = d[8], d[9], d[10]
            if rng.random() < 0.9 and end > off:
                raw = raw[:off] + mutate(rng, raw[off:end], pool) + raw[end:]
            if copy & 0xFFFF:
                raw = move(raw, l3, copy & 0xFFFF)
            batch.append((ts + shift, lt, raw))
            if len(batch) == 128:
                eng.handle(batch)
                events += len(eng.take_events())
                batch = []
        if batch:
            eng.handle(batch)
            events += len(eng.take_events())
        sent += len(decoded)
        peak = max(peak, len(eng.tcp))
    eng.finish()
    events += len(eng.take_events())
    crashes = counters["tcp.plugin_errors"] + counters["udp.plugin_errors"] + counters["icmp.plugin_errors"]
    return {"proto": proto, "packets": sent, "events": events, "crashes": crashes,
            "parse_errors": counters["tcp.parse_errors"] + counters["udp.parse_errors"]
            + counters["icmp.parse_errors"], "peak_connections": peak, "seconds": time.monotonic() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="mutated packets per protocol")
    ap.add_argument("--proto", action="append", choices=sorted(TARGETS))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(env_line())
    total = 0
    for proto in a.proto or list(TARGETS):
        r = fuzz(proto, a.packets, a.seed)
        total += r["crashes"]
        print("fuzz %-9s %8d mutated packets, %7d events, %7d parse errors, crashes %d, peak %d connections, "
              "%.0f s" % (r["proto"], r["packets"], r["events"], r["parse_errors"], r["crashes"],
                          r["peak_connections"], r["seconds"]), flush=True)
    print("crashes in all: %d" % total)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
