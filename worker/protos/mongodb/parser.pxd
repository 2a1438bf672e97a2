# C types for worker/protos/mongodb/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type (no Python __init__ per
# message); header fields and offsets are C integers.
import cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp, memcpy
from libc.stdint cimport int32_t, uint32_t


cdef inline long long _i32_at(const unsigned char* b, Py_ssize_t q):
    return <int32_t>(<uint32_t>b[q] | (<uint32_t>b[q + 1] << 8) | (<uint32_t>b[q + 2] << 16)
                     | (<uint32_t>b[q + 3] << 24))


cdef inline Py_ssize_t _lsid_at_c(bytes body, const unsigned char* sizes):
    # _lsid_at of parser.py at C level (same steps, same answers); sizes: _FIXED_SIZE
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
    cdef Py_ssize_t end = n - 1, pos = 4, p = -1, q, stop, i
    cdef const unsigned char* z
    cdef int t, f
    cdef long long v
    i = 5
    while i + 6 <= n:
        z = <const unsigned char*>memchr(b + i, 3, n - i)
        if z == NULL:
            return -1
        i = z - b
        if i + 6 <= n and memcmp(z, b"\x03lsid\x00", 6) == 0:
            p = i
            break
        i += 1
    if p < 0:
        return -1
    while pos < p:
        t = b[pos]
        if pos + 1 >= end:
            return -1
        z = <const unsigned char*>memchr(b + pos + 1, 0, end - pos - 1)
        if z == NULL:
            return -1
        q = (z - b) + 1
        f = sizes[t]
        if f != 255:
            q += f
        else:
            if q + 4 > end:
                return -1
            v = _i32_at(b, q)
            if v < 0:
                return -1
            if t == 2 or t == 13 or t == 14:
                q += 4 + v
            elif t == 3 or t == 4 or t == 15:
                q += v
            elif t == 5:
                q += 5 + v
            elif t == 12:
                q += 16 + v
            else:
                return -1
        pos = q
    if pos != p:
        return -1
    q = p + 6
    if q + 4 > end:
        return -1
    v = _i32_at(b, q)
    stop = q + v
    if v < 5 or stop > end or b[stop - 1] != 0:
        return -1
    return p



cdef inline long long _i32_c(bytes data, Py_ssize_t q):
    # _I32.unpack_from(data, q)[0] for 0 <= q <= len(data) - 4 (checked by the caller)
    return _i32_at(<const unsigned char*>PyBytes_AS_STRING(data), q)


cdef inline long long _i64_at(const unsigned char* b, Py_ssize_t q):
    return <long long>(<unsigned long long>(<uint32_t>_i32_at(b, q))
                       | (<unsigned long long>(<uint32_t>_i32_at(b, q + 4)) << 32))


cdef inline Py_ssize_t _elem_end_c(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int depth):
    # _elem_end of parser.py at C level (same steps, same answers)
    cdef int t = b[pos]
    cdef const unsigned char* z
    cdef Py_ssize_t q, p, stop
    cdef long long n
    if pos + 1 >= end:
        return -1
    z = <const unsigned char*>memchr(b + pos + 1, 0, end - pos - 1)
    if z == NULL:
        return -1
    q = (z - b) + 1
    if t == 1 or t == 9 or t == 17 or t == 18:
        n = 8
    elif t == 16:
        n = 4
    elif t == 7:
        n = 12
    elif t == 10:
        n = 0
    elif t == 8:
        if q >= end or b[q] > 1:
            return -1
        n = 1
    elif t == 2:
        if q + 4 > end:
            return -1
        n = _i32_at(b, q)
        if n < 1 or q + 4 + n > end or b[q + 3 + n] != 0:
            return -1
        n += 4
    elif t == 3 or t == 4:
        if depth >= 32 or q + 5 > end:
            return -1
        n = _i32_at(b, q)
        stop = q + n - 1
        if n < 5 or q + n > end or b[stop] != 0:
            return -1
        p = q + 4
        while p < stop:
            p = _elem_end_c(b, p, stop, depth + 1)
            if p < 0:
                return -1
    elif t == 5:
        if q + 5 > end:
            return -1
        n = _i32_at(b, q)
        if n < 0 or b[q + 4] == 2:
            return -1
        n += 5
    else:
        return -1
    q += n
    return q if q <= end else -1


