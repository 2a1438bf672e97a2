"""The Thrift analyser's events against what the Thrift clients really did.

``pcaps/thrift_real.pcap`` was captured by ``gen/thrift_real.py`` while
thriftpy2 and Apache Thrift clients called thriftpy2 servers (binary with
strict and old non-strict headers, compact; buffered and framed transports;
a multiplexed connection). Its truth file lists, per client connection and in
order, every call: method, arguments as the client passed them, and the
result it read back or the exception it caught.

The expected text of params / return values / exceptions is rendered here
from those values and the IDL's types (thriftpy2's ``thrift_spec``), in
Packetbeat's format, independently of the analyser's parser; every call must
come out as exactly one event, with the framing and protocol detected (no
``transport_type`` / ``protocol_type`` in the configuration).
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import ROOT, run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
IDL = ROOT / "tests" / "golden" / "gen" / "thrift_idl" / "store.thrift"
PORTS = [19090, 19091, 19092, 19093, 19094, 19095]
LIMIT = 15          # collection_max_size
STRMAX = 200        # string_max_size

BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15
BINARY = 18         # thriftpy2's spec type of ``binary`` (a string on the wire)


def _services():
    thriftpy2 = pytest.importorskip("thriftpy2")
    mod = thriftpy2.load(str(IDL))
    return {"Store": mod.Store, "Counter": mod.Counter, "Health": mod.base.Health}


def _quote(s: str) -> str:
    assert s.isascii() and s.isprintable(), s
    return json.dumps(s)


def _limited(items: list[str]) -> list[str]:
    return items[:LIMIT] + (["..."] if len(items) > LIMIT else [])


def _type(spec):
    """(ttype, extra) of a thriftpy2 type spec: an int, or (ttype, extra)."""
    return (spec, None) if isinstance(spec, int) else (spec[0], spec[1])


def render(v, ttype: int, extra=None) -> str:
    """A value from the truth file, as Packetbeat shows it."""
    if ttype == BOOL:
        return "true" if v else "false"
    if ttype == BYTE:
        return str(v & 0xFF)            # Packetbeat prints bytes, i16 and i32 unsigned
    if ttype == I16:
        return str(v & 0xFFFF)
    if ttype == I32:
        return str(v & 0xFFFFFFFF)
    if ttype == I64:
        return str(v)
    if ttype == DOUBLE:
        r = repr(float(v))
        assert "e" not in r
        return r[:-2] if r.endswith(".0") else r
    if ttype in (STRING, BINARY):
        raw = bytes.fromhex(v["bytes"]) if isinstance(v, dict) else v.encode()
        if len(raw) > STRMAX:
            raw = raw[:STRMAX] + b"..."
        if not raw:
            return '""'
        try:
            return _quote(raw.decode())
        except UnicodeDecodeError:
            return raw.hex()
    if ttype in (LIST, SET):
        et, ex = _type(extra)
        # a set the client passed is recorded {"set": [...]}; one it read back,
        # thriftpy2 returns as a list (wire order)
        items = v["set"] if isinstance(v, dict) else v
        joined = ", ".join(_limited([render(x, et, ex) for x in items]))
        if not joined:
            return ""
        return ("[%s]" if ttype == LIST else "{%s}") % joined
    if ttype == MAP:
        (kt, kx), (vt, vx) = _type(extra[0]), _type(extra[1])
        return "{" + ", ".join(_limited([render(k, kt, kx) + ": " + render(x, vt, vx)
                                         for k, x in v["map"]])) + "}"
    if ttype == STRUCT:
        return render_struct(v["fields"], extra.thrift_spec, names=False)
    raise AssertionError("type %d" % ttype)


def render_struct(values: dict, spec: dict, names: bool) -> str:
    """``(1: a, 2: b)`` (``names``: ``(name: a, ...)``) of a struct's set fields, in id order."""
    parts = []
    for fid in sorted(spec):
        s = spec[fid]
        name = s[1]
        if name not in values or values[name] is None:
            continue
        ttype, extra = s[0], (s[2] if len(s) == 4 else None)
        parts.append("%s: %s" % (name if names else fid, render(values[name], ttype, extra)))
    return "(" + ", ".join(_limited(parts)) + ")"


def expected(call: dict, services, with_idl: bool) -> dict:
    svc = services[call["service"]]
    method = call["method"]
    args_spec = getattr(svc, method + "_args").thrift_spec
    values = {args_spec[fid][1]: a for fid, a in zip(sorted(args_spec), call["args"])}
    params = render_struct(values, args_spec, names=with_idl)
    sent_as = call["sent_as"]
    mux = sent_as.split(":")[0] if ":" in sent_as else ""
    service = mux or (call["service"] if with_idl else "")
    exp = {"method": method, "path": service, "params": params, "query": method + params, "status": "OK"}
    if call["oneway"]:
        return exp
    result_spec = getattr(svc, method + "_result").thrift_spec
    if "app_exception" in call:
        x = call["app_exception"]
        names = ("message", "type") if with_idl else ("1", "2")
        exp.update(status="Error", return_value="", exceptions="(%s: %s, %s: %d)" % (
            names[0], _quote(x["message"]), names[1], x["type"]))
    elif "exception" in call:
        x = call["exception"]
        fid = next(f for f, s in result_spec.items() if f and s[2].__name__ == x["struct"])
        text = render_struct(x["fields"], result_spec[fid][2].thrift_spec, names=False)
        exp.update(status="Error", return_value="",
                   exceptions="(%s: %s)" % (result_spec[fid][1] if with_idl else fid, text))
    elif 0 in result_spec:
        s = result_spec[0]
        exp["return_value"] = render(call["result"], s[0], s[2] if len(s) == 4 else None)
    else:
        exp["return_value"] = ""
    return exp


