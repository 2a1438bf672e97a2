"""AmqpParser fed hand-built AMQP 0-9-1 frames: every fixture whole, byte by
byte and split at random points gives the same messages; content assembled
per channel (interleaved channels, several body frames, empty bodies);
properties and field tables of every type; bounds; gaps; bad bytes."""
from __future__ import annotations

import random
import struct

import pytest

from amqp_frames import (HEADER, ack, close, close_ok, content, deliver, frame, get, get_ok, method, publish,
                         queue_declare, queue_declare_ok, ss, table, text_props)
from worker.protos.amqp.parser import (ASYNC, CONTENT, REQUEST, RESPONSE, AmqpParser, ParseError,
                                       amqp_time)


def proj(msgs):
    return [(m.method, m.kind, m.channel, m.size, m.fields, m.request, m.body, m.body_size, m.hidden,
             m.notes, m.answers) for m in msgs]


def feed_split(data: bytes, cuts: list[int], direction: int = 0, **kw):
    p = AmqpParser(direction, **kw)
    out = []
    prev = 0
    for i, c in enumerate(sorted(set(cuts)) + [len(data)]):
        if c > prev:
            out += p.feed(memoryview(data[prev:c]), i)
            prev = c
    return out


CLIENT = (HEADER
          + method(0, 10, 11, table([]) + ss("PLAIN") + b"\x00\x00\x00\x0c\x00guest\x00guest" + ss("en_US"))
          + method(1, 20, 10, ss(""))
          + queue_declare(1, "hello", bits=0x02, args=table([("x-message-ttl", b"I" + struct.pack(">i", 60000))]))
          + publish(1, "", "hello") + content(1, b"hello world", text_props())
          + publish(2, "ex", "k", bits=1) + content(2, b"x" * 10, frame_max=4)
          + ack(1, 7)
          + get(1, "hello")
          + close(1, 200, "bye") + close(0, 320, "CONNECTION_FORCED - shutdown"))

