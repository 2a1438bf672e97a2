# C types for worker/protos/dhcpv4/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython
from worker.protos.dhcpv4.parser cimport DhcpMessage

cpdef str _text(bytes b)

@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t)
cpdef list _ips(v)

@cython.locals(out=dict, n=cython.Py_ssize_t, kind=cython.int, name=str, v=bytes, spec=tuple,
               secs=cython.ulonglong, i=cython.Py_ssize_t)
cpdef dict options_map(dict opts)

cdef dict _MAPS, _MACS
cdef Py_ssize_t _CACHE_MAX

cpdef str format_mac(bytes b)

@cython.locals(key=bytes, hit=tuple, opts=dict, out=dict, lists=tuple, k=str, v=list)
cpdef dict _option_object(DhcpMessage msg)

cpdef _add_ip(dict d, list related, str name, bytes raw)

# option kinds: C constants in the compiled module
cdef int K_IP, K_IPS, K_STR, K_STR_NUL, K_SECS, K_U16, K_MTYPE, K_PRL, K_VIVC, K_I32, K_TIMESRV

@cython.locals(ev=dict, d=dict, op=cython.Py_ssize_t, flags=cython.Py_ssize_t, xid=cython.uint,
               opts=dict, related=list)
cpdef dict to_event(DhcpMessage msg, tuple_)
