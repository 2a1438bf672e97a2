# C declarations for coordinator/capture/filesplit.py when compiled (setup.py; pure Python mode).
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcmp, memcpy


cdef inline bytes _pair_key_c(bytes raw):
    # fast_class's ``a + b if a < b else b + a`` in one allocation: a = source address
    # and port (raw[26:30] + raw[34:36]), b = destination's (raw[30:34] + raw[36:38])
    cdef const char* p = PyBytes_AS_STRING(raw)
    cdef char a[6]
    cdef char b[6]
    memcpy(a, p + 26, 4)
    memcpy(a + 4, p + 34, 2)
    memcpy(b, p + 30, 4)
    memcpy(b + 4, p + 36, 2)
    cdef bytes k = PyBytes_FromStringAndSize(NULL, 12)
    cdef char* q = PyBytes_AS_STRING(k)
    if memcmp(a, b, 6) < 0:
        memcpy(q, a, 6)
        memcpy(q + 6, b, 6)
    else:
        memcpy(q, b, 6)
        memcpy(q + 6, a, 6)
    return k


@cython.locals(t=int)
cdef int _fast_shard(bytes raw, int shards)

@cython.locals(n=Py_ssize_t, total=Py_ssize_t, t=int, end=Py_ssize_t, doff=Py_ssize_t, ulen=Py_ssize_t)
cpdef int fast_class(bytes raw, int shards, bint skip_empty) except -3

cdef bint _COMPILED
