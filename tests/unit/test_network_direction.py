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
