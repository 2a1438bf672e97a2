# C types for worker/protos/dns/parser.py when compiled (Cython pure Python
# mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython

cdef bytes _PLAIN_TABLE
cdef dict _LABELS_TEXT


cdef class DnsMessage:
    cdef public object ts
    cdef public object size
    cdef public int id
    cdef public int bits
    cdef public int rcode
    cdef public list questions
    cdef public list answers
    cdef public list authorities
    cdef public list additionals
    cdef public object opt
    cdef public list notes


@cython.locals(start=cython.Py_ssize_t, n=cython.Py_ssize_t, c=cython.int,
               budget=cython.Py_ssize_t, after=cython.Py_ssize_t, limit=cython.Py_ssize_t,
               pos=cython.Py_ssize_t, text=str, suffix=str, hit=tuple)
cpdef tuple read_name(bytes buf, Py_ssize_t off, Py_ssize_t end, dict cache)

@cython.locals(pos=cython.Py_ssize_t, stop=cython.Py_ssize_t, c=cython.int, raw=bytearray, text=str,
               wire=bytes)
cdef str _labels_text(bytes buf, Py_ssize_t start, Py_ssize_t off, Py_ssize_t n)

@cython.locals(start=cython.Py_ssize_t, n=cython.Py_ssize_t, c=cython.int, budget=cython.Py_ssize_t,
               text=str, hit=tuple)
cdef tuple _root_name(bytes buf, Py_ssize_t off, Py_ssize_t end, dict cache)

@cython.locals(start=cython.Py_ssize_t, labels=list, budget=cython.Py_ssize_t, after=cython.Py_ssize_t,
               pointers=cython.Py_ssize_t, suffix=str, c=cython.int, kind=cython.int, stop=cython.Py_ssize_t,
               text=str)
cpdef tuple _read_name(bytes buf, Py_ssize_t off, Py_ssize_t end, dict cache)

@cython.locals(n=cython.Py_ssize_t, off=cython.Py_ssize_t, end=cython.Py_ssize_t,
               rdlen=cython.Py_ssize_t, cache=dict, questions=list, section=list,
               answers=list, authorities=list, additionals=list,
               mid=cython.int, bits=cython.int, qdcount=cython.Py_ssize_t, count=cython.Py_ssize_t,
               qtype=cython.int, qclass=cython.int, si=cython.int, rtype=cython.int, rclass=cython.int,
               ttl=cython.ulonglong, rcode=cython.int, msg=DnsMessage)
cpdef DnsMessage decode_message(bytes buf, ts, size)

cdef dict _IPV6_TEXT

@cython.locals(text=str)
cpdef str _ipv6_text(bytes b)

@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t)
cpdef object _rdata(bytes buf, int rtype, Py_ssize_t off, Py_ssize_t end, dict cache)

cpdef int _u8(bytes buf, Py_ssize_t off, Py_ssize_t end) except -1
cpdef int _u16(bytes buf, Py_ssize_t off, Py_ssize_t end) except -1


cdef class DnsStreamParser:
    cdef public bytearray buf
    cdef public object ts

    @cython.locals(buf=bytearray, out=list, pos=cython.Py_ssize_t, total=cython.Py_ssize_t,
                   length=cython.Py_ssize_t, stop=cython.Py_ssize_t, msg=DnsMessage)
    cpdef list feed(self, data, ts)
