# C types for worker/protos/memcache/plugin.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The per-packet
# TCP path is module functions with typed locals; the connection is an extension type.
import cython
from worker.plugin cimport Packet
from worker.protos.memcache.parser cimport MemcacheMessage, MemcacheParser
from worker.protos.memcache.trans cimport TcpCorrelator, UdpMessage, UdpTransaction, UdpTransactions


@cython.final
cdef class MemcacheConnection:
    cdef public tuple parsers
    cdef public TcpCorrelator correlator


@cython.locals(conn=MemcacheConnection, parser=MemcacheParser, msgs=list)
cpdef _parse(plugin, Packet pkt, tcptuple, int direction, state)

@cython.locals(corr=TcpCorrelator, msg=MemcacheMessage, req=MemcacheMessage, resp=MemcacheMessage)
cpdef _handle(plugin, MemcacheConnection conn, tcptuple, list msgs)

@cython.locals(payload=object, udp=UdpTransactions, t=UdpTransaction, um=UdpMessage, msg=MemcacheMessage,
               resp=MemcacheMessage, more=MemcacheMessage, side=cython.int, msgs=list)
cpdef _parse_udp(plugin, Packet pkt)
