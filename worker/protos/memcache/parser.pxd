# C types for worker/protos/memcache/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython

cdef int _COMMAND, _TEXT_DATA, _TEXT_CRLF, _BIN_DATA
cdef Py_ssize_t _STAT_WINDOW


cdef class MemcacheParser:
    cdef public object value_keep
    cdef public object max_values
    cdef public object parse_unknown
    cdef public object max_buffer
    cdef public bytearray _buf
    cdef public Py_ssize_t _pos
    cdef public Py_ssize_t _scan
    cdef public int _state
    cdef public object _msg
    cdef public object _msg_ts
    cdef public Py_ssize_t _need
    cdef public object _kept
    cdef public object _last
    cdef public object merge_stats

    @cython.locals(buf=bytearray, out=list, b=cython.int, st=cython.int)
    cpdef list feed(self, data, ts)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t, end=cython.Py_ssize_t,
                   size=cython.Py_ssize_t, line=bytes, n=cython.Py_ssize_t)
    cpdef object _text(self)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t, end=cython.Py_ssize_t, p=cython.Py_ssize_t,
                   n=cython.Py_ssize_t, line=bytes, parts=list)
    cpdef Py_ssize_t _stat_run(self, list stats) except -1

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t)
    cpdef object _text_crlf(self)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t, avail=cython.Py_ssize_t,
                   key_len=cython.Py_ssize_t, extra_len=cython.Py_ssize_t,
                   total=cython.Py_ssize_t, head=cython.Py_ssize_t, p=cython.Py_ssize_t,
                   value_len=cython.Py_ssize_t, opcode=cython.int, magic=cython.int,
                   vb_status=cython.int, kv=bytes, hs=cython.Py_ssize_t)
    cpdef object _binary(self)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t, take=cython.Py_ssize_t)
    cpdef object _data(self)

    cpdef object _finish_data(self)


@cython.locals(toks=list, i=cython.Py_ssize_t, n=cython.Py_ssize_t, name=str, optional=cython.bint, tok=bytes)
cpdef object _text_args(msg, tuple names, bytes raw)
