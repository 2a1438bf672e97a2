"""LINEKV analyser for packetbeat-py (found through the ``packetbeat.protocols`` entry point)."""
from linekv.plugin import LineKvPlugin

__all__ = ["LineKvPlugin"]
