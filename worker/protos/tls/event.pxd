# C types for worker/protos/tls/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Only the helpers are declared (C-level calls, the hello cache a
# C-level dict); to_event itself stays untyped.
import cython


cdef dict _CACHE
cdef Py_ssize_t _CACHE_MAX

cpdef tuple _derived(h)

cdef dict _copy(dict exts)

cdef dict _hello_map(h, tuple d)

@cython.locals(chain=list)
cdef _side_certs(dict side_obj, dict detailed, str prefix, list ders, cfg)
