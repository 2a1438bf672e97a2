# C declarations for coordinator/capture/filesplit.py when compiled (setup.py; pure Python mode).
cimport cython

@cython.locals(t=int)
cdef int _fast_shard(bytes raw, int shards)

@cython.locals(n=Py_ssize_t, total=Py_ssize_t, t=int, end=Py_ssize_t, doff=Py_ssize_t, ulen=Py_ssize_t)
cpdef int fast_class(bytes raw, int shards, bint skip_empty) except -3
