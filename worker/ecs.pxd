# C types for worker/ecs.py when compiled (setup.py, Cython pure Python mode:
# the .py stays the source and runs uncompiled).
import cython
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef inline object _tuple_item_c(object t, Py_ssize_t i):
    if PyTuple_Check(t) and 0 <= i < PyTuple_GET_SIZE(t):
        return <object>PyTuple_GET_ITEM(t, i)
    return t[i]


cdef bint _COMPILED
cpdef object tuple_item(object t, Py_ssize_t i)


cdef tuple _MS3
cdef dict _FLOW_PARTS
cdef dict _FLOW_TMPL
cdef dict _EVENT_TMPL
cdef list _LAST_SECOND

@cython.locals(last=list)
cpdef str _second_text(sec)

cdef str _frac3(frac)

@cython.locals(v=cython.longlong)
cdef str _frac9(frac)

@cython.locals(key=tuple, pkey=tuple, tm=tuple, evt=tuple, parts=tuple, source=dict, client=dict, dest=dict, server=dict,
               network=dict, event=dict, ev=dict, base=str, ebase=str, stamp=str)
cpdef dict transaction_event(proto, tuple_, start, end, bytes_in=*, bytes_out=*, status=*,
                             notes=*, transport=*, cid_ports=*)

cdef bytes _V4_MAPPED, _LOOPBACK6

cpdef str _cid(bytes blob)

@cython.locals(n=Py_ssize_t, value=cython.longlong, part=cython.int, digits=cython.int, dots=cython.int,
               ch=cython.Py_UCS4)
cdef long long _ipv4_int(str text) except -2

@cython.locals(a0=cython.longlong, a1=cython.longlong)
cdef bint _host4(long long n) except -1

@cython.locals(a0=cython.int)
cdef bint _host6(bytes b) except -1

cdef object _U32, _CID4I, _CID6

@cython.locals(s=cython.longlong, d=cython.longlong, direction=str, cid=str, si=cython.long, di=cython.long)
cdef tuple _flow_parts4(transport, str src_ip, sport, str dst_ip, dport)

cdef str _cid4(int transport, long long s, long long d, long sport, long dport)

@cython.locals(s=bytes, d=bytes, blob=bytes, direction=str)
cdef tuple _flow_parts6(transport, str src_ip, sport, dst_ip, dport)

cdef tuple _flow_parts_fast(transport, src_ip, sport, dst_ip, dport, cid_ports)

@cython.locals(parts=tuple)
cdef tuple _flow_parts(tuple key)

@cython.locals(a0=cython.uchar, a1=cython.uchar, a2=cython.uchar, a3=cython.uchar)
cpdef str ipv4_text(bytes b)

@cython.locals(src_b=dict, dst_b=dict, net_b=dict, tm=tuple)
cdef tuple _flow_templates(tuple key, proto, tuple parts, src_ip, sport, dst_ip, dport)

@cython.locals(evt=tuple)
cdef tuple _event_templates(proto)


# Community ID text of a flow's blob: "1:" + base64(SHA-1(blob)), in C for a blob of one
# SHA-1 block (at most 55 bytes; a flow's is 16 (IPv4) or 40 (IPv6)): the hashlib object,
# its digest() and binascii's keyword call cost several times the ~1.5k instructions of the
# 80 rounds. FIPS 180-4, section 6.1; tests/unit/test_network_direction.py compares it with
# hashlib on random blobs of every length it takes.
from libc.stdint cimport uint32_t
from libc.string cimport memcpy, memset
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef inline uint32_t _rol32(uint32_t x, int n) noexcept nogil:
    return (x << n) | (x >> (32 - n))


cdef inline void _sha1_round(uint32_t* v, uint32_t f, uint32_t kw) noexcept nogil:
    """One SHA-1 round on the working variables v = (a, b, c, d, e): f the round's
    function of b, c, d; kw its constant plus the schedule word."""
    cdef uint32_t t = _rol32(v[0], 5) + f + v[4] + kw
    v[4] = v[3]
    v[3] = v[2]
    v[2] = _rol32(v[1], 30)
    v[1] = v[0]
    v[0] = t


cdef inline str _cid_c(bytes blob):
    return _cid_buf(<const unsigned char*>blob, len(blob))


