"""Configuration tables of the Packetbeat protocols that have no analyser yet.

A Packetbeat configuration lists every analyser (the shipped reference file
and Packetbeat's own test configurations enable twelve). Those entries must
validate exactly as Packetbeat would (unknown options are still errors), but
until a protocol's plugin lands its traffic is not analysed: the coordinator
logs one warning naming the protocol. When a plugin lands, its config class
replaces the table here and the entry moves to ``registry.BUILTIN``.

Every Packetbeat 8 protocol has an analyser now, so the table is empty; it stays
the place for a protocol whose configuration is known before its analyser.
"""
from __future__ import annotations

# name -> (config class, transports the protocol runs over)
PENDING: dict[str, tuple[type, tuple[str, ...]]] = {}
