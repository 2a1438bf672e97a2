# C types for worker/protos/dns/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Transactions and the correlator are extension types.
import cython
from worker.protos.dns.parser cimport DnsMessage


cdef class Transaction:
    cdef public tuple key
    cdef public object tuple
    cdef public DnsMessage request
    cdef public DnsMessage response
    cdef public list notes


@cython.locals(t=Transaction)
cdef Transaction _transaction(tuple key, tuple_, DnsMessage request, DnsMessage response, list notes)


cdef class Correlator:
    cdef public dict open
    cdef public object timeout_ns
    cdef public Py_ssize_t unmatched_requests
    cdef public Py_ssize_t unmatched_responses

    @cython.locals(key=tuple, out=list, prev=Transaction, notes=list, oldest=Transaction)
    cpdef list request(self, tuple_, DnsMessage msg)

    @cython.locals(key=tuple, trans=Transaction, resp_edns=cython.bint, req_edns=cython.bint, req=DnsMessage)
    cpdef Transaction response(self, tuple_, DnsMessage msg)
