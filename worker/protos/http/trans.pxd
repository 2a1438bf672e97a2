# C types for worker/protos/http/trans.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.http.parser cimport HttpMessage

cdef Py_ssize_t MAX_QUEUED


cdef class Correlator:
    cdef public list requests
    cdef public list responses

    @cython.locals(out=list)
    cpdef list add(self, HttpMessage msg)

    cpdef list flush(self)

    cpdef list _correlate(self, list out)
