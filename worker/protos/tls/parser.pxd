# C types for worker/protos/tls/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Messages and the parser are extension types; record and
# handshake headers are read from the bytearray buffers as C integers.
import cython


cdef class TlsMessage:
    cdef public object ts
    cdef public object kind
    cdef public object version
    cdef public object size
    cdef public object hs_type
    cdef public object body
    cdef public object level
    cdef public object code
    cdef public object oversize
    cdef public list notes


@cython.locals(m=TlsMessage)
cdef TlsMessage _message(ts, kind, version, size)


cdef class TlsParser:
    cdef public bytearray buf
    cdef public bytearray hs
    cdef public object hs_ts
    cdef public object hs_version
    cdef public Py_ssize_t hs_skip
    cdef public Py_ssize_t skip
    cdef public object start_ts
    cdef public bint encrypted
    cdef public Py_ssize_t max_handshake_size
    cdef public Py_ssize_t records

    @cython.locals(out=list, n=Py_ssize_t, pos=Py_ssize_t, k=Py_ssize_t, buf=bytearray, off=Py_ssize_t,
                   blen=Py_ssize_t, first=cython.bint, rtype=cython.long, major=cython.long,
                   minor=cython.long, length=Py_ssize_t, avail=Py_ssize_t, msg=TlsMessage)
    cpdef list feed(self, data, ts)

    @cython.locals(end=Py_ssize_t, k=Py_ssize_t, hs=bytearray, off=Py_ssize_t, hlen=Py_ssize_t,
                   limit=Py_ssize_t, htype=cython.long, mlen=Py_ssize_t, have=Py_ssize_t, msg=TlsMessage)
    cdef _handshake(self, bytearray buf, Py_ssize_t start, Py_ssize_t length, ts, version, list out)
