"""Hand-built ONC-RPC / NFS messages for the NFS analyser's tests (XDR written
out field by field, independently of the parser)."""
from __future__ import annotations

import struct

OPS = {"ACCESS": 3, "CLOSE": 4, "COMMIT": 5, "CREATE": 6, "GETATTR": 9, "GETFH": 10,
       "LOOKUP": 15, "NVERIFY": 17, "OPEN": 18, "PUTFH": 22, "PUTROOTFH": 24, "READ": 25,
       "READDIR": 26, "READLINK": 27, "REMOVE": 28, "RENEW": 30, "SAVEFH": 32, "SECINFO": 33,
       "WRITE": 38, "EXCHANGE_ID": 42, "SEQUENCE": 53, "ILLEGAL": 10044}


def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def opaque(b: bytes) -> bytes:
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def unix_cred(stamp=7, machine=b"client1", uid=1000, gid=100, gids=(100, 27)) -> bytes:
    body = u32(stamp) + opaque(machine) + u32(uid) + u32(gid) + u32(len(gids)) + \
        b"".join(u32(g) for g in gids)
    return u32(1) + opaque(body)


NO_AUTH = u32(0) + opaque(b"")


def call(xid: int, proc: int, args: bytes = b"", vers: int = 3, prog: int = 100003,
         cred: bytes | None = None) -> bytes:
    return u32(xid) + u32(0) + u32(2) + u32(prog) + u32(vers) + u32(proc) + \
        (unix_cred() if cred is None else cred) + NO_AUTH + args


def v4_op_args(name: str) -> bytes:
    """Arguments of an operation (only what the skipped ones need to be right)."""
    if name in ("PUTFH",):
        return opaque(b"\x01" * 28)
    if name in ("LOOKUP", "SECINFO", "REMOVE"):
        return opaque(b"name")
    if name == "GETATTR":
        return u32(2) + u32(0x18) + u32(0x2)
    if name == "NVERIFY":
        return u32(1) + u32(0x18) + opaque(b"\0" * 12)
    if name == "RENEW":
        return b"\0" * 8
    if name == "SEQUENCE":
        return b"\x05" * 16 + u32(1) + u32(0) + u32(0) + u32(0)
    if name == "READ":
        return b"\0" * 16 + b"\0" * 8 + u32(4096)
    return b""


def compound(xid: int, ops: list, tag: bytes = b"", minor: int = 0, cred: bytes | None = None) -> bytes:
    body = opaque(tag) + u32(minor) + u32(len(ops))
    for op in ops:
        code = OPS[op] if isinstance(op, str) else op
        body += u32(code) + (v4_op_args(op) if isinstance(op, str) else b"")
    return call(xid, 1, body, vers=4, cred=cred)


def reply(xid: int, status: int | None = 0, accept: int = 0, body: bytes = b"") -> bytes:
    msg = u32(xid) + u32(1) + u32(0) + NO_AUTH + u32(accept)
    if status is not None:
        msg += u32(status)
    return msg + body


def denied(xid: int, reject: int = 1, auth_stat: int = 5) -> bytes:
    return u32(xid) + u32(1) + u32(1) + u32(reject) + u32(auth_stat)


def record(msg: bytes, fragments: int = 1) -> bytes:
    """``msg`` with record marking, cut into ``fragments`` fragments."""
    if fragments <= 1:
        return u32(0x80000000 | len(msg)) + msg
    step = max(1, len(msg) // fragments)
    cuts = [i * step for i in range(fragments)] + [len(msg)]
    out = b""
    for i in range(fragments):
        part = msg[cuts[i]:cuts[i + 1]]
        out += u32((0x80000000 if i == fragments - 1 else 0) | len(part)) + part
    return out