cdef inline str _cid4_c(int transport, long long s, long long d, long sport, long dport):
    """The Community ID of an IPv4 flow in hashing order: its 16-byte blob (seed 0) in C."""
    cdef unsigned char blob[16]
    blob[0] = 0
    blob[1] = 0
    blob[2] = <unsigned char>(s >> 24)
    blob[3] = <unsigned char>(s >> 16)
    blob[4] = <unsigned char>(s >> 8)
    blob[5] = <unsigned char>s
    blob[6] = <unsigned char>(d >> 24)
    blob[7] = <unsigned char>(d >> 16)
    blob[8] = <unsigned char>(d >> 8)
    blob[9] = <unsigned char>d
    blob[10] = <unsigned char>transport
    blob[11] = 0
    blob[12] = <unsigned char>(sport >> 8)
    blob[13] = <unsigned char>sport
    blob[14] = <unsigned char>(dport >> 8)
    blob[15] = <unsigned char>dport
    return _cid_buf(blob, 16)


cdef inline str _cid_buf(const unsigned char* data, Py_ssize_t n):
    cdef const char* alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    cdef unsigned char block[64]
    cdef unsigned char digest[21]
    cdef char out[30]
    cdef uint32_t w[80]
    cdef uint32_t h[5]
    cdef uint32_t v[5]
    cdef uint32_t t
    cdef int i
    cdef unsigned long long bits = <unsigned long long>n * 8
    memset(block, 0, 64)
    memcpy(block, data, n)
    block[n] = 0x80
    for i in range(8):
        block[63 - i] = <unsigned char>(bits >> (8 * i))
    for i in range(16):
        w[i] = ((<uint32_t>block[4 * i] << 24) | (<uint32_t>block[4 * i + 1] << 16)
                | (<uint32_t>block[4 * i + 2] << 8) | <uint32_t>block[4 * i + 3])
    for i in range(16, 80):
        w[i] = _rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
    h[0] = 0x67452301
    h[1] = 0xEFCDAB89
    h[2] = 0x98BADCFE
    h[3] = 0x10325476
    h[4] = 0xC3D2E1F0
    # the four kinds of round in their own loops: no test per round
    v[0] = h[0]
    v[1] = h[1]
    v[2] = h[2]
    v[3] = h[3]
    v[4] = h[4]
    for i in range(20):
        _sha1_round(v, (v[1] & v[2]) | ((~v[1]) & v[3]), <uint32_t>0x5A827999U + w[i])
    for i in range(20, 40):
        _sha1_round(v, v[1] ^ v[2] ^ v[3], <uint32_t>0x6ED9EBA1U + w[i])
    for i in range(40, 60):
        _sha1_round(v, (v[1] & v[2]) | (v[1] & v[3]) | (v[2] & v[3]), <uint32_t>0x8F1BBCDCU + w[i])
    for i in range(60, 80):
        _sha1_round(v, v[1] ^ v[2] ^ v[3], <uint32_t>0xCA62C1D6U + w[i])
    for i in range(5):
        h[i] += v[i]
    for i in range(5):
        digest[4 * i] = <unsigned char>(h[i] >> 24)
        digest[4 * i + 1] = <unsigned char>(h[i] >> 16)
        digest[4 * i + 2] = <unsigned char>(h[i] >> 8)
        digest[4 * i + 3] = <unsigned char>h[i]
    digest[20] = 0
    # base64 of the 20 bytes: 6 groups of 3, then 2 bytes as 3 letters and "="
    out[0] = b'1'
    out[1] = b':'
    for i in range(7):
        t = (<uint32_t>digest[3 * i] << 16) | (<uint32_t>digest[3 * i + 1] << 8)
        if i < 6:
            t |= digest[3 * i + 2]
        out[2 + 4 * i] = alphabet[(t >> 18) & 63]
        out[3 + 4 * i] = alphabet[(t >> 12) & 63]
        out[4 + 4 * i] = alphabet[(t >> 6) & 63]
        out[5 + 4 * i] = alphabet[t & 63] if i < 6 else b'='
    return PyUnicode_DecodeASCII(out, 30, NULL)


cdef inline str _digits9_c(long long v):
    """The nine decimal digits of 0 <= v < 10**9, zero-padded ("%09d")."""
    cdef char buf[9]
    cdef int i
    for i in range(8, -1, -1):
        buf[i] = <char>(48 + v % 10)
        v //= 10
    return PyUnicode_DecodeASCII(buf, 9, NULL)
