"""AmqpPlugin end to end on hand-built segments: per-channel pairing, the
side that sent a request, asynchronous methods and messages, basic.get with
get-ok / get-empty, closes that abandon waiting requests, hidden connection
information, send_request/send_response, timeouts, gaps and flushes."""
from __future__ import annotations

import struct

from amqp_frames import (HEADER, ack, close, close_ok, content, deliver, get, get_ok, method, publish,
                         queue_declare, queue_declare_ok, ss, text_props)
from worker.plugin import Packet, TcpTuple
from worker.protos.amqp import AmqpPlugin
from worker.protos.amqp.config import AmqpConfig

T = TcpTuple("10.0.0.1", 40000, "10.0.0.2", 5672, 1)
MS = 1_000_000


class Run:
    def __init__(self, **cfg):
        self.events: list[dict] = []
        self.p = AmqpPlugin(AmqpConfig(**cfg), self.events.append)
        self.state = None

    def c(self, data: bytes, ts: int):
        self.state = self.p.parse(Packet(ts, T.ip_port(), memoryview(data)), T, 0, self.state)

    def s(self, data: bytes, ts: int):
        self.state = self.p.parse(Packet(ts, T.ip_port().reverse(), memoryview(data)), T, 1, self.state)

    def end(self):
        self.p.flush(T, self.state, 0)
        self.state = None
        return self.events


def ev_of(events, method):
    return [e for e in events if e["method"] == method]


def test_declare_pairs_and_merges_the_answer():
    r = Run(send_request=True, send_response=True)
    r.c(HEADER + queue_declare(1, ""), 1 * MS)
    r.s(queue_declare_ok(1, "amq.gen-1", 4, 2), 3 * MS)
    (e,) = r.end()
    assert e["method"] == "queue.declare" and e["event"]["action"] == "amqp.queue.declare"
    assert e["status"] == "OK" and e["event"]["duration"] == 2 * MS
    assert e["amqp"]["queue"] == "amq.gen-1" and e["amqp"]["message-count"] == 4 and e["amqp"]["consumer-count"] == 2
    assert e["client"]["port"] == 40000 and e["source"]["bytes"] == 20 and e["destination"]["bytes"] == 30
    assert e["request"] == "queue.declare" and e["response"] == "OK"


def test_channels_are_paired_independently_and_in_order():
    r = Run()
    r.c(queue_declare(1, "a") + queue_declare(2, "b") + queue_declare(1, "c"), 1 * MS)
    r.s(queue_declare_ok(2, "b") + queue_declare_ok(1, "a") + queue_declare_ok(1, "c"), 2 * MS)
    evs = r.end()
    assert [(e["amqp"]["queue"], e["status"]) for e in evs] == [("b", "OK"), ("a", "OK"), ("c", "OK")]


def test_answer_that_skips_a_request_gives_the_skipped_one_up():
    r = Run()
    r.c(queue_declare(1, "a") + get(1, "q"), 1 * MS)
    r.s(method(1, 60, 72, ss("")), 2 * MS)
    evs = r.end()
    assert [(e["method"], e["status"]) for e in evs] == [("queue.declare", "Error"), ("basic.get-empty", "OK")]
    assert evs[0]["error"]["message"].startswith("no response")


def test_publish_and_deliver_are_their_own_transactions():
    r = Run(send_request=True, send_response=True, max_body_length=5)
    r.c(publish(1, "ex", "rk") + content(1, b"hello world", text_props()), 1 * MS)
    r.s(deliver(1, "ct", 1, "ex", "rk") + content(1, bytes([1, 2, 3]), b"\x00\x00"), 2 * MS)
    pub, dlv = r.end()
    assert pub["method"] == "basic.publish" and pub["request"] == "hello [...]"
    assert pub["source"]["bytes"] == 11 and "bytes" not in pub["destination"] and "end" not in pub["event"]
    assert pub["amqp"] == {"exchange": "ex", "routing-key": "rk", "mandatory": False, "immediate": False,
                           "content-type": "text/plain", "delivery-mode": "persistent"}
    assert dlv["method"] == "basic.deliver" and dlv["response"] == "1 2 3"
    assert dlv["client"]["port"] == 40000 and dlv["destination"]["bytes"] == 3 and "bytes" not in dlv["source"]


