# C declarations for coordinator/capture/filesplit.py when compiled (setup.py; pure Python mode).
cimport cython

@cython.locals(t=int)
cdef int _fast_shard(bytes raw, int shards)
