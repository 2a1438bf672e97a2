"""RecordParser / decode_message fed hand-built ONC-RPC messages: every fixture
whole, byte by byte and split at random points gives the same messages;
records of several fragments; NFSv3 procedure names and the NFSv4 COMPOUND
main operation as Packetbeat 8 picks it; credentials; bounds; gaps."""
from __future__ import annotations

import random

import pytest

from tests.unit.protos.nfs_wire import (NO_AUTH, call, compound, denied, opaque, record, reply, u32,
                                        unix_cred)
from worker.protos.nfs.parser import (CALL_HEAD_MAX, REPLY_HEAD_MAX, ParseError, RecordParser,
                                      decode_message)


def summary(msgs) -> list[tuple]:
    return [(m.xid, m.is_call, m.size, m.prog, m.prog_vers, m.proc, m.opcode, m.tag, m.minor_version,
             m.auth_flavor, m.cred, m.malformed, m.reply_stat, m.accept_stat, m.reject_stat,
             m.status_word, tuple(m.notes)) for m in msgs]


def feed_chunks(data: bytes, cuts: list[int], max_size: int | None = None) -> list:
    p = RecordParser() if max_size is None else RecordParser(max_size)
    out = []
    prev = 0
    for i, c in enumerate(cuts + [len(data)]):
        out += p.feed(data[prev:c], 1000 + i)
        prev = c
    return out


FIXTURES = [
    # v3 calls and replies, one and several fragments
    record(call(1, 1, opaque(b"\x07" * 32))) + record(reply(1, 0, body=b"\0" * 84)),
    record(call(2, 3, opaque(b"\x07" * 32) + opaque(b"hello.txt")), 3) + record(reply(2, 2), 2),
    # an empty fragment inside a record
    u32(20) + call(3, 0)[:20] + u32(0) + u32(0x80000000 | (len(call(3, 0)) - 20)) + call(3, 0)[20:]
    + record(reply(3, None)),
    # v4 compound + reply, NFSv4.1 with SEQUENCE
    record(compound(4, ["SEQUENCE", "PUTFH", "READDIR", "GETATTR"], tag=b"readdir", minor=1)) +
    record(reply(4, 0, body=opaque(b"readdir") + u32(0))),
    # another program (MOUNT) and a denied reply
    record(call(5, 1, opaque(b"/export"), vers=3, prog=100005)) + record(denied(6)),
]


@pytest.mark.parametrize("data", FIXTURES)
def test_whole_bytewise_random_splits_agree(data):
    whole = summary(feed_chunks(data, []))
    assert whole
    assert summary(feed_chunks(data, list(range(1, len(data))))) == whole
    rnd = random.Random(len(data))
    for _ in range(20):
        cuts = sorted(rnd.sample(range(1, len(data)), rnd.randint(1, min(8, len(data) - 1))))
        assert summary(feed_chunks(data, cuts)) == whole


def test_v3_call_fields_and_reply():
    data = record(call(0xABCDEF01, 3, opaque(b"\x07" * 32) + opaque(b"x"))) + record(reply(0xABCDEF01, 2))
    c, r = RecordParser().feed(data, 5)
    assert c.is_call and c.xid == 0xABCDEF01 and c.prog == 100003 and c.prog_vers == 3
    assert c.opcode == "LOOKUP" and c.auth_flavor == 1
    assert c.cred == (7, b"client1", 1000, 100, [100, 27])
    assert c.size == len(call(0xABCDEF01, 3, opaque(b"\x07" * 32) + opaque(b"x")))
    assert not r.is_call and r.reply_stat == 0 and r.accept_stat == 0 and r.status_word == 2
    assert r.size == len(reply(0xABCDEF01, 2))


@pytest.mark.parametrize("proc,name", [(0, "NULL"), (1, "GETATTR"), (6, "READ"), (7, "WRITE"),
                                       (10, "SYM_LINK"), (11, "MKNODE"), (17, "READDIRPLUS"),
                                       (20, "PATHINFO"), (21, "COMMIT"), (22, "ILLEGAL"), (999, "ILLEGAL")])
def test_v3_procedure_names_as_packetbeat(proc, name):
    assert decode_message(call(1, proc), 0, 0).opcode == name


