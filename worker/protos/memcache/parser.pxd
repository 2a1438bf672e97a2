# C types for worker/protos/memcache/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled).
import cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.string cimport memchr, memcmp


cdef inline bytes _baslice_c(bytearray b, Py_ssize_t i, Py_ssize_t j):
    # bytes(b[i:j]) for 0 <= i <= j <= len(b): one allocation instead of two
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(b) + i, j - i)

cdef inline const char* _crlf(const char* b, Py_ssize_t i, Py_ssize_t j):
    # the first b"\r\n" lying wholly in b[i:j], or NULL
    cdef const char* z
    while i + 2 <= j:
        z = <const char*>memchr(b + i, 13, j - 1 - i)
        if z == NULL:
            return NULL
        if z[1] == 10:
            return z
        i = (z - b) + 1
    return NULL


cdef inline Py_ssize_t _find_crlf_c(bytearray buf, Py_ssize_t i):
    # buf.find(b"\r\n", i) for i >= 0
    cdef const char* b = PyByteArray_AS_STRING(buf)
    cdef const char* z = _crlf(b, i, len(buf))
    return (z - b) if z != NULL else -1


cdef inline Py_ssize_t _find_byte_c(bytearray buf, Py_ssize_t i, Py_ssize_t j, int c):
    # bytes(buf[i:j]).find(bytes([c])) for 0 <= i <= j <= len(buf): the offset from i, or -1
    cdef const char* b = PyByteArray_AS_STRING(buf)
    cdef const char* z = <const char*>memchr(b + i, c, j - i)
    return (z - (b + i)) if z != NULL else -1


cdef inline object _digits_c(bytes tok):
    # int(tok) when tok is 1 to 19 ASCII digits (so below 2**64), else None
    cdef Py_ssize_t n = len(tok), k
    cdef const char* b = tok
    cdef unsigned long long v = 0
    if n < 1 or n > 19:
        return None
    for k in range(n):
        if b[k] < 48 or b[k] > 57:
            return None
        v = v * 10 + <unsigned long long>(b[k] - 48)
    return v


cdef inline Py_ssize_t _stat_run_c(bytearray buf, Py_ssize_t pos, Py_ssize_t window, list stats) except -1:
    # MemcacheParser._stat_run of parser.py at C level (the same lines, names and values):
    # returns the end of the run (pos: none)
    cdef const char* b = PyByteArray_AS_STRING(buf)
    cdef Py_ssize_t lim = min(pos + window, len(buf)), end = -1, i = pos, p = pos, e, s1, s2
    cdef const char* z
    cdef const char* sp
    # buf.rfind(b"\r\n", pos, lim): the last CRLF wholly inside
    e = lim - 2
    while e >= pos:
        if b[e] == 13 and b[e + 1] == 10:
            end = e
            break
        e -= 1
    if end < 0:
        return pos
    while True:
        z = _crlf(b, p, end)
        e = (z - b) if z != NULL else end          # this line is b[p:e]
        if e - p < 6 or memcmp(b + p, b"STAT ", 5) != 0 or b[p + 5] == 32:
            break
        sp = <const char*>memchr(b + p + 5, 32, e - p - 5)
        s1 = (sp - b) if sp != NULL else e          # the name is b[p+5:s1]
        if s1 < e:
            sp = <const char*>memchr(b + s1 + 1, 32, e - s1 - 1)
            s2 = (sp - b) if sp != NULL else e      # the value is b[s1+1:s2]
            stats.append((PyBytes_FromStringAndSize(b + p + 5, s1 - p - 5),
                          PyBytes_FromStringAndSize(b + s1 + 1, s2 - s1 - 1)))
        else:
            stats.append((PyBytes_FromStringAndSize(b + p + 5, s1 - p - 5), b""))
        p = e + 2
        if z == NULL:
            break
    return p

cdef bint _COMPILED
cdef bytes _baslice(bytearray b, Py_ssize_t i, Py_ssize_t j)

cdef int _COMMAND, _TEXT_DATA, _TEXT_CRLF, _BIN_DATA
cdef int _A_KEYS, _A_NOREPLY, _A_FLAGS, _A_EXPTIME, _A_BYTES, _A_CAS, _A_RAW, _A_STAT, _A_ERRMSG
cdef int _A_SOURCE_CLASS, _A_DEST_CLASS, _A_AUTOMOVE, _A_KEY_LIST
cdef Py_ssize_t _STAT_WINDOW


@cython.final
cdef class Cmd:
    cdef public str name
    cdef public str typ
    cdef public tuple args
    cdef public str kind
    cdef public tuple resp_args
    cdef public object sub
    cdef public tuple names
    cdef public tuple codes
    cdef public tuple optional


@cython.final
cdef class MemcacheMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public bint is_binary
    cdef public Cmd cmd
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
cpdef MemcacheMessage _message(ts, bint is_request, bint is_binary, Cmd cmd, size)


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
                   size=cython.Py_ssize_t, line=bytes, n=cython.Py_ssize_t, cmd=Cmd, sub_cmd=Cmd, kind=str,
                   sp=cython.Py_ssize_t, table=dict)
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
                   vb_status=cython.int, hs=cython.Py_ssize_t, opaque=cython.Py_ssize_t,
                   cmd=Cmd, kind=str)
    cpdef object _binary(self)

    @cython.locals(msg=MemcacheMessage, last=MemcacheMessage, buf=bytearray, pos=cython.Py_ssize_t, take=cython.Py_ssize_t)
    cpdef object _data(self)

    @cython.locals(msg=MemcacheMessage)
    cpdef object _finish_data(self)


@cython.locals(toks=list, i=cython.Py_ssize_t, n=cython.Py_ssize_t, j=cython.Py_ssize_t, code=cython.int,
               names=tuple, codes=tuple, optional=tuple, tok=bytes)
cpdef object _text_args(MemcacheMessage msg, Cmd cmd, Py_ssize_t count, bytes raw)

cpdef object _uint(bytes tok, str what)

cpdef bint _merge_stat(MemcacheMessage last, MemcacheMessage msg) except -1

@cython.locals(off=Py_ssize_t, n=Py_ssize_t, size=Py_ssize_t, k=Py_ssize_t, v=cython.ulonglong, name=str)
cpdef object _binary_extras(MemcacheMessage msg, tuple names, bytes extras)

cpdef bint _any8(bytearray buf, Py_ssize_t p) except -1
