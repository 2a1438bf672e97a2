# C types for worker/protos/memcache/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING


cdef inline bytes _baslice_c(bytearray b, Py_ssize_t i, Py_ssize_t j):
    # bytes(b[i:j]) for 0 <= i <= j <= len(b): one allocation instead of two
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(b) + i, j - i)

cdef bint _COMPILED
cdef bytes _baslice(bytearray b, Py_ssize_t i, Py_ssize_t j)

cdef int _COMMAND, _TEXT_DATA, _TEXT_CRLF, _BIN_DATA
cdef Py_ssize_t _STAT_WINDOW


@cython.final
cdef class MemcacheMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public bint is_binary
    cdef public object cmd
    cdef public object size
    cdef public list notes
    cdef public object command_line
    cdef public object raw_args
    cdef public bint noreply
    cdef public object opcode
    cdef public object status
    cdef public object vbucket
    cdef public object opaque
    cdef public bint is_quiet
    cdef public object keys
    cdef public object flags
    cdef public object exptime
    cdef public object value
    cdef public object value2
    cdef public object ivalue
    cdef public object ivalue2
    cdef public object version
    cdef public object error_msg
    cdef public object data
    cdef public object values
    cdef public object bytes
    cdef public object bytes_lost
    cdef public object count_values
    cdef public object stats
    cdef public object cas_unique
    cdef public bint is_cas
    cdef public bint is_complete
    cdef public object nargs


@cython.locals(m=MemcacheMessage)
cpdef MemcacheMessage _message(ts, bint is_request, bint is_binary, cmd, size)


cdef class MemcacheParser:
    cdef public object value_keep
    cdef public object max_values
    cdef public object parse_unknown
    cdef public object max_buffer
    cdef public bytearray _buf
    cdef public Py_ssize_t _pos
    cdef public Py_ssize_t _scan
    cdef public int _state
    cdef public MemcacheMessage _msg
    cdef public object _msg_ts
    cdef public Py_ssize_t _need
    cdef public object _kept
    cdef public MemcacheMessage _last
    cdef public object merge_stats

    @cython.locals(buf=bytearray, out=list, b=cython.int, st=cython.int, last=MemcacheMessage)
    cpdef list feed(self, data, ts)

    @cython.locals(msg=MemcacheMessage, last=MemcacheMessage, buf=bytearray, pos=cython.Py_ssize_t, end=cython.Py_ssize_t,
                   size=cython.Py_ssize_t, line=bytes, n=cython.Py_ssize_t)
    cpdef object _text(self)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t, end=cython.Py_ssize_t, p=cython.Py_ssize_t,
                   n=cython.Py_ssize_t, line=bytes, parts=list)
    cpdef Py_ssize_t _stat_run(self, list stats) except -1

    @cython.locals(msg=MemcacheMessage, last=MemcacheMessage, buf=bytearray, pos=cython.Py_ssize_t)
    cpdef object _text_crlf(self)

    @cython.locals(msg=MemcacheMessage, last=MemcacheMessage, buf=bytearray, pos=cython.Py_ssize_t, avail=cython.Py_ssize_t,
                   key_len=cython.Py_ssize_t, extra_len=cython.Py_ssize_t,
                   total=cython.Py_ssize_t, head=cython.Py_ssize_t, p=cython.Py_ssize_t,
                   value_len=cython.Py_ssize_t, opcode=cython.int, magic=cython.int,
                   vb_status=cython.int, kv=bytes, hs=cython.Py_ssize_t, opaque=cython.Py_ssize_t)
    cpdef object _binary(self)

    @cython.locals(msg=MemcacheMessage, last=MemcacheMessage, buf=bytearray, pos=cython.Py_ssize_t, take=cython.Py_ssize_t)
    cpdef object _data(self)

    @cython.locals(msg=MemcacheMessage)
    cpdef object _finish_data(self)


@cython.locals(toks=list, i=cython.Py_ssize_t, n=cython.Py_ssize_t, name=str, optional=cython.bint, tok=bytes)
cpdef object _text_args(MemcacheMessage msg, tuple names, bytes raw)

cpdef bint _merge_stat(MemcacheMessage last, MemcacheMessage msg) except -1

cpdef bint _any8(bytearray buf, Py_ssize_t p) except -1
