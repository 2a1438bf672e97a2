"""Memcache analyser, text and binary protocols over TCP and UDP (Packetbeat ``protos/memcache``)."""
from worker.protos.memcache.plugin import MemcachePlugin

__all__ = ["MemcachePlugin"]
