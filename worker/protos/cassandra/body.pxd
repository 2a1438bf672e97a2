# C types for worker/protos/cassandra/body.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The body reader keeps its position and length as C integers.
import cython


cdef class Reader:
    cdef public object b
    cdef public Py_ssize_t p
    cdef public Py_ssize_t n

    @cython.locals(p=Py_ssize_t)
    cpdef Py_ssize_t need(self, Py_ssize_t n) except -1

    cpdef object uint(self)

    @cython.locals(p=Py_ssize_t, end=Py_ssize_t)
    cpdef object raw(self, Py_ssize_t n)

    @cython.locals(p=Py_ssize_t, end=Py_ssize_t)
    cpdef str string(self)


# the message type, so that its fields are read as C struct members
from worker.protos.cassandra.parser cimport CassandraMessage

cdef tuple _FLAG_TEXT, _VERSION_TEXT, _OP_TEXT

cpdef dict headers(CassandraMessage msg)

cpdef object _prefix(CassandraMessage msg, Reader r, bint response)

cpdef dict decode_request(CassandraMessage msg)

@cython.locals(r=Reader, data=dict, op=cython.int, v=cython.int)
cpdef dict decode_response(CassandraMessage msg, bint quirks=*)
