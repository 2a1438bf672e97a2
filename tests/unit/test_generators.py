"""The capture generators: bench/gen_http_pcap.py and tests/golden/gen/*.

Scapy is used here only as an independent reader of what the generators wrote.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, defragment
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

ROOT = Path(__file__).resolve().parents[2]
BENCH_GEN = ROOT / "bench" / "gen_http_pcap.py"
SYNTH_GEN = ROOT / "tests" / "golden" / "gen" / "http_synth.py"
PCAPS = ROOT / "tests" / "golden" / "pcaps"
SYNTH_FILES = ["http_synth", "http_synth_sll", "http_sample"]

REQ_LINE = re.compile(rb"(GET|POST|HEAD|PUT|DELETE) (/\S*) HTTP/1\.[01]\r\n")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def _run_bench(out: Path, packets: int, connections: int, seed: int) -> dict[str, int]:
    p = subprocess.run([sys.executable, str(BENCH_GEN), str(out), "--packets", str(packets),
                        "--connections", str(connections), "--seed", str(seed)],
                       capture_output=True, text=True, check=True)
    counts = {}
    for line in p.stdout.splitlines():
        m = re.fullmatch(r"(packets|transactions|connections): (\d+)", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    assert set(counts) == {"packets", "transactions", "connections"}, p.stdout
    return counts


def _inet_checksum(data: bytes) -> int:
    """RFC 1071, the plain way (an independent check of the generator's arithmetic)."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _l3(pkt):
    return pkt[IP] if IP in pkt else pkt[IPv6]


def _streams(pkts) -> dict[tuple, bytes]:
    """Payload per direction (src, sport, dst, dport), deduplicated by sequence number and put in
    sequence order relative to the first segment seen (so wraparound, retransmits and
    out-of-order segments come out right; missing segments are just absent)."""
    segs: dict[tuple, dict[int, bytes]] = {}
    first: dict[tuple, int] = {}
    for p in pkts:
        if TCP not in p:
            continue
        t, l3 = p[TCP], _l3(p)
        key = (l3.src, t.sport, l3.dst, t.dport)
        first.setdefault(key, t.seq)
        data = bytes(t.payload)
        if data:
            segs.setdefault(key, {})[(t.seq - first[key]) & 0xFFFFFFFF] = data
    return {k: b"".join(v for _, v in sorted(d.items())) for k, d in segs.items()}


def _check_truth_against_capture(pcap: Path, truth: dict) -> None:
    """Per client: the request lines and status lines on the wire are the truth's."""
    pkts = rdpcap(str(pcap))
    assert len(pkts) == truth["packets"]
    streams = _streams(defragment(pkts))
    clients = {(t["client_ip"], t["client_port"], t["server_ip"], t["server_port"]) for t in truth["transactions"]}
    for cip, cport, sip, sport in clients:
        txns = [t for t in truth["transactions"] if (t["client_ip"], t["client_port"]) == (cip, cport)]
        up = streams.get((cip, cport, sip, sport), b"")
        down = streams.get((sip, sport, cip, cport), b"")
        seen = [(m.group(1).decode(), m.group(2).decode()) for m in REQ_LINE.finditer(up)]
        want = [(t["method"], t["path"] + ("?" + t["query"] if t["query"] is not None else ""))
                for t in txns if t["method"] is not None]
        assert seen == want, (cip, cport)
        statuses = [int(m.group(1)) for m in STATUS_LINE.finditer(down)]
        interim = [s for s in statuses if 100 <= s < 200]
        assert [s for s in statuses if s >= 200] == [t["status"] for t in txns if t["status"] is not None]
        assert len(interim) == sum(1 for t in txns if "interim 100 Continue" in " ".join(t["notes"]))


# --------------------------------------------------------------------------- bench generator
def test_bench_capture_reads_back_with_announced_counts(tmp_path):
    out = tmp_path / "b.pcap"
    counts = _run_bench(out, packets=600, connections=7, seed=3)
    pkts = rdpcap(str(out))
    assert len(pkts) == counts["packets"]
    assert 600 - 40 <= counts["packets"] <= 600          # the budget is a ceiling, filled closely
    assert counts["connections"] > 7                     # closed connections were replaced
    next_seq: dict[tuple, int] = {}
    syns = fins = 0
    requests = responses = 0
    last_ts = 0
    for p in pkts:
        assert p.time >= last_ts
        last_ts = p.time
        ip, tcp = p[IP], p[TCP]
        raw_ip = bytes(ip)
        assert ip.len == len(raw_ip)
        assert _inet_checksum(raw_ip[:20]) == 0
        pseudo = raw_ip[12:20] + b"\0\x06" + (ip.len - 20).to_bytes(2, "big")   # src, dst, proto, TCP length
        assert _inet_checksum(pseudo + raw_ip[20:]) == 0
        key = (ip.src, tcp.sport, ip.dst, tcp.dport)
        rkey = (ip.dst, tcp.dport, ip.src, tcp.sport)
        data = bytes(tcp.payload)
        if tcp.flags.S:
            syns += 1
            assert key not in next_seq
        else:
            assert tcp.seq == next_seq[key], key
        if tcp.flags.A:
            assert tcp.ack == next_seq[rkey]
        next_seq[key] = (tcp.seq + len(data) + bool(tcp.flags.S) + bool(tcp.flags.F)) & 0xFFFFFFFF
        fins += bool(tcp.flags.F)
        requests += bool(REQ_LINE.match(data))
        responses += bool(STATUS_LINE.match(data))
    assert syns == 2 * counts["connections"]
    assert fins == 2 * counts["connections"]
    assert requests == responses == counts["transactions"]


def test_bench_generator_is_a_function_of_its_arguments(tmp_path):
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    assert _run_bench(a, 300, 4, 9) == _run_bench(b, 300, 4, 9)
    _run_bench(c, 300, 4, 10)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_bench_generator_smallest_budget_is_one_whole_connection(tmp_path):
    out = tmp_path / "tiny.pcap"
    counts = _run_bench(out, packets=10, connections=50, seed=1)
    assert counts["connections"] == 1 and counts["transactions"] == 1
    assert len(rdpcap(str(out))) == counts["packets"] == 10


# --------------------------------------------------------------------------- synthetic generator
def test_synth_generator_is_deterministic_and_matches_committed_files(tmp_path):
    outs = []
    for name in ("one", "two"):
        out = tmp_path / name
        subprocess.run([sys.executable, str(SYNTH_GEN), "--out", str(out)], check=True, capture_output=True)
        outs.append(out)
    for stem in SYNTH_FILES:
        for ext in (".pcap", ".truth.json"):
            first = (outs[0] / (stem + ext)).read_bytes()
            assert first == (outs[1] / (stem + ext)).read_bytes(), stem + ext
            committed = PCAPS / (stem + ext)
            assert committed.read_bytes() == first, f"{committed} is not what the generator makes; rerun it"


@pytest.mark.parametrize("stem", SYNTH_FILES + ["http_real"])
def test_truth_file_matches_the_capture(stem):
    truth = json.loads((PCAPS / f"{stem}.truth.json").read_text())
    assert truth["pcap"] == f"{stem}.pcap"
    _check_truth_against_capture(PCAPS / truth["pcap"], truth)


def test_synth_covers_the_awkward_cases():
    truth = json.loads((PCAPS / "http_synth.truth.json").read_text())
    cases = {t["case"] for t in truth["transactions"]}
    assert cases == {"pipelined", "split_awkward", "gap_in_body", "retrans_ooo", "ipv6", "vlan",
                     "ip_fragmented_request", "no_response", "mid_stream", "close_delimited"}
    pkts = rdpcap(str(PCAPS / "http_synth.pcap"))
    assert sum(1 for p in pkts if IP in p and (p[IP].flags.MF or p[IP].frag)) == 3
    assert any(p.haslayer("Dot1Q") and p["Dot1Q"].vlan == 42 for p in pkts)
    assert any(IPv6 in p for p in pkts)
    no_resp = [t for t in truth["transactions"] if t["case"] == "no_response"]
    assert no_resp[0]["status"] is None and no_resp[0]["response_ts_us"] is None


def test_sample_is_small_and_mixed():
    truth = json.loads((PCAPS / "http_sample.truth.json").read_text())
    txns = truth["transactions"]
    assert len(txns) == 30
    assert len({t["client_ip"] for t in txns}) >= 4
    assert {t["method"] for t in txns} >= {"GET", "POST"}
    assert len({t["status"] for t in txns}) >= 4
    assert all(t["response_ts_us"] > t["request_ts_us"] for t in txns)


def test_real_capture_is_small_and_exercises_the_listed_features():
    assert (PCAPS / "http_real.pcap").stat().st_size < 500 * 1024
    txns = json.loads((PCAPS / "http_real.truth.json").read_text())["transactions"]
    assert {t["method"] for t in txns} == {"GET", "POST", "HEAD"}
    assert {200, 201, 204, 304, 401, 404} <= {t["status"] for t in txns}
    assert max(t["response_body_bytes"] for t in txns) == 200 * 1024
    per_port: dict[int, int] = {}
    for t in txns:
        per_port[t["client_port"]] = per_port.get(t["client_port"], 0) + 1
    assert max(per_port.values()) >= 5                   # keep-alive: several requests per connection
    assert {"pipelined", "http10_close", "expect_100_continue"} <= {t["case"] for t in txns}
