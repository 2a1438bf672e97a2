"""Cassandra analyser (CQL native protocol v3, v4 and v5 over TCP)."""
from worker.protos.cassandra.plugin import CassandraPlugin

__all__ = ["CassandraPlugin"]
