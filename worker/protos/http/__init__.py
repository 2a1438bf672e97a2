"""HTTP/1.x analyser (Packetbeat ``protos/http``)."""
from worker.protos.http.plugin import HttpPlugin

__all__ = ["HttpPlugin"]
