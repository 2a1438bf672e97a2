# C types for worker/protos/pgsql/trans.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.pgsql.parser cimport PgsqlMessage

cdef Py_ssize_t MAX_QUEUED


@cython.final
cdef class Correlator:
    cdef public object queue
    cdef public Py_ssize_t syncs

    cpdef list add_request(self, msg)

    cpdef list add_sync(self)

    @cython.locals(q=object)
    cpdef list add_response(self, PgsqlMessage msg)

    @cython.locals(out=list, q=object, req=PgsqlMessage)
    cpdef list ready(self, PgsqlMessage partial)

    @cython.locals(out=list)
    cpdef list flush(self)

    @cython.locals(out=list, q=object)
    cpdef list _bound(self)
