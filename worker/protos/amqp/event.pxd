# C types for worker/protos/amqp/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Messages are typed: their fields are read as C struct members.
import cython

from worker.protos.amqp.parser cimport AmqpMessage


cpdef str body_text(AmqpMessage m)

cdef bint _given_up(list notes) except -1

cdef str _status(method, AmqpMessage m)

cdef dict _finish(dict ev, method, dict amqp)

@cython.locals(publish=cython.bint, ev=dict)
cpdef dict content_event(AmqpMessage m, cfg, tcptuple)

@cython.locals(notes=list, amqp=dict, ev=dict, content=cython.bint)
cpdef dict to_event(AmqpMessage req, AmqpMessage resp, cfg, tcptuple)
