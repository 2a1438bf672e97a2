# C types for worker/protos/glue.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A SegmentParser is an extension type whose feed is a C-level
# method: analysers whose parsers derive from it (AMQP, NFS) feed a segment
# through feed_segment without a Python call. KeyedCorrelator is an extension
# type: its methods are C-level calls for a module that types it (NFS).

import cython


cdef class SegmentParser:
    cpdef list feed(self, data, ts)


cdef list _resync(parser, e)

cpdef list feed_segment(analyser, SegmentParser parser, pkt)


cdef class KeyedCorrelator:
    cdef public object pending
    cdef public Py_ssize_t max_pending
    cdef public object timeout_ns
    cdef public Py_ssize_t evicted
    cdef public Py_ssize_t expired

    @cython.locals(out=list)
    cpdef list add_request(self, key, req)
    cpdef tuple add_response(self, key, resp)
    cpdef object take(self, key)
    @cython.locals(out=list)
    cpdef list expire(self, now)
    cpdef list flush(self)
