# C types for worker/protos/pgsql/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.pgsql.parser cimport PgsqlMessage
from worker.protos.sqltext cimport TextCache


cpdef str _s(bytes b)

@cython.locals(parts=list)
cpdef str query_method(str query)

@cython.locals(query=str)
cpdef tuple _text_and_method(bytes q)

@cython.locals(ev=dict, pg=dict, query=str, method=str, notes=list, status=str)
cpdef dict to_event(PgsqlMessage req, PgsqlMessage resp, cfg, tcptuple)

cdef TextCache _TEXTS
