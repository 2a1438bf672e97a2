"""Real Thrift RPC traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/thrift_real.py [--out DIR]

Servers: thriftpy2 ``TThreadedServer``\\ s serving the services of
``thrift_idl/store.thrift`` (which includes ``base.thrift``: structs, lists,
maps, sets, an enum, declared exceptions, oneway methods, a service that
extends another) on ports 19090-19095, one per combination:

====== ============ ========== =========================================
port   protocol     transport  client
====== ============ ========== =========================================
19090  binary       buffered   thriftpy2 (strict headers)
19091  compact      framed     thriftpy2
19092  binary       framed     thriftpy2
19093  compact      buffered   thriftpy2
19094  binary       buffered   Apache Thrift, old non-strict headers both ways
                               (server: strict_read/strict_write off),
                               seqids counting up, ONEWAY message type
19095  compact      framed     Apache Thrift ``TMultiplexedProtocol``
                               (``Store:ping``, ``Counter:incr``) against a
                               thriftpy2 ``TMultiplexedProcessor``
====== ============ ========== =========================================

Every call's truth is written from the client side: the client port, the
method, the arguments as the client passed them, and the result it read
back, or the exception it caught (a declared exception with its fields, or a
TApplicationException with message and type); oneway calls have neither.
Apache Thrift's Python package needs generated code for services, so its
client here writes and reads the messages with Apache's protocol classes
field by field (``ApacheClient``).

The script refuses to write the files unless tcpdump reported no drops and
every client connection appears in the capture.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_client, make_server
from thriftpy2.thrift import TApplicationException, TMultiplexedProcessor, TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory

from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams

HERE = Path(__file__).resolve().parent
IDL = HERE / "thrift_idl" / "store.thrift"
HOST = "127.0.0.1"
PORTS = range(19090, 19096)
MAX_PCAP_BYTES = 400_000

store = thriftpy2.load(str(IDL), module_name="store_thrift")
base = store.base


# --------------------------------------------------------------------------- servers

class StoreHandler:
    def __init__(self) -> None:
        self.items: dict[int, object] = {}
        self.log_lines: list[str] = []

    def ping(self, msg):
        return "pong: " + msg

    def log(self, line, level):
        self.log_lines.append(line)

    def get(self, id):
        if id < 0:
            raise store.InvalidArg(why="id must be >= 0, got %d" % id)
        if id not in self.items:
            raise base.NotFound(key="item/%d" % id, code=404)
        return self.items[id]

    def put(self, item):
        self.items[item.id] = item
        return item.id

    def search(self, query, limit, filters):
        found = [it for it in self.items.values() if query in it.name][:limit]
        return store.Page(items=found, total=len(found), cursor="next-" + query if found else None)

    def clear(self):
        self.items.clear()

    def touch(self, id):
        pass

    def tags(self, only):
        return {t for it in self.items.values() for t in it.tags if not only or t in only}

    def buckets(self, ks):
        return {k: [k * 10 + i for i in range(k % 4)] for k in ks}

    def crash(self, x):
        raise TApplicationException(TApplicationException.INTERNAL_ERROR, "crash: refused x=%d" % x)

    def ratio(self, a, b, scale):
        return a / b * scale


class CounterHandler:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def incr(self, name, by):
        self.counts[name] = self.counts.get(name, 0) + by
        return self.counts[name]

    def total(self):
        return sum(self.counts.values())


def serve(server) -> threading.Thread:
    t = threading.Thread(target=server.serve, daemon=True)
    t.start()
    return t


def start_servers(handler: StoreHandler, counter: CounterHandler) -> None:
    combos = {
        19090: (TBinaryProtocolFactory(), TBufferedTransportFactory()),
        19091: (TCompactProtocolFactory(), TFramedTransportFactory()),
        19092: (TBinaryProtocolFactory(), TFramedTransportFactory()),
        19093: (TCompactProtocolFactory(), TBufferedTransportFactory()),
        19094: (TBinaryProtocolFactory(strict_read=False, strict_write=False), TBufferedTransportFactory()),
    }
    for port, (proto, trans) in combos.items():
        serve(make_server(store.Store, handler, HOST, port, proto_factory=proto, trans_factory=trans))
    mux = TMultiplexedProcessor()
    mux.register_processor("Store", TProcessor(store.Store, handler))
    mux.register_processor("Counter", TProcessor(store.Counter, counter))
    server = make_server(store.Store, handler, HOST, 19095, proto_factory=TCompactProtocolFactory(),
                         trans_factory=TFramedTransportFactory())
    server.processor = mux
    serve(server)
    for port in PORTS:
        for _ in range(100):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("server on port %d did not start" % port)


# --------------------------------------------------------------------------- truth

def jsonable(v):
    """A value as the client passed or received it, in JSON: structs as
    {"struct": name, "fields": {name: value}} (unset fields left out), sets
    as {"set": [...]} and maps as {"map": [[k, v], ...]} in the order the
    client serialised them, bytes as {"bytes": hex}."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, (set, frozenset)):
        return {"set": [jsonable(x) for x in v]}
    if isinstance(v, dict):
        return {"map": [[jsonable(k), jsonable(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if hasattr(v, "thrift_spec"):
        return {"struct": type(v).__name__,
                "fields": {spec[1]: jsonable(getattr(v, spec[1])) for _fid, spec in sorted(v.thrift_spec.items())
                           if getattr(v, spec[1], None) is not None}}
    raise TypeError("unexpected value %r" % (v,))


def client_port_of(obj) -> int:
    """The local port of the socket under a thriftpy2 client or transport."""
    seen = 0
    while seen < 10:
        sock = getattr(obj, "sock", None)
        if isinstance(sock, socket.socket):
            return sock.getsockname()[1]
        for attr in ("_iprot", "trans", "_trans", "handle"):
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
                break
        seen += 1
    raise RuntimeError("no socket found")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.ports: set[int] = set()

    def call(self, case: str, client, port: int, cport: int, service: str, method: str, *args,
             oneway: bool = False, protocol: str, transport: str, client_lib: str, sent_as: str = ""):
        rec = {"case": case, "client_ip": HOST, "client_port": cport, "server_ip": HOST, "server_port": port,
               "protocol": protocol, "transport": transport, "client": client_lib,
               "service": service, "method": method, "sent_as": sent_as or method,
               "args": [jsonable(a) for a in args], "oneway": oneway}
        self.ports.add(cport)
        try:
            result = getattr(client, method)(*args)
        except TApplicationException as e:
            rec["app_exception"] = {"message": e.message, "type": e.type}
        except Exception as e:  # a declared exception, as the client raised it
            if not hasattr(e, "thrift_spec"):
                raise
            rec["exception"] = jsonable(e)
        else:
            if not oneway:
                rec["result"] = jsonable(result)
        self.calls.append(rec)


# --------------------------------------------------------------------------- Apache Thrift client

class ApacheClient:
    """Calls through Apache Thrift's protocol classes (``thrift`` package),
    one method at a time with its arguments' ids and types given by hand
    (the package has no IDL loader: its services come from generated code)."""

    def __init__(self, port: int, strict: bool = True, compact: bool = False, framed: bool = False,
                 service: str = ""):
        from thrift.protocol import TBinaryProtocol, TCompactProtocol, TMultiplexedProtocol
        from thrift.transport import TSocket, TTransport
        sock = TSocket.TSocket(HOST, port)
        self.trans = TTransport.TFramedTransport(sock) if framed else TTransport.TBufferedTransport(sock)
        self.trans.open()
        self.sock = sock.handle
        if compact:
            proto = TCompactProtocol.TCompactProtocol(self.trans)
        else:
            proto = TBinaryProtocol.TBinaryProtocol(self.trans, strictRead=strict, strictWrite=strict)
        self.iprot = proto
        self.oprot = TMultiplexedProtocol.TMultiplexedProtocol(proto, service) if service else proto
        self.seqid = 0
        self.methods: dict[str, tuple] = {}

    def define(self, name: str, args: list[tuple[int, int]], result: int | None, oneway: bool = False) -> None:
        """``args``: [(field id, TType)]; ``result``: the TType of field 0 (None: void)."""
        self.methods[name] = (args, result, oneway)

    def _write(self, t: int, v) -> None:
        from thrift.Thrift import TType
        p = self.oprot
        {TType.STRING: p.writeString, TType.I64: p.writeI64, TType.I32: p.writeI32, TType.I16: p.writeI16,
         TType.DOUBLE: p.writeDouble, TType.BOOL: p.writeBool}[t](v)

    def __getattr__(self, name):
        if name not in self.methods:
            raise AttributeError(name)
        return lambda *a: self._call(name, *a)

    def _call(self, name: str, *values):
        from thrift.Thrift import TApplicationException as AppExc
        from thrift.Thrift import TMessageType, TType
        args, result, oneway = self.methods[name]
        self.seqid += 1
        p = self.oprot
        p.writeMessageBegin(name, TMessageType.ONEWAY if oneway else TMessageType.CALL, self.seqid)
        p.writeStructBegin(name + "_args")
        for (fid, t), v in zip(args, values):
            p.writeFieldBegin("", t, fid)
            self._write(t, v)
            p.writeFieldEnd()
        p.writeFieldStop()
        p.writeStructEnd()
        p.writeMessageEnd()
        self.trans.flush()
        if oneway:
            return None
        ip = self.iprot
        _fname, mtype, rseqid = ip.readMessageBegin()
        if rseqid != self.seqid:
            raise RuntimeError("seqid %d answered %d" % (self.seqid, rseqid))
        if mtype == TMessageType.EXCEPTION:
            x = AppExc()
            x.read(ip)
            ip.readMessageEnd()
            raise TApplicationException(x.type, x.message)
        value = None
        ip.readStructBegin()
        while True:
            _n, ftype, fid = ip.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 0 and ftype == result:
                value = {TType.STRING: ip.readString, TType.I64: ip.readI64, TType.I32: ip.readI32,
                         TType.DOUBLE: ip.readDouble, TType.BOOL: ip.readBool}[ftype]()
            else:
                ip.skip(ftype)
            ip.readFieldEnd()
        ip.readStructEnd()
        ip.readMessageEnd()
        return value

    def close(self) -> None:
        self.trans.close()


# --------------------------------------------------------------------------- scenarios

def item(i: int, name: str, **kw):
    return base.Item(id=i, name=name, price=kw.pop("price", 9.99), tags=kw.pop("tags", ["new", "sale"]),
                     attrs=kw.pop("attrs", {"weight": 120, "stock": -3}), codes=kw.pop("codes", {7, 3, 11}),
                     flags=kw.pop("flags", 5), **kw)


def thriftpy2_session(rec: Recorder, port: int, proto_name: str, trans_name: str) -> None:
    proto = TBinaryProtocolFactory() if proto_name == "binary" else TCompactProtocolFactory()
    trans = TBufferedTransportFactory() if trans_name == "buffered" else TFramedTransportFactory()
    c = make_client(store.Store, HOST, port, proto_factory=proto, trans_factory=trans, timeout=5000)
    cport = client_port_of(c)
    case = "thriftpy2 %s %s" % (proto_name, trans_name)
    kw = dict(protocol=proto_name, transport="framed" if trans_name == "framed" else "socket",
              client_lib="thriftpy2 " + thriftpy2.__version__)

    def call(service, method, *args, oneway=False):
        rec.call(case, c, port, cport, service, method, *args, oneway=oneway, **kw)

    call("Health", "ping", "hello %d" % port)
    call("Store", "put", item(port, "apple-%d" % port, active=True, color=base.Color.GREEN))
    call("Store", "put", item(port + 1, "apple pie", price=-0.5, tags=[], attrs={}, codes=set(),
                              blob=b"\x00\xffbinary\x80", flags=-2))
    call("Store", "get", port)
    call("Store", "get", 404)                      # declared exception NotFound
    call("Store", "get", -7)                       # declared exception InvalidArg (field 2)
    call("Store", "search", "apple", 10, {"color": "green", "sort": "price"})
    call("Health", "log", "line from %d" % port, 3, oneway=True)
    call("Store", "tags", {"sale", "new", "none"})
    call("Store", "buckets", [1, 2, 3, 5])
    call("Store", "touch", port, oneway=True)
    call("Store", "crash", 7)                      # TApplicationException (EXCEPTION message)
    call("Store", "ratio", 1.0, 3.0, 2)
    call("Store", "put", item(port + 2, "long " + "x" * 300, tags=["t%d" % i for i in range(20)],
                              attrs={"k%02d" % i: i for i in range(18)}))
    if port in (19090, 19091):
        # a call larger than a loopback segment (64 KiB): read across segments
        call("Store", "put", item(port + 3, "big-" + "z" * 90_000, tags=["tag%04d" % i for i in range(3000)]))
    call("Store", "clear")
    c.close()


def apache_sessions(rec: Recorder) -> None:
    from importlib.metadata import version
    from thrift.Thrift import TType
    lib = "apache thrift " + version("thrift")
    # old non-strict binary headers, buffered, seqids counting up
    c = ApacheClient(19094, strict=False)
    c.define("ping", [(1, TType.STRING)], TType.STRING)
    c.define("log", [(1, TType.STRING), (2, TType.I32)], None, oneway=True)
    c.define("ratio", [(1, TType.DOUBLE), (2, TType.DOUBLE), (3, TType.I16)], TType.DOUBLE)
    c.define("get", [(1, TType.I64)], TType.STRUCT)
    c.define("crash", [(1, TType.I32)], TType.I32)
    cport = c.sock.getsockname()[1]
    kw = dict(protocol="binary", transport="socket", client_lib=lib)
    case = "apache non-strict binary"
    rec.call(case, c, 19094, cport, "Health", "ping", "old header", **kw)
    rec.call(case, c, 19094, cport, "Health", "log", "apache oneway", 1, oneway=True, **kw)
    rec.call(case, c, 19094, cport, "Store", "ratio", 10.0, 4.0, -1, **kw)
    rec.call(case, c, 19094, cport, "Store", "crash", -1, **kw)
    rec.call(case, c, 19094, cport, "Health", "ping", "after crash", **kw)
    c.close()
    # multiplexed, compact, framed
    for service, calls in (("Store", [("ping", [(1, TType.STRING)], TType.STRING, ("mux",))]),
                           ("Counter", [("incr", [(1, TType.STRING), (2, TType.I64)], TType.I64, ("hits", 5)),
                                        ("incr", [(1, TType.STRING), (2, TType.I64)], TType.I64, ("hits", -2)),
                                        ("total", [], TType.I64, ())])):
        c = ApacheClient(19095, compact=True, framed=True, service=service)
        cport = c.sock.getsockname()[1]
        for name, args, result, values in calls:
            c.define(name, args, result)
            rec.call("apache multiplexed compact framed", c, 19095, cport, service, name, *values,
                     protocol="compact", transport="framed", client_lib=lib, sent_as=service + ":" + name)
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE.parent / "pcaps"))
    opts = ap.parse_args()
    out = Path(opts.out)
    exe = find_tcpdump()
    handler, counter = StoreHandler(), CounterHandler()
    start_servers(handler, counter)
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "thrift_real.pcap"
        proc = start_tcpdump(exe, pcap, "tcp portrange %d-%d" % (PORTS[0], PORTS[-1]))
        try:
            thriftpy2_session(rec, 19090, "binary", "buffered")
            thriftpy2_session(rec, 19091, "compact", "framed")
            thriftpy2_session(rec, 19092, "binary", "framed")
            thriftpy2_session(rec, 19093, "compact", "buffered")
            apache_sessions(rec)
            time.sleep(0.3)
        finally:
            report = stop_tcpdump(proc)
        # with server port 0 every stream is keyed by its destination port: the
        # client ports are the destinations of the replies
        streams, frames = tcp_streams(pcap, 0)
        missing = rec.ports - {port for (port, _to), segs in streams.items() if segs}
        if missing:
            sys.exit("client ports missing from the capture: %s" % sorted(missing))
        size = pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            sys.exit("capture too large: %d bytes" % size)
        out.mkdir(parents=True, exist_ok=True)
        (out / "thrift_real.pcap").write_bytes(pcap.read_bytes())
    truth = {"idl": "tests/golden/gen/thrift_idl/store.thrift", "calls": rec.calls}
    (out / "thrift_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print("%d calls, %d frames, %d bytes; %s" % (len(rec.calls), frames, size, report.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
