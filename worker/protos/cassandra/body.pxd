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

    cpdef object byte(self)

    cpdef object bytes_(self)

    cpdef object short_bytes(self)

    cpdef list string_list(self)


# the message type, so that its fields are read as C struct members
from worker.protos.cassandra.parser cimport CassandraMessage

cdef tuple _FLAG_TEXT, _VERSION_TEXT, _OP_TEXT

cpdef dict headers(CassandraMessage msg)

cpdef object _prefix(CassandraMessage msg, Reader r, bint response)

@cython.locals(body=bytes, n=Py_ssize_t)
cpdef dict decode_request(CassandraMessage msg)

@cython.locals(r=Reader, data=dict, op=cython.int, v=cython.int)
cpdef dict decode_response(CassandraMessage msg, bint quirks=*)

# the body decoders, C functions of a typed reader (its position, length and
# cpdef methods read at C level)
cpdef str row_flags(f)

cpdef dict _error(Reader r, int v)

cpdef object _failures(Reader r, int v)

@cython.locals(data=dict, rows=dict, prepared=dict)
cpdef dict _result(Reader r, int v, bint quirks)

@cython.locals(meta=dict, glob=cython.bint)
cpdef tuple _metadata(Reader r, int v, bint prepared)

cpdef _skip_col_specs(Reader r, cols, bint glob, dict meta)

cpdef _skip_type(Reader r, int depth)

@cython.locals(data=dict)
cpdef dict _schema_change(Reader r, int v)

@cython.locals(data=dict)
cpdef dict _event(Reader r, int v)