SERVER = (method(0, 10, 10, b"\x00\x09" + table([("product", b"S" + struct.pack(">I", 8) + b"RabbitMQ")])
                 + struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", 5) + b"en_US")
          + queue_declare_ok(1, "hello", 3, 1)
          + deliver(1, "ctag", 2, "", "hello") + content(1, b"", text_props())
          + get_ok(1, 9, "ex", "k", 4) + content(1, b'{"a":1}', text_props("application/json"))
          + method(1, 60, 72, ss(""))
          + close_ok(1) + frame(8, 0, b""))


def test_client_fixture_messages():
    msgs = feed_split(CLIENT, [])
    names = [(m.method, m.kind, m.channel, m.hidden) for m in msgs]
    assert names == [
        ("connection.start-ok", RESPONSE, 0, True),
        ("channel.open", REQUEST, 1, True),
        ("queue.declare", REQUEST, 1, False),
        ("basic.publish", CONTENT, 1, False),
        ("basic.publish", CONTENT, 2, False),
        ("basic.ack", ASYNC, 1, False),
        ("basic.get", REQUEST, 1, False),
        ("channel.close", REQUEST, 1, True),           # reply code 200: hidden
        ("connection.close", REQUEST, 0, False),       # 320: an error, published
    ]
    start_ok, _, qd, pub1, pub2, ack_, get_, _, cc = msgs
    assert start_ok.fields == {}            # hidden: not decoded
    start_ok = feed_split(CLIENT, [], hide_connection_information=False)[0]
    assert start_ok.fields == {"mechanism": "PLAIN", "locale": "en_US"}
    assert not any("guest" in str(v) for v in start_ok.fields.values())     # the SASL response is never kept
    assert qd.fields == {"queue": "hello", "passive": False, "durable": True, "exclusive": False,
                         "auto-delete": False, "no-wait": False, "arguments": {"x-message-ttl": 60000}}
    assert qd.request == "hello" and qd.size == 7 + len(b"\x00\x32\x00\x0a\x00\x00\x05hello\x02") + 4 + 19 + 1
    assert pub1.fields == {"routing-key": "hello", "mandatory": False, "immediate": False,
                           "content-type": "text/plain", "delivery-mode": "persistent"}
    assert pub1.body == b"hello world" and pub1.body_size == 11
    assert pub2.fields["exchange"] == "ex" and pub2.fields["mandatory"] is True and pub2.body == b"x" * 10
    assert ack_.fields == {"delivery-tag": 7, "multiple": False} and ack_.size == 21
    assert get_.fields == {"queue": "hello", "no-ack": False}
    assert cc.fields == {"reply-code": 320, "reply-text": "CONNECTION_FORCED - shutdown", "class-id": 0,
                         "method-id": 0}


def test_server_fixture_messages():
    msgs = feed_split(SERVER, [], direction=1)
    start, dok, dlv, gok, gempty, cok = msgs
    assert start.method == "connection.start" and start.hidden and start.kind == REQUEST
    start = feed_split(SERVER, [], direction=1, hide_connection_information=False)[0]
    assert start.fields["server-properties"] == {"product": "RabbitMQ"}
    assert start.fields["version-major"] == 0 and start.fields["version-minor"] == 9
    assert dok.fields == {"queue": "hello", "message-count": 3, "consumer-count": 1} and dok.answers == (50, 10)
    assert dlv.method == "basic.deliver" and dlv.body == b"" and dlv.body_size == 0
    assert dlv.fields["consumer-tag"] == "ctag" and dlv.fields["delivery-tag"] == 2 and "exchange" not in dlv.fields
    assert gok.method == "basic.get-ok" and gok.answers == (60, 70) and gok.body == b'{"a":1}'
    assert gok.fields == {"delivery-tag": 9, "redelivered": False, "exchange": "ex", "routing-key": "k",
                          "message-count": 4, "content-type": "application/json", "delivery-mode": "persistent"}
    assert gempty.method == "basic.get-empty" and gempty.answers == (60, 70)
    assert cok.method == "channel.close-ok" and cok.hidden and cok.answers == (20, 40)


@pytest.mark.parametrize("direction,data", [(0, CLIENT), (1, SERVER)])
def test_splits_give_the_same_messages(direction, data):
    whole = proj(feed_split(data, [], direction))
    assert proj(feed_split(data, list(range(1, len(data))), direction)) == whole
    rnd = random.Random(1234)
    for _ in range(50):
        cuts = rnd.sample(range(1, len(data)), rnd.randint(1, 12))
        assert proj(feed_split(data, cuts, direction)) == whole


def test_interleaved_channels_and_several_body_frames():
    data = (publish(1, "", "a") + publish(2, "", "b")
            + frame(2, 2, struct.pack(">HHQ", 60, 0, 6) + b"\x00\x00")
            + frame(2, 1, struct.pack(">HHQ", 60, 0, 4) + b"\x00\x00")
            + frame(3, 1, b"ab") + frame(3, 2, b"XYZ") + frame(3, 1, b"cd") + frame(3, 2, b"UVW"))
    msgs = feed_split(data, [])
    assert [(m.channel, m.body) for m in msgs] == [(1, b"abcd"), (2, b"XYZUVW")]


def test_max_body_length_keeps_the_head_and_counts_all():
    data = publish(1, "", "q") + content(1, b"0123456789" * 30, frame_max=7)
    (m,) = feed_split(data, [5, 40, 41, 100], max_body_length=25)
    assert m.body == (b"0123456789" * 3)[:25] and m.body_size == 300 and m.body_seen == 300
    (m,) = feed_split(data, [], max_body_length=0)
    assert m.body == b"" and m.body_size == 300


def test_message_ts_is_the_packet_where_the_method_began():
    p = AmqpParser(0)
    data = queue_declare(1, "a") + queue_declare(1, "b")
    assert p.feed(data[:5], 100) == []
    m1 = p.feed(data[5:len(data) - 3], 200)
    m2 = p.feed(data[len(data) - 3:], 300)
    assert [m.ts for m in m1] == [100] and [m.ts for m in m2] == [200]


def test_properties_of_every_kind_and_tables_of_every_type():
    nested = table([("n", b"t\x01")])
    headers = table([
        ("bool", b"t\x00"), ("b", b"b\xff"), ("B", b"B\xff"), ("U", b"U\xff\xfe"), ("u", b"u\xff\xfe"),
        ("I", b"I\xff\xff\xff\xfe"), ("i", b"i\xff\xff\xff\xfe"), ("L", b"L" + struct.pack(">q", -5)),
        ("l", b"l" + struct.pack(">q", 5)), ("f", b"f" + struct.pack(">f", 1.5)),
        ("d", b"d" + struct.pack(">d", 2.25)), ("D", b"D\x02" + struct.pack(">I", 12345)),
        ("s", b"s\xff\xfe"), ("S", b"S" + struct.pack(">I", 3) + "é!".encode()),
        ("A", b"A" + struct.pack(">I", 10) + b"t\x01" + b"S\x00\x00\x00\x03xyz"), ("T", b"T" + struct.pack(">Q", 0)),
        ("F", b"F" + nested), ("V", b"V"), ("x", b"x" + struct.pack(">I", 3) + b"\x01\x02\x03"),
    ])
    props = (b"\xff\xf8" + ss("text/plain") + ss("gzip") + headers + b"\x01" + b"\x09" + ss("cid")
             + ss("replies") + ss("1000") + ss("mid") + struct.pack(">Q", 1700000000) + ss("kind")
             + ss("guest") + ss("app"))
    (m,) = feed_split(publish(1, "x", "k") + content(1, b"hi", props), [])
    f = m.fields
    assert f["content-type"] == "text/plain" and f["content-encoding"] == "gzip"
    assert f["headers"] == {"bool": False, "b": -1, "B": 255, "U": -2, "u": 65534, "I": -2, "i": 4294967294,
                            "L": -5, "l": 5, "f": 1.5, "d": 2.25, "D": "123.45", "s": -2, "S": "é!",
                            "A": {"0": True, "1": "xyz"}, "T": "January  1 00:00:00 1970",
                            "F": {"n": True}, "V": None, "x": "[1, 2, 3]"}
    assert f["delivery-mode"] == "non-persistent" and f["priority"] == 9
    assert (f["correlation-id"], f["reply-to"], f["expiration"], f["message-id"]) == ("cid", "replies", "1000", "mid")
    assert f["timestamp"] == "November 14 22:13:20 2023" == amqp_time(1700000000)
    assert (f["type"], f["user-id"], f["app-id"]) == ("kind", "guest", "app")
    (m,) = feed_split(publish(1, "x", "k") + content(1, b"hi", props), [], parse_headers=False)
    assert "content-type" not in m.fields and "headers" not in m.fields


def test_bad_arguments_table_and_properties_get_notes():
    bad = b"\x00\x00\x00\x10" + b"\x03abc"          # declares 16 bytes, has 4
    (m,) = feed_split(queue_declare(1, "q", args=bad), [])
    assert m.notes == ["Failed to parse additional arguments"] and "arguments" not in m.fields
    (m,) = feed_split(queue_declare(1, "q", args=bad), [], parse_arguments=False)
    assert m.notes == []
    (m,) = feed_split(publish(1, "", "k") + content(1, b"z", b"\x80\x00\x09ab"), [])
    assert m.notes == ["Failed to parse message properties"] and m.body == b"z"
    (m,) = feed_split(method(1, 50, 10, b"\x00\x00\x09ab"), [])
    assert m.method == "queue.declare" and m.notes == ["Failed to parse method arguments"]


def test_no_wait_makes_a_request_asynchronous():
    (m,) = feed_split(queue_declare(1, "q", bits=0x10), [])
    assert m.kind == ASYNC and m.fields["no-wait"] is True
    (m,) = feed_split(method(1, 40, 10, b"\x00\x00" + ss("x") + ss("") + b"\x00" + table([])), [])
    assert m.kind == REQUEST and m.fields["exchange-type"] == "direct"


def test_hide_connection_information_off():
    msgs = feed_split(CLIENT, [], hide_connection_information=False)
    assert not any(m.hidden for m in msgs)


def test_unknown_method_is_skipped_and_counted():
    p = AmqpParser(0)
    msgs = p.feed(method(1, 99, 1, b"junk") + get(1, "q"), 0)
    assert [m.method for m in msgs] == ["basic.get"] and p.unknown_methods == 1


def test_protocol_header_only_at_a_frame_boundary():
    p = AmqpParser(0)
    assert p.feed(b"AMQ", 0) == [] and p.feed(b"P\x00\x00\x09\x01", 1) == []
    assert [m.method for m in p.feed(get(1, "q"), 2)] == ["basic.get"]
    with pytest.raises(ParseError):
        AmqpParser(0).feed(b"AMQX\x00\x00\x09\x01", 0)
    with pytest.raises(ParseError):
        AmqpParser(0).feed(b"HTTP/1.1 200 OK\r\n\r\n", 0)


def test_bad_frame_end_keeps_earlier_messages():
    good = get(1, "q")
    bad = bytearray(get(1, "r"))
    bad[-1] = 0
    with pytest.raises(ParseError) as ei:
        AmqpParser(0).feed(good + bytes(bad), 0)
    assert [m.fields["queue"] for m in ei.value.messages] == ["q"]


def test_frame_size_limit():
    p = AmqpParser(0, max_frame_size=64)
    with pytest.raises(ParseError):
        p.feed(struct.pack(">BHI", 1, 1, 65), 0)
    # body frames are streamed, not buffered: a big one is fine
    p = AmqpParser(0, max_frame_size=64)
    msgs = p.feed(publish(1, "", "k") + content(1, b"b" * 1000), 0)
    assert msgs[0].body_size == 1000 and p.buffered == 0


def test_gap_inside_a_body_is_crossed():
    body = b"A" * 100
    data = publish(1, "", "k") + content(1, body, text_props())
    head = len(data) - 1 - 100        # everything before the body bytes
    p = AmqpParser(1)
    assert p.feed(data[:head + 10], 0) == []
    assert p.on_gap(50) is True
    (m,) = p.feed(data[head + 60:], 1)
    assert m.body_size == 100 and m.body_seen == 100 and m.body == b"A" * 50
    assert m.notes == ["Packet loss while capturing the response"]
    assert [x.method for x in p.feed(get(1, "q"), 2)] == ["basic.get"]


def test_gap_outside_a_body_cannot_be_crossed():
    p = AmqpParser(0)
    p.feed(get(1, "q")[:5], 0)
    assert p.on_gap(10) is False and p.buffered == 0
    p = AmqpParser(0)
    p.feed(publish(1, "", "k") + content(1, b"abc")[:-3], 0)
    assert p.on_gap(10) is False       # more than the body frame holds


def test_flush_returns_incomplete_content_with_a_note():
    p = AmqpParser(0)
    p.feed(publish(1, "", "k") + content(1, b"abcdef")[:-4], 0)
    (m,) = p.flush()
    assert m.method == "basic.publish" and m.notes == ["Message content incomplete: 3 of 6 body bytes seen"]
    assert p.flush() == []


def test_method_interrupting_content_ends_it():
    p = AmqpParser(0)
    msgs = p.feed(publish(1, "", "k") + get(1, "q"), 0)
    assert [m.method for m in msgs] == ["basic.publish", "basic.get"]
    assert msgs[0].notes == ["Message content incomplete (header or body frames missing)"]


def test_stray_content_frames_are_skipped():
    p = AmqpParser(1)
    msgs = p.feed(content(1, b"orphan") + get_ok(1, 1, "", "q", 0) + content(1, b"ok"), 0)
    assert [(m.method, m.body) for m in msgs] == [("basic.get-ok", b"ok")] and p.stray_frames == 2


def test_basic_return_cancel_nack_reject_and_others():
    msgs = feed_split(
        method(1, 60, 50, struct.pack(">H", 312) + ss("NO_ROUTE") + ss("ex") + ss("rk")) + content(1, b"r")
        + method(1, 60, 120, struct.pack(">Q", 5) + b"\x03")
        + method(1, 60, 90, struct.pack(">Q", 6) + b"\x01")
        + method(1, 60, 30, ss("ct") + b"\x00")
        + method(1, 85, 10, b"\x00") + method(1, 90, 20) + method(1, 60, 110, b"\x01")
        + method(1, 40, 30, b"\x00\x00" + ss("d") + ss("s") + ss("k") + b"\x00" + table([])), [], direction=1)
    ret, nack, rej, cancel, confirm, commit, recover, xbind = msgs
    assert ret.fields == {"reply-code": 312, "reply-text": "NO_ROUTE", "exchange": "ex", "routing-key": "rk"}
    assert nack.fields == {"delivery-tag": 5, "multiple": True, "requeue": True} and nack.kind == ASYNC
    assert rej.fields == {"delivery-tag": 6, "multiple": True} and rej.request == "6"
    assert cancel.fields == {"consumer-tag": "ct", "no-wait": False} and cancel.kind == REQUEST
    assert confirm.method == "confirm.select" and confirm.fields == {"no-wait": False}
    assert commit.method == "tx.commit" and recover.fields == {"requeue": True}
    assert xbind.fields == {"destination": "d", "source": "s", "routing-key": "k", "no-wait": False}
    assert xbind.request == "s d"


def test_deep_tables_are_refused_not_recursed():
    t = b"t\x01"
    for _ in range(200):
        t = b"F" + struct.pack(">I", len(t) + 2) + b"\x01k" + t
    (m,) = feed_split(queue_declare(1, "q", args=struct.pack(">I", len(t) + 2) + b"\x01k" + t), [])
    assert m.notes == ["Failed to parse additional arguments"]


def test_other_amqp_versions_are_skipped_not_misread():
    p = AmqpParser(0)
    assert p.feed(b"AMQP\x00\x01\x00\x00" + b"\x00\x00\x00\x21\x02\x00\x00\x00" + b"x" * 25, 0) == []
    assert p.feed(get(1, "q"), 1) == [] and p.foreign and p.skipped_bytes == 41 + len(get(1, "q"))
    p = AmqpParser(0)
    assert [m.method for m in p.feed(b"AMQP\x01\x01\x00\x09" + get(1, "q"), 0)] == ["basic.get"]
