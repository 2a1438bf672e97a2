# C types for worker/protos/nfs/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-segment message loop is a C-level function on typed
# messages.
import cython

from worker.protos.glue cimport KeyedCorrelator, feed_segment

from worker.protos.nfs.parser cimport RpcMessage
from worker.protos.nfs.trans cimport NfsConnection, PendingCall, published
from worker.protos.nfs.event cimport to_event


cdef object _oriented(tcptuple, int call_dir)

@cython.locals(conn=NfsConnection, msgs=list, corr=KeyedCorrelator)
cdef NfsConnection _parse(plugin, pkt, tcptuple, int direction, state)

@cython.locals(msg=RpcMessage, pending=PendingCall)
cdef _handle(plugin, NfsConnection conn, tcptuple, int direction, list msgs)
