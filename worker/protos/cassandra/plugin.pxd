# C types for worker/protos/cassandra/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-message loop reads the messages' and the connection's
# fields as struct members.
import cython
from worker.protos.cassandra.parser cimport CassandraMessage, Codec


cdef class CassandraConnection:
    cdef public tuple parsers
    cdef public object correlator
    cdef public Codec codec
    cdef public object next_expiry
    cdef public object pending_bytes


@cython.locals(msg=CassandraMessage, wanted_req=cython.bint, wanted_resp=cython.bint)
cpdef _handle(plugin, CassandraConnection conn, tcptuple, list msgs)

cpdef _publish(plugin, CassandraConnection conn, CassandraMessage req, CassandraMessage resp, tcptuple)
