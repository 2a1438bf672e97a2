# C types for worker/protos/dns/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-message path (``_parse_udp``, ``_message``) calls the
# decoder, the correlator and the event builder at C level.
import cython
from worker.protos.dns.parser cimport DnsMessage, decode_message
from worker.protos.dns.trans cimport Correlator, Transaction
from worker.protos.dns.event cimport to_event


@cython.locals(data=bytes, msg=DnsMessage, obj=object, payload=object)
cpdef _parse_udp(plugin, pkt)

@cython.locals(corr=Correlator, done=Transaction)
cpdef object _message(plugin, tuple_, DnsMessage msg)
