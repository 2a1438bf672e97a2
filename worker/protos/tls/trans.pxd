# C types for worker/protos/tls/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The connection state and its two sides are extension types;
# messages are typed where the handshake is followed.
import cython

from worker.protos.tls.parser cimport TlsMessage


cdef class Side:
    cdef public object hello
    cdef public object hello2
    cdef public object hrr
    cdef public list certs
    cdef public bint cert_requested
    cdef public bint key_exchanged
    cdef public list alerts
    cdef public bint done
    cdef public object ocsp
    cdef public object ske_group
    cdef public object ticket_lifetime
    cdef public bint saw_ccs


cdef class TlsConnection:
    cdef public tuple parsers
    cdef public tuple sides
    cdef public object start_ts
    cdef public object end_ts
    cdef public object fatal_ts
    cdef public bint sent
    cdef public int client_dir
    cdef public list notes
    cdef public Py_ssize_t malformed
    cdef public Py_ssize_t resyncs

    @cython.locals(side=Side, kind=cython.long)
    cpdef bint add(self, int direction, TlsMessage msg) except -1

    @cython.locals(t=cython.long)
    cpdef _handshake(self, int direction, Side side, TlsMessage msg)
