# C types for worker/protos/nfs/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The connection state and the waiting calls are extension types.
from worker.protos.glue cimport KeyedCorrelator
from worker.protos.nfs.parser cimport RpcMessage


cpdef bint published(RpcMessage call) except -1


cdef class NfsConnection:
    cdef public tuple parsers
    cdef public KeyedCorrelator correlator
    cdef object __weakref__


cdef class PendingCall:
    cdef public RpcMessage msg
    cdef public object tuple
    cdef public object ts
    cdef public list notes
