"""RedisPlugin driven directly with Packet/TcpTuple: correlation with
pipelining, half transactions, queue limits, pub/sub and MONITOR set aside,
CLIENT REPLY, gaps, send options and the ECS fields of the events."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError, build
from worker.plugin import Packet, TcpPlugin, TcpTuple
from worker.protos.redis import RedisPlugin
from worker.protos.redis.config import RedisConfig

T0 = 1_600_000_000_000_000_000
MS = 1_000_000
TUPLE = TcpTuple("10.1.1.1", 40000, "10.2.2.2", 6379, 7)


def cmd(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        b = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out


class Conn:
    def __init__(self, cfg: dict | None = None):
        self.events: list[dict] = []
        self.plugin = RedisPlugin(build(RedisConfig, cfg or {}, "redis"), self.events.append)
        self.state = None

    def send(self, direction: int, data: bytes, ts: int) -> "Conn":
        ipp = TUPLE.ip_port() if direction == 0 else TUPLE.ip_port().reverse()
        self.state = self.plugin.parse(Packet(ts, ipp, memoryview(data)), TUPLE, direction, self.state)
        return self

    def req(self, data: bytes, ts: int = T0) -> "Conn":
        return self.send(0, data, ts)

    def resp(self, data: bytes, ts: int = T0 + 2 * MS) -> "Conn":
        return self.send(1, data, ts)

    def flush(self) -> "Conn":
        self.plugin.flush(TUPLE, self.state, T0 + 10**10)
        self.state = None
        return self


def test_plugin_shape_and_config():
    c = Conn()
    assert isinstance(c.plugin, TcpPlugin)
    assert c.plugin.ports() == [6379]
    assert Conn({"transaction_timeout": "3s"}).plugin.connection_timeout() == 3.0
    cfg = build(RedisConfig, {"ports": [6380], "queue_max_bytes": 10, "queue_max_messages": 2}, "redis")
    assert (cfg.queue_max_bytes, cfg.queue_max_messages) == (10, 2)
    with pytest.raises(ConfigError, match="redis.queue_max_byte"):
        build(RedisConfig, {"queue_max_byte": 1}, "redis")
    with pytest.raises(ConfigError, match="ports"):
        build(RedisConfig, {"ports": [70000]}, "redis")


def test_one_transaction_fields():
    c = Conn().req(cmd("lindex", "test", "1")).resp(b"$6\r\nhello1\r\n", T0 + 1_500_000)
    (ev,) = c.events
    assert ev["type"] == "redis" and ev["status"] == "OK"
    assert (ev["method"], ev["resource"], ev["query"]) == ("LINDEX", "test", "lindex test 1")
    assert ev["redis"] == {"return_value": "hello1"}
    assert ev["event"]["action"] == "redis.lindex" and "outcome" not in ev["event"]
    assert ev["event"]["duration"] == 1_500_000 and ev["event"]["dataset"] == "redis"
    assert ev["source"] == {"ip": "10.1.1.1", "port": 40000, "bytes": 33}
    assert ev["destination"] == {"ip": "10.2.2.2", "port": 6379, "bytes": 12}
    assert ev["network"]["transport"] == "tcp" and ev["network"]["protocol"] == "redis"
    assert "request" not in ev and "response" not in ev and "error" not in ev


def test_send_options_and_error_reply():
    c = Conn({"send_request": True, "send_response": True})
    c.req(cmd("LPUSH", "k", "x")).resp(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
    (ev,) = c.events
    assert ev["status"] == "Error" and ev["event"]["outcome"] == "failure"
    assert ev["redis"] == {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"}
    assert ev["request"] == "LPUSH k x" and ev["response"] == ev["redis"]["error"]


def test_two_word_commands_and_no_key():
    c = Conn().req(cmd("config", "get", "maxmemory") + cmd("CLIENT", "SETINFO", "LIB-NAME", "x")
                   + cmd("PING") + cmd("OBJECT", "ENCODING", "k"))
    c.resp(b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n+OK\r\n+PONG\r\n$8\r\nlistpack\r\n")
    got = [(e["method"], e.get("resource"), e["event"]["action"]) for e in c.events]
    assert got == [("CONFIG GET", "maxmemory", "redis.config get"),
                   ("CLIENT SETINFO", "LIB-NAME", "redis.client setinfo"),
                   ("PING", None, "redis.ping"), ("OBJECT", "ENCODING", "redis.object")]
    assert c.events[0]["redis"]["return_value"] == "[maxmemory, 0]"


def test_pipelining_in_order_and_timestamps():
    c = Conn().req(cmd("SET", "a", "1") + cmd("GET", "a") + cmd("INCR", "n"), T0)
    c.resp(b"+OK\r\n$1\r\n1\r\n", T0 + 3 * MS).resp(b":5\r\n", T0 + 4 * MS)
    assert [(e["query"], e["redis"]["return_value"], e["event"]["duration"]) for e in c.events] == [
        ("SET a 1", "OK", 3 * MS), ("GET a", "1", 3 * MS), ("INCR n", "5", 4 * MS)]


def test_multi_exec():
    c = Conn().req(cmd("MULTI") + cmd("INCR", "n") + cmd("LPUSH", "s", "x") + cmd("EXEC"))
    c.resp(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n-WRONGTYPE bad\r\n")
    assert [e["redis"]["return_value"] for e in c.events] == ["OK", "QUEUED", "QUEUED", "[1, WRONGTYPE bad]"]
    assert all(e["status"] == "OK" for e in c.events)       # as Packetbeat: only a top-level error


def test_resp3_replies():
    c = Conn().req(cmd("HELLO", "3") + cmd("HGETALL", "h") + cmd("SMEMBERS", "s") + cmd("ZSCORE", "z", "m")
                   + cmd("GET", "nokey"))
    c.resp(b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n"
           b"~2\r\n$1\r\nx\r\n$1\r\ny\r\n,2.25\r\n_\r\n")
    assert [e["redis"]["return_value"] for e in c.events] == [
        "{server: redis, proto: 3}", "{a: 1}", "[x, y]", "2.25", "nil"]


def test_inline_commands():
    c = Conn().req(b"PING\r\nSET k \"hello world\"\r\n").resp(b"+PONG\r\n+OK\r\n")
    assert [(e["method"], e.get("resource"), e["query"]) for e in c.events] == [
        ("PING", None, "PING"), ("SET", "k", "SET k hello world")]


def test_unmatched_response_and_request_are_published():
    c = Conn().resp(b"+OK\r\n")
    (ev,) = c.events
    assert ev["status"] == "Error" and ev["error"]["message"] == "Unmatched response"
    assert "method" not in ev and ev["redis"] == {"return_value": "OK"}
    c = Conn().req(cmd("BLPOP", "q", "0")).flush()
    (ev,) = c.events
    assert ev["status"] == "Error" and ev["error"]["message"] == "Unmatched request"
    assert ev["method"] == "BLPOP" and ev["redis"] == {} and "duration" not in ev["event"]


def test_queue_limits_evict_oldest_requests():
    c = Conn({"queue_max_messages": 2}).req(cmd("GET", "a") + cmd("GET", "b") + cmd("GET", "c"))
    (ev,) = c.events
    assert ev["query"] == "GET a" and "evicted" in ev["error"]["message"]
    c.resp(b"$1\r\nB\r\n$1\r\nC\r\n")
    assert [(e["query"], e["redis"].get("return_value")) for e in c.events[1:]] == [("GET b", "B"), ("GET c", "C")]
    c = Conn({"queue_max_bytes": 12}).req(cmd("GET", "aaaa") + cmd("GET", "bbbb"))   # 8 bytes of text each
    assert [e["query"] for e in c.events] == ["GET aaaa"]
    c = Conn({"queue_max_bytes": 0, "queue_max_messages": 0}).req(cmd("GET", "a") * 50)
    assert c.events == []                    # <= 0: no limit, as Packetbeat


def test_pubsub_resp2_messages_and_extra_confirmations_are_set_aside():
    c = Conn().req(cmd("SUBSCRIBE", "a", "b") + cmd("PSUBSCRIBE", "p*"))
    c.resp(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
           b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"
           b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"
           b"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npq\r\n$2\r\nyo\r\n")
    c.req(cmd("PING")).resp(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    c.req(cmd("UNSUBSCRIBE") + cmd("PUNSUBSCRIBE"))
    c.resp(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"
           b"*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n")
    assert [(e["query"], e["redis"]["return_value"]) for e in c.events] == [
        ("SUBSCRIBE a b", "[subscribe, a, 1]"), ("PSUBSCRIBE p*", "[psubscribe, p*, 3]"),
        ("PING", "[pong, ]"), ("UNSUBSCRIBE", "[unsubscribe, b, 2]"),
        ("PUNSUBSCRIBE", "[punsubscribe, p*, 0]")]
    c.flush()
    assert c.plugin.pushes == 4           # 2 messages, 1 extra subscribe, 1 extra unsubscribe


def test_resp3_push_between_request_and_reply():
    c = Conn().req(cmd("GET", "k"))
    c.resp(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n")
    (ev,) = c.events
    assert ev["query"] == "GET k" and ev["redis"]["return_value"] == "v"


def test_monitor_stream_is_set_aside():
    c = Conn().req(cmd("MONITOR")).resp(b"+OK\r\n")
    c.resp(b'+1700000000.1 [0 127.0.0.1:5] "get" "k"\r\n' * 3)
    assert len(c.events) == 1
    c.flush()
    assert c.plugin.monitor_lines == 3


def test_client_reply_off_and_skip():
    c = Conn().req(cmd("CLIENT", "REPLY", "OFF") + cmd("SET", "a", "1") + cmd("CLIENT", "REPLY", "ON"))
    c.resp(b"+OK\r\n")
    c.req(cmd("CLIENT", "REPLY", "SKIP") + cmd("SET", "b", "2") + cmd("GET", "b")).resp(b"$1\r\n2\r\n")
    got = [(e["query"], e["status"], e.get("redis", {}).get("return_value")) for e in c.events]
    assert got == [("CLIENT REPLY OFF", "Error", None), ("SET a 1", "Error", None),
                   ("CLIENT REPLY ON", "OK", "OK"), ("CLIENT REPLY SKIP", "Error", None),
                   ("SET b 2", "Error", None), ("GET b", "OK", "2")]
    assert "CLIENT REPLY" in c.events[1]["error"]["message"]


def test_garbage_reply_resyncs_with_next_segment():
    c = Conn().req(cmd("GET", "a") + cmd("GET", "b")).resp(b"?garbage\r\n")
    assert c.events == [] and c.plugin.parse_errors == 1
    c.resp(b"$1\r\nA\r\n")
    assert [e["query"] for e in c.events] == ["GET a"]


def test_gap_drops_the_connection_after_publishing_waiting_requests():
    c = Conn().req(cmd("GET", "a"))
    state, drop = c.plugin.gap_in_stream(TUPLE, 1, 100, c.state)
    assert state is None and drop is True
    (ev,) = c.events
    assert ev["error"]["message"] == ["Packet loss while capturing the response", "Unmatched request"]


def test_fin_keeps_state_and_flush_counts_partial_bytes():
    c = Conn().req(cmd("GET", "a")).resp(b"$10\r\nabc")
    assert c.plugin.received_fin(TUPLE, 1, c.state) is c.state
    c.flush()
    assert c.plugin.dropped_bytes == 8 and len(c.events) == 1


def test_an_empty_array_request_is_ignored_as_redis_does():
    """``*0`` / ``*-1`` sent as a command: Redis answers nothing; no event, no crash
    (found by bench/fuzz_engine.py: it raised IndexError)."""
    c = Conn()
    c.req(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n")
    c.resp(b"+PONG\r\n")
    assert [e["method"] for e in c.events] == ["PING"] and c.plugin.parse_errors == 0
