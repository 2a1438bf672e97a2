# C types for worker/protos/icmp/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type built without a Python __init__.
import cython


cdef class IcmpMessage:
    cdef public object ts
    cdef public int version
    cdef public int type
    cdef public int code
    cdef public int id
    cdef public int seq
    cdef public Py_ssize_t size
    cdef public bint is_request
    cdef public bint needs_counterpart
    cdef public bint is_error
    cdef public list notes


cdef bytes _KIND


cdef class IcmpParser:
    @cython.locals(version=cython.int, n=cython.Py_ssize_t, typ=cython.int, kind=cython.int, m=IcmpMessage)
    cpdef IcmpMessage parse(self, data, ts, transport)
