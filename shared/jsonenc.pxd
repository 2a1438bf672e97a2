# C declarations for shared/jsonenc.py when compiled (setup.py; pure Python mode).
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memchr, memcmp


cdef inline bint _at(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, const char* s, Py_ssize_t m) noexcept:
    # p[i:i + m] == s
    return i >= 0 and i + m <= n and memcmp(p + i, s, m) == 0


cdef inline bint _has_around(const unsigned char* p, Py_ssize_t n, unsigned char c, const char* s,
                             Py_ssize_t m) noexcept:
    # some c in p[:n] at offset 1 of an occurrence of s (s[1] == c): found from the rare byte c
    cdef const unsigned char* q = p
    while True:
        q = <const unsigned char*>memchr(q, c, n - (q - p))
        if q == NULL:
            return False
        if _at(p, n, q - p - 1, s, m):
            return True
        q += 1


cdef inline bint _maybe_different_c(bytes line) noexcept:
    # jsonenc.py _maybe_different, the same answer: "null" (found from its "u"), "0.0000" (from
    # its "."), and "e-" after a digit (from the "-": "e-" at offset 0 ends the Python loop)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(line)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(line)
    cdef const unsigned char* q
    cdef Py_ssize_t i
    if _has_around(p, n, b"u"[0], b"null", 4) or _has_around(p, n, b"."[0], b"0.0000", 6):
        return True
    if n >= 2 and p[0] == b"e"[0] and p[1] == b"-"[0]:
        return False
    q = p
    while True:
        q = <const unsigned char*>memchr(q, b"-"[0], n - (q - p))
        if q == NULL:
            return False
        i = q - p
        if i >= 2 and p[i - 1] == b"e"[0] and 0x30 <= p[i - 2] <= 0x39:
            return True
        q += 1


cpdef bint _maybe_different(bytes line) except -1

cdef bint _COMPILED
