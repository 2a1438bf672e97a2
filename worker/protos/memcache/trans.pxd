# C types for worker/protos/memcache/trans.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The
# correlator runs once per message: C-level calls between its helpers, and
# the messages are extension types (parser.pxd).
import cython
from worker.protos.memcache.parser cimport MemcacheMessage


cpdef bint expects_response(MemcacheMessage msg) except -1

cpdef bint check_complete(MemcacheMessage msg) except -1

@cython.locals(pname=str, name=str)
cpdef bint try_merge(MemcacheMessage prev, MemcacheMessage msg, max_values) except -1

cpdef bint _merge_stats(MemcacheMessage prev, MemcacheMessage msg) except -1

@cython.locals(o=MemcacheMessage)
cpdef bint _shared_opaque(requests, MemcacheMessage r) except -1


cdef class TcpCorrelator:
    cdef public object requests
    cdef public object responses
    cdef public object max_values

    @cython.locals(old=MemcacheMessage)
    cpdef list add(self, MemcacheMessage msg)

    @cython.locals(resp=MemcacheMessage, req=MemcacheMessage, r=MemcacheMessage)
    cpdef list _correlate(self, list out)

    @cython.locals(out=list, r=MemcacheMessage)
    cpdef list flush(self)


@cython.final
cdef class UdpMessage:
    cdef public object total
    cdef public object parts
    cdef public Py_ssize_t count
    cdef public object ts
    cdef public bint complete

    cpdef object add(self, seq, data)


@cython.final
cdef class UdpTransaction:
    cdef public object key
    cdef public MemcacheMessage request
    cdef public MemcacheMessage response
    cdef public object resp_side
    cdef public list messages
    cdef public object tuple
    cdef public object deadline
    cdef public TcpCorrelator corr
    cdef public object req_side


@cython.final
cdef class UdpTransactions:
    cdef public object open
    cdef public object timeout_ns

    @cython.locals(evicted=list, t=UdpTransaction)
    cpdef tuple get(self, key, tup, ts)

    cpdef remove(self, UdpTransaction t)
