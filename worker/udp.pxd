# C declarations for worker/udp.py when compiled (setup.py; pure Python mode).
cimport cython
from worker.plugin cimport Packet


cdef class UdpDispatcher:
    cdef dict _ports
    cdef list _plugins
    cdef dict _names
    cdef object _counters
    cdef object _log
    cdef set _logged
    cdef public dict _addr
    cdef Py_ssize_t _n_packets

    @cython.locals(sport=int, dport=int, addr=dict, src=object, dst=object, pkt=Packet)
    cpdef process(self, object ts, tuple dec, object raw)
