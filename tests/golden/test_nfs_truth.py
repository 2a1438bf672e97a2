"""The NFS analyser's events against what the NFS clients really did.

``pcaps/nfs_real.pcap`` was captured by ``gen/nfs_real.py`` while its own
ONC-RPC client and libnfs's command-line clients talked to a real NFS-Ganesha
server (NFSv3 over TCP and UDP, NFSv4.0 and v4.1 COMPOUNDs, a record of three
fragments, error replies). The truth file lists every call the own client
sent and the reply it read back; each NFS call must come out as exactly one
event with the same xid, version, operation, statuses, credentials and sizes,
calls of another RPC program must not come out, and the libnfs commands must
show the operations and errors they performed.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from tests.helpers import run_packetbeat

PCAPS = pathlib.Path(__file__).resolve().parent / "pcaps"
ACCEPT = ["success", "prog_unavail", "prog_mismatch", "proc_unavail", "garbage_args", "system_err"]
REJECT = ["rpc_mismatch", "auth_error"]
# the NFS status codes the server answered in this capture, as Packetbeat names them
STATUS = {0: "NFS_OK", 2: "NFSERR_NOENT", 17: "NFSERR_EXIST"}
# NFSv4 operations Packetbeat skips when it looks for the main one of a COMPOUND
SECOND_CLASS = {"GETATTR", "GETFH", "LOOKUP", "LOOKUPP", "NVERIFY", "PUTFH", "PUTPUBFH", "PUTROOTFH",
                "RENEW", "RESTOREFH", "SAVEFH", "SECINFO", "VERIFY", "SEQUENCE"}


def main_op(ops: list[str]) -> str:
    for op in ops:
        if op not in SECOND_CLASS:
            return op
    return ops[-1]


def analyse(tmp, pcap, truth) -> list[dict]:
    proc, events = run_packetbeat(tmp, pcap, protocols=[{"type": "nfs", "ports": [truth["server_port"]]}],
                                  extra_cfg={"packetbeat.flows": {"enabled": False}})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return events


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    truth = json.loads((PCAPS / "nfs_real.truth.json").read_text())
    return truth, analyse(tmp_path_factory.mktemp("nfs"), PCAPS / "nfs_real.pcap", truth)


def _key(ev) -> tuple:
    return ev["network"]["transport"], ev["client"]["port"], int(ev["rpc"]["xid"], 16)


def test_every_nfs_call_is_one_event(run):
    check_calls(*run)


def test_the_capture_covers_what_it_claims(run):
    """The truth has what the docstring promises (so the checks above bite)."""
    check_coverage(run[0])


def test_libnfs_commands(run):
    check_libnfs(*run)


def check_calls(truth: dict, events: list[dict]) -> None:
    assert all(ev["type"] == "nfs" for ev in events)
    by_key: dict = {}
    for ev in events:
        assert _key(ev) not in by_key, _key(ev)
        by_key[_key(ev)] = ev
    own_ports = {c["client_port"] for c in truth["calls"]}
    for c in truth["calls"]:
        ev = by_key.get((c["transport"], c["client_port"], c["xid"]))
        if c["prog"] != 100003:
            assert ev is None, "a call of program %d was published" % c["prog"]
            continue
        assert ev is not None, c
        check_call(ev, c)
    nfs_calls = sum(1 for c in truth["calls"] if c["prog"] == 100003)
    assert sum(1 for ev in events if ev["client"]["port"] in own_ports) == nfs_calls


def check_call(ev: dict, c: dict) -> None:
    rep = c["reply"]
    assert ev["rpc"]["xid"] == "%08x" % c["xid"]
    assert ev["server"]["port"] == 2049 and ev["client"]["ip"] == "127.0.0.1"
    assert ev["source"]["bytes"] == c["call_size"]
    assert ev["destination"]["bytes"] == rep["size"]
    assert ev["network"]["bytes"] == c["call_size"] + rep["size"]
    assert ev["event"]["duration"] > 0
    assert ev["network"]["protocol"] == {3: "nfsv3", 4: "nfsv4"}.get(c["vers"], "nfs")
    nfs = ev["nfs"]
    assert nfs["version"] == c["vers"]
    if c.get("ops") is not None:
        op = main_op(c["ops"])
        assert nfs["tag"] == c["tag"] and nfs["minor_version"] == c["minor"]
    else:
        op = c.get("op")
        assert "tag" not in nfs and "minor_version" not in nfs
    if op is None:
        assert "opcode" not in nfs and "action" not in ev["event"]
    else:
        assert nfs["opcode"] == op
        assert ev["event"]["action"] == "nfs." + op
    # credentials
    rpc = ev["rpc"]
    if c["auth"] == "unix":
        machine = c["machinename"] or ev["client"]["ip"]
        assert rpc["auth_flavor"] == "unix"
        assert rpc["cred"] == {"stamp": c["stamp"], "machinename": machine, "uid": c["uid"],
                               "gid": c["gid"], "gids": c["gids"]}
        assert ev["host"]["hostname"] == machine
        assert ev["user"]["id"] == c["uid"] and ev["group"]["id"] == c["gid"]
        if c["machinename"]:
            assert ev["source"]["domain"] == c["machinename"]
        else:
            assert "domain" not in ev["source"]
    else:
        assert rpc["auth_flavor"] == "none" and "cred" not in rpc and "user" not in ev
    # reply
    if rep["reply_stat"] == 1:
        assert ev["status"] == "Error"
        assert rpc["status"] == REJECT[rep["reject_stat"]]
        assert ev["event"]["outcome"] == "failure" and "status" not in nfs
        return
    assert ev["status"] == "OK"
    assert rpc["status"] == ACCEPT[rep["accept_stat"]]
    if rep["accept_stat"] != 0:
        assert ev["event"]["outcome"] == "failure" and "status" not in nfs
        return
    assert "outcome" not in ev["event"]
    if c["proc"] == 0:
        assert nfs["status"] == "NFS_OK"
    else:
        assert nfs["status"] == STATUS[rep["status"]]


def check_coverage(truth: dict) -> None:
    calls = truth["calls"]
    assert any(c["fragments"] > 1 for c in calls)
    assert any(c["transport"] == "udp" and c["prog"] == 100003 for c in calls)
    assert {c.get("minor") for c in calls if c.get("ops")} == {0, 1}
    assert any(c["reply"].get("status") == 2 and c["vers"] == 3 for c in calls)
    assert any(c["reply"].get("status") == 2 and c["vers"] == 4 for c in calls)
    assert any(c["reply"]["reply_stat"] == 1 for c in calls)
    assert {c["reply"].get("accept_stat") for c in calls} >= {0, 1, 2, 3}
    assert any(c["call_size"] > 65536 for c in calls)


def check_libnfs(truth: dict, events: list[dict]) -> None:
    own_ports = {c["client_port"] for c in truth["calls"]}
    lib = [ev for ev in events if ev["client"]["port"] not in own_ports]
    by_port: dict = {}
    for ev in lib:
        by_port.setdefault(ev["client"]["port"], []).append(ev)
    cmds = truth["libnfs"]
    assert len(by_port) == len(cmds)           # one TCP connection to the NFS port per command
    for ev in lib:
        assert ev["status"] == "OK" and ev["rpc"]["status"] == "success"
        assert ev["rpc"]["auth_flavor"] == "unix" and "error" not in ev
        assert ev["nfs"]["status"] in ("NFS_OK", "NFSERR_NOENT")
    for vers in (3, 4):
        runs = [c for c in cmds if c["version"] == vers]
        evs = [ev for ev in lib if ev["nfs"]["version"] == vers]
        conns = {ev["client"]["port"] for ev in evs}
        assert len(conns) == len(runs)
        ops = {ev["nfs"]["opcode"] for ev in evs}
        assert {"READ", "WRITE", "COMMIT", "NULL"} <= ops
        assert ("READDIRPLUS" if vers == 3 else "READDIR") in ops
        failed = [c for c in runs if c["rc"] != 0]
        noent = {ev["client"]["port"] for ev in evs if ev["nfs"]["status"] == "NFSERR_NOENT"}
        assert len(failed) == len(noent) == 1
        cp = next(c for c in runs if c["cmd"] == "nfs-cp")
        assert cp["rc"] == 0
        writes = [ev for ev in evs if ev["nfs"]["opcode"] == "WRITE"]
        assert len(writes) == 1 and writes[0]["source"]["bytes"] > 540 and writes[0]["nfs"]["status"] == "NFS_OK"
        if vers == 4:
            assert all(ev["nfs"]["minor_version"] == 0 for ev in evs if ev["nfs"]["opcode"] != "NULL")
