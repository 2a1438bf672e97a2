# C types for worker/protos/dhcpv4/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython

@cython.locals(opts=dict, n=cython.Py_ssize_t, repeated=cython.bint, code=cython.int,
               start=cython.Py_ssize_t)
cpdef dict parse_options(bytes data, Py_ssize_t pos)

cdef class DhcpMessage:
    cdef public object ts
    cdef public Py_ssize_t size, op, htype, hlen, hops, secs, flags
    cdef public unsigned int xid
    cdef public bytes ciaddr, yiaddr, siaddr, giaddr, chaddr, sname, file
    cdef public dict options
    cdef public list notes
    cdef public bytes options_key

cdef dict _OPTIONS_CACHE
cdef Py_ssize_t _CACHE_MAX, _CACHE_AREA_MAX

@cython.locals(data=bytes, n=cython.Py_ssize_t, i=cython.Py_ssize_t, hlen=cython.Py_ssize_t,
               msg=DhcpMessage, key=bytes, opts=dict)
cpdef DhcpMessage decode_message(payload, ts=*)
