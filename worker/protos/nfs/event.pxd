# C types for worker/protos/nfs/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Messages are typed: their fields are read as C struct members.
import cython

from worker.protos.nfs.parser cimport RpcMessage
from worker.protos.nfs.names cimport auth_flavor, nfs_status
from worker.ecs cimport transaction_event


cdef dict _PROTOCOL
cdef tuple ACCEPT_STATUS, REJECT_STATUS


cdef str _s(bytes b)

@cython.locals(allnotes=list, ev=dict, rpc=dict, nfs=dict, a=cython.long, r=cython.long, xid=cython.ulonglong)
cpdef dict to_event(RpcMessage call, RpcMessage reply, tuple_, transport, list notes=*)
