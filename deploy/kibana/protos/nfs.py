"""Kibana dashboard of the NFS analyser: operations, NFS and RPC errors,
clients and latency (``dashboard(k)``, ``k`` = deploy/kibana/build.py)."""
from __future__ import annotations


def dashboard(k):
    P = k.P
    q = "type:nfs"
    # an NFS error status, an RPC call not accepted, a denied call, an unmatched or unanswered call
    errors = q + " and not (nfs.status:NFS_OK and rpc.status:success and status:OK)"
    objs = [
        k.top_table(P + "nfs-top-operations", "Top NFS operations", "nfs.opcode", q, label="Operation"),
        k.over_time_by(P + "nfs-operations-over-time", "NFS operations over time", "nfs.opcode", q),
        k.top_table(P + "nfs-status", "NFS status codes", "nfs.status", q, latency_col=False, label="NFS status"),
        k.count_metric(P + "nfs-errors-count", "NFS errors", errors),
        k.share(P + "nfs-versions", "NFS versions", "nfs.version", q, number=True),
        k.top_table(P + "nfs-clients", "Top NFS clients (machine name)", "rpc.cred.machinename", q,
                    label="Machine name"),
        k.latency(P + "nfs-latency", "NFS response time percentiles", q),
        k.search(P + "nfs-search-errors", "NFS errors", errors,
                 ["nfs.opcode", "nfs.status", "rpc.status", "rpc.xid", "client.ip", "server.ip"],
                 "NFS calls answered with an error, refused, or never answered"),
    ]
    return objs, k.dashboard(P + "nfs", "[Packetbeat] NFS", "NFS operations, errors, clients and latency",
                             [(objs[0], 24, 15), (objs[1], 24, 15), (objs[3], 12, 12), (objs[2], 18, 12),
                              (objs[4], 18, 12), (objs[5], 24, 14), (objs[6], 24, 14), (objs[7], 48, 14)],
                             query=q)
