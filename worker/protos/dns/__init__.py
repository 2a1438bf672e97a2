"""DNS analyser over UDP and TCP (Packetbeat ``protos/dns``)."""
from worker.protos.dns.plugin import DnsPlugin

__all__ = ["DnsPlugin"]
