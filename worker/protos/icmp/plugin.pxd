# C types for worker/protos/icmp/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-datagram path (``_parse``) calls the parser, the
# correlator and the event builder at C level.
import cython
from worker.plugin cimport Packet
from worker.protos.icmp.parser cimport IcmpParser, IcmpMessage
from worker.protos.icmp.trans cimport Correlator
from worker.protos.icmp.event cimport to_event


cpdef _parse(IcmpParser parser, Correlator correlator, emit, Packet pkt)

@cython.locals(msg=IcmpMessage, out=list)
cdef _datagram(IcmpParser parser, Correlator correlator, emit, ts, transport, src_ip, dst_ip, payload)
