# C types for worker/protos/redis/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs uncompiled.
import cython
from worker.protos.redis.parser cimport RedisMessage

cdef dict _CONTAINER_OF, _METHODS
cdef Py_ssize_t _CACHE_MAX

cpdef str _s(bytes b)

cpdef bint _is_container(bytes first) except -1

cpdef tuple _method(bytes method)

@cython.locals(notes=list, status=str, ev=dict, args=list, n=Py_ssize_t, resource=bytes, method=bytes,
               method_s=str, action=str, query=str, redis=dict, value=str)
cpdef dict to_event(RedisMessage req, RedisMessage resp, cfg, tcptuple)
