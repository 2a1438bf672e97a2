"""MongoDB analyser (legacy opcodes, OP_MSG, OP_COMPRESSED over TCP)."""
from worker.protos.mongodb.plugin import MongodbPlugin

__all__ = ["MongodbPlugin"]
