# C types for worker/protos/memcache/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). Typed
# bytes let the compiled module call the UTF-8 decoder directly.
import cython


cpdef str _s(bytes b)

@cython.locals(keys=list, out=list, k=bytes)
cpdef list _keys(msg)

@cython.locals(stats=list, out=list, n=bytes, v=bytes)
cpdef list _stats(msg)

cpdef dict message_fields(msg)

@cython.locals(kind=str, out=dict, name=str, args=tuple)
cpdef dict _text_fields(msg)

@cython.locals(out=dict, name=str, args=tuple)
cpdef dict _binary_fields(msg)

cpdef str status_of(req, resp)