@pytest.mark.parametrize("ops,main", [
    (["PUTFH", "READDIR", "GETATTR"], "READDIR"),
    (["PUTROOTFH", "GETATTR"], "GETATTR"),
    (["PUTROOTFH", "LOOKUP", "GETFH", "GETATTR"], "GETATTR"),
    (["SEQUENCE", "PUTFH", "CLOSE"], "CLOSE"),
    (["SEQUENCE", "PUTFH", "NVERIFY", "SAVEFH", "RENEW", "SECINFO", "WRITE"], "WRITE"),
    (["PUTFH", "READLINK", "GETATTR"], "READLINK"),
    (["PUTFH", "OPEN", "GETFH", "ACCESS"], "OPEN"),
    (["EXCHANGE_ID"], "EXCHANGE_ID"),
    ([], "ILLEGAL"),
    (["PUTFH", 99, "READ"], "ILLEGAL"),
    (["PUTFH", "ILLEGAL"], "ILLEGAL"),
    (["PUTFH", "ILLEGAL", "REMOVE"], "REMOVE"),
    (["SEQUENCE", "PUTFH", 65], "LAYOUTSTATS"),                 # v4.2 (Packetbeat's nfsv42 tests)
    (["SEQUENCE", "PUTFH", "SAVEFH", "PUTFH", 71, "GETATTR"], "CLONE"),
    (["SEQUENCE", "PUTFH", 72], "ILLEGAL"),                     # beyond Packetbeat's table
])
def test_v4_main_operation(ops, main):
    m = decode_message(compound(9, ops, tag=b"t", minor=1), 0, 0)
    assert m.opcode == main and m.tag == b"t" and m.minor_version == 1 and not m.malformed


def test_v4_null_and_other_procedures():
    assert decode_message(call(1, 0, vers=4), 0, 0).opcode == "NULL"
    m = decode_message(call(1, 7, vers=4), 0, 0)
    assert m.opcode == "" and m.tag is None
    m = decode_message(call(1, 1, vers=2), 0, 0)
    assert m.opcode == "" and m.prog_vers == 2


@pytest.mark.parametrize("cred,flavor", [(NO_AUTH, 0), (u32(6) + opaque(b"\0" * 20), 6),
                                         (u32(390003) + opaque(b""), 390003)])
def test_other_auth_flavors(cred, flavor):
    m = decode_message(call(1, 1, opaque(b"\x07" * 8), cred=cred), 0, 0)
    assert m.auth_flavor == flavor and m.cred is None and m.opcode == "GETATTR"


def test_malformed_calls_are_flagged_not_raised():
    # AUTH_UNIX body too short; a compound whose operations run past the end
    m = decode_message(call(1, 1, cred=u32(1) + opaque(b"\0\0\0\1")), 0, 0)
    assert m.malformed
    whole = compound(1, ["PUTFH", "LOOKUP", "READ"])
    m = decode_message(whole[:-30], 0, 0)
    assert m.malformed
    m = decode_message(call(1, 1, vers=4) + opaque(b"tag"), 0, 0)      # no minor version
    assert m.malformed


def test_not_rpc_raises():
    for bad in (b"", b"\0" * 7, u32(1) + u32(2) + b"\0" * 20, u32(1) + u32(0) + u32(3) + b"\0" * 20,
                u32(1) + u32(1) + u32(7) + b"\0" * 8, u32(1) + u32(0) + u32(2) + b"\0" * 4):
        with pytest.raises(ParseError):
            decode_message(bad, 0, len(bad))


def test_record_starting_with_an_empty_fragment_is_refused():
    # mid-transfer zeros taken for record markers after a resynchronisation
    with pytest.raises(ParseError):
        RecordParser().feed(b"\0" * 64, 0)


def test_bad_record_is_refused_before_it_is_complete():
    p = RecordParser()
    with pytest.raises(ParseError):
        p.feed(u32(0x80000000 | 5_000_000) + u32(1) + u32(9) + b"\0" * 12, 0)


def test_parse_error_keeps_earlier_messages():
    good = record(call(1, 0)) + record(reply(1, None))
    p = RecordParser()
    with pytest.raises(ParseError) as ei:
        p.feed(good + record(b"\0" * 4), 0)
    assert [m.xid for m in ei.value.messages] == [1, 1]


def test_size_limit():
    p = RecordParser(1000)
    with pytest.raises(ParseError):
        p.feed(u32(0x80000000 | 1001), 0)
    p = RecordParser(1000)
    msg = call(1, 7, b"\0" * 1000)
    with pytest.raises(ParseError):
        p.feed(record(msg, 4), 0)                   # the fragments together exceed the limit
    assert len(RecordParser(1000).feed(record(call(1, 7, b"\0" * 800), 4), 0)) == 1


