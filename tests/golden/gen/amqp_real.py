"""Real AMQP 0-9-1 traffic on loopback, captured with tcpdump (Packetbeat's tests/system/gen idea).

Usage (from the repository root, as root or with CAP_NET_RAW for tcpdump)::

    .venv/bin/python tests/golden/gen/amqp_real.py [--out DIR] [--host 127.0.0.1] [--port 5672]

Drives two client libraries against the running RabbitMQ broker while
``tcpdump -i lo -U -w FILE 'tcp port PORT'`` captures:

- pika (BlockingConnection): exchange / queue declare (with arguments), bind,
  basic.qos, publisher confirms (confirm.select, then a basic.ack from the
  broker for every publish), messages with every content property, a
  mandatory publish nobody can route (basic.return + ack), basic.get (a
  message, then get-empty), a consumer (basic.consume, deliver, basic.ack,
  basic.cancel), basic.nack and basic.reject, purge / unbind / delete,
  transactions (tx.select / commit / rollback), and a channel error (passive
  declare of a missing queue: the broker closes the channel with 404).
- aio-pika (aiormq, pamqp): three channels of one connection used at once
  (confirm.select, queue.declare, publishes with integer headers, basic.get,
  ack, queue.delete issued together), so answers and confirms interleave.
- py-amqp (the client kombu uses): declare, exchange-to-exchange bind, JSON
  and binary messages, a body larger than a frame (two body frames), get,
  consume + ack, basic.recover, queue.delete, and a connection the broker
  refuses (virtual host that does not exist: connection.close 530).

Every name starts with ``pbpy-amqp-`` and everything declared is deleted
inside the capture. The truth file is written from the client side: each
operation records what the client sent and what its library handed back
(declare-ok counts, got / delivered bodies and tags, confirms, returns, the
reply code of the closes it received), per client port. The script refuses
to write the files unless tcpdump reported no drops and every client port's
stream to the broker is in the capture.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from importlib.metadata import version as dist_version
from pathlib import Path

import amqp
import pika
from loopcap import find_tcpdump, start_tcpdump, stop_tcpdump, tcp_streams

MAX_PCAP_BYTES = 600_000
P = "pbpy-amqp-"
BIG = 135_000          # over RabbitMQ's default frame_max (131072): two body frames


class Recorder:
    def __init__(self) -> None:
        self.txns: list[dict] = []
        self.ports: set[int] = set()

    def add(self, port: int, method: str, *, status: str = "OK", from_server: bool = False,
            fields: dict | None = None, body: bytes | None = None, **extra) -> None:
        t = {"client_port": port, "method": method, "status": status, "from_server": from_server,
             "amqp": fields or {}}
        if body is not None:
            t["body_size"] = len(body)
            t["body_head"] = body[:1000].decode("latin-1")
        t.update(extra)
        self.txns.append(t)
        self.ports.add(port)


def pika_port(conn: pika.BlockingConnection) -> int:
    return conn._impl._transport._sock.getsockname()[1]


def drive_pika(rec: Recorder, host: str, port: int) -> None:
    conn = pika.BlockingConnection(pika.ConnectionParameters(host, port, heartbeat=0))
    cp = pika_port(conn)
    ch = conn.channel()
    x, q = P + "topic", P + "q1"
    ch.exchange_declare(x, exchange_type="topic", auto_delete=True)
    rec.add(cp, "exchange.declare", fields={"exchange": x, "exchange-type": "topic", "passive": False,
                                            "durable": False, "no-wait": False})
    ok = ch.queue_declare(q, arguments={"x-message-ttl": 60000, "x-max-length": 100})
    rec.add(cp, "queue.declare", fields={"queue": ok.method.queue, "passive": False, "durable": False,
                                         "exclusive": False, "auto-delete": False, "no-wait": False,
                                         "message-count": ok.method.message_count,
                                         "consumer-count": ok.method.consumer_count,
                                         "arguments": {"x-message-ttl": 60000, "x-max-length": 100}})
    ch.queue_bind(q, x, routing_key="pb.#")
    rec.add(cp, "queue.bind", fields={"queue": q, "exchange": x, "routing-key": "pb.#", "no-wait": False})
    ch.basic_qos(prefetch_count=5)                 # connection information: hidden
    ch.confirm_delivery()
    rec.add(cp, "confirm.select", fields={"no-wait": False})
    tag = 0
    props = pika.BasicProperties(content_type="text/plain", content_encoding="", delivery_mode=2,
                                 priority=3, correlation_id="corr-1", reply_to=P + "replies",
                                 expiration="60000", message_id="msg-1", timestamp=1700000000,
                                 type="greeting", user_id="guest", app_id="amqp_real",
                                 headers={"h-str": "v", "h-int": 7, "h-bool": True})
    bodies = [b"hello pika 1", b"hello pika 2", b"hello pika 3"]
    for i, body in enumerate(bodies):
        ch.basic_publish(x, "pb.greet.%d" % i, body, properties=props if i == 0 else
                         pika.BasicProperties(content_type="text/plain", delivery_mode=1))
        fields = {"exchange": x, "routing-key": "pb.greet.%d" % i, "mandatory": False, "immediate": False,
                  "content-type": "text/plain"}
        if i == 0:
            fields.update({"delivery-mode": "persistent", "priority": 3, "correlation-id": "corr-1",
                           "reply-to": P + "replies", "expiration": "60000", "message-id": "msg-1",
                           "timestamp": "November 14 22:13:20 2023", "type": "greeting",
                           "user-id": "guest", "app-id": "amqp_real",
                           "headers": {"h-str": "v", "h-int": 7, "h-bool": True}})
        else:
            fields["delivery-mode"] = "non-persistent"
        rec.add(cp, "basic.publish", fields=fields, body=body)
        tag += 1   # pika's blocking confirm: one ack per publish, in order
        rec.add(cp, "basic.ack", from_server=True, fields={"delivery-tag": tag, "multiple": False})
    # a mandatory publish nobody can route: basic.return, then the broker's ack
    try:
        ch.basic_publish(x, "nowhere", b"lost", mandatory=True)
        raise RuntimeError("unroutable publish was not returned")
    except pika.exceptions.UnroutableError as e:
        ret = e.messages[0]
        rec.add(cp, "basic.publish", fields={"exchange": x, "routing-key": "nowhere", "mandatory": True},
                body=b"lost")
        rec.add(cp, "basic.return", status="Error",
                fields={"exchange": x, "routing-key": "nowhere", "reply-code": ret.method.reply_code,
                        "reply-text": ret.method.reply_text}, body=ret.body)
        tag += 1
        rec.add(cp, "basic.ack", from_server=True, fields={"delivery-tag": tag, "multiple": False})
    # basic.get: the first message, then (after draining) get-empty
    m, p, body = ch.basic_get(q)
    rec.add(cp, "basic.get", fields={"queue": q, "no-ack": False, "delivery-tag": m.delivery_tag,
                                     "redelivered": m.redelivered, "exchange": m.exchange,
                                     "routing-key": m.routing_key, "message-count": m.message_count,
                                     "content-type": p.content_type, "message-id": p.message_id},
            body=body)
    ch.basic_ack(m.delivery_tag)
    rec.add(cp, "basic.ack", fields={"delivery-tag": m.delivery_tag, "multiple": False})
    # a consumer gets the two others: nack one (requeue), reject it the second time, ack the other
    got: list = []

    def on_message(c, method, properties, body):
        got.append((method, properties, body))

    ctag = ch.basic_consume(q, on_message, consumer_tag="pbpy-amqp-ctag")
    rec.add(cp, "basic.consume", fields={"queue": q, "consumer-tag": ctag, "no-local": False,
                                         "no-ack": False, "exclusive": False, "no-wait": False})
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    for method, properties, body in got:
        rec.add(cp, "basic.deliver", fields={"consumer-tag": ctag, "delivery-tag": method.delivery_tag,
                                             "redelivered": method.redelivered, "exchange": method.exchange,
                                             "routing-key": method.routing_key,
                                             "content-type": properties.content_type}, body=body)
    first, second = got[0][0], got[1][0]
    ch.basic_ack(first.delivery_tag)
    rec.add(cp, "basic.ack", fields={"delivery-tag": first.delivery_tag, "multiple": False})
    ch.basic_nack(second.delivery_tag, requeue=True)
    rec.add(cp, "basic.nack", fields={"delivery-tag": second.delivery_tag, "multiple": False, "requeue": True})
    got.clear()
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    method, properties, body = got[0]
    rec.add(cp, "basic.deliver", fields={"consumer-tag": ctag, "delivery-tag": method.delivery_tag,
                                         "redelivered": True, "routing-key": method.routing_key}, body=body)
    ch.basic_reject(method.delivery_tag, requeue=False)
    rec.add(cp, "basic.reject", status="Error", fields={"delivery-tag": method.delivery_tag})
    ch.basic_cancel(ctag)
    rec.add(cp, "basic.cancel", fields={"consumer-tag": ctag, "no-wait": False})
    m, p, body = ch.basic_get(q)
    if m is not None:
        raise RuntimeError("queue should be empty")
    rec.add(cp, "basic.get-empty", fields={"queue": q, "no-ack": False})
    # purge / unbind / delete
    ok = ch.queue_purge(q)
    rec.add(cp, "queue.purge", fields={"queue": q, "no-wait": False, "message-count": ok.method.message_count})
    ch.queue_unbind(q, x, routing_key="pb.#")
    rec.add(cp, "queue.unbind", fields={"queue": q, "exchange": x, "routing-key": "pb.#"})
    ok = ch.queue_delete(q)
    rec.add(cp, "queue.delete", fields={"queue": q, "if-unused": False, "if-empty": False, "no-wait": False,
                                        "message-count": ok.method.message_count})
    ch.exchange_delete(x)
    rec.add(cp, "exchange.delete", fields={"exchange": x, "if-unused": False, "no-wait": False})
    # transactions on a second channel (a channel in confirm mode cannot be transactional)
    tch = conn.channel()
    tq = tch.queue_declare("", exclusive=True).method.queue
    rec.add(cp, "queue.declare", fields={"queue": tq, "exclusive": True, "message-count": 0,
                                         "consumer-count": 0})
    tch.tx_select()
    rec.add(cp, "tx.select")
    tch.basic_publish("", tq, b"in a transaction")
    rec.add(cp, "basic.publish", fields={"routing-key": tq, "mandatory": False}, body=b"in a transaction")
    tch.tx_commit()
    rec.add(cp, "tx.commit")
    tch.basic_publish("", tq, b"rolled back")
    rec.add(cp, "basic.publish", fields={"routing-key": tq}, body=b"rolled back")
    tch.tx_rollback()
    rec.add(cp, "tx.rollback")
    # a channel error: passive declare of a queue that does not exist
    try:
        tch.queue_declare(P + "missing", passive=True)
        raise RuntimeError("passive declare of a missing queue succeeded")
    except pika.exceptions.ChannelClosedByBroker as e:
        rec.add(cp, "queue.declare", status="Error", fields={"queue": P + "missing", "passive": True},
                no_response=True)
        rec.add(cp, "channel.close", status="Error", from_server=True,
                fields={"reply-code": e.reply_code, "reply-text": e.reply_text, "class-id": 50, "method-id": 10})
    ch.close()
    conn.close()


def _raw(m) -> bytes:
    """A py-amqp message's body as it was on the wire (py-amqp decodes it when
    the message names a content encoding)."""
    b = m.body
    return b if isinstance(b, (bytes, bytearray)) else b.encode(m.properties.get("content_encoding") or "utf-8")


def drive_py_amqp(rec: Recorder, host: str, port: int) -> None:
    conn = amqp.Connection("%s:%d" % (host, port), userid="guest", password="guest", heartbeat=0)
    conn.connect()
    cp = conn.sock.getsockname()[1]
    ch = conn.channel()
    src, dst, q = P + "src", P + "dst", P + "q2"
    ch.exchange_declare(src, "fanout", durable=False, auto_delete=False)
    rec.add(cp, "exchange.declare", fields={"exchange": src, "exchange-type": "fanout", "durable": False})
    ch.exchange_declare(dst, "direct", durable=False, auto_delete=False)
    rec.add(cp, "exchange.declare", fields={"exchange": dst, "exchange-type": "direct"})
    ch.exchange_bind(dst, src, routing_key="k")
    rec.add(cp, "exchange.bind", fields={"destination": dst, "source": src, "routing-key": "k", "no-wait": False})
    ok = ch.queue_declare(q, durable=False, auto_delete=False)
    rec.add(cp, "queue.declare", fields={"queue": ok.queue, "message-count": ok.message_count,
                                         "consumer-count": ok.consumer_count})
    ch.queue_bind(q, dst, routing_key="k")
    rec.add(cp, "queue.bind", fields={"queue": q, "exchange": dst, "routing-key": "k"})
    msgs = [
        (b'{"n": 1, "text": "json via py-amqp"}', dict(content_type="application/json", content_encoding="utf-8",
                                                          application_headers={"x-n": 1})),
        (bytes(range(16)), dict(content_type="application/octet-stream")),
        (b"B" * BIG, dict(content_type="text/plain")),
    ]
    for body, props in msgs:
        ch.basic_publish(amqp.Message(body, **props), exchange=src, routing_key="k")
        f = {"exchange": src, "routing-key": "k", "content-type": props["content_type"]}
        if "content_encoding" in props:
            f["content-encoding"] = props["content_encoding"]
            f["headers"] = {"x-n": 1}
        rec.add(cp, "basic.publish", fields=f, body=body)
    # the three are queued before they are read back (a passive declare answers after them)
    time.sleep(0.2)
    ok = ch.queue_declare(q, passive=True)
    rec.add(cp, "queue.declare", fields={"queue": q, "passive": True, "message-count": ok.message_count})
    if ok.message_count != 3:
        raise RuntimeError("expected 3 queued messages, got %d" % ok.message_count)
    m = ch.basic_get(q, no_ack=True)
    rec.add(cp, "basic.get", fields={"queue": q, "no-ack": True, "delivery-tag": m.delivery_tag,
                                     "exchange": src, "routing-key": "k", "message-count": 2,
                                     "content-type": "application/json"}, body=_raw(m))
    got: list = []
    ctag = ch.basic_consume(q, callback=got.append, consumer_tag="pbpy-amqp-py")
    rec.add(cp, "basic.consume", fields={"queue": q, "consumer-tag": ctag, "no-ack": False})
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        try:
            conn.drain_events(timeout=0.3)
        except TimeoutError:
            pass
    for m in got:
        rec.add(cp, "basic.deliver", fields={"consumer-tag": ctag, "delivery-tag": m.delivery_tag,
                                             "exchange": src, "routing-key": "k"}, body=_raw(m))
    ch.basic_ack(got[1].delivery_tag)          # the big one; the other is redelivered
    rec.add(cp, "basic.ack", fields={"delivery-tag": got[1].delivery_tag, "multiple": False})
    ch.basic_recover(requeue=True)
    rec.add(cp, "basic.recover", fields={"requeue": True})
    got.clear()
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        try:
            conn.drain_events(timeout=0.3)
        except TimeoutError:
            pass
    for m in got:
        rec.add(cp, "basic.deliver", fields={"consumer-tag": ctag, "delivery-tag": m.delivery_tag,
                                             "redelivered": True}, body=_raw(m))
        ch.basic_ack(m.delivery_tag)
        rec.add(cp, "basic.ack", fields={"delivery-tag": m.delivery_tag, "multiple": False})
    ch.basic_cancel(ctag)
    rec.add(cp, "basic.cancel", fields={"consumer-tag": ctag})
    n = ch.queue_delete(q)
    rec.add(cp, "queue.delete", fields={"queue": q, "message-count": n})
    ch.exchange_unbind(dst, src, routing_key="k")
    rec.add(cp, "exchange.unbind", fields={"destination": dst, "source": src, "routing-key": "k"})
    ch.exchange_delete(dst)
    rec.add(cp, "exchange.delete", fields={"exchange": dst})
    ch.exchange_delete(src)
    rec.add(cp, "exchange.delete", fields={"exchange": src})
    ch.close()
    conn.close()
    # a connection the broker refuses: connection.close 530 sent by the broker
    ports: list[int] = []

    class PortConnection(amqp.Connection):
        def Transport(self, *a, **kw):
            t = super().Transport(*a, **kw)
            connect = t.connect

            def connect_and_note():
                connect()
                ports.append(t.sock.getsockname()[1])
            t.connect = connect_and_note
            return t

    bad = PortConnection("%s:%d" % (host, port), userid="guest", password="guest",
                         virtual_host=P + "no-such-vhost", heartbeat=0)
    try:
        bad.connect()
        raise RuntimeError("connection to a missing virtual host was accepted")
    except amqp.exceptions.AMQPError as e:
        bp = ports[0]
        rec.add(bp, "connection.close", status="Error", from_server=True,
                fields={"reply-code": e.reply_code, "reply-text": e.reply_text, "class-id": 10, "method-id": 40})
    finally:
        try:
            bad.collect()
        except Exception:
            pass


def cleanup(host: str, port: int) -> None:
    """Delete what an interrupted earlier run left (before the capture starts)."""
    conn = pika.BlockingConnection(pika.ConnectionParameters(host, port))
    ch = conn.channel()
    for q in (P + "q1", P + "q2", P + "aio0", P + "aio1", P + "aio2"):
        ch.queue_delete(q)
    for x in (P + "topic", P + "src", P + "dst"):
        ch.exchange_delete(x)
    conn.close()


def drive_aio_pika(rec: Recorder, host: str, port: int) -> None:
    """aio-pika (aiormq, pamqp): three channels used at the same time on one
    connection, so requests of several channels are in flight together and
    their answers and confirms interleave."""
    import asyncio

    import aio_pika
    import psutil

    def ports() -> set[int]:
        return {c.laddr.port for c in psutil.Process().net_connections(kind="tcp")
                if c.raddr and c.raddr.port == port}

    async def run() -> None:
        before = ports()
        conn = await aio_pika.connect("amqp://guest:guest@%s:%d/" % (host, port))
        (cp,) = ports() - before
        chans = [await conn.channel() for _ in range(3)]     # publisher confirms on: confirm.select each
        for _ in chans:
            rec.add(cp, "confirm.select", fields={"no-wait": False})
        names = [P + "aio%d" % i for i in range(3)]
        queues = await asyncio.gather(*(c.declare_queue(n) for c, n in zip(chans, names)))
        for q in queues:
            r = q.declaration_result
            rec.add(cp, "queue.declare", fields={"queue": q.name, "durable": False, "auto-delete": False,
                                                 "message-count": r.message_count,
                                                 "consumer-count": r.consumer_count})
        bodies = [("aio message %d" % i).encode() for i in range(3)]
        await asyncio.gather(*(c.default_exchange.publish(
            aio_pika.Message(b, content_type="text/plain", headers={"n": 1000 + i, "tag": "t%d" % i}),
            routing_key=n) for i, (c, b, n) in enumerate(zip(chans, bodies, names))))
        for i, (b, n) in enumerate(zip(bodies, names)):
            rec.add(cp, "basic.publish", fields={"routing-key": n, "content-type": "text/plain",
                                                 "headers": {"n": 1000 + i, "tag": "t%d" % i}}, body=b)
            rec.add(cp, "basic.ack", from_server=True, fields={"delivery-tag": 1})
        await asyncio.sleep(0.2)
        msgs = await asyncio.gather(*(q.get(no_ack=False) for q in queues))
        for q, m in zip(queues, msgs):
            rec.add(cp, "basic.get", fields={"queue": q.name, "no-ack": False, "delivery-tag": m.delivery_tag,
                                             "routing-key": q.name, "message-count": 0,
                                             "headers": dict(m.headers)}, body=m.body)
        await asyncio.gather(*(m.ack() for m in msgs))
        for m in msgs:
            rec.add(cp, "basic.ack", fields={"delivery-tag": m.delivery_tag, "multiple": False})
        counts = await asyncio.gather(*(q.delete(if_unused=False, if_empty=False) for q in queues))
        for q, r in zip(queues, counts):
            rec.add(cp, "queue.delete", fields={"queue": q.name, "message-count": r.message_count})
        await conn.close()

    asyncio.run(run())


def check_capture(pcap: Path, rec: Recorder, port: int) -> int:
    streams, npackets = tcp_streams(pcap, port)
    ports = {p for p, _ in streams}
    missing = rec.ports - ports
    if missing:
        raise RuntimeError("client ports %s are not in the capture" % sorted(missing))
    for p in rec.ports:
        if not streams.get((p, True)) or not streams.get((p, False)):
            raise RuntimeError("client port %d: one direction is missing from the capture" % p)
    return npackets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5672)
    args = ap.parse_args(argv)
    tcpdump = find_tcpdump()
    probe = pika.BlockingConnection(pika.ConnectionParameters(args.host, args.port))
    version = probe._impl.server_properties.get("version")
    version = version.decode() if isinstance(version, bytes) else version
    probe.close()
    cleanup(args.host, args.port)
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_pcap = Path(tmp) / "amqp_real.pcap"
        Path(tmp).chmod(0o777)
        dump = start_tcpdump(tcpdump, tmp_pcap, "tcp port %d" % args.port)
        try:
            drive_pika(rec, args.host, args.port)
            drive_py_amqp(rec, args.host, args.port)
            drive_aio_pika(rec, args.host, args.port)
        finally:
            report = stop_tcpdump(dump)
        n = check_capture(tmp_pcap, rec, args.port)
        size = tmp_pcap.stat().st_size
        if size > MAX_PCAP_BYTES:
            raise SystemExit(f"amqp_real.py: capture is {size} bytes, over the {MAX_PCAP_BYTES} limit")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_pcap, args.out / "amqp_real.pcap")
    truth = {
        "pcap": "amqp_real.pcap",
        "generator": "tests/golden/gen/amqp_real.py",
        "linktype": 1,
        "packets": n,
        "server": f"RabbitMQ {version} on {args.host}:{args.port}",
        "server_ip": args.host,
        "server_port": args.port,
        "clients": f"pika {pika.__version__} (BlockingConnection), py-amqp {amqp.__version__}, "
                   f"aio-pika {dist_version('aio-pika')} (aiormq {dist_version('aiormq')}, pamqp {dist_version('pamqp')})",
        "transactions": rec.txns,
    }
    (args.out / "amqp_real.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.out / 'amqp_real.pcap'}: {n} packets, {len(rec.txns)} transactions, {size} bytes")
    print(report.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
