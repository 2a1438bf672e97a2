# C types for worker/protos/icmp/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs uncompiled.
import cython
from worker.protos.icmp.parser cimport IcmpMessage
from worker.protos.icmp.trans cimport IcmpTransaction, _has_error
from worker.ecs cimport transaction_event

cdef dict _MESSAGES, _OBJECTS

@cython.locals(key=cython.long, text=str)
cpdef str message_text(int version, int typ, int code)

@cython.locals(key=cython.long, obj=dict)
cdef dict _message_object(int version, int typ, int code)

@cython.locals(req=IcmpMessage, resp=IcmpMessage, first=IcmpMessage, version=cython.int, transport=cython.int,
               ev=dict, icmp=dict, event_type=list)
cpdef dict to_event(IcmpTransaction trans)