def test_big_call_keeps_only_its_head():
    args = opaque(b"\x07" * 32) + b"\0" * 12 + opaque(b"\x55" * 200_000)
    msg = call(1, 7, args)
    p = RecordParser()
    out = p.feed(record(msg, 5), 0)
    assert len(out) == 1 and out[0].opcode == "WRITE" and out[0].size == len(msg)
    assert not out[0].malformed
    big_reply = reply(1, 0, body=b"\0" * 100_000)
    p.feed(record(big_reply)[:50_000], 0)
    assert p.buffered <= REPLY_HEAD_MAX
    out = p.feed(record(big_reply)[50_000:], 0)
    assert out[0].status_word == 0 and out[0].size == len(big_reply)
    assert CALL_HEAD_MAX < len(msg)


def test_compound_longer_than_the_head_gives_its_last_readable_operation():
    ops = ["PUTFH"] + ["NVERIFY"] * 5000 + ["WRITE"]
    msg = compound(1, ops)
    assert len(msg) > CALL_HEAD_MAX
    out = RecordParser().feed(record(msg), 0)
    assert out[0].opcode == "NVERIFY" and not out[0].malformed


def test_timestamps_are_of_the_completing_packet():
    data = record(call(1, 1, opaque(b"\x07" * 8)))
    p = RecordParser()
    assert p.feed(data[:10], 100) == []
    m = p.feed(data[10:], 200)[0]
    assert m.ts == 200 and m.ts_first == 100


def test_gap_inside_a_body_is_crossed_with_a_note():
    msg = call(1, 7, opaque(b"\x07" * 32) + b"\0" * 12 + opaque(b"\x55" * 3000))
    data = record(msg) + record(call(2, 0))
    p = RecordParser()
    assert p.feed(data[:200], 1) == []
    assert p.on_gap(1000) is True
    out = p.feed(data[1200:], 2)
    assert [m.xid for m in out] == [1, 2]
    assert out[0].notes == ["Packet loss while capturing the request"] and out[0].opcode == "WRITE"
    assert out[0].size == len(msg) and not out[1].notes


def test_gap_to_the_end_of_a_record_completes_it():
    msg = call(1, 7, opaque(b"\x07" * 32) + b"\0" * 12 + opaque(b"\x55" * 3000))
    data = record(msg)
    p = RecordParser()
    p.feed(data[:300], 1)
    assert p.on_gap(len(data) - 300) is True
    out = p.drain()
    assert len(out) == 1 and out[0].xid == 1 and out[0].notes
    assert p.drain() == []


def test_gap_over_a_record_marker_cannot_be_crossed():
    data = record(call(1, 0)) + record(call(2, 0))
    p = RecordParser()
    p.feed(data[:10], 1)
    assert p.on_gap(len(data)) is False
    p = RecordParser()
    p.feed(data[:2], 1)                  # inside a record marker
    assert p.on_gap(1) is False


def test_gap_that_took_the_header_loses_the_message_only():
    msg = call(1, 7, b"\0" * 3000)
    data = record(msg) + record(call(2, 0))
    p = RecordParser()
    p.feed(data[:4], 1)                  # the marker only
    assert p.on_gap(100) is True
    out = p.feed(data[104:], 2)
    assert [m.xid for m in out] == [2] and p.lost_messages == 1


def test_after_an_error_the_next_record_start_is_searched_for():
    p = RecordParser()
    with pytest.raises(ParseError):
        p.feed(b"\x80\x00\x00\x40" + b"\xff" * 60, 1)            # not RPC
    p.reset()
    big = reply(7, 0, body=b"\x00\x00\x00\x02" * 300)            # the tail of a large message...
    tail = record(big)[500:]
    out = p.feed(tail + record(call(8, 1, opaque(b"\x07" * 8))) + record(reply(8, 0)), 2)
    assert [(m.xid, m.is_call) for m in out] == [(8, True), (8, False)]
    assert p.skipped_bytes == len(tail)
    p.reset()
    assert p.feed(b"\0" * 100, 3) == [] and p.skipped_bytes == len(tail) + 100
    assert [m.xid for m in p.feed(record(denied(9)), 4)] == [9]


def test_flush_drops_an_incomplete_record():
    p = RecordParser()
    p.feed(record(call(1, 0))[:20], 1)
    assert p.flush() == [] and p.dropped_bytes == 16 and p.buffered == 0


def test_reset_forgets_everything():
    p = RecordParser()
    p.feed(record(call(1, 0))[:2], 1)
    p.reset()
    assert [m.xid for m in p.feed(record(call(3, 0)), 2)] == [3]


def test_udp_datagram_is_one_message():
    m = decode_message(call(77, 6, opaque(b"\x07" * 8) + b"\0" * 12, cred=unix_cred(machine=b"")), 5, 99)
    assert m.xid == 77 and m.opcode == "READ" and m.cred[1] == b"" and m.size == 99