cdef inline bint _name_is(const unsigned char* b, Py_ssize_t pos, const char* name, Py_ssize_t n):
    # the element at pos (its type byte) is called name (n bytes, NUL-terminated in b)
    return memcmp(b + pos + 1, name, n + 1) == 0


cdef inline object _reply_scan_c(bytes body):
    # _reply_scan of parser.py at C level (same steps, same answers)
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(body) - 1
    cdef Py_ssize_t pos, nxt, q, cur = -1, stop, p, first = -1, after = -1, nret = -1
    cdef const unsigned char* z
    cdef int t
    cdef bint ok = False
    cdef double d
    cdef object cid = None
    if end < 4 or end >= 1024 or _i32_at(b, 0) != end + 1 or b[end] != 0:
        return None
    pos = 4
    while pos < end:
        nxt = _elem_end_c(b, pos, end, 0)
        if nxt < 0:
            return None
        t = b[pos]
        z = <const unsigned char*>memchr(b + pos + 1, 0, end - pos - 1)
        q = (z - b) + 1
        if _name_is(b, pos, b"ok", 2):
            if t == 1:
                memcpy(&d, b + q, 8)
                ok = d == 1.0
            else:
                ok = ((t == 16 and _i32_at(b, q) == 1) or (t == 18 and _i64_at(b, q) == 1)
                      or (t == 8 and b[q] == 1))
        elif _name_is(b, pos, b"cursor", 6):
            cur = q if t == 3 else -2
        elif (_name_is(b, pos, b"$err", 4) or _name_is(b, pos, b"writeErrors", 11)
              or _name_is(b, pos, b"writeConcernError", 17)):
            return None
        pos = nxt
    if not ok or cur == -2:
        return None
    if cur >= 0:
        stop = cur + _i32_at(b, cur) - 1
        p = cur + 4
        while p < stop:
            nxt = _elem_end_c(b, p, stop, 1)
            t = b[p]
            z = <const unsigned char*>memchr(b + p + 1, 0, stop - p - 1)
            q = (z - b) + 1
            if _name_is(b, p, b"id", 2):
                if t == 16:
                    cid = _i32_at(b, q)
                elif t == 18:
                    cid = _i64_at(b, q)
                elif t == 10:
                    cid = None
                else:
                    return None
            elif _name_is(b, p, b"firstBatch", 10):
                first = p
            elif _name_is(b, p, b"nextBatch", 9):
                after = p
            elif b[p + 1] == 36:        # "$": a DBRef would not be a cursor document
                return None
            p = nxt
        if first >= 0 and b[first] == 10:
            first = -1
        if first < 0 and after >= 0 and b[after] != 10:
            first = after
        if first >= 0 and b[first] == 4:
            z = <const unsigned char*>memchr(b + first + 1, 0, stop - first - 1)
            q = (z - b) + 1
            stop = q + _i32_at(b, q) - 1
            p = q + 4
            nret = 0
            while p < stop:
                p = _elem_end_c(b, p, stop, 2)
                nret += 1
    return (cid, nret)


cdef inline object _scalar_c(const unsigned char* b, int t, Py_ssize_t q, object other):
    # _scalar of parser.py at C level
    cdef double d
    if t == 2:
        return PyUnicode_DecodeUTF8(<char*>b + q + 4, _i32_at(b, q) - 1, "replace")
    if t == 16:
        return _i32_at(b, q)
    if t == 18:
        return _i64_at(b, q)
    if t == 1:
        memcpy(&d, b + q, 8)
        return d
    if t == 8:
        return b[q] == 1
    if t == 10:
        return None
    return other


cdef inline str _cmd_key_c(const unsigned char* s, Py_ssize_t n):
    # the name of _CMD_KEYS (parser.py) that s[:n] is, or None
    if n == 3 and memcmp(s, b"$db", 3) == 0:
        return "$db"
    if n == 10 and memcmp(s, b"collection", 10) == 0:
        return "collection"
    if n == 9 and memcmp(s, b"batchSize", 9) == 0:
        return "batchSize"
    if n == 14 and memcmp(s, b"maxAwaitTimeMS", 14) == 0:
        return "maxAwaitTimeMS"
    if n == 9 and memcmp(s, b"maxTimeMS", 9) == 0:
        return "maxTimeMS"
    if n == 4 and memcmp(s, b"skip", 4) == 0:
        return "skip"
    if n == 5 and memcmp(s, b"limit", 5) == 0:
        return "limit"
    return None


