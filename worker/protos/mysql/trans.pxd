# C types for worker/protos/mysql/trans.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython


@cython.final
cdef class Correlator:
    cdef public object requests
    cdef public Py_ssize_t dead

    cpdef list add_request(self, msg)

    cpdef tuple add_response(self, msg)

    @cython.locals(out=list)
    cpdef object expire(self, older_than)

    cpdef list flush(self)
