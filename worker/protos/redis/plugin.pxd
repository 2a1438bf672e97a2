# C types for worker/protos/redis/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-segment path (``_parse``, ``_handle``) calls the parser,
# the correlator and the event builder at C level.
import cython
from worker.protos.redis.parser cimport RedisMessage, RedisParser
from worker.protos.redis.trans cimport Correlator
from worker.protos.redis.event cimport to_event


cdef class RedisConnection:
    cdef public tuple parsers
    cdef public Correlator correlator


@cython.locals(conn=RedisConnection, parser=RedisParser, msgs=list)
cpdef _parse(plugin, pkt, tcptuple, int direction, state)

@cython.locals(msg=RedisMessage, pairs=list, req=RedisMessage, resp=RedisMessage)
cpdef _handle(Correlator corr, cfg, emit, tcptuple, list msgs)
