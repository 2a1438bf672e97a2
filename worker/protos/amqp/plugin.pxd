# C types for worker/protos/amqp/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The connection state is an extension type; the per-message
# work (_handle, _publish) is C-level calls on typed messages and correlator.
import cython

from worker.protos.glue cimport feed_segment

from worker.protos.amqp.parser cimport AmqpMessage
from worker.protos.amqp.trans cimport Correlator


cdef class AmqpConnection:
    cdef public tuple parsers
    cdef public Correlator correlator


@cython.locals(conn=AmqpConnection, msgs=list)
cdef AmqpConnection _parse(plugin, pkt, tcptuple, int direction, state)

@cython.locals(req=AmqpMessage, resp=AmqpMessage)
cdef _publish(plugin, list pairs, tcptuple)

@cython.locals(corr=Correlator, m=AmqpMessage, out=list, expired=list)
cdef _handle(plugin, AmqpConnection conn, tcptuple, list msgs)
