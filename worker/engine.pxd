# C declarations for worker/engine.py when compiled (setup.py; pure Python mode).
cimport cython
from worker.tcp cimport TcpTracker
from worker.udp cimport UdpDispatcher
from shared.decode cimport decode

cdef bint _FAST

@cython.locals(dec=tuple, t=int, linktype=int, fast=bint, n_icmp=Py_ssize_t)
cdef object _dispatch(object engine, object records, TcpTracker tcp, UdpDispatcher udp, object counters)

@cython.locals(tuples=dict, ips=tuple)
cdef _icmp(object engine, object ts, tuple dec, object raw)
