# C types for worker/protos/mongodb/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-message path is a module function with typed locals; the
# connection is an extension type.
import cython
from worker.protos.mongodb.parser cimport MongodbMessage
from worker.protos.mongodb.trans cimport Correlator


@cython.final
cdef class MongodbConnection:
    cdef public tuple parsers
    cdef public Correlator correlator
    cdef public object next_expiry


@cython.locals(corr=Correlator, msg=MongodbMessage, req=MongodbMessage, resp=MongodbMessage)
cpdef _handle(plugin, MongodbConnection conn, tcptuple, list msgs)
