# C types for worker/protos/http/plugin.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from worker.protos.http.parser cimport HttpMessage, HttpParser
from worker.protos.http.trans cimport Correlator
from worker.protos.http.event cimport to_event


cdef class HttpConnection:
    cdef public tuple parsers
    cdef public Correlator correlator
    cdef public bint tunnel
    cdef public object early
    cdef public object early_req


@cython.locals(conn=HttpConnection, parser=HttpParser, msgs=list)
cpdef _parse(plugin, pkt, tcptuple, int direction, state)

@cython.locals(corr=Correlator, msg=HttpMessage, pending=object)
cpdef _handle(plugin, HttpConnection conn, tcptuple, int direction, list msgs)

@cython.locals(req=HttpMessage, resp=HttpMessage)
cpdef _pairs(plugin, HttpConnection conn, tcptuple, list pairs)

@cython.locals(corr=Correlator, p0=HttpParser, p1=HttpParser)
cdef bint _idle(HttpConnection conn) except -1
