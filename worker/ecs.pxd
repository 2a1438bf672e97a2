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

@cython.locals(key=tuple, tm=tuple, evt=tuple, parts=tuple, source=dict, client=dict, dest=dict, server=dict,
               network=dict, event=dict, ev=dict, base=str, ebase=str, stamp=str)
cpdef dict transaction_event(proto, tuple_, start, end, bytes_in=*, bytes_out=*, status=*,
                             notes=*, transport=*, cid_ports=*)

@cython.locals(s=bytes, d=bytes, a0=cython.int, sp=cython.long, dp=cython.long, blob=bytes,
               direction=str, cid=str)
cdef tuple _flow_parts4(transport, src_ip, sport, dst_ip, dport)

@cython.locals(parts=tuple)
cdef tuple _flow_parts(tuple key)

@cython.locals(a0=cython.uchar, a1=cython.uchar, a2=cython.uchar, a3=cython.uchar)
cpdef str ipv4_text(bytes b)

@cython.locals(parts=tuple, src_b=dict, dst_b=dict, net_b=dict, evt=tuple, tm=tuple, pkey=tuple)
cdef tuple _flow_templates(tuple key, proto, src_ip, sport, dst_ip, dport)
