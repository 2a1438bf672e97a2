"""Redis analyser (RESP2 and RESP3 over TCP)."""
from worker.protos.redis.plugin import RedisPlugin

__all__ = ["RedisPlugin"]
