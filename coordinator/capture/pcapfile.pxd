# C declarations for coordinator/capture/pcapfile.py when compiled (setup.py; pure Python mode).
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t


cdef inline uint64_t _rd32(const unsigned char* p, bint big) noexcept:
    if big:
        return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | <uint32_t>p[0]


cdef inline Py_ssize_t _pcap_records_c(bytes buf, Py_ssize_t pos, Py_ssize_t hlen, bint big, uint64_t frac_ns,
                                       Py_ssize_t limit, object linktype, list out) except -1:
    # pcapfile.py _pcap_records: the same records, read from the buffer in place
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t incl, end
    cdef uint64_t ts
    while pos + hlen <= n:
        incl = <Py_ssize_t>_rd32(p + pos + 8, big)
        end = pos + hlen + incl
        if incl > limit or end > n:
            break
        # < 2**32 s * 10**9 + < 2**32 * 1000: fits in 64 bits, as the pure sum's value
        ts = _rd32(p + pos, big) * <uint64_t>1000000000 + _rd32(p + pos + 4, big) * frac_ns
        out.append((ts, linktype, PyBytes_FromStringAndSize(<const char*>p + pos + hlen, incl)))
        pos = end
    return pos
