"""DNS events of the committed real capture against what the client did.

``dns_real.pcap`` was captured while dnspython queried dnsmasq and a small
dnspython responder (tests/golden/gen/dns_real.py); ``dns_real.truth.json``
holds, per transaction, the query the client sent and the answer it decoded.
Every transaction must come out as exactly one event whose fields say the
same, and nothing else may come out. The expected field texts are derived
here from dnspython's view of each record, not from the analyser's decoder.

:func:`analyse` and :func:`check_against_truth` are reused by
``tests/live/test_dns_live.py`` on a fresh capture.
"""
from __future__ import annotations

import base64
import json
import pathlib
import time

import pytest

dns = pytest.importorskip("dns.rdata", reason="dnspython is needed to read the truth records")
import dns.dnssec  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402

from tests.helpers import run_packetbeat  # noqa: E402
from worker.engine import Engine  # noqa: E402
from worker.protos.dns import DnsPlugin  # noqa: E402
from worker.protos.registry import Registry  # noqa: E402

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
NO_RESPONSE = "No response to this query was received"
DUPLICATE = "Another query with the same DNS ID from this client was received"


def protocol_config(port: int) -> dict:
    return {"type": "dns", "ports": [port], "include_authorities": True, "include_additionals": True,
            "send_request": True, "send_response": True}


def analyse(pcap: pathlib.Path, port: int) -> list[dict]:
    """The DNS analyser (alone) run by a worker engine over ``pcap``."""
    from coordinator.capture.pcapfile import open_capture
    reg = Registry()
    reg.register("dns", DnsPlugin)
    engine = Engine([protocol_config(port)], reg)
    reader = open_capture(str(pcap))
    try:
        records = list(reader)
    finally:
        reader.close()
    for i in range(0, len(records), 64):
        engine.handle(records[i:i + 64])
    engine.finish()
    assert not engine.counters.get("udp.plugin_errors") and not engine.counters.get("tcp.plugin_errors")
    return engine.take_events()


# ---------------------------------------------------------------- expectations from dnspython

def _nodot(name: str) -> str:
    return name[:-1] if len(name) > 1 and name.endswith(".") else name


def _escaped(data: bytes) -> str:
    out = []
    for b in data:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\%03d" % b)
    return "".join(out)


def _alg(a: int) -> str:
    return dns.dnssec.algorithm_to_text(a).replace("ECCGOST", "ECC-GOST")


_DIGESTS = {1: "SHA1", 2: "SHA256", 3: "GOST94", 4: "SHA384"}


