"""Address bytes -> text (called once per connection, never per packet)."""
from __future__ import annotations

import socket


def ip_text(addr: bytes) -> str:
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    if len(addr) == 16:
        return socket.inet_ntop(socket.AF_INET6, addr)
    raise ValueError("not an IPv4/IPv6 address: %d bytes" % len(addr))
