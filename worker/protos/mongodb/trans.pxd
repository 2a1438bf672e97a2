# C types for worker/protos/mongodb/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The correlator is an extension type reading the messages'
# fields as struct members.
import cython
from worker.protos.mongodb.parser cimport MongodbMessage


cdef class Correlator:
    cdef public object requests
    cdef public object responses
    cdef public object timeout_ns
    cdef public Py_ssize_t max_pending
    cdef public Py_ssize_t unmatched_responses
    cdef public Py_ssize_t unmatched_requests

    @cython.locals(resp=MongodbMessage, req=MongodbMessage, out=list)
    cpdef list add(self, MongodbMessage msg)

    cpdef _continue(self, MongodbMessage req, MongodbMessage resp, list out)

    cpdef list expire(self, now)
