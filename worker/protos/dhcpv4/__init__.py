"""DHCPv4 analyser over UDP (Packetbeat ``protos/dhcpv4``)."""
from worker.protos.dhcpv4.plugin import DhcpPlugin

__all__ = ["DhcpPlugin"]
