"""Real NFS traffic (NFS-Ganesha server, libnfs and a small ONC-RPC client),
captured with tcpdump inside a network namespace of its own.

Usage (from the repository root, as root: it creates a network namespace)::

    .venv/bin/python tests/golden/gen/nfs_real.py [--out DIR] [--netns nfs-pbgen]

What it does:

- creates the network namespace (``ip netns add``; its loopback only) and, inside
  it, a mount namespace with a private ``/run`` (rpcbind's socket), starts
  ``rpcbind`` and ``ganesha.nfsd`` (FSAL VFS, NFSv3 and NFSv4, TCP and UDP,
  NFS on the standard port 2049, MOUNT on 20048) in it, exporting a fresh
  temporary directory, and ``tcpdump -i lo 'port 2049'`` in it;
- drives the server with this script's own ONC-RPC client (``RpcClient``:
  record marking over TCP, one datagram per message over UDP, AUTH_UNIX or
  AUTH_NONE) so that every call is known exactly: NFSv3 over TCP (NULL,
  GETATTR, FSINFO, ACCESS, LOOKUP, a LOOKUP of a missing name ->
  NFS3ERR_NOENT, CREATE, WRITE sent as a record of three fragments, READ,
  READDIR, MKDIR, RMDIR, REMOVE, an unknown procedure -> PROC_UNAVAIL, NFS
  version 5 -> PROG_MISMATCH, a MOUNT-program call on the NFS port, a call
  with an empty machine name, AUTH_NONE calls), NFSv3 over UDP (NULL,
  GETATTR, LOOKUP, a missing name, READ, a MOUNT-program call), NFSv4.0
  COMPOUNDs (NULL, PUTROOTFH+GETFH, LOOKUP, READDIR, a missing name ->
  NFS4ERR_NOENT, ACCESS, READ) and NFSv4.1 (EXCHANGE_ID, CREATE_SESSION,
  SEQUENCE compounds: GETATTR, READDIR, CREATE of a directory, REMOVE, a
  missing name, READ, DESTROY_SESSION, DESTROY_CLIENTID);
- then runs libnfs's command-line clients (``nfs-ls``, ``nfs-cat``, ``nfs-cp``
  of libnfs-utils) against the same server over NFSv3 and NFSv4 (listing,
  reading, writing a file, reading a missing file).

The truth file is written from the client side: for every call of the own
client, what it sent (transport, client port, xid, program, version,
procedure, NFSv4 operations, tag, minor version, credentials, message size,
fragments) and what it read back (reply and accept status, NFS status, reply
size); for every libnfs command its URL, exit status and output digest.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump  # noqa: E402

NFS_PORT = 2049
MNT_PORT = 20048
NFS_PROG = 100003
MOUNT_PROG = 100005
MAX_PCAP_BYTES = 400_000


# --- XDR encoding (client side) ---------------------------------------------------------

def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def u64(v: int) -> bytes:
    return struct.pack("!Q", v)


def opaque(b: bytes) -> bytes:
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def string(s: str) -> bytes:
    return opaque(s.encode())


class Reader:
    def __init__(self, data: bytes, off: int = 0):
        self.d, self.o = data, off

    def u32(self) -> int:
        v = struct.unpack_from("!I", self.d, self.o)[0]
        self.o += 4
        return v

    def u64(self) -> int:
        v = struct.unpack_from("!Q", self.d, self.o)[0]
        self.o += 8
        return v

    def fixed(self, n: int) -> bytes:
        b = self.d[self.o:self.o + n]
        self.o += (n + 3) & ~3
        return b

    def opaque(self) -> bytes:
        return self.fixed(self.u32())


# --- ONC-RPC client -----------------------------------------------------------------------

class RpcClient:
    """Sends RPC calls and reads the replies; records both in ``truth``."""

    def __init__(self, transport: str, host: str, port: int, truth: list, machinename="pbgen-nfs",
                 uid=0, gid=0, gids=(0, 1, 4)):
        self.transport = transport
        self.truth = truth
        self.machinename, self.uid, self.gid, self.gids = machinename, uid, gid, list(gids)
        self.stamp = random.randrange(1, 1 << 31)
        if transport == "tcp":
            self.sock = socket.create_connection((host, port), timeout=10)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.settimeout(10)
            self.sock.connect((host, port))
        self.port = self.sock.getsockname()[1]
        self.xid = random.randrange(1, 1 << 31)

    def close(self):
        self.sock.close()

    def _cred(self, auth: str) -> bytes:
        if auth == "none":
            return u32(0) + opaque(b"")
        body = u32(self.stamp) + string(self.machinename) + u32(self.uid) + u32(self.gid) + \
            u32(len(self.gids)) + b"".join(u32(g) for g in self.gids)
        return u32(1) + opaque(body)

    def call(self, prog: int, vers: int, proc: int, args: bytes = b"", auth: str = "unix",
             fragments: int = 1, info: dict | None = None) -> tuple[int, Reader | None, dict]:
        """One call; returns (accept_stat or -1 when denied, reader at the result, truth entry)."""
        self.xid = (self.xid + 1) & 0xFFFFFFFF
        xid = self.xid
        msg = u32(xid) + u32(0) + u32(2) + u32(prog) + u32(vers) + u32(proc) + self._cred(auth) + \
            u32(0) + opaque(b"") + args
        if self.transport == "tcp":
            out = b""
            cuts = [0] + sorted(random.sample(range(1, len(msg)), fragments - 1)) + [len(msg)] \
                if fragments > 1 else [0, len(msg)]
            for i in range(len(cuts) - 1):
                part = msg[cuts[i]:cuts[i + 1]]
                last = 0x80000000 if i == len(cuts) - 2 else 0
                out += u32(last | len(part)) + part
            self.sock.sendall(out)
            reply = self._read_record()
        else:
            self.sock.send(msg)
            reply = self.sock.recv(65536)
        entry = {"transport": self.transport, "client_port": self.port, "xid": xid, "prog": prog,
                 "vers": vers, "proc": proc, "auth": auth, "call_size": len(msg), "fragments": fragments}
        if auth == "unix":
            entry.update(stamp=self.stamp, machinename=self.machinename, uid=self.uid, gid=self.gid,
                         gids=list(self.gids))
        if info:
            entry.update(info)
        r = Reader(reply)
        rxid, mtype, rstat = r.u32(), r.u32(), r.u32()
        assert rxid == xid and mtype == 1, (rxid, xid, mtype)
        res = {"size": len(reply), "reply_stat": rstat}
        entry["reply"] = res
        self.truth.append(entry)
        if rstat != 0:
            res["reject_stat"] = r.u32()
            return -1, None, entry
        r.u32()
        r.opaque()                    # verifier
        astat = r.u32()
        res["accept_stat"] = astat
        if astat == 0 and r.o + 4 <= len(reply):
            res["status"] = struct.unpack_from("!I", reply, r.o)[0]
        return astat, r, entry

    def _read_record(self) -> bytes:
        data = b""
        while True:
            hdr = self._recv(4)
            word = struct.unpack("!I", hdr)[0]
            data += self._recv(word & 0x7FFFFFFF)
            if word & 0x80000000:
                return data

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf


# --- NFSv3 ----------------------------------------------------------------------------------

V3 = {"NULL": 0, "GETATTR": 1, "LOOKUP": 3, "ACCESS": 4, "READ": 6, "WRITE": 7, "CREATE": 8,
      "MKDIR": 9, "REMOVE": 12, "RMDIR": 13, "READDIR": 16, "FSINFO": 19}

SATTR_NONE = u32(0) * 4 + u32(0) + u32(0)          # mode/uid/gid/size not set, atime/mtime DONT_CHANGE
SATTR_MODE = u32(1) + u32(0o644) + u32(0) * 3 + u32(0) + u32(0)


def v3(c: RpcClient, name: str, args: bytes = b"", **kw):
    return c.call(NFS_PROG, 3, V3[name], args, info={"op": name}, **kw)


def mount_root(host: str, export: str) -> bytes:
    """MOUNT v3 MNT over TCP to mountd (not on the captured port)."""
    scratch: list = []
    m = RpcClient("tcp", host, MNT_PORT, scratch)
    astat, r, _ = m.call(MOUNT_PROG, 3, 1, string(export))
    assert astat == 0
    assert r.u32() == 0, "MNT failed"
    fh = r.opaque()
    m.close()
    return fh


def v3_session(c: RpcClient, root: bytes, udp: bool = False) -> None:
    v3(c, "NULL")
    v3(c, "GETATTR", opaque(root))
    st, r, _ = v3(c, "LOOKUP", opaque(root) + string("hello.txt"))
    assert st == 0 and r.u32() == 0
    hello = r.opaque()
    e = v3(c, "LOOKUP", opaque(root) + string("no-such-file"))[2]
    assert e["reply"]["status"] == 2, e             # NFS3ERR_NOENT
    v3(c, "READ", opaque(hello) + u64(0) + u32(4096))
    if udp:
        return
    v3(c, "FSINFO", opaque(root))
    v3(c, "ACCESS", opaque(hello) + u32(0x3F))
    v3(c, "READDIR", opaque(root) + u64(0) + b"\0" * 8 + u32(4096))
    st, r, e = v3(c, "CREATE", opaque(root) + string("pbgen-new.bin") + u32(0) + SATTR_MODE)
    assert st == 0 and r.u32() == 0 and r.u32() == 1, e
    newfh = r.opaque()
    data = bytes(random.getrandbits(8) for _ in range(3000))
    e = v3(c, "WRITE", opaque(newfh) + u64(0) + u32(len(data)) + u32(2) + opaque(data), fragments=3)[2]
    assert e["reply"]["status"] == 0, e
    e = v3(c, "READ", opaque(newfh) + u64(0) + u32(len(data)))[2]
    big = bytes(random.getrandbits(8) for _ in range(80000))    # more than the analyser keeps of a call
    v3(c, "WRITE", opaque(newfh) + u64(len(data)) + u32(len(big)) + u32(0) + opaque(big))
    v3(c, "READ", opaque(newfh) + u64(len(data)) + u32(len(big)))
    e = v3(c, "CREATE", opaque(root) + string("pbgen-new.bin") + u32(2) + b"verifier")[2]   # EXCLUSIVE
    e = v3(c, "MKDIR", opaque(root) + string("pbgen-dir") + SATTR_NONE)[2]
    e = v3(c, "MKDIR", opaque(root) + string("pbgen-dir") + SATTR_NONE)[2]     # NFS3ERR_EXIST
    v3(c, "RMDIR", opaque(root) + string("pbgen-dir"))
    v3(c, "REMOVE", opaque(root) + string("pbgen-new.bin"))
    v3(c, "REMOVE", opaque(root) + string("pbgen-new.bin"))                     # NOENT
    c.call(NFS_PROG, 3, 22, b"", info={"op": "ILLEGAL"})                       # PROC_UNAVAIL
    c.call(NFS_PROG, 5, 1, opaque(root), info={"op": None})                    # PROG_MISMATCH
    # AUTH_NONE
    c.call(NFS_PROG, 3, 0, b"", auth="none", info={"op": "NULL"})
    c.call(NFS_PROG, 3, 1, opaque(root), auth="none", info={"op": "GETATTR"})
    # an empty machine name
    name = c.machinename
    c.machinename = ""
    v3(c, "GETATTR", opaque(root))
    c.machinename = name


# --- NFSv4 -------------------------------------------------------------------------------------

OP = {"ACCESS": 3, "CREATE": 6, "GETATTR": 9, "GETFH": 10, "LOOKUP": 15, "PUTFH": 22,
      "PUTROOTFH": 24, "READ": 25, "READDIR": 26, "REMOVE": 28, "EXCHANGE_ID": 42,
      "CREATE_SESSION": 43, "DESTROY_SESSION": 44, "SEQUENCE": 53, "DESTROY_CLIENTID": 57,
      "RECLAIM_COMPLETE": 58}


class V4:
    def __init__(self, c: RpcClient, minor: int):
        self.c, self.minor = c, minor
        self.session = None
        self.seq = 0

    def compound(self, tag: str, ops: list[tuple[str, bytes]]):
        if self.session is not None:
            self.seq += 1
            ops = [("SEQUENCE", self.session + u32(self.seq) + u32(0) + u32(0) + u32(0))] + ops
        args = string(tag) + u32(self.minor) + u32(len(ops)) + b"".join(u32(OP[n]) + a for n, a in ops)
        st, r, e = self.c.call(NFS_PROG, 4, 1, args,
                               info={"ops": [n for n, _ in ops], "tag": tag, "minor": self.minor})
        results = {}
        if st == 0:
            status = r.u32()
            r.opaque()                              # tag
            for _ in range(r.u32()):
                op, ost = r.u32(), r.u32()
                if ost != 0:
                    break
                if op == OP["GETFH"]:
                    results["fh"] = r.opaque()
                elif op == OP["SEQUENCE"]:
                    r.fixed(16)
                    for _ in range(5):
                        r.u32()
                elif op == OP["EXCHANGE_ID"]:
                    results["clientid"] = r.fixed(8)
                    results["seqid"] = r.u32()
                    break
                elif op == OP["CREATE_SESSION"]:
                    results["session"] = r.fixed(16)
                    break
                elif op in (OP["PUTROOTFH"], OP["PUTFH"], OP["LOOKUP"], OP["REMOVE"],
                            OP["DESTROY_SESSION"], OP["DESTROY_CLIENTID"], OP["RECLAIM_COMPLETE"]):
                    if op == OP["REMOVE"]:
                        break
                    continue
                else:
                    break
            e["reply"]["compound_status"] = status
        return results, e

    def null(self):
        self.c.call(NFS_PROG, 4, 0, b"", info={"op": "NULL"})


def v4_session(c: RpcClient, minor: int) -> None:
    s = V4(c, minor)
    s.null()
    if minor == 1:
        owner = b"pbgen-nfs-%d" % os.getpid()
        res, _ = s.compound("exchange", [("EXCHANGE_ID", b"\x01" * 8 + opaque(owner) + u32(0) + u32(0)
                                          + u32(0))])
        chan = u32(0) + u32(1048576) + u32(1048576) + u32(8192) + u32(8) + u32(16) + u32(0)
        res, _ = s.compound("session", [("CREATE_SESSION", res["clientid"] + u32(res["seqid"]) + u32(0)
                                         + chan + chan + u32(0x40000000) + u32(1) + u32(0))])
        s.session = res["session"]
        s.compound("reclaim", [("RECLAIM_COMPLETE", u32(0))])
    bitmap = u32(2) + u32(0x0010011A) + u32(0x00B0A23A)
    res, _ = s.compound("root", [("PUTROOTFH", b""), ("GETFH", b"")])
    res, _ = s.compound("lookup", [("PUTROOTFH", b""), ("LOOKUP", string("export")), ("GETFH", b""),
                                   ("GETATTR", bitmap)])
    export = res["fh"]
    s.compound("readdir", [("PUTFH", opaque(export)), ("READDIR", u64(0) + b"\0" * 8 + u32(4096) + u32(8192)
                                                                   + u32(1) + u32(0x0010011A))])
    _, e = s.compound("missing", [("PUTFH", opaque(export)), ("LOOKUP", string("no-such-file")),
                                  ("GETFH", b"")])
    assert e["reply"]["compound_status"] == 2, e        # NFS4ERR_NOENT
    res, _ = s.compound("open", [("PUTFH", opaque(export)), ("LOOKUP", string("hello.txt")), ("GETFH", b"")])
    hello = res["fh"]
    s.compound("access", [("PUTFH", opaque(hello)), ("ACCESS", u32(0x3F))])
    s.compound("read", [("PUTFH", opaque(hello)), ("READ", b"\0" * 16 + u64(0) + u32(4096))])
    s.compound("", [("PUTFH", opaque(export)), ("CREATE", u32(2) + string("pbgen-dir4-%d" % minor)
                                                       + u32(0) + opaque(b""))])
    s.compound("remove", [("PUTFH", opaque(export)), ("REMOVE", string("pbgen-dir4-%d" % minor))])
    s.compound("getattr", [("PUTFH", opaque(export)), ("GETATTR", bitmap)])
    if minor == 1:
        sess = s.session
        s.session = None
        s.compound("destroy", [("DESTROY_SESSION", sess)])


# --- libnfs command-line clients -----------------------------------------------------------------

def run_libnfs(host: str, workdir: Path) -> list[dict]:
    out = []
    src = workdir / "upload.txt"
    src.write_bytes(b"written by nfs-cp over NFS\n" * 20)
    cmds = [
        (3, ["nfs-ls", "nfs://%s/EXPORT/" % host]),
        (3, ["nfs-cat", "nfs://%s/EXPORT/hello.txt" % host]),
        (3, ["nfs-cp", str(src), "nfs://%s/EXPORT/pbgen-cp3.txt" % host]),
        (3, ["nfs-cat", "nfs://%s/EXPORT/no-such-file" % host]),
        (4, ["nfs-ls", "nfs://%s/export/?version=4" % host]),
        (4, ["nfs-cat", "nfs://%s/export/hello.txt?version=4" % host]),
        (4, ["nfs-cp", str(src), "nfs://%s/export/pbgen-cp4.txt?version=4" % host]),
        (4, ["nfs-cat", "nfs://%s/export/no-such-file?version=4" % host]),
    ]
    for vers, cmd in cmds:
        cmd = [a.replace("/EXPORT", str(EXPORT_DIR)) for a in cmd]
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        out.append({"version": vers, "cmd": cmd[0], "url": cmd[-1], "rc": p.returncode,
                    "stdout_sha256": hashlib.sha256(p.stdout).hexdigest(), "stdout_len": len(p.stdout)})
        time.sleep(0.2)
    return out


# --- server -----------------------------------------------------------------------------------------

EXPORT_DIR = Path("/")

GANESHA_CONF = """
NFS_CORE_PARAM {
    NFS_Port = %(nfs)d; MNT_Port = %(mnt)d; NLM_Port = 32803; Rquota_Port = 875;
    Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3, 4;
}
NFSV4 { Graceless = true; Lease_Lifetime = 15; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
    Export_Id = 1; Path = %(path)s; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash;
    SecType = sys; Transports = TCP, UDP; Protocols = 3, 4;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
"""


def versions() -> dict:
    def pkg(name):
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
        return p.stdout.strip()
    return {"nfs-ganesha": pkg("nfs-ganesha"), "nfs-ganesha-vfs": pkg("nfs-ganesha-vfs"),
            "libnfs-utils": pkg("libnfs-utils"), "rpcbind": pkg("rpcbind"),
            "python": sys.version.split()[0]}


def inside(args) -> None:
    """Runs in the network namespace: servers, capture, clients."""
    global EXPORT_DIR
    work = Path(tempfile.mkdtemp(prefix="pbgen-nfs-"))
    EXPORT_DIR = work / "export"
    EXPORT_DIR.mkdir()
    os.chmod(EXPORT_DIR, 0o777)
    (EXPORT_DIR / "hello.txt").write_bytes(b"hello from the NFS export\n")
    conf = work / "ganesha.conf"
    conf.write_text(GANESHA_CONF % {"nfs": NFS_PORT, "mnt": MNT_PORT, "path": EXPORT_DIR})
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    procs = []
    try:
        procs.append(subprocess.Popen(["rpcbind", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        procs.append(subprocess.Popen(["ganesha.nfsd", "-F", "-f", str(conf), "-L", str(work / "ganesha.log"),
                                       "-p", str(work / "ganesha.pid")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(60):
            time.sleep(0.5)
            if "NFS SERVER INITIALIZED" in (work / "ganesha.log").read_text(errors="replace") \
                    if (work / "ganesha.log").exists() else False:
                break
        else:
            sys.exit("ganesha did not start:\n" + (work / "ganesha.log").read_text(errors="replace")[-3000:])
        time.sleep(1)
        root = mount_root("127.0.0.1", str(EXPORT_DIR))
        pcap = work / "nfs_real.pcap"
        tcpdump = start_tcpdump(find_tcpdump(), pcap, "port %d" % NFS_PORT)
        calls: list = []
        c = RpcClient("tcp", "127.0.0.1", NFS_PORT, calls)
        v3_session(c, root)
        c.call(MOUNT_PROG, 3, 0, b"", info={"op": None})             # another program on the NFS port
        c.close()
        u = RpcClient("udp", "127.0.0.1", NFS_PORT, calls, machinename="pbgen-udp", uid=1000, gid=100,
                      gids=[100, 27])
        v3_session(u, root, udp=True)
        u.call(MOUNT_PROG, 3, 0, b"", info={"op": None})
        u.close()
        for minor in (0, 1):
            c = RpcClient("tcp", "127.0.0.1", NFS_PORT, calls)
            v4_session(c, minor)
            c.close()
        libnfs = run_libnfs("127.0.0.1", work)
        report = stop_tcpdump(tcpdump)
        size = pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            sys.exit("capture of %d bytes is too large" % size)
        out = Path(args.out)
        shutil.copy(pcap, out / "nfs_real.pcap")
        truth = {"generator": "tests/golden/gen/nfs_real.py", "server_port": NFS_PORT,
                 "software": versions(), "tcpdump": report.strip().splitlines()[-1:],
                 "calls": calls, "libnfs": libnfs}
        (out / "nfs_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        print("wrote %s (%d bytes), %d calls, %d libnfs commands" % (out / "nfs_real.pcap", size,
                                                                     len(calls), len(libnfs)))
        for x in libnfs:
            print(x)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "pcaps"))
    ap.add_argument("--netns", default="nfs-pbgen")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=2049)
    args = ap.parse_args()
    random.seed(args.seed)
    if args.inside:
        inside(args)
        return
    for tool in ("ip", "unshare", "rpcbind", "ganesha.nfsd", "nfs-ls"):
        if shutil.which(tool) is None:
            sys.exit("%s is needed (Debian: nfs-ganesha nfs-ganesha-vfs libnfs-utils rpcbind iproute2)" % tool)
    created = subprocess.run(["ip", "netns", "add", args.netns], capture_output=True).returncode == 0
    try:
        # a private /run too: rpcbind's socket and state files (/run/rpcbind.sock, /run/rpcbind/)
        # must not replace those of an rpcbind the host may run
        inner = [sys.executable, os.path.abspath(__file__), "--inside", "--out", os.path.abspath(args.out),
                 "--seed", str(args.seed)]
        cmd = ["ip", "netns", "exec", args.netns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs pbgen-run /run && exec "$@"', "sh", *inner]
        sys.exit(subprocess.run(cmd).returncode)
    finally:
        if created:
            subprocess.run(["ip", "netns", "delete", args.netns])


if __name__ == "__main__":
    main()