def check_events(events: list[dict], truth: dict, with_idl: bool) -> None:
    services = _services()
    calls = truth["calls"]
    assert all(ev["type"] == "thrift" for ev in events)
    assert len(events) == len(calls), "events %d != calls %d" % (len(events), len(calls))
    by_port: dict[int, list[dict]] = {}
    for ev in events:
        by_port.setdefault(ev["client"]["port"], []).append(ev)
    for evs in by_port.values():
        evs.sort(key=lambda e: e["event"]["start"])
    for call in calls:
        evs = by_port.get(call["client_port"])
        assert evs, "no event left for %s %s" % (call["case"], call["method"])
        ev = evs.pop(0)
        exp = expected(call, services, with_idl)
        where = (call["case"], call["method"], call["args"])
        assert ev["server"]["ip"] == call["server_ip"] and ev["server"]["port"] == call["server_port"]
        assert ev["client"]["ip"] == call["client_ip"]
        assert ev["method"] == exp["method"], where
        assert ev["path"] == exp["path"], where
        assert ev["query"] == exp["query"], (where, ev["query"], exp["query"])
        assert ev["thrift"]["params"] == exp["params"], where
        assert ev.get("thrift", {}).get("service", "") == exp["path"], where
        assert ev["status"] == exp["status"], (where, ev)
        assert "error" not in ev, (where, ev["error"])
        assert ev["source"]["bytes"] > 0
        if call["oneway"]:
            assert "return_value" not in ev["thrift"] and "bytes" not in ev["destination"], where
            assert "duration" not in ev["event"]
            continue
        assert ev["destination"]["bytes"] > 0 and ev["event"]["duration"] >= 0
        assert ev["thrift"]["return_value"] == exp["return_value"], (where, ev["thrift"], exp)
        assert ev["thrift"].get("exceptions", "") == exp.get("exceptions", ""), (where, ev["thrift"], exp)
    left = {p: len(v) for p, v in by_port.items() if v}
    assert not left, "events with no call: %s" % left


def _truth() -> dict:
    return json.loads((PCAPS / "thrift_real.truth.json").read_text())


@pytest.mark.parametrize("with_idl", [True, False], ids=["idl", "no-idl"])
def test_thrift_real_truth(tmp_path, with_idl):
    proto = {"type": "thrift", "ports": PORTS}
    if with_idl:
        proto["idl_files"] = [str(IDL)]
    proc, events = run_packetbeat(tmp_path, PCAPS / "thrift_real.pcap", protocols=[proto], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_events(events, _truth(), with_idl)


def test_thrift_real_covers_the_combinations():
    calls = _truth()["calls"]
    combos = {(c["protocol"], c["transport"], c["client"].split()[0]) for c in calls}
    assert {("binary", "socket", "thriftpy2"), ("binary", "framed", "thriftpy2"),
            ("compact", "socket", "thriftpy2"), ("compact", "framed", "thriftpy2"),
            ("binary", "socket", "apache"), ("compact", "framed", "apache")} <= combos
    assert any(c["oneway"] for c in calls) and any("exception" in c for c in calls)
    assert any("app_exception" in c for c in calls) and any(":" in c["sent_as"] for c in calls)


def test_thrift_real_send_options(tmp_path):
    proto = {"type": "thrift", "ports": PORTS, "send_request": True, "send_response": True,
             "idl_files": [str(IDL)]}
    proc, events = run_packetbeat(tmp_path, PCAPS / "thrift_real.pcap", protocols=[proto], workers=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert events and all(ev["request"] == ev["query"] for ev in events)
    for ev in events:
        th = ev["thrift"]
        if "return_value" not in th:
            assert "response" not in ev                     # oneway
        elif "exceptions" in th:
            assert ev["response"] == "Exceptions: " + th["exceptions"]
        else:
            assert ev["response"] == th["return_value"]


def test_thrift_real_forced_mismatch_decodes_nothing_wrong(tmp_path):
    """``transport_type: framed`` forced on unframed traffic (and the reverse)
    must not invent calls: only the connections that match are decoded."""
    proto = {"type": "thrift", "ports": PORTS, "transport_type": "framed", "protocol_type": "compact"}
    proc, events = run_packetbeat(tmp_path, PCAPS / "thrift_real.pcap", protocols=[proto], workers=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    framed_compact = {c["client_port"] for c in _truth()["calls"]
                      if c["transport"] == "framed" and c["protocol"] == "compact"}
    assert events and {ev["client"]["port"] for ev in events} == framed_compact
