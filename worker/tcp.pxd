# C declarations for worker/tcp.py when compiled (setup.py; Cython pure Python
# mode: the .py stays the source and runs as it is without this file).
cimport cython
from worker.plugin cimport Packet


cdef class Conn:
    cdef public tuple key
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

    @cython.locals(sport=int, dport=int, flags=int, off=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t,
                   d=int, ent=tuple, conn=Conn, ports=dict, key=tuple, nxt=object)
    cpdef process(self, object ts, tuple dec, object raw)

    @cython.locals(ports=dict, conn=Conn, other=tuple, rkey=tuple, tcptuple=object)
    cdef tuple _lookup_miss(self, object ts, tuple key, int d, int flags, Py_ssize_t n, tuple ent,
                            int sport, int dport, object seq=*)

    @cython.locals(n=Py_ssize_t, fin=int, diff=object, start=object, nxt=object)
    cdef _segment(self, Conn conn, int d, object ts, object seq, int flags, object raw,
                  Py_ssize_t off, Py_ssize_t end)

    @cython.locals(stop=object, trim=object, nxt=object)
    cdef bint _accept(self, Conn conn, int d, object ts, object start, int fin, object raw,
                      Py_ssize_t off, Py_ssize_t end) except -1
