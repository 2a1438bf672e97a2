# C types for worker/protos/icmp/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Transactions and the correlator are extension types.
import cython
from worker.protos.icmp.parser cimport IcmpMessage


cdef class IcmpTransaction:
    cdef public object ts
    cdef public int version
    cdef public object src_ip
    cdef public object dst_ip
    cdef public IcmpMessage request
    cdef public IcmpMessage response
    cdef public list notes
    cdef public object expires_at


@cython.locals(req=IcmpMessage, resp=IcmpMessage)
cpdef bint _has_error(IcmpTransaction trans) except -1

@cython.locals(t=IcmpTransaction)
cdef IcmpTransaction _transaction(ts, int version, src_ip, dst_ip, IcmpMessage request, IcmpMessage response, list notes)


cdef class Correlator:
    cdef public object timeout_ns
    cdef public Py_ssize_t max_open
    cdef public dict open
    cdef public dict counters

    cpdef list add(self, src_ip, dst_ip, IcmpMessage msg)

    @cython.locals(out=list, old=IcmpTransaction, trans=IcmpTransaction, oldest=IcmpTransaction)
    cpdef list _request(self, src_ip, dst_ip, IcmpMessage msg)

    @cython.locals(trans=IcmpTransaction)
    cpdef list _response(self, src_ip, dst_ip, IcmpMessage msg)

    cpdef IcmpTransaction _orphan(self, IcmpTransaction trans)