def test_basic_get_pairs_with_get_ok_and_get_empty():
    r = Run(send_request=True, send_response=True)
    r.c(get(1, "q"), 1 * MS)
    r.s(get_ok(1, 7, "", "q", 0) + content(1, b'{"k": 1}', text_props("application/json")), 4 * MS)
    r.c(get(1, "q"), 5 * MS)
    r.s(method(1, 60, 72, ss("")), 6 * MS)
    g, empty = r.end()
    assert g["method"] == "basic.get" and g["event"]["duration"] == 3 * MS
    assert g["amqp"]["queue"] == "q" and g["amqp"]["delivery-tag"] == 7 and g["amqp"]["content-type"] == "application/json"
    assert g["request"] == "basic.get q" and g["response"] == '{"k": 1}' and g["destination"]["bytes"] == 8
    assert empty["method"] == "basic.get-empty" and empty["request"] == "basic.get q" and empty["response"] == "OK"


def test_get_ok_without_its_get_is_published_as_packetbeat_does():
    r = Run()
    r.s(get_ok(1, 7, "", "q", 0) + content(1, b"x"), 1 * MS)
    (e,) = r.end()
    assert e["method"] == "basic.get" and e["status"] == "OK" and "error" not in e


def test_broker_close_is_sent_by_the_broker_and_fails_the_waiting_request():
    r = Run(send_request=True)
    r.c(method(1, 50, 20, b"\x00\x00" + ss("q") + ss("nope") + ss("") + b"\x00\x00\x00\x00\x00"), 1 * MS)
    r.s(close(1, 404, "NOT_FOUND - no exchange 'nope'", 50, 20), 2 * MS)
    r.c(close_ok(1), 3 * MS)
    bind, cl = r.end()
    assert bind["method"] == "queue.bind" and bind["status"] == "Error"
    assert bind["error"]["message"] == "no response: channel.close by the server (404 NOT_FOUND - no exchange 'nope')"
    assert cl["method"] == "channel.close" and cl["status"] == "Error"
    assert cl["client"]["port"] == 5672 and cl["server"]["port"] == 40000
    assert cl["source"]["bytes"] == 49 and cl["destination"]["bytes"] == 12
    assert cl["amqp"] == {"reply-code": 404, "reply-text": "NOT_FOUND - no exchange 'nope'", "class-id": 50,
                          "method-id": 20}


def test_connection_close_abandons_every_channel():
    r = Run()
    r.c(queue_declare(1, "a") + queue_declare(2, "b"), 1 * MS)
    r.s(close(0, 320, "CONNECTION_FORCED"), 2 * MS)
    r.c(close_ok(0), 3 * MS)
    evs = r.end()
    assert [(e["method"], e["status"]) for e in evs] == [("queue.declare", "Error")] * 2 + [("connection.close", "Error")]


def test_normal_closes_and_set_up_are_hidden_unless_asked():
    setup_c = HEADER + method(1, 20, 10, ss("")) + method(1, 60, 10, struct.pack(">IH", 0, 10) + b"\x00")
    setup_s = method(1, 20, 11, b"\x00\x00\x00\x00") + method(1, 60, 11)
    for hide, n in ((True, 0), (False, 4)):
        r = Run(hide_connection_information=hide)
        r.c(setup_c, 1 * MS)
        r.s(setup_s, 2 * MS)
        r.c(close(1, 200, "bye"), 3 * MS)
        r.s(close_ok(1), 4 * MS)
        r.c(close(0, 200, "bye"), 5 * MS)
        r.s(close_ok(0), 6 * MS)
        evs = r.end()
        assert len(evs) == n, evs
    assert [e["method"] for e in evs] == ["channel.open", "basic.qos", "channel.close", "connection.close"]
    assert evs[1]["amqp"] == {"prefetch-size": 0, "prefetch-count": 10, "global": False}
    assert all(e["status"] == "OK" for e in evs)


def test_unanswered_hidden_answers_are_not_published():
    r = Run()
    r.s(close_ok(1) + method(0, 10, 41, ss("")), 1 * MS)      # capture began after the requests
    r.s(queue_declare_ok(1, "x"), 2 * MS)
    (e,) = r.end()
    assert e["method"] == "queue.declare" and e["error"]["message"] == "Unmatched response"
    assert e["client"]["port"] == 40000 and e["status"] == "Error"


