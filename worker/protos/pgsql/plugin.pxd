# C types for worker/protos/pgsql/plugin.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The per-packet
# path is module functions with typed locals; the connection is an extension type.
import cython
from worker.plugin cimport Packet
from worker.protos.pgsql.parser cimport PgsqlMessage, PgsqlParser
from worker.protos.pgsql.trans cimport Correlator


@cython.final
cdef class PgsqlConnection:
    cdef public tuple parsers
    cdef public Correlator correlator
    cdef public bint encrypted


@cython.locals(conn=PgsqlConnection, parser=PgsqlParser, msgs=list)
cpdef _parse(plugin, Packet pkt, tcptuple, int direction, state)

@cython.locals(corr=Correlator, msg=PgsqlMessage, kind=cython.int, pairs=list)
cpdef _handle(plugin, PgsqlConnection conn, tcptuple, list msgs)

@cython.locals(req=PgsqlMessage, resp=PgsqlMessage)
cpdef _publish(plugin, list pairs, tcptuple)
