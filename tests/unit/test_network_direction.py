"""network.direction as Packetbeat 8 computes it (pb.Fields.ComputeValues): host based first,
then perimeter based on packetbeat.interfaces.internal_networks."""
from __future__ import annotations

import pytest

from shared.confutil import ConfigError
from worker.ecs import configure_direction, network_direction, transaction_event
from worker.plugin import TcpTuple


@pytest.fixture(autouse=True)
def reset():
    yield
    configure_direction(None)


@pytest.mark.parametrize("src,dst,want", [
    ("10.0.0.1", "127.0.0.1", "ingress"),          # destination loopback
    ("127.0.0.1", "10.0.0.1", "egress"),           # source loopback
    ("10.0.0.1", "169.254.1.2", "ingress"),        # link-local unicast
    ("10.0.0.1", "224.0.0.251", "ingress"),        # link-local multicast (mDNS)
    ("fe80::1", "2001:db8::1", "egress"),
    ("10.0.0.1", "10.0.0.2", "internal"),
    ("10.0.0.1", "8.8.8.8", "outbound"),
    ("8.8.8.8", "192.168.1.5", "inbound"),
    ("8.8.8.8", "1.1.1.1", "external"),
    ("::ffff:10.0.0.1", "10.0.0.2", "internal"),   # v4-mapped v6 is its v4 address
])
def test_private_perimeter(src, dst, want):
    configure_direction(["private"])
    assert network_direction(src, dst) == want


def test_without_internal_networks_only_host_rules_apply_and_a_cidr_list_works():
    assert network_direction("10.0.0.1", "8.8.8.8") == "unknown"
    configure_direction(["8.8.8.0/24", "loopback"])
    assert network_direction("10.0.0.1", "8.8.8.8") == "inbound"
    configure_direction(["private"], local_ips=["10.0.0.2"])     # live mode: this host's addresses
    assert network_direction("10.0.0.1", "10.0.0.2") == "ingress"
    assert network_direction("10.0.0.2", "8.8.8.8") == "egress"


def test_events_carry_it_and_a_bad_network_is_a_config_error():
    configure_direction(["private"])
    ev = transaction_event("http", TcpTuple("10.9.0.1", 40000, "8.8.4.4", 80, 1), 1, 2)
    assert ev["network"]["direction"] == "outbound"
    with pytest.raises(ConfigError, match="internal_networks"):
        configure_direction(["not-a-network"])


# -- the IPv4 fast path (ecs._V4_BOUNDS) against the ipaddress-based tests ------------------

import ipaddress  # noqa: E402
import random  # noqa: E402

import worker.ecs as ecs  # noqa: E402
from worker.processors.conditions import NAMED_NETWORKS, network_matcher  # noqa: E402

_SETTINGS = [None, ["private"], ["private", "loopback"], ["10.0.0.0/8", "8.8.8.0/24"],
             ["unicast", "fd00::/8"], ["private", "2001:db8::/32"], ["192.168.1.7", "0.0.0.0/1"],
             ["172.16.0.0/12", "public"], ["::/0"]] + [[n] for n in sorted(NAMED_NETWORKS)]


def _addresses(seed: int) -> list:
    rnd = random.Random(seed)
    out = [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(300)]
    # both ends of every range the named networks use, and their neighbours
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "0.0.0.0/32",
                 "169.254.0.0/16", "224.0.0.0/24", "224.0.0.0/4", "255.255.255.255/32",
                 "8.8.8.0/24", "0.0.0.0/1", "192.168.1.7/32"):
        net = ipaddress.IPv4Network(cidr)
        for n in (int(net.network_address) - 1, int(net.network_address),
                  int(net.broadcast_address), int(net.broadcast_address) + 1):
            if 0 <= n <= 0xFFFFFFFF:
                out.append(str(ipaddress.IPv4Address(n)))
    for prefix in ("fd00::", "fe80::", "ff02::", "ff01::", "ff05::", "2001:db8::", "2a00::", "::"):
        base = int(ipaddress.IPv6Address(prefix))
        out += [str(ipaddress.IPv6Address(base | rnd.getrandbits(64))) for _ in range(10)]
    out += ["::1", "::ffff:10.1.2.3", "::ffff:8.8.8.8", "::ffff:127.0.0.1", "010.0.0.1", "1.2.3",
            "10.0.0.256", "not-an-address", "fe80::1%eth0"]
    return out


def _reference(internal_networks, local_ips, src: str, dst: str) -> str:
    """network.direction from ipaddress objects and conditions.network_matcher only."""
    matcher = network_matcher(list(internal_networks), "x") if internal_networks else None
    local = {ipaddress.ip_address(a) for a in local_ips}

    def sides(text):
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        host = (ip.is_loopback or ip.is_link_local or ip in local
                or (ip.is_multicast and ip in ipaddress.ip_network(
                    "224.0.0.0/24" if ip.version == 4 else "ff02::/16")))
        return host, bool(matcher(ip)) if matcher else False

    s, d = sides(src), sides(dst)
    if s is None or d is None:
        return "unknown"
    if d[0]:
        return "ingress"
    if s[0]:
        return "egress"
    if matcher is None:
        return "unknown"
    if s[1]:
        return "internal" if d[1] else "outbound"
    return "inbound" if d[1] else "external"


