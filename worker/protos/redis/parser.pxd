# C types for worker/protos/redis/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Messages and the parser are extension types; positions, lengths
# and type bytes are C integers; the common messages are read without slices
# or Python integers (``_fast``, ``_digits``, ``_crlf``).
import cython

cdef int _SIMPLE, _ERROR, _INT, _BULK, _ARRAY, _NULL, _BOOL, _DOUBLE, _BIGNUM, _BLOBERR
cdef int _VERBATIM, _MAP, _SET, _PUSH, _ATTR, _CHUNK, _END
cdef Py_ssize_t MAX_DEPTH, INLINE_MAX, MAX_NUMBER_LINE, _NIL_BULK


cdef class RedisMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public Py_ssize_t size
    cdef public list notes
    cdef public bint is_error
    cdef public bytes message
    cdef public list args
    cdef public bint inline
    cdef public bint push
    cdef public bytes kind
    cdef public object count
    cdef public bytes channel


@cython.locals(m=RedisMessage)
cdef RedisMessage _new_message(ts, bint is_request, Py_ssize_t size)

@cython.locals(v=Py_ssize_t, c=cython.uchar)
cdef Py_ssize_t _digits(bytes data, Py_ssize_t a, Py_ssize_t b)

@cython.locals(stop=Py_ssize_t)
cdef Py_ssize_t _crlf(bytes data, Py_ssize_t pos, Py_ssize_t n)

@cython.locals(ln=Py_ssize_t, end=Py_ssize_t)
cdef inline Py_ssize_t _bulk_end(bytes data, Py_ssize_t p, Py_ssize_t e, Py_ssize_t n)

@cython.locals(kind=bytes)
cdef _pubsub(RedisMessage msg, list items)

@cython.locals(i=Py_ssize_t, j=Py_ssize_t, v=Py_ssize_t, c=cython.uchar)
cpdef object _number(bytearray buf, Py_ssize_t a, Py_ssize_t b)


cdef class RedisParser:
    cdef public bint is_request
    cdef public object max_message_size
    cdef public Py_ssize_t skipped
    cdef public bytearray _buf
    cdef public Py_ssize_t _pos
    cdef public Py_ssize_t _start
    cdef public object _need
    cdef public Py_ssize_t _scan
    cdef public list _stack
    cdef public object _ts

    @cython.locals(out=list, buf=bytearray, pos=Py_ssize_t)
    cpdef list feed(self, data, ts)

    @cython.locals(pos=Py_ssize_t, n=Py_ssize_t, eol=Py_ssize_t, cnt=Py_ssize_t, p=Py_ssize_t,
                   e=Py_ssize_t, end=Py_ssize_t, t=cython.int,
                   et=cython.int, msg=RedisMessage, args=list, items=list)
    cpdef Py_ssize_t _fast(self, bytes data, ts, list out) except -1

    @cython.locals(buf=bytearray, n=Py_ssize_t, pos=Py_ssize_t, stack=list, is_request=cython.bint,
                   scan=Py_ssize_t, t=cython.int, eol=Py_ssize_t, nxt=Py_ssize_t, top=cython.int,
                   msg=RedisMessage, frame=list)
    cpdef _run(self, ts, list out)

    @cython.locals(msg=RedisMessage)
    cpdef _close(self, list frame, list stack, list out, Py_ssize_t pos, ts)

    @cython.locals(msg=RedisMessage)
    cpdef RedisMessage _request(self, list args, Py_ssize_t pos)

    cpdef _message_done(self, Py_ssize_t pos, Py_ssize_t n, ts)
