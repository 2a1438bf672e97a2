# C types for worker/protos/pgsql/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The parser
# and the message are extension types: attribute access is a C field access
# instead of a slot descriptor look-up; positions and lengths are C ints and
# message headers are read from the bytes directly.
import cython
from worker.protos.sqltext cimport remember

cdef bytes _FRONTEND_OK, _BACKEND_OK


@cython.final
cdef class PgsqlMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public int kind
    cdef public Py_ssize_t size
    cdef public list notes
    cdef public object query
    cdef public bint hidden
    cdef public list fields
    cdef public list formats
    cdef public Py_ssize_t num_fields
    cdef public Py_ssize_t num_rows
    cdef public list rows
    cdef public bint is_error
    cdef public object error_code
    cdef public object error_message
    cdef public object error_severity
    cdef public object partial
    cdef public object ssl


@cython.locals(m=PgsqlMessage)
cpdef PgsqlMessage _message(ts, bint is_request, int kind, Py_ssize_t size)


@cython.final
cdef class PgsqlParser:
    cdef public bint client
    cdef public Py_ssize_t max_rows
    cdef public Py_ssize_t max_row_length
    cdef public bytearray _buf
    cdef public object _buf_ts
    cdef public list _out
    cdef public bint _encrypted
    cdef public bint _expect_ssl
    cdef public object _big
    cdef public PgsqlMessage _resp
    cdef public dict _statements
    cdef public dict _portals
    cdef public Py_ssize_t _group_size
    cdef public object _group_ts
    cdef public object _group_query
    cdef public PgsqlMessage _bump
    cdef public PgsqlMessage _copy_target
    cdef public list _pending_notes
    cdef public bint _described

    @cython.locals(out=list, buf=bytearray, carry=Py_ssize_t, whole=bytes, off=Py_ssize_t)
    cpdef list feed(self, data, ts)

    @cython.locals(n=Py_ssize_t, t=cython.int, length=Py_ssize_t)
    cdef bint _ready(self, bytearray buf) except -1

    @cython.locals(off=Py_ssize_t, n=Py_ssize_t, t=cython.int, length=Py_ssize_t, end=Py_ssize_t,
                   client=bint, valid=bytes)
    cdef Py_ssize_t _parse(self, bytes buf, Py_ssize_t carry, ts) except -1

    @cython.locals(z=Py_ssize_t, m=PgsqlMessage, target=PgsqlMessage, gsize=Py_ssize_t,
                   p=Py_ssize_t, stmts=list, out=list)
    cdef _frontend(self, int t, bytes buf, Py_ssize_t start, Py_ssize_t end, ts, bint partial,
                   Py_ssize_t size=*, bint lost=*)

    @cython.locals(resp=PgsqlMessage, m=PgsqlMessage)
    cdef _backend(self, int t, bytes buf, Py_ssize_t start, Py_ssize_t end, ts, bint partial,
                  Py_ssize_t size=*, bint lost=*)

    cdef _end_describe(self, PgsqlMessage resp)

    @cython.locals(notes=list)
    cdef list _take_notes(self)

    @cython.locals(count=Py_ssize_t, off=Py_ssize_t, z=Py_ssize_t, names=list, formats=list)
    cdef _row_description(self, PgsqlMessage resp, bytes buf, Py_ssize_t start, Py_ssize_t end)

    @cython.locals(count=Py_ssize_t, off=Py_ssize_t, formats=list, nformats=Py_ssize_t, row=list,
                   room=Py_ssize_t, i=Py_ssize_t, clen=cython.longlong, value=bytes)
    cdef list _row(self, PgsqlMessage resp, bytes buf, Py_ssize_t start, Py_ssize_t end)


@cython.locals(z=Py_ssize_t)
cpdef tuple _cstring(bytes buf, Py_ssize_t start, Py_ssize_t end)

@cython.locals(off=Py_ssize_t, code=cython.int, z=Py_ssize_t)
cpdef _error_fields(PgsqlMessage resp, bytes buf, Py_ssize_t start, Py_ssize_t end)
