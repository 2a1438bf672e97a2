# C types for worker/protos/memcache/trans.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The
# correlator runs once per message: C-level calls between its helpers.
import cython


cpdef bint expects_response(msg) except -1

cpdef bint check_complete(msg) except -1

cpdef bint try_merge(prev, msg, max_values) except -1

cpdef bint _merge_stats(prev, msg) except -1

cpdef bint _shared_opaque(requests, r) except -1


cdef class TcpCorrelator:
    cdef public object requests
    cdef public object responses
    cdef public object max_values

    cpdef list add(self, msg)

    cpdef list _correlate(self, list out)

    cpdef list flush(self)
