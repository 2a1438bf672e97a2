"""NFS transaction -> event dict, with Packetbeat 8.x field names
(``packetbeat/protos/nfs/request_handler.go: handleCall/handleReply``,
``nfs.go``).

Root fields: ``type`` ``nfs``; ``status`` ``OK`` for a call answered (whatever
the RPC or NFS status, as Packetbeat), ``NO_REPLY`` for a call never answered
(Packetbeat's expiry status); ``network.protocol`` ``nfsv3``/``nfsv4``/``nfs``;
``event.action`` ``nfs.<opcode>``; ``event.outcome`` ``failure`` when the RPC
call was not accepted (accept status other than success); ``source.bytes`` /
``destination.bytes`` the RPC call and reply sizes (record markers excluded);
for AUTH_UNIX credentials ``host.hostname`` (the machine name, or the client
address when empty), ``source.domain`` / ``client.domain`` (a non-empty
machine name), ``user.id`` and ``group.id``.

``rpc``: ``xid`` (8 hex digits), ``auth_flavor``, ``cred.{stamp,machinename,
uid,gid,gids}``, ``status`` (accept status). ``nfs``: ``version``, ``opcode``,
``tag`` and ``minor_version`` (v4 COMPOUND), ``status`` (only when the call
was accepted; ``NFS_OK`` for a NULL procedure).

With RPCSEC_GSS (Kerberos) integrity the arguments and the result are read
after their length and sequence number; with privacy they are encrypted: the
COMPOUND's operation and the NFS status are left out (Packetbeat reads the
wrapped bytes as if they were plain and gets them wrong).

Beyond Packetbeat 8 (which drops them): a denied reply (``rpc.status``
``rpc_mismatch`` / ``auth_error``, status ``Error``) and a reply without its
call (status ``Error``, "Unmatched response") are published.
"""
from __future__ import annotations

from worker.ecs import transaction_event
from worker.protos.nfs.names import ACCEPT_STATUS, REJECT_STATUS, auth_flavor, nfs_status
from worker.protos.nfs.parser import RpcMessage

_PROTOCOL = {3: "nfsv3", 4: "nfsv4"}
NOTE_UNMATCHED = "Unmatched response"
NOTE_REPLY_CUT = "RPC reply ends before its accept status"


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def to_event(call: RpcMessage | None, reply: RpcMessage | None, tuple_, transport: int,
             notes: list[str] | None = None) -> dict:
    """One event: ``tuple_`` is oriented client -> server; either side may be
    None (never answered / answer without its call)."""
    allnotes: list[str] = []
    if call is not None:
        allnotes.extend(call.notes)
    if reply is not None:
        allnotes.extend(reply.notes)
    if notes:
        allnotes.extend(notes)
    if call is None:
        status = "Error"
        allnotes.append(NOTE_UNMATCHED)
    elif reply is None:
        status = "NO_REPLY"
    elif reply.reply_stat == 1 or reply.malformed:
        status = "Error"
    else:
        status = "OK"
    if reply is not None and reply.malformed:
        allnotes.append(NOTE_REPLY_CUT)
    ev = transaction_event(
        "nfs", tuple_,
        call.ts if call is not None else None,
        reply.ts if reply is not None else None,
        call.size if call is not None else 0,
        reply.size if reply is not None else 0,
        status, allnotes, transport,
    )
    xid: int = call.xid if call is not None else reply.xid
    rpc: dict = {"xid": f"{xid:08x}"}        # compiled: formatted at C level (xid a C integer)
    nfs: dict | None = None
    if call is not None:
        vers = call.prog_vers
        ev["network"]["protocol"] = _PROTOCOL.get(vers, "nfs")
        rpc["auth_flavor"] = auth_flavor(call.auth_flavor)
        cred = call.cred
        if cred is not None:
            stamp, machine, uid, gid, gids = cred
            name = _s(machine) if machine else ev["client"]["ip"]
            if machine:
                ev["source"]["domain"] = name
                ev["client"]["domain"] = name
            rpc["cred"] = {"stamp": stamp, "machinename": name, "uid": uid, "gid": gid,
                           "gids": list(gids)}
            ev["host"] = {"hostname": name}
            ev["user"] = {"id": uid}
            ev["group"] = {"id": gid}
        nfs = {"version": vers}
        if call.tag is not None:
            nfs["tag"] = _s(call.tag)
            nfs["minor_version"] = call.minor_version
        if call.opcode:
            nfs["opcode"] = call.opcode
            ev["event"]["action"] = "nfs." + call.opcode
    if reply is not None:
        if reply.reply_stat == 0 and reply.accept_stat >= 0:
            a = reply.accept_stat
            rpc["status"] = ACCEPT_STATUS[a] if a < len(ACCEPT_STATUS) else "unknown (%d)" % a
            if a == 0:
                if call is not None and nfs is not None:
                    if call.proc == 0:
                        nfs["status"] = "NFS_OK"
                    elif call.gss_service == 0:
                        if reply.status_word is not None:
                            nfs["status"] = nfs_status(reply.status_word)
                    elif call.gss_service == 2 and reply.integ_status is not None:
                        # RPCSEC_GSS integrity: length, sequence number, then the result
                        nfs["status"] = nfs_status(reply.integ_status)
            else:
                ev["event"]["outcome"] = "failure"
        elif reply.reply_stat == 1:
            r = reply.reject_stat
            rpc["status"] = REJECT_STATUS[r] if 0 <= r < len(REJECT_STATUS) else "msg_denied"
            ev["event"]["outcome"] = "failure"
    ev["rpc"] = rpc
    if nfs is not None:
        ev["nfs"] = nfs
    return ev
