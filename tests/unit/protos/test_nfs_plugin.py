"""NfsPlugin: TCP and UDP callbacks -> events (xid correlation, other RPC
programs, unmatched and expired calls, gaps, bounds, config)."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError, build
from tests.unit.protos.nfs_wire import NO_AUTH, call, compound, denied, opaque, record, reply, u32, unix_cred
from worker.plugin import UDP, IpPortTuple, Packet, TcpTuple
from worker.protos.nfs import NfsPlugin
from worker.protos.nfs.config import NfsConfig
from worker.protos.nfs.parser import ParseError
from worker.protos.nfs.trans import UDP_MAX_PENDING

TT = TcpTuple("10.0.0.1", 900, "10.0.0.2", 2049, 1)
CLI = IpPortTuple(UDP, "10.0.0.1", 800, "10.0.0.2", 2049)
MS = 1_000_000
S = 1_000_000_000
FH = opaque(b"\x07" * 32)


def make(**cfg):
    events = []
    return NfsPlugin(dict({"ports": [2049]}, **cfg), events.append), events


def tcp(plugin, state, direction, data, ts, tt=TT):
    tup = tt.ip_port() if direction == 0 else tt.ip_port().reverse()
    return plugin.parse(Packet(ts, tup, memoryview(data)), tt, direction, state)


def udp(plugin, data, ts, tup=CLI):
    plugin.parse_udp(Packet(ts, tup, memoryview(data)))


def test_v3_transaction_event_fields():
    p, events = make()
    c = call(0x1234, 3, FH + opaque(b"nofile"))
    r = reply(0x1234, 2, body=b"\0" * 4)
    st = tcp(p, None, 0, record(c), 1000 * MS)
    st = tcp(p, st, 1, record(r), 1002 * MS + 7)
    [ev] = events
    assert ev["type"] == "nfs" and ev["status"] == "OK"
    assert ev["event"]["duration"] == 2 * MS + 7 and ev["event"]["action"] == "nfs.LOOKUP"
    assert "outcome" not in ev["event"]
    assert ev["source"]["bytes"] == len(c) and ev["destination"]["bytes"] == len(r)
    assert ev["source"]["domain"] == "client1" and ev["client"]["domain"] == "client1"
    assert ev["network"]["protocol"] == "nfsv3" and ev["network"]["transport"] == "tcp"
    assert ev["client"]["ip"] == "10.0.0.1" and ev["server"]["port"] == 2049
    assert ev["host"] == {"hostname": "client1"} and ev["user"] == {"id": 1000} and ev["group"] == {"id": 100}
    assert ev["rpc"] == {"xid": "00001234", "auth_flavor": "unix", "status": "success",
                         "cred": {"stamp": 7, "machinename": "client1", "uid": 1000, "gid": 100,
                                  "gids": [100, 27]}}
    assert ev["nfs"] == {"version": 3, "opcode": "LOOKUP", "status": "NFSERR_NOENT"}
    assert "error" not in ev


def test_v4_compound_event_and_out_of_order_replies():
    p, events = make()
    st = tcp(p, None, 0, record(compound(1, ["PUTFH", "READDIR"], tag=b"readdir", minor=1))
             + record(call(2, 0, vers=4)), 10 * MS)
    st = tcp(p, st, 1, record(reply(2, None)), 11 * MS)
    st = tcp(p, st, 1, record(reply(1, 10008)), 12 * MS)
    assert [ev["rpc"]["xid"] for ev in events] == ["00000002", "00000001"]
    null, rd = events
    assert null["nfs"] == {"version": 4, "opcode": "NULL", "status": "NFS_OK"}
    assert rd["nfs"] == {"version": 4, "tag": "readdir", "minor_version": 1, "opcode": "READDIR",
                         "status": "NFSERR_DELAY"}
    assert rd["network"]["protocol"] == "nfsv4"


def test_empty_machine_name_is_the_client_address_and_auth_none_has_no_cred():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 1, FH, cred=unix_cred(machine=b""))) + record(call(2, 1, FH, cred=NO_AUTH)), 0)
    tcp(p, st, 1, record(reply(1, 0)) + record(reply(2, 0)), MS)
    a, b = events
    assert a["rpc"]["cred"]["machinename"] == "10.0.0.1" and a["host"]["hostname"] == "10.0.0.1"
    assert "domain" not in a["source"]
    assert b["rpc"]["auth_flavor"] == "none" and "cred" not in b["rpc"] and "user" not in b and "host" not in b


def test_rpc_errors_and_denied_replies():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 22)) + record(call(2, 1, FH, vers=5)) + record(call(3, 1, FH)), 0)
    tcp(p, st, 1, record(reply(1, None, accept=3)) + record(reply(2, None, accept=2)) + record(denied(3)), MS)
    a, b, c = events
    assert a["status"] == "OK" and a["rpc"]["status"] == "proc_unavail" and a["event"]["outcome"] == "failure"
    assert a["nfs"] == {"version": 3, "opcode": "ILLEGAL"}
    assert b["rpc"]["status"] == "prog_mismatch" and b["nfs"] == {"version": 5}
    assert b["network"]["protocol"] == "nfs" and "action" not in b["event"]
    assert c["status"] == "Error" and c["rpc"]["status"] == "auth_error" and c["event"]["outcome"] == "failure"
    assert "status" not in c["nfs"]


def test_other_programs_are_counted_not_published():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 0, prog=100005)) + record(call(2, 0, prog=100021, vers=4)), 0)
    tcp(p, st, 1, record(reply(1, None, accept=1)) + record(reply(2, None)), MS)
    assert events == [] and p.other_programs == 2 and p.unmatched_responses == 0


def test_malformed_nfs_call_is_dropped_as_packetbeat():
    p, events = make()
    bad = call(1, 1, cred=u32_cred_short())
    st = tcp(p, None, 0, record(bad), 0)
    tcp(p, st, 1, record(reply(1, 0)), MS)
    assert events == [] and p.malformed == 1


def u32_cred_short():
    return b"\0\0\0\1" + opaque(b"\0\0\0\1")


def test_unmatched_reply_is_published_with_a_note():
    p, events = make()
    tcp(p, None, 1, record(reply(9, 0)), 5 * MS)
    [ev] = events
    assert ev["status"] == "Error" and ev["error"]["message"] == "Unmatched response"
    assert ev["rpc"] == {"xid": "00000009", "status": "success"} and "nfs" not in ev
    assert ev["client"]["ip"] == "10.0.0.1" and ev["destination"]["bytes"] == len(reply(9, 0))
    assert p.unmatched_responses == 1


def test_call_without_reply_expires_by_packet_time_and_flushes_at_close():
    p, events = make(transaction_timeout=2)
    st = tcp(p, None, 0, record(call(1, 1, FH)), 1 * S)
    st = tcp(p, st, 0, record(call(2, 1, FH)), 2 * S)
    st = tcp(p, st, 0, record(call(3, 0)), 3 * S + 1)     # call 1 is now older than 2 s
    [ev] = events
    assert ev["rpc"]["xid"] == "00000001" and ev["status"] == "NO_REPLY"
    assert ev["error"]["message"] == "no response (transaction timeout)" and "duration" not in ev["event"]
    p.expire(4 * S + 1)                                    # the sweep takes call 2
    assert [e["rpc"]["xid"] for e in events] == ["00000001", "00000002"]
    p.flush(TT, st, 5 * S)
    assert [e["rpc"]["xid"] for e in events] == ["00000001", "00000002", "00000003"]
    assert events[2]["error"]["message"] == "Unmatched request" and p.unmatched_requests == 3


def test_same_xid_twice_publishes_the_first_alone():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 1, FH)), 0)
    tcp(p, st, 0, record(call(1, 1, FH)), MS)
    assert len(events) == 1 and events[0]["status"] == "NO_REPLY"


def test_back_channel_call_is_oriented_from_the_server():
    p, events = make()
    st = tcp(p, None, 1, record(call(5, 0, vers=4)), 0)         # an NFS NULL sent by the server side
    st = tcp(p, st, 0, record(reply(5, None)), MS)
    [ev] = events
    assert ev["client"]["ip"] == "10.0.0.2" and ev["server"]["port"] == 900
    # a fore-channel call with the same xid does not take the back-channel reply
    st = tcp(p, st, 0, record(call(6, 0)), 2 * MS)
    st = tcp(p, st, 0, record(reply(6, None)), 3 * MS)          # a reply in the wrong direction
    assert events[-1]["error"]["message"] == "Unmatched response"


def test_gap_inside_a_record_keeps_the_transaction_with_a_note():
    p, events = make()
    c = call(1, 7, FH + b"\0" * 12 + opaque(b"\x55" * 5000))
    data = record(c)
    st = tcp(p, None, 0, data[:300], 0)
    st, drop = p.gap_in_stream(TT, 0, 2000, st)
    assert not drop
    st = tcp(p, st, 0, data[2300:], MS)
    tcp(p, st, 1, record(reply(1, 0)), 2 * MS)
    [ev] = events
    assert ev["nfs"]["opcode"] == "WRITE" and ev["error"]["message"] == "Packet loss while capturing the request"


def test_gap_over_a_marker_drops_the_stream_and_publishes_what_waits():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 1, FH)), 0)
    st, drop = p.gap_in_stream(TT, 0, 10, st)
    assert drop and st is None and p.gap_drops == 1
    [ev] = events
    assert ev["status"] == "NO_REPLY"
    assert ev["error"]["message"] == ["Packet loss while capturing the request", "Unmatched request"]


def test_garbage_resyncs_on_the_next_segment():
    p, events = make()
    st = tcp(p, None, 0, b"\x00\x00\x00\x10" + b"GET / HTTP/1.1\r\n", 0)
    assert p.parse_errors == 1
    st = tcp(p, st, 0, record(call(1, 0)), MS)
    tcp(p, st, 1, record(reply(1, None)), 2 * MS)
    assert len(events) == 1 and events[0]["status"] == "OK"


def test_udp_pairs_by_client_endpoint_and_xid():
    p, events = make()
    other = IpPortTuple(UDP, "10.0.0.3", 800, "10.0.0.2", 2049)
    udp(p, call(7, 1, FH), 0)
    udp(p, call(7, 6, FH + b"\0" * 12, cred=unix_cred(machine=b"c2")), MS, other)
    udp(p, reply(7, 0), 2 * MS, other.reverse())
    udp(p, reply(7, 2), 3 * MS, CLI.reverse())
    a, b = events
    assert a["nfs"]["opcode"] == "READ" and a["client"]["ip"] == "10.0.0.3" and a["event"]["duration"] == MS
    assert b["nfs"] == {"version": 3, "opcode": "GETATTR", "status": "NFSERR_NOENT"}
    assert b["network"]["transport"] == "udp" and b["event"]["duration"] == 3 * MS
    assert b["source"]["bytes"] == len(call(7, 1, FH))


def test_udp_unmatched_expired_and_flushed():
    p, events = make(transaction_timeout=1)
    udp(p, reply(3, 0), 0, CLI.reverse())
    assert events[-1]["error"]["message"] == "Unmatched response" and events[-1]["client"]["port"] == 800
    udp(p, call(4, 1, FH), 1 * S)
    p.expire(2 * S + 1)
    assert events[-1]["status"] == "NO_REPLY" and events[-1]["network"]["transport"] == "udp"
    udp(p, call(5, 1, FH), 3 * S)
    udp(p, call(6, 0, prog=100005), 3 * S)
    p.flush_all(3 * S)
    assert [e["rpc"]["xid"] for e in events] == ["00000003", "00000004", "00000005"]
    assert p.other_programs == 1


def test_udp_garbage_raises_parse_error_and_counts():
    p, _ = make()
    with pytest.raises(ParseError):
        udp(p, b"\x01\x02", 0)
    assert p.parse_errors == 1


def test_udp_table_is_bounded():
    p, events = make()
    for xid in range(UDP_MAX_PENDING + 5):
        udp(p, call(xid, 0), xid)
    assert len(events) == 5 and len(p._udp) == UDP_MAX_PENDING
    assert events[0]["rpc"]["xid"] == "00000000" and events[0]["status"] == "NO_REPLY"
    assert "evicted" in events[0]["error"]["message"]


def test_config_defaults_and_validation():
    cfg = build(NfsConfig, {}, "nfs")
    assert cfg.ports == [2049] and float(cfg.transaction_timeout) == 60.0
    with pytest.raises(ConfigError):
        build(NfsConfig, {"ports": [70000]}, "nfs").validate("nfs")
    with pytest.raises(ConfigError):
        build(NfsConfig, {"max_message_size": 5}, "nfs")
    assert NfsPlugin.transports == ("tcp", "udp")


def test_counters_are_ints_the_worker_reports():
    p, _ = make()
    names = {k for k, v in vars(p).items() if type(v) is int and not k.startswith(("_", "max_"))}
    assert {"parse_errors", "gap_drops", "other_programs", "malformed", "unmatched_requests",
            "unmatched_responses"} <= names


def gss_cred(gss_proc: int, service: int) -> bytes:
    body = u32(1) + u32(gss_proc) + u32(5) + u32(service) + opaque(b"\xaa" * 8)
    return u32(6) + opaque(body)


def test_rpcsec_gss_integrity_and_privacy():
    p, events = make()
    integ_args = u32(60) + u32(5) + opaque(b"") + u32(0) + u32(2) + u32(22) + FH + u32(26)
    priv_args = u32(64) + b"\x9c" * 64
    st = tcp(p, None, 0, record(call(1, 1, integ_args, vers=4, cred=gss_cred(0, 2)))
             + record(call(2, 1, priv_args, vers=4, cred=gss_cred(0, 3)))
             + record(call(3, 3, priv_args, vers=3, cred=gss_cred(0, 3)))
             + record(call(4, 0, opaque(b"token"), vers=4, cred=gss_cred(1, 1))), 0)
    tcp(p, st, 1, record(reply(1, 36, body=u32(5) + u32(10008)))      # length, seq, status DELAY
        + record(reply(2, 100, body=b"\0" * 100)) + record(reply(3, 100)) + record(reply(4, 0)), MS)
    a, b, c, d = events
    assert a["rpc"]["auth_flavor"] == "rpcsec_gss" and "cred" not in a["rpc"]
    assert a["nfs"] == {"version": 4, "tag": "", "minor_version": 0, "opcode": "READDIR",
                        "status": "NFSERR_DELAY"}
    assert b["nfs"] == {"version": 4} and b["rpc"]["status"] == "success"
    assert c["nfs"] == {"version": 3, "opcode": "LOOKUP"}
    assert d["nfs"] == {"version": 4, "opcode": "NULL", "status": "NFS_OK"}


def test_accepted_reply_cut_before_its_status_is_an_error():
    p, events = make()
    st = tcp(p, None, 0, record(call(1, 1, FH)), 0)
    tcp(p, st, 1, record(u32(1) + u32(1) + u32(0) + u32(0) + u32(8) + b"\0" * 4), MS)   # verifier runs out
    [ev] = events
    assert ev["status"] == "Error" and ev["error"]["message"] == "RPC reply ends before its accept status"
    assert "status" not in ev["rpc"] and "status" not in ev["nfs"]
