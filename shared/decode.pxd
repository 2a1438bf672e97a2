# C declarations for shared/decode.py when compiled (setup.py; pure Python mode).
cimport cython

@cython.locals(n=Py_ssize_t, et=int, vihl=int, total=Py_ssize_t, frag=int, proto=int, end=Py_ssize_t,
               doff=Py_ssize_t, ulen=Py_ssize_t, off=Py_ssize_t, ihl=Py_ssize_t, p=Py_ssize_t, ver=int)
cpdef tuple decode(int linktype, object raw)

@cython.locals(plen=Py_ssize_t, nh=int, p=Py_ssize_t, end=Py_ssize_t, doff=Py_ssize_t, ulen=Py_ssize_t)
cdef tuple _ip6(object raw, Py_ssize_t l3, Py_ssize_t n)

@cython.locals(total=Py_ssize_t, proto=int, end=Py_ssize_t, doff=Py_ssize_t, ulen=Py_ssize_t,
               seq=cython.uint, ack=cython.uint)
cdef object _eth_ip4_fast(bytes raw, Py_ssize_t n)

cdef bint _COMPILED
cdef object _MISS
