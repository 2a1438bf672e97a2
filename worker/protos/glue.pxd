# C types for worker/protos/glue.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A SegmentParser is an extension type whose feed is a C-level
# method: analysers whose parsers derive from it (AMQP, NFS) feed a segment
# through feed_segment without a Python call.

cdef class SegmentParser:
    cpdef list feed(self, data, ts)


cdef list _resync(parser, e)

cpdef list feed_segment(analyser, SegmentParser parser, pkt)
