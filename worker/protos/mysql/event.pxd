# C types for worker/protos/mysql/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.mysql.parser cimport MysqlMessage
from worker.protos.sqltext cimport TextCache


cpdef str _s(bytes b)

@cython.locals(db=str)
cpdef tuple method_and_query(MysqlMessage req)

@cython.locals(raw=str, query=str, cut=Py_ssize_t, i=Py_ssize_t, ch=str)
cpdef tuple _method_and_query(bytes q)

cdef TextCache _TEXTS

@cython.locals(notes=list, mysql=dict, ev=dict, status=str)
cpdef dict to_event(MysqlMessage req, MysqlMessage resp, cfg, tcptuple)
