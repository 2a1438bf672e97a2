"""ICMPv4 / ICMPv6 analyser (Packetbeat ``protos/icmp``)."""
from worker.protos.icmp.plugin import IcmpPlugin

__all__ = ["IcmpPlugin"]