def test_async_methods_confirms_and_no_wait():
    r = Run()
    r.c(method(1, 85, 10, b"\x00"), 1 * MS)
    r.s(method(1, 85, 11), 2 * MS)
    r.s(ack(1, 1), 3 * MS)                                    # a publisher confirm, from the broker
    r.c(queue_declare(1, "nw", bits=0x10), 4 * MS)            # no-wait: no answer comes
    r.c(method(1, 60, 90, struct.pack(">Q", 3) + b"\x00"), 5 * MS)
    sel, conf, nw, rej = r.end()
    assert sel["method"] == "confirm.select" and sel["status"] == "OK"
    assert conf["method"] == "basic.ack" and conf["client"]["port"] == 5672 and "end" not in conf["event"]
    assert conf["amqp"] == {"delivery-tag": 1, "multiple": False} and conf["status"] == "OK"
    assert nw["method"] == "queue.declare" and nw["status"] == "OK" and "error" not in nw
    assert rej["method"] == "basic.reject" and rej["status"] == "Error"


def test_return_is_an_error_and_user_id_is_copied():
    r = Run()
    props = b"\x00\x10" + ss("guest")
    r.s(method(1, 60, 50, struct.pack(">H", 312) + ss("NO_ROUTE") + ss("ex") + ss("k")) + content(1, b"x", props),
        1 * MS)
    (e,) = r.end()
    assert e["method"] == "basic.return" and e["status"] == "Error" and e["user"] == {"id": "guest"}


def test_transaction_timeout_by_packet_time():
    r = Run(transaction_timeout=1)
    r.c(queue_declare(1, "slow"), 0)
    r.c(get(2, "q"), 2_000 * MS)
    evs = list(r.events)
    assert [(e["method"], e["error"]["message"]) for e in evs] == [("queue.declare", "no response (transaction timeout)")]
    r.s(method(2, 60, 72, ss("")), 2_001 * MS)
    assert len(r.end()) == 2


def test_close_error_without_close_ok():
    r = Run()
    r.s(close(1, 406, "PRECONDITION_FAILED"), 1 * MS)
    (e,) = r.end()
    assert e["method"] == "channel.close" and e["status"] == "Error"
    assert e["error"]["message"] == "Close-ok method not received by sender"


def test_gap_in_a_body_keeps_the_message_other_gaps_flush():
    r = Run()
    data = publish(1, "", "k") + content(1, b"B" * 1000)
    r.c(data[:100], 1 * MS)
    r.state, drop = r.p.gap_in_stream(T, 0, 500, r.state)
    assert drop is False
    r.c(data[600:], 2 * MS)
    (e,) = r.events
    assert e["source"]["bytes"] == 1000 and e["error"]["message"] == "Packet loss while capturing the request"
    r.c(queue_declare(1, "q"), 3 * MS)
    r.c(queue_declare(1, "r")[:10], 4 * MS)
    r.state, drop = r.p.gap_in_stream(T, 0, 5, r.state)
    assert drop is True and r.state is None and r.p.gap_drops == 1
    last = r.events[-1]
    assert last["method"] == "queue.declare" and "Packet loss while capturing the request" in last["error"]["message"]


def test_garbage_resyncs_on_the_next_segment():
    r = Run()
    r.c(b"GET / HTTP/1.1\r\n\r\n", 1 * MS)
    r.c(get(1, "q"), 2 * MS)
    r.s(method(1, 60, 72, ss("")), 3 * MS)
    (e,) = r.end()
    assert e["method"] == "basic.get-empty" and r.p.parse_errors == 1


def test_flush_publishes_waiting_requests_and_incomplete_messages():
    r = Run()
    r.c(queue_declare(1, "a") + publish(1, "", "k") + content(1, b"abcdef")[:-4], 1 * MS)
    pub, qd = r.end()
    assert pub["method"] == "basic.publish" and "incomplete" in pub["error"]["message"]
    assert qd["method"] == "queue.declare" and qd["error"]["message"] == "Unmatched request"
    assert r.p.unmatched_requests == 1


def test_correlator_stays_bounded_under_a_flood_of_unanswered_requests():
    from worker.protos.amqp.parser import AmqpParser
    from worker.protos.amqp.trans import Correlator
    corr = Correlator(max_pending=64)
    p = AmqpParser(0)
    given_up = 0
    for i in range(5000):
        (m,) = p.feed(queue_declare(i % 3000, "q%d" % i), i)
        given_up += len(corr.add_request(m))
    assert len(corr) == 64 and given_up == 5000 - 64
    assert corr.queued <= 2 * 64 + 16 and sum(len(q) for q in corr.queues.values()) == corr.queued
    # the newest ones still pair
    (ok,) = AmqpParser(1).feed(queue_declare_ok(4999 % 3000, "q4999"), 6000)
    ((req, resp),) = corr.add_response(ok)
    assert req.fields["queue"] == "q4999" and resp is ok