cdef inline object _cmd_scan_c(bytes body, object other):
    # _cmd_scan of parser.py at C level (same steps, same answers); other: _OTHER
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(body) - 1
    cdef Py_ssize_t pos, nxt, q, z, fz = -1
    cdef int t
    cdef object val = None
    cdef dict fields = {}
    cdef str name
    if end < 5 or _i32_at(b, 0) != end + 1 or b[end] != 0:
        return None
    pos = 4
    while pos < end:
        nxt = _elem_end_c(b, pos, end, 0)
        if nxt < 0:
            return None
        t = b[pos]
        z = (<const unsigned char*>memchr(b + pos + 1, 0, end - pos - 1)) - b
        q = z + 1
        if fz < 0:
            fz = z
            val = _scalar_c(b, t, q, other)
        elif z - pos == fz - 4 and memcmp(b + pos + 1, b + 5, z - pos) == 0:
            val = _scalar_c(b, t, q, other)
        name = _cmd_key_c(b + pos + 1, z - pos - 1)
        if name is not None:
            fields[name] = _scalar_c(b, t, q, other)
        pos = nxt
    if fz < 0:
        return None
    return (PyUnicode_DecodeUTF8(<char*>b + 5, fz - 5, "replace"), val, fields)


@cython.locals(n=cython.longlong, stop=Py_ssize_t)
cdef Py_ssize_t _doc_bounds(data, Py_ssize_t off, Py_ssize_t end) except -1

@cython.locals(z=Py_ssize_t)
cdef tuple _cstr(data, Py_ssize_t off, Py_ssize_t end)

cdef bytes _FIXED_SIZE
cdef bint _COMPILED
cdef int _MAX_DEPTH
cdef Py_ssize_t _SMALL_DOC

@cython.locals(p=Py_ssize_t, end=Py_ssize_t, pos=Py_ssize_t, t=cython.int, z=Py_ssize_t,
               q=Py_ssize_t, f=cython.int, n=cython.longlong, stop=Py_ssize_t)
cpdef Py_ssize_t _lsid_at(bytes body) except -2


cdef class MongodbMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public object size
    cdef public list notes
    cdef public object request_id
    cdef public object response_to
    cdef public object opcode
    cdef public object compressor
    cdef public object flags
    cdef public object method
    cdef public object resource
    cdef public object _params
    cdef public object _body
    cdef public object _seqs
    cdef public dict event
    cdef public list documents
    cdef public object error
    cdef public bint expects_response
    cdef public bint more_to_come
    cdef public bint exhaust
    cdef public object wait_ns

    cpdef MongodbMessage continuation(self, ts)


@cython.locals(m=MongodbMessage)
cdef MongodbMessage _new_message(ts, size, request_id, response_to, opcode, compressor)

cpdef dict decode(raw)

cpdef dict _top(raw)

cpdef str reply_error(doc, bint legacy)


cdef class MongodbParser:
    cdef public Py_ssize_t max_message_size
    cdef public bytearray _buf
    cdef public object _ts
    cdef public Py_ssize_t _skip
    cdef public list _pending
    cdef public Py_ssize_t skipped_opcodes
    cdef public Py_ssize_t too_large
    cdef public Py_ssize_t compressed

    @cython.locals(out=list, n=Py_ssize_t, buf=bytearray, pos=Py_ssize_t, length=cython.longlong,
                   opcode=cython.longlong)
    cpdef list feed(self, data, ts)

    @cython.locals(m=MongodbMessage, end=Py_ssize_t, off=Py_ssize_t)
    cpdef MongodbMessage parse_message(self, data, ts)

    @cython.locals(kind=cython.int, stop=Py_ssize_t, size=cython.longlong,
                   sec_end=Py_ssize_t, p=Py_ssize_t)
    cpdef _op_msg(self, MongodbMessage m, data, Py_ssize_t off, Py_ssize_t end)

    @cython.locals(p=Py_ssize_t, stop=Py_ssize_t)
    cpdef _msg_command(self, MongodbMessage m, bytes body, seqs)

    cpdef _msg_reply(self, MongodbMessage m, body, seqs)
