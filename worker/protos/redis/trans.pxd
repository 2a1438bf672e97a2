# C types for worker/protos/redis/trans.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The correlator is an extension type; its helpers are C calls.
import cython
from worker.protos.redis.parser cimport RedisMessage

cdef dict _UPPER

@cython.locals(hit=bytes)
cdef bytes _upper(bytes name)


cdef class Correlator:
    cdef public object requests
    cdef public object max_bytes
    cdef public object max_messages
    cdef public Py_ssize_t queued_bytes
    cdef public Py_ssize_t confirms_left
    cdef public bytes confirm_kind
    cdef public bint subscribed
    cdef public dict subs
    cdef public Py_ssize_t subs_before
    cdef public bint monitoring
    cdef public bytes reply_mode
    cdef public Py_ssize_t pushes
    cdef public Py_ssize_t monitor_lines
    cdef public Py_ssize_t evicted
    cdef public Py_ssize_t empty_requests

    cpdef list add(self, RedisMessage msg)

    @cython.locals(out=list, args=list, cmd=bytes, mode=bytes, size=Py_ssize_t, old=RedisMessage)
    cpdef list _request(self, RedisMessage msg)

    @cython.locals(kind=bytes, req=RedisMessage)
    cpdef list _response(self, RedisMessage msg)

    @cython.locals(cmd=bytes, channels=Py_ssize_t)
    cpdef _after(self, RedisMessage req, RedisMessage resp)
