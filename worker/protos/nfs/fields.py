"""Index-template mappings of the fields the NFS analyser writes (Packetbeat's
``packetbeat/protos/nfs/_meta/fields.yml`` and the ECS fields it fills)."""
from __future__ import annotations

_KW = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}

FIELDS = {
    "nfs.version": _LONG,
    "nfs.minor_version": _LONG,
    "nfs.tag": _KW,
    "nfs.opcode": _KW,
    "nfs.status": _KW,
    "rpc.xid": _KW,
    "rpc.status": _KW,
    "rpc.auth_flavor": _KW,
    "rpc.cred.uid": _LONG,
    "rpc.cred.gid": _LONG,
    "rpc.cred.gids": _KW,          # no type in Packetbeat's fields.yml: keyword
    "rpc.cred.stamp": _LONG,
    "rpc.cred.machinename": _KW,
    "host.hostname": _KW,
    "user.id": _KW,
    "group.id": _KW,
}
