# C types for worker/protos/memcache/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). Typed
# bytes let the compiled module call the UTF-8 decoder directly; the
# messages are extension types (parser.pxd).
import cython
from worker.protos.memcache.parser cimport Cmd, MemcacheMessage


cdef extern from "Python.h":
    dict _PyDict_NewPresized(Py_ssize_t minused)


cdef inline dict _presized_c(Py_ssize_t n):
    # an empty dict that takes n keys without a resize (CPython's dict(); event.py's
    # {} when uncompiled: the same content and key order)
    return _PyDict_NewPresized(n)

cdef bint _COMPILED


cpdef str _s(bytes b)

cdef int ARG_KEYS, ARG_NOREPLY, ARG_FLAGS, ARG_EXPTIME, ARG_BYTES, ARG_CAS, ARG_RAW, ARG_STAT, ARG_ERRMSG
cdef int ARG_SOURCE_CLASS, ARG_DEST_CLASS, ARG_AUTOMOVE, ARG_KEY_LIST

@cython.locals(keys=list, out=list, k=bytes)
cpdef list _keys(MemcacheMessage msg)

@cython.locals(stats=list, out=list, n=bytes, v=bytes)
cpdef list _stats(MemcacheMessage msg)

cpdef dict message_fields(MemcacheMessage msg)

@cython.locals(kind=str, out=dict, names=tuple, codes=tuple, cmd=Cmd, n=Py_ssize_t, i=Py_ssize_t, code=cython.int)
cpdef dict _text_fields(MemcacheMessage msg)

@cython.locals(out=dict, name=str, args=tuple, cmd=Cmd)
cpdef dict _binary_fields(MemcacheMessage msg)

cpdef str status_of(MemcacheMessage req, MemcacheMessage resp)

@cython.locals(notes=list, ev=dict, mc=dict, first=MemcacheMessage, typ=str, action=str)
cpdef dict to_event(MemcacheMessage req, MemcacheMessage resp, tuple_, int transport=*)