def _directions(internal_networks, local_ips, pairs) -> list:
    """(network_direction, an event's network.direction and community_id) of each pair."""
    configure_direction(internal_networks, local_ips)
    out = []
    for i, (src, dst) in enumerate(pairs):
        nd = network_direction(src, dst)
        try:
            ev = transaction_event("http", TcpTuple(src, 40000 + i % 7, dst, 80, 1), 1, 2)
        except ValueError:         # an address that is none (community_id's error)
            net = None
        else:
            net = (ev["network"].get("direction"), ev["network"].get("community_id"))
        out.append((nd, net))
    return out


@pytest.mark.parametrize("internal_networks", _SETTINGS, ids=str)
def test_ipv4_fast_path_equals_the_ipaddress_path(internal_networks, monkeypatch):
    addrs = _addresses(len(str(internal_networks)))
    rnd = random.Random(7)
    pairs = [(rnd.choice(addrs), rnd.choice(addrs)) for _ in range(1500)]
    pairs += [(a, a) for a in addrs]
    local_ips = ["10.0.0.2", "8.8.4.4", "fd00::2"]
    for local in ((), local_ips):
        fast = _directions(internal_networks, local, pairs)
        if internal_networks and all(isinstance(s, str) for s in internal_networks):
            assert ecs._V4_BOUNDS[0] is not None          # the fast path is what was measured
        with monkeypatch.context() as m:
            m.setattr(ecs, "_v4_bounds", lambda specs: None)
            slow = _directions(internal_networks, local, pairs)
            if internal_networks:
                assert ecs._V4_BOUNDS[0] is None
        assert fast == slow
        for (src, dst), (nd, _) in zip(pairs, fast):
            assert nd == _reference(internal_networks, local, src, dst), (src, dst)


# -- the new-flow fast path (ecs._flow_parts_fast) for ICMP, IPv6 and every transport ---------

import base64  # noqa: E402
import hashlib  # noqa: E402
import struct  # noqa: E402

from worker.plugin import IpPortTuple  # noqa: E402

_ICMP_PAIRS = {1: {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17},
               58: {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
                    144: 145, 145: 144}}


def _reference_cid(transport, src, sport, dst, dport) -> str:
    """Community ID v1 (corelight spec) from ipaddress and hashlib only."""
    s = ipaddress.ip_address(src).packed
    d = ipaddress.ip_address(dst).packed
    if transport in _ICMP_PAIRS:
        table = _ICMP_PAIRS[transport]
        sport, dport = (sport, table[sport]) if sport in table else (sport, dport)
    if (s, sport) > (d, dport):
        s, d, sport, dport = d, s, dport, sport
    blob = struct.pack("!H", 0) + s + d + struct.pack("!BxHH", transport, sport & 0xFFFF, dport & 0xFFFF)
    return "1:" + base64.b64encode(hashlib.sha1(blob).digest()).decode()


def test_cid_text_equals_hashlib_for_every_blob_length():
    rnd = random.Random(3)
    for n in list(range(0, 80)) * 20:
        blob = bytes(rnd.getrandbits(8) for _ in range(n))
        assert ecs._cid(blob) == "1:" + base64.b64encode(hashlib.sha1(blob).digest()).decode(), blob


@pytest.mark.parametrize("internal_networks", [None, ["private"], ["::/0"]], ids=str)
def test_new_flow_parts_of_icmp_ipv6_and_udp_equal_the_references(internal_networks):
    rnd = random.Random(11)
    addrs = [a for a in _addresses(5) if "%" not in a and a not in ("010.0.0.1", "1.2.3", "10.0.0.256",
                                                                   "not-an-address")]
    addrs += ["::ffff:169.254.0.1", "::ffff:224.0.0.9", "fe80::", "febf::1", "fec0::1", "ff02::1", "ff12::1"]
    v4 = [a for a in addrs if ":" not in a]
    v6 = [a for a in addrs if ":" in a]
    for local in ((), ["10.0.0.2", "fd00::2", "fe80::1"]):
        configure_direction(internal_networks, local)
        for i in range(1500):
            fam = v4 if i % 2 else v6
            src, dst = rnd.choice(fam), rnd.choice(fam)
            if i % 50 == 0:
                dst = src
            transport = rnd.choice((1, 58, 17, 6, 132))
            if transport in (1, 58):
                typ = rnd.choice(list(_ICMP_PAIRS[transport]) + [3, 5, 11, 1, 2, 200])
                code = rnd.choice((0, 1, 3, 255))
                ev = transaction_event("icmp", IpPortTuple(transport, src, 0, dst, 0), 1, 2, 3, 4,
                                       transport=transport, cid_ports=(typ, code))
                want = _reference_cid(transport, src, typ, dst, code)
            else:
                sport, dport = rnd.choice((0, 53, 40000, 65535)), rnd.choice((0, 53, 443))
                ev = transaction_event("dns", IpPortTuple(transport, src, sport, dst, dport), 1, None,
                                       transport=transport)
                want = _reference_cid(transport, src, sport, dst, dport)
            net = ev["network"]
            assert net["community_id"] == want, (transport, src, dst)
            assert net["direction"] == _reference(internal_networks, local, src, dst), (src, dst)
            assert net["type"] == ("ipv6" if ":" in src else "ipv4")
