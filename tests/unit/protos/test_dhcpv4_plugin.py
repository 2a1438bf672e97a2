"""DhcpPlugin driven directly and through a worker engine: one event per
datagram at once (Packetbeat 8 pairs nothing), counters, options accepted
with Packetbeat's names, the registry entry, Ethernet frames on both ports,
garbage and truncation, and every event through the msgpack wire format."""
from __future__ import annotations

import struct

import msgpack
import pytest

from shared.confutil import ConfigError, build
from tests.unit.protos.dhcpv4_fixtures import PB_ACK, PB_REQUEST, message, opt
from worker.engine import Engine
from worker.plugin import IpPortTuple, Packet, ParseError as BaseParseError, UdpPlugin
from worker.protos.dhcpv4 import DhcpPlugin
from worker.protos.dhcpv4.config import DhcpConfig
from worker.protos.dhcpv4.parser import ParseError
from worker.protos.registry import Registry, load_registry

T0 = 1_700_000_000_000_000_000
REQ_T = IpPortTuple(17, "0.0.0.0", 68, "255.255.255.255", 67)
ACK_T = IpPortTuple(17, "192.168.0.1", 67, "192.168.0.10", 68)


def plugin(cfg: dict | None = None):
    events: list[dict] = []
    return DhcpPlugin(build(DhcpConfig, cfg or {}, "dhcpv4"), events.append), events


def test_satisfies_the_udp_contract_and_registry():
    p, _ = plugin()
    assert isinstance(p, UdpPlugin)
    assert p.ports() == [67, 68]
    spec = load_registry(with_entry_points=False).get("dhcpv4")
    assert spec.implemented and spec.transports == ("udp",) and spec.config_class is DhcpConfig
    assert issubclass(ParseError, BaseParseError)


def test_each_message_is_published_at_once_and_alone():
    p, events = plugin()
    p.parse_udp(Packet(T0, REQ_T, memoryview(PB_REQUEST)))
    assert len(events) == 1 and events[0]["dhcpv4"]["option"]["message_type"] == "request"
    p.parse_udp(Packet(T0 + 5_000_000, ACK_T, memoryview(PB_ACK)))
    assert len(events) == 2
    ack = events[1]
    # no pairing: no duration, no end, each event starts at its own packet
    assert "duration" not in ack["event"] and "end" not in ack["event"]
    assert ack["event"]["start"] == "2023-11-14T22:13:20.005000000Z"
    assert ack["@timestamp"] == "2023-11-14T22:13:20.005Z"
    p.expire(T0 + 10**12)
    p.flush_all(T0 + 10**12)
    assert len(events) == 2
    assert (p.total_packets, p.parse_failures) == (2, 0)


def test_garbage_is_counted_raised_and_not_published():
    p, events = plugin()
    for junk in (b"", b"\x01" * 300, PB_REQUEST[:100], message(end=False)):
        with pytest.raises(ParseError):
            p.parse_udp(Packet(T0, REQ_T, memoryview(junk)))
    assert events == [] and (p.total_packets, p.parse_failures) == (4, 4)


@pytest.mark.parametrize("cfg", [
    {"send_request": True, "send_response": True, "transaction_timeout": "1s"},
    {"ports": [1067, 1068], "tags": ["x"], "fields": {"a": 1}, "enabled": True},
])
def test_common_options_are_accepted_and_change_nothing(cfg):
    p, events = plugin(cfg)
    p.parse_udp(Packet(T0, REQ_T, memoryview(PB_REQUEST)))
    [ev] = events
    assert "request" not in ev and "response" not in ev      # as Packetbeat's dhcpv4
    if "ports" in cfg:
        assert p.ports() == [1067, 1068]


@pytest.mark.parametrize("cfg,key", [({"ports": [0]}, "ports"), ({"ports": [70000]}, "ports"),
                                     ({"max_message_size": 10}, "max_message_size")])
def test_bad_options_are_errors_naming_the_key(cfg, key):
    with pytest.raises(ConfigError, match=key):
        build(DhcpConfig, cfg, "packetbeat.protocols[0]")


def _frame(payload: bytes, src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    udp_h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    ip_h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp_h) + len(payload), 1, 0, 64, 17, 0, src, dst)
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip_h + udp_h + payload


def _engine(cfg: dict | None = None) -> Engine:
    reg = Registry()
    reg.register("dhcpv4", DhcpPlugin)
    return Engine([{"type": "dhcpv4", **(cfg or {})}], reg)


def test_engine_routes_both_ports_and_survives_garbage():
    eng = _engine()
    zero, bcast, srv, cli = bytes(4), b"\xff" * 4, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 50])
    offer = message(op=2, yiaddr="10.0.0.50", options=opt(53, b"\x02") + opt(54, srv))
    recs = [
        [T0, 1, _frame(message(options=opt(53, b"\x01")), zero, 68, bcast, 67)],
        [T0 + 1, 1, _frame(offer, srv, 67, cli, 68)],
        [T0 + 2, 1, _frame(b"\xde\xad" * 20, zero, 68, bcast, 67)],
        [T0 + 3, 1, _frame(PB_REQUEST[:250], zero, 68, bcast, 67)],
        [T0 + 4, 1, _frame(offer, srv, 67, srv, 67)],            # relay to relay: port 67 both ways
        [T0 + 5, 1, _frame(offer, srv, 5000, cli, 6000)],        # not a DHCP port: not analysed
    ]
    eng.handle(recs)
    eng.finish()
    evs = eng.take_events()
    assert [e["dhcpv4"]["option"]["message_type"] for e in evs] == ["discover", "offer", "offer"]
    assert eng.counters["udp.parse_errors"] == 2 and not eng.counters["udp.plugin_errors"]
    assert eng.plugins["dhcpv4"].parse_failures == 2
    assert evs[1]["client"] == {"ip": "10.0.0.50", "port": 68}
    assert evs[1]["server"]["ip"] == "10.0.0.1" and evs[1]["server"]["bytes"] == len(offer)
    for ev in evs:       # msgpack-native, str keys: what crosses to the publisher
        assert msgpack.unpackb(msgpack.packb(ev)) == ev
