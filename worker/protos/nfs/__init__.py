"""NFS analyser (ONC-RPC over TCP and UDP: NFSv3 procedures, NFSv4 COMPOUND)."""
from worker.protos.nfs.plugin import NfsPlugin

__all__ = ["NfsPlugin"]
