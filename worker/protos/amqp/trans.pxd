# C types for worker/protos/amqp/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The correlator is an extension type called at C level by the
# plugin; the messages it pairs are typed.
import cython

from worker.protos.amqp.parser cimport AmqpMessage
from worker.protos.glue cimport KeyedCorrelator


cpdef bint is_close_error(AmqpMessage m) except -1


cdef class Correlator:
    cdef public KeyedCorrelator kc
    cdef public dict queues
    cdef public Py_ssize_t seq
    cdef public Py_ssize_t max_pending
    cdef public Py_ssize_t queued

    @cython.locals(out=list, key=tuple, qk=tuple, old=AmqpMessage, kc=KeyedCorrelator)
    cpdef list add_request(self, AmqpMessage req)

    cpdef _compact(self)

    @cython.locals(qk=tuple, out=list, i=Py_ssize_t, req=AmqpMessage, old=AmqpMessage)
    cpdef list add_response(self, AmqpMessage resp)

    @cython.locals(out=list, req=AmqpMessage, whole=cython.bint)
    cpdef list _closed(self, AmqpMessage close)

    @cython.locals(out=list, req=AmqpMessage)
    cpdef list expire(self, now)

    @cython.locals(out=list, req=AmqpMessage)
    cpdef list flush(self)
