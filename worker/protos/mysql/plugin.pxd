# C types for worker/protos/mysql/plugin.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The per-packet
# path is module functions with typed locals; connection and statement are
# extension types.
import cython
from worker.plugin cimport Packet
from worker.protos.mysql.parser cimport MysqlMessage, MysqlParser
from worker.protos.mysql.trans cimport Correlator
from worker.protos.sqltext cimport remember

cdef int _COMMAND, _RESPONSE, _INFILE_REQUEST, _GREETING, _LOGIN, _SSL_REQUEST, _AUTH_OK, _AUTH_ERR
cdef int _SIMPLE, _NONE
cdef frozenset PUBLISHED


@cython.final
cdef class Statement:
    cdef public object query
    cdef public object nparams
    cdef public object types
    cdef public object last_ts


@cython.final
cdef class MysqlConnection:
    cdef public tuple parsers
    cdef public Correlator correlator
    cdef public dict statements
    cdef public object server_version
    cdef public object user
    cdef public object database
    cdef public bint tls
    cdef public bint compressed


@cython.locals(conn=MysqlConnection, corr=Correlator, parser=MysqlParser, msgs=list)
cpdef _parse(plugin, Packet pkt, tcptuple, int direction, state)

@cython.locals(client=MysqlParser, server=MysqlParser, msg=MysqlMessage, kind=cython.int)
cpdef _handle(plugin, MysqlConnection conn, tcptuple, int direction, list msgs)

@cython.locals(cmd=cython.int, resp=cython.int)
cpdef _command(plugin, MysqlConnection conn, tcptuple, MysqlMessage msg)

@cython.locals(stmt=Statement)
cpdef _resolve_statement(plugin, MysqlConnection conn, MysqlMessage msg)

@cython.locals(req=MysqlMessage, resp=MysqlMessage)
cpdef _publish(plugin, MysqlConnection conn, tcptuple, tuple pair)
