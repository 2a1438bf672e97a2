"""Pairs RPC calls with their replies by xid (Packetbeat's ``rpc.go``
``callsSeen`` cache, keyed there by xid + client address for all
connections at once).

- TCP: one :class:`~worker.protos.glue.KeyedCorrelator` per connection, key
  ``(direction of the call, xid)``: a reply in direction d answers the call
  sent in the other direction, so NFSv4.1 back-channel calls (server ->
  client on the same connection) are kept apart.
- UDP: one table for the plugin, key ``(client ip, client port, server ip,
  server port, xid)``, bounded (``UDP_MAX_PENDING``, the oldest call is
  published alone when it is full) and expired by packet time.

Calls of other RPC programs (MOUNT, NLM, the NFSv4 callback program...) and
NFS calls Packetbeat 8 would drop as malformed are kept as *ignored* entries,
so their replies are recognised and dropped too; nothing is published for
them (counted by the plugin).
"""
from __future__ import annotations

from worker.protos.glue import KeyedCorrelator
from worker.protos.nfs.parser import NFS_PROGRAM, RecordParser, RpcMessage

TCP_MAX_PENDING = 4096      # calls waiting per TCP connection
UDP_MAX_PENDING = 65536     # calls waiting over UDP, all clients together


def published(call: RpcMessage) -> bool:
    """Whether a call becomes an event (an NFS call Packetbeat can read)."""
    return call.prog == NFS_PROGRAM and not call.malformed


class NfsConnection:
    """Per-TCP-connection state: one record parser per direction, the calls
    waiting for their reply."""
    __slots__ = ("parsers", "correlator", "__weakref__")

    def __init__(self, timeout_ns: int, max_message_size: int):
        self.parsers = (RecordParser(max_message_size), RecordParser(max_message_size))
        self.correlator = KeyedCorrelator(timeout_ns, TCP_MAX_PENDING)


def udp_key(tup, xid: int, is_call: bool) -> tuple:
    """The UDP table key of a message travelling along ``tup``."""
    if is_call:
        return (tup.src_ip, tup.src_port, tup.dst_ip, tup.dst_port, xid)
    return (tup.dst_ip, tup.dst_port, tup.src_ip, tup.src_port, xid)


class PendingCall:
    """A call waiting for its reply: the message, the endpoints oriented
    caller -> callee, and ``ts``/``notes`` for the correlator."""
    __slots__ = ("msg", "tuple", "ts", "notes")

    def __init__(self, msg: RpcMessage, tuple_):
        self.msg = msg
        self.tuple = tuple_
        self.ts = msg.ts
        self.notes = msg.notes
