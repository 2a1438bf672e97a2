# C types for worker/protos/tls/handshake.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A hello is an extension type (made without a Python __init__
# call of a dataclass); the extension block is read as C integers.
import cython


cdef class Hello:
    cdef public object is_client
    cdef public object version
    cdef public object random
    cdef public object session_id
    cdef public object ciphers
    cdef public object compression
    cdef public object cipher
    cdef public object selected_compression
    cdef public object extensions
    cdef public object ext_ok
    cdef public object hrr
    cdef public bytes shape

    cpdef object ext(self, code)


cpdef bint volatile(long code)

cdef tuple _FLAGS

@cython.locals(total=Py_ssize_t, end=Py_ssize_t, exts=list, code=cython.long, n=Py_ssize_t, blen=Py_ssize_t,
               pieces=list, run=Py_ssize_t)
cdef _extensions(Hello hello, bytes body, Py_ssize_t start, Py_ssize_t pos)

@cython.locals(b=bytes, ciphers=list, i=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t, pos=Py_ssize_t, start=Py_ssize_t)
cpdef Hello parse_client_hello(body)

cdef _need(body, Py_ssize_t pos, Py_ssize_t n)

@cython.locals(major=cython.long, minor=cython.long, sid_len=Py_ssize_t)
cdef tuple _common(body, bint is_client)