def _ts(t: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


def _bitmap(windows) -> str:
    types = []
    for window, bitmap in windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    text = dns.rdatatype.to_text(window * 256 + i * 8 + bit)
                    # Packetbeat prints a type it has no name for as its number
                    types.append(text[4:] if text.startswith("TYPE") and text[4:].isdigit() else text)
    return " ".join(types)


def expected_record(rr: dict) -> dict:
    """The event fields Packetbeat 8.x writes for one record of the truth."""
    rtype = rr["type"]
    rd = dns.rdata.from_text(dns.rdataclass.from_text(rr["class"]), dns.rdatatype.from_text(rtype), rr["rdata"])
    out = {"name": _nodot(rr["name"]), "type": rtype, "class": rr["class"], "ttl": str(rr["ttl"])}
    if rtype in ("A", "AAAA"):
        out["data"] = rd.address
    elif rtype in ("CNAME", "NS", "PTR"):
        out["data"] = _nodot(rd.target.to_text())
    elif rtype == "MX":
        out.update(preference=rd.preference, data=_nodot(rd.exchange.to_text()))
    elif rtype == "SRV":
        out.update(priority=rd.priority, weight=rd.weight, port=rd.port, data=_nodot(rd.target.to_text()))
    elif rtype == "TXT":
        out["data"] = " ".join(_escaped(s) for s in rd.strings)
    elif rtype == "SOA":
        out.update(data=_nodot(rd.mname.to_text()), rname=_nodot(rd.rname.to_text()), serial=rd.serial,
                   refresh=rd.refresh, retry=rd.retry, expire=rd.expire, minimum=rd.minimum)
    elif rtype == "DNSKEY":
        out.update(flags=str(rd.flags), protocol=str(rd.protocol), algorithm=_alg(rd.algorithm),
                   data=base64.b64encode(rd.key).decode())
    elif rtype == "DS":
        out.update(key_tag=str(rd.key_tag), algorithm=_alg(rd.algorithm),
                   digest_type=_DIGESTS.get(rd.digest_type, str(rd.digest_type)), data=rd.digest.hex().upper())
    elif rtype == "RRSIG":
        out.update(type_covered=dns.rdatatype.to_text(rd.type_covered), algorithm=_alg(rd.algorithm),
                   labels=str(rd.labels), original_ttl=str(rd.original_ttl), expiration=_ts(rd.expiration),
                   inception=_ts(rd.inception), key_tag=str(rd.key_tag), signer_name=_nodot(rd.signer.to_text()),
                   data=base64.b64encode(rd.signature).decode())
    elif rtype == "NSEC":
        out.update(data=rd.next.to_text(), type_bits=_bitmap(rd.windows))
    elif rtype == "NSEC3":
        out.update(hash=_DIGESTS.get(rd.algorithm, str(rd.algorithm)), flags=str(rd.flags),
                   iterations=str(rd.iterations), salt=rd.salt.hex().upper() or "-",
                   type_bits=_bitmap(rd.windows),
                   data=base64.b32hexencode(rd.next).decode().rstrip("="))
    elif rtype == "NSEC3PARAM":
        out.update(hash=_DIGESTS.get(rd.algorithm, str(rd.algorithm)), flags=str(rd.flags),
                   iterations=str(rd.iterations), data=rd.salt.hex().upper() or "-")
    else:                                   # CAA, HTTPS, SVCB, ...: the RDATA bytes, escaped
        out["data"] = _escaped(rd.to_wire())
    return out


_FLAG_FIELDS = {"AA": "authoritative", "TC": "truncated_response", "RD": "recursion_desired",
                "RA": "recursion_available", "AD": "authentic_data", "CD": "checking_disabled"}


def _messages(ev) -> list[str]:
    m = ev.get("error", {}).get("message")
    return m if isinstance(m, list) else [m] if m else []


def check_transaction(t: dict, ev: dict) -> None:
    case = t["case"]
    d = ev["dns"]
    qname = _nodot(t["qname"])
    assert ev["type"] == "dns" and ev["event"]["dataset"] == "dns", case
    assert ev["network"]["transport"] == t["transport"] and ev["network"]["protocol"] == "dns", case
    assert (ev["client"]["ip"], ev["client"]["port"]) == (t["client_ip"], t["client_port"]), case
    assert (ev["server"]["ip"], ev["server"]["port"]) == (t["server_ip"], t["server_port"]), case
    assert ev["source"]["bytes"] == t["query_bytes"], case
    assert ev["method"] == "QUERY" and ev["resource"] == qname, case
    assert ev["query"] == "class %s, type %s, %s" % (t["qclass"], t["qtype"], qname), case
    assert d["id"] == t["id"], case
    assert d["question"]["name"] == qname and d["question"]["type"] == t["qtype"], case
    assert d["question"]["class"] == t["qclass"], case
    assert ev["request"].startswith("ID %d; QR query; OPCODE QUERY; FLAGS " % t["id"]), case
    notes = _messages(ev)
    for note in t["notes"]:
        if note == "Responder does not support EDNS":
            assert note in notes, (case, notes)
    resp = t["response"]
    if resp is None:
        assert ev["status"] == "Error" and d["type"] == "query", case
        assert "duration" not in ev["event"] and "response" not in ev, case
        want = DUPLICATE if t["outcome"] == "duplicate" else NO_RESPONSE
        assert any(n.startswith(want) for n in notes), (case, notes)
        if t["query_edns"]:
            assert d["opt"]["do"] == t["query_edns"]["do"] and d["opt"]["udp_size"] == t["query_edns"]["udp_size"]
        return
    assert d["type"] == "answer", case
    assert ev["destination"]["bytes"] == resp["bytes"], case
    assert ev["event"]["duration"] >= 0 and ev["event"]["end"] >= ev["event"]["start"], case
    assert d["response_code"] == resp["rcode"], case
    assert ev["status"] == ("OK" if resp["rcode"] == "NOERROR" else "Error"), case
    assert ev["response"].startswith("ID %d; QR response; OPCODE QUERY; FLAGS " % t["id"]), case
    rflags = set(resp["flags"].split())
    for short, field in _FLAG_FIELDS.items():
        assert d["flags"][field] == (short in rflags), (case, field)
    edns = resp["edns"]
    header_flags = [f for f in ("AA", "TC", "RD", "RA", "AD", "CD") if f in rflags]
    if edns and edns["do"]:
        header_flags.append("DO")
    assert d.get("header_flags", []) == header_flags, case
    if edns is None:
        assert "opt" not in d, case
    else:
        opt = d["opt"]
        assert (opt["do"], opt["udp_size"], opt["version"]) == (edns["do"], edns["udp_size"], str(edns["version"]))
        assert opt["ext_rcode"] == "NOERROR", case
        if "3" in edns["options"]:          # NSID: hex of the server's identifier
            assert opt["nsid"] == edns["options"]["3"], case
        if "10" in edns["options"]:
            assert opt["cookie"] == edns["options"]["10"], case
        if "8" in edns["options"]:
            assert opt["subnet"].startswith("192.0.2.0/24/"), case
    for section, key in (("answers", "answers"), ("authorities", "authorities"), ("additionals", "additionals")):
        want = [expected_record(rr) for rr in resp[section]]
        assert d["%s_count" % key] == len(want), (case, section)
        got = d.get(key, [])
        assert sorted(map(_key, got)) == sorted(map(_key, want)), (case, section, got, want)
    ips = [expected_record(rr)["data"] for rr in resp["answers"] if rr["type"] in ("A", "AAAA")]
    assert sorted(d.get("resolved_ip", [])) == sorted(ips), case
    assert set(ips) <= set(ev["related"]["ip"]), case


def _key(rr: dict) -> str:
    return json.dumps(rr, sort_keys=True)


def check_against_truth(events: list[dict], truth: dict) -> None:
    by_key: dict = {}
    for ev in sorted(events, key=lambda e: e["@timestamp"]):
        k = (ev["network"]["transport"], ev["client"]["port"], ev["dns"]["id"], ev["dns"]["question"]["name"])
        by_key.setdefault(k, []).append(ev)
    for t in truth["transactions"]:
        k = (t["transport"], t["client_port"], t["id"], _nodot(t["qname"]))
        cands = by_key.get(k)
        assert cands, "no event for %s %s" % (t["case"], k)
        check_transaction(t, cands.pop(0))
    left = [ev for evs in by_key.values() for ev in evs]
    assert not left, "events with no transaction: %s" % left
    assert len(events) == len(truth["transactions"])


def _truth(name: str) -> dict:
    return json.loads((PCAPS / ("%s.truth.json" % name)).read_text())


def test_real_capture_matches_truth():
    truth = _truth("dns_real")
    events = analyse(PCAPS / truth["pcap"], truth["transactions"][0]["server_port"])
    check_against_truth(events, truth)


def test_real_capture_covers_the_brief():
    """The capture holds what the analyser must handle: both transports, IPv6,
    every record type named in the brief, TC, errors, EDNS with DO and options,
    and queries left unanswered."""
    truth = _truth("dns_real")
    txs = truth["transactions"]
    types = {rr["type"] for t in txs if t["response"] for s in ("answers", "authorities", "additionals")
             for rr in t["response"][s]}
    assert {"A", "AAAA", "CNAME", "NS", "PTR", "MX", "SOA", "SRV", "TXT", "CAA", "DS", "DNSKEY", "RRSIG", "NSEC",
            "NSEC3", "SVCB", "HTTPS"} <= types
    assert {t["transport"] for t in txs} == {"udp", "tcp"}
    assert any(":" in t["client_ip"] for t in txs)
    assert any("TC" in t["response"]["flags"].split() for t in txs if t["response"])
    assert {t["response"]["rcode"] for t in txs if t["response"]} >= {"NOERROR", "NXDOMAIN", "REFUSED"}
    assert any(t["query_edns"] and t["query_edns"]["do"] for t in txs)
    assert {t["outcome"] for t in txs} >= {"answered", "no_response", "duplicate", "undecodable_response"}
    tcp_ports = [t["client_port"] for t in txs if t["transport"] == "tcp"]
    assert max(tcp_ports.count(p) for p in tcp_ports) >= 4      # several queries on one connection


def test_real_capture_through_the_cli(tmp_path):
    """The whole pipeline (capture process, workers, publisher, file output)."""
    truth = _truth("dns_real")
    proc, events = run_packetbeat(tmp_path, PCAPS / truth["pcap"],
                                  protocols=[protocol_config(truth["transactions"][0]["server_port"])], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_against_truth(events, truth)
