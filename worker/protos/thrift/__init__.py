"""Thrift-RPC analyser (binary and compact protocols, unframed and framed transports)."""
from worker.protos.thrift.plugin import ThriftPlugin

__all__ = ["ThriftPlugin"]
