# C types for worker/protos/pgsql/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.pgsql.parser cimport PgsqlMessage


cpdef str _s(bytes b)

@cython.locals(parts=list)
cpdef str query_method(str query)

@cython.locals(ev=dict, pg=dict, query=str, method=str, notes=list, status=str, q=bytes, known=tuple)
cpdef dict to_event(PgsqlMessage req, PgsqlMessage resp, cfg, tcptuple)

cdef dict _TEXTS
cdef Py_ssize_t _TEXTS_MAX, _TEXT_MAX
