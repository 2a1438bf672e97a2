# C types for worker/protos/cassandra/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Frame and segment headers are read into C integers; the CRC24 of
# a segment header is computed without slices.
import cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize


# Compiled-only helpers (the .py uses them when _COMPILED): byte copies without
# intermediate objects, and buffers that are decompressed over without zeroing.
cdef inline bytes _bytes_at(object buf, Py_ssize_t start, Py_ssize_t n):
    # bytes(buf[start:start + n]) in one copy, buf a bytes or a bytearray
    if type(buf) is bytes:
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf) + start, n)
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf) + start, n)


cdef inline bytearray _bytearray_c(Py_ssize_t n):
    return PyByteArray_FromStringAndSize(NULL, n)


cdef extern from "Python.h":
    ctypedef struct PyVarObject:
        Py_ssize_t ob_size
    ctypedef struct PyByteArrayObject:
        Py_ssize_t ob_alloc
        char *ob_bytes
        char *ob_start
        Py_ssize_t ob_exports


cdef inline int _resize(bytearray b, Py_ssize_t n) except -1:
    # len(b) = n (n > len(b); the new bytes not zeroed), keeping spare room:
    # the envelope buffer grows by whole segments, its room doubled when
    # short, so that its bytes are not copied again at each segment
    cdef PyByteArrayObject* o = <PyByteArrayObject*>b
    if o.ob_exports == 0 and o.ob_bytes != NULL and n + 1 <= o.ob_alloc - (o.ob_start - o.ob_bytes):
        (<PyVarObject*>b).ob_size = n
        o.ob_start[n] = 0
        return 0
    PyByteArray_Resize(b, 2 * n)
    (<PyVarObject*>b).ob_size = n
    o.ob_start[n] = 0
    return 0


cdef bint _COMPILED
cdef tuple _CRC24_TABLE
cdef int _CRC24_INIT


@cython.locals(crc=cython.int, table=tuple, i=Py_ssize_t, b=cython.int, t=cython.int)
cdef int _crc24_at(object data, Py_ssize_t start, Py_ssize_t n) except -1

@cython.locals(v=cython.ulonglong, b=cython.ulonglong, i=cython.int)
cdef unsigned long long _le(object data, Py_ssize_t start, int n) except? 0xFFFFFFFFFFFFFFFF


cdef class CassandraMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public int version
    cdef public int flags
    cdef public int stream
    cdef public int opcode
    cdef public long long length
    cdef public long long size
    cdef public object body
    cdef public list notes
    cdef public bint ignored
    cdef public object data


@cython.locals(m=CassandraMessage)
cdef CassandraMessage _new_message(object ts, bint is_request, int version, int flags, int stream,
                                   int opcode, long long length, long long size)


cdef class Codec:
    cdef public object compression
    cdef public bint segments


cdef class CassandraParser:
    cdef public bint is_request
    cdef public Py_ssize_t max_size
    cdef public object ignored
    cdef public Codec codec
    cdef public bytearray buf
    cdef public object ts
    cdef public Py_ssize_t skip
    cdef public object skip_msg
    cdef public bytearray segbuf
    cdef public object seg_ts
    cdef public object env_ts
    cdef public bint segments
    cdef public bint lossy

    cpdef list feed(self, data, ts)

    @cython.locals(sb=bytearray, pos=Py_ssize_t)
    cpdef list _feed(self, data, ts, list out)

    @cython.locals(n=Py_ssize_t, buf=bytearray, pos=Py_ssize_t)
    cpdef list _frames(self, data, ts, list out)

    @cython.locals(pos=Py_ssize_t, max_size=Py_ssize_t, is_request=cython.bint,
                   v=cython.int, version=cython.int, flags=cython.int, stream=cython.int,
                   opcode=cython.int, length=cython.longlong, hlen=Py_ssize_t, total=Py_ssize_t,
                   avail=Py_ssize_t)
    cpdef Py_ssize_t _take_frames(self, buf, list out, ts, bint raw, Py_ssize_t start, Py_ssize_t n) except -1

    cpdef object _message(self, int version, int flags, int stream, int opcode, Py_ssize_t length,
                          Py_ssize_t total, buf, Py_ssize_t start)

    @cython.locals(sb=bytearray, pos=Py_ssize_t)
    cpdef _segments(self, list out, ts)

    @cython.locals(lz4=cython.bint, hlen=Py_ssize_t, wlen=Py_ssize_t, pos=Py_ssize_t, n=Py_ssize_t,
                   word=cython.ulonglong, plen=Py_ssize_t, ulen=Py_ssize_t, self_contained=cython.bint,
                   end=Py_ssize_t, buf=bytearray, used=Py_ssize_t, start=Py_ssize_t, old=Py_ssize_t,
                   payload=bytearray)
    cpdef Py_ssize_t _take_segments(self, sb, list out, ts) except -1


cpdef bytearray _new_buffer(Py_ssize_t n)

@cython.locals(got=Py_ssize_t)
cpdef _lz4_into(src, Py_ssize_t start, Py_ssize_t stop, bytearray dst, Py_ssize_t at, Py_ssize_t ulen)
