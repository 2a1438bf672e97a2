"""SIP analyser (RFC 3261 over UDP and TCP, SDP bodies): one event per message."""
from worker.protos.sip.plugin import SipPlugin

__all__ = ["SipPlugin"]
