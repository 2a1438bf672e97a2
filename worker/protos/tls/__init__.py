"""TLS analyser (SSL 3.0, TLS 1.0-1.3 handshakes over TCP)."""
from worker.protos.tls.plugin import TlsPlugin

__all__ = ["TlsPlugin"]
