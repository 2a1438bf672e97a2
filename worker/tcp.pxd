# C declarations for worker/tcp.py when compiled (setup.py; Cython pure Python
# mode: the .py stays the source and runs as it is without this file).
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy
from worker.plugin cimport Packet


cdef inline bytes _rkey4_c(bytes raw):
    # _rkey4 in one allocation: destination address, source address, ports swapped
    cdef const char* p = PyBytes_AS_STRING(raw)
    cdef bytes k = PyBytes_FromStringAndSize(NULL, 12)
    cdef char* q = PyBytes_AS_STRING(k)
    memcpy(q, p + 30, 4)
    memcpy(q + 4, p + 26, 4)
    memcpy(q + 8, p + 36, 2)
    memcpy(q + 10, p + 34, 2)
    return k


cdef bint _COMPILED
cdef object _PORTS
cdef Py_ssize_t _ADDR_CACHE_MAX

@cython.locals(m=Py_ssize_t, h=Py_ssize_t)
cpdef tuple _key_parts(bytes key)

@cython.locals(m=Py_ssize_t, h=Py_ssize_t)
cpdef bytes _reverse_key(bytes key)

cpdef bytes _rkey4(bytes raw)


cdef class Conn:
    cdef public bytes key
    cdef public object table
    cdef public object plugin
    cdef public object name
    cdef public object tcptuple
    cdef public tuple tup
    cdef public object state
    cdef public list nxt
    cdef public list fin
    cdef public list ooo
    cdef public list ooo_bytes
    cdef public object last_ts
    cdef public bint closing
    cdef public object syn_seq


cdef class TcpTracker:
    cdef object _counters
    cdef Py_ssize_t _max_stream_bytes
    cdef Py_ssize_t _ooo_max
    cdef object _log
    cdef set _logged
    cdef Py_ssize_t _next_id
    cdef dict _tables
    cdef dict _ports
    cdef object _closed
    cdef Py_ssize_t _n_packets
    cdef Py_ssize_t _n_bytes
    cdef Py_ssize_t _max_conns
    cdef Py_ssize_t _max_syns
    cdef object _syns
    cdef Py_ssize_t _n_conns
    cdef Py_ssize_t _held
    cdef Py_ssize_t _max_held
    cdef dict _addr

    @cython.locals(sport=int, dport=int, flags=int, off=Py_ssize_t, end=Py_ssize_t, ent=tuple)
    cpdef process(self, object ts, tuple dec, object raw)

    @cython.locals(n=Py_ssize_t, end=Py_ssize_t, off=Py_ssize_t, sport=int, dport=int,
                   seq=cython.uint, ent=tuple)
    cpdef bint process_eth4(self, object ts, bytes raw) except -1

    @cython.locals(n=Py_ssize_t, conn=Conn, nxt=object, inxt=cython.longlong, pkt=Packet)
    cdef _track(self, object ts, tuple ent, bytes key, int d, int sport, int dport, int flags,
                long long seq, object raw, Py_ssize_t off, Py_ssize_t end)

    cdef str _text(self, bytes addr)

    @cython.locals(ports=dict, conn=Conn, other=tuple, rkey=bytes, tcptuple=object)
    cdef tuple _lookup_miss(self, object ts, bytes key, int d, int flags, Py_ssize_t n, tuple ent,
                            int sport, int dport, object seq=*)

    @cython.locals(n=Py_ssize_t, fin=int, diff=object, start=object, nxt=object)
    cdef _segment(self, Conn conn, int d, object ts, object seq, int flags, object raw,
                  Py_ssize_t off, Py_ssize_t end)

    @cython.locals(stop=object, trim=object, nxt=object)
    cdef bint _accept(self, Conn conn, int d, object ts, object start, int fin, object raw,
                      Py_ssize_t off, Py_ssize_t end) except -1
