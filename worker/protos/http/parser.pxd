# C types for worker/protos/http/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The parser
# state and the message are extension types: attribute access is a C field
# access instead of a slot descriptor look-up.
import cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from libc.string cimport memchr


cdef inline bytes _bslice_c(bytes b, Py_ssize_t i, Py_ssize_t j):
    # b[i:j] for 0 <= i <= j <= len(b): one allocation, no slice object
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(b) + i, j - i)


cdef inline bytes _baslice_c(bytearray b, Py_ssize_t i, Py_ssize_t j):
    # bytes(b[i:j]) for 0 <= i <= j <= len(b): one allocation instead of two
    return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(b) + i, j - i)

cdef inline Py_ssize_t _space_c(bytes b, bint last):
    # b.find(b" ") (b.rfind(b" ") when last): a C loop, no method call
    cdef const char *p = PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t i
    if last:
        i = n - 1
        while i >= 0 and p[i] != 32:
            i -= 1
        return i
    i = 0
    while i < n and p[i] != 32:
        i += 1
    return i if i < n else -1


cdef inline Py_ssize_t _count_lf_c(bytes b):
    # b.count(b"\n")
    cdef const char *s = PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t k = 0
    cdef const char *p = <const char *>memchr(s, 10, n)
    while p != NULL:
        k += 1
        p = <const char *>memchr(p + 1, 10, n - (p + 1 - s))
    return k


cdef inline Py_ssize_t _find_end_c(bytearray b, Py_ssize_t start):
    # b.find(b"\r\n\r\n", start) for 0 <= start: memchr for each LF
    cdef const char *s = PyByteArray_AS_STRING(b)
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(b)
    cdef Py_ssize_t j
    cdef const char *p
    if start >= n:
        return -1
    p = <const char *>memchr(s + start, 10, n - start)
    while p != NULL:
        j = p - s
        if j - 3 >= start and s[j - 1] == 13 and s[j - 2] == 10 and s[j - 3] == 13:
            return j - 3
        p = <const char *>memchr(p + 1, 10, n - j - 1)
    return -1


cdef inline bint _all_hex_c(bytes b):
    # every byte of b is a hex digit (True for b"")
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if not ((48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)):
            return False
    return True

cdef int _START, _HEADERS, _BODY_LENGTH, _BODY_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS
cdef dict _LINE_FIELDS, _STATUS_LINES
cdef Py_ssize_t _LINE_FIELDS_MAX, _LINE_FIELDS_LINE_MAX
cdef bint _COMPILED

cdef bytes _bslice(bytes b, Py_ssize_t i, Py_ssize_t j)
cdef bytes _baslice(bytearray b, Py_ssize_t i, Py_ssize_t j)

@cython.locals(c=cython.uchar)
cdef bint _bad_target(bytes uri) except -1

cdef Py_ssize_t _space(bytes b, bint last) except -2
cdef bint _all_hex(bytes b) except -1
cdef Py_ssize_t _count_lf(bytes b) except -1
cdef Py_ssize_t _find_end(bytearray b, Py_ssize_t start) except -2

cpdef _parse_version(v)


cdef class HttpMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public object size
    cdef public list notes
    cdef public object version
    cdef public object method
    cdef public object uri
    cdef public object status_code
    cdef public object status_phrase
    cdef public object headers
    cdef public object raw_headers
    cdef public object body
    cdef public object content_length
    cdef public bint has_content_length
    cdef public object content_type
    cdef public object encodings
    cdef public bint chunked
    cdef public object connection
    cdef public bint save_body
    cdef public bint send_body
    cdef public bint body_truncated


@cython.locals(m=HttpMessage)
cpdef HttpMessage _blank_message(ts, bint is_request)


cdef class HttpParser:
    cdef public object max_message_size
    cdef public object request_body_for
    cdef public object response_body_for
    cdef list _methods
    cdef list _ready
    cdef bytearray _buf
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _scan
    cdef object _ts
    cdef int _state
    cdef HttpMessage _msg
    cdef Py_ssize_t _msg_start
    cdef bint _start_done
    cdef list _fields
    cdef object _body_seen
    cdef object _chunk_left
    cdef object _saved
    cdef object _save_limit

    @cython.locals(out=list, buf=bytearray)
    cpdef list feed(self, data, ts)

    cpdef bint nothing_to_flush(self)

    cdef bint _step(self) except -1

    @cython.locals(msg=HttpMessage, st=cython.int)
    cdef bint _body_only(self, Py_ssize_t n) except -1

    cpdef _reset_stream(self)
    cpdef _new_message(self)

    @cython.locals(keep=Py_ssize_t)
    cpdef _compact(self)

    @cython.locals(msg=HttpMessage)
    cpdef _finish(self)

    @cython.locals(buf=bytearray, pos=Py_ssize_t, n=Py_ssize_t)
    cdef bint _start(self) except -1

    @cython.locals(buf=bytearray, start=Py_ssize_t, i=Py_ssize_t, end=Py_ssize_t)
    cdef bint _headers(self) except -1

    @cython.locals(buf=bytearray, start=Py_ssize_t, e=Py_ssize_t, end=Py_ssize_t, raw=bytes, lines=list,
                   nlines=Py_ssize_t, msg=HttpMessage, cache=dict, headers=dict, fields=list,
                   repeated=cython.bint, k=Py_ssize_t, line=bytes, f=tuple, colon=Py_ssize_t,
                   te_present=cython.bint)
    cdef bint _whole_section(self, Py_ssize_t i) except -1

    @cython.locals(msg=HttpMessage, known=tuple, sp1=Py_ssize_t, sp2=Py_ssize_t)
    cpdef _start_line(self, bytes line)

    @cython.locals(msg=HttpMessage)
    cpdef _end_of_headers(self)

    @cython.locals(msg=HttpMessage, te_present=cython.bint)
    cpdef bint _apply_fields(self, list fields) except -1

    @cython.locals(msg=HttpMessage)
    cpdef bint _framing(self, dict headers) except -1

    @cython.locals(msg=HttpMessage)
    cpdef _content_length(self, value)

    @cython.locals(msg=HttpMessage, code=cython.int, interim=cython.bint)
    cpdef _pick_body_mode(self, bint te_present)

    @cython.locals(msg=HttpMessage, take=object)
    cdef bint _body_length(self) except -1

    @cython.locals(msg=HttpMessage)
    cdef bint _body_close(self) except -1

    @cython.locals(line=bytes, digits=bytes)
    cdef bint _chunk_size(self) except -1

    @cython.locals(msg=HttpMessage)
    cdef bint _chunk_data(self) except -1

    @cython.locals(buf=bytearray, p=Py_ssize_t, n=Py_ssize_t)
    cdef bint _chunk_end(self) except -1

    cdef bint _trailers(self) except -1
