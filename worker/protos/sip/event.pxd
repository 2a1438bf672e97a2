# C types for worker/protos/sip/event.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
# Typed dicts, lists and bytes let the compiled module read the header dict,
# index the value lists and call the UTF-8 decoder directly.
import cython
from worker.protos.sip.parser cimport SipMessage

cdef class _Related:
    cdef public list user, hosts, ip

cpdef object _int(bytes b)

@cython.locals(out=list, start=cython.Py_ssize_t, quoted=cython.bint, angle=cython.Py_ssize_t,
               i=cython.Py_ssize_t, n=cython.Py_ssize_t, c=cython.int)
cpdef list _split_outside(bytes value, int sep, bint first=*)

cpdef str _s(bytes b)

@cython.locals(out=dict, p=bytes, k=bytes, eq=bytes, v=bytes)
cpdef dict _params(bytes text)

@cython.locals(hit=tuple, u=dict, user_s=object, host_s=object)
cpdef tuple _uri_parts(bytes uri)

@cython.locals(u=dict, params=dict, users=list, hosts=list)
cpdef dict _uri_fields(dict obj, bytes uri, _Related rel)

@cython.locals(hit=tuple, obj=dict, u=dict, uparams=dict, hparams=dict)
cpdef tuple _name_addr_parts(bytes value, bint contact)

@cython.locals(obj=dict, out=dict, u=dict)
cpdef dict _name_addr(bytes value, _Related rel, bint contact=*)

@cython.locals(out=list, value=bytes, item=bytes)
cpdef list _list(list values)

cdef dict _URIS, _NAME_ADDRS, _DIALOG_PARTS, _CSEQS

@cython.locals(parts=list, hit=tuple)
cpdef tuple _cseq(bytes value)

cpdef bint _is_sdp(bytes ctype, SipMessage msg)

cpdef dict _sdp(bytes body, _Related rel)

cpdef dict _auth(bytes value, _Related rel, dict ev)

@cython.locals(rel=_Related, sip=dict, priv=dict, part=tuple, nested=tuple)
cpdef tuple _dialog_part(tuple key)

@cython.locals(out=dict)
cpdef object _copy_value(object value)

@cython.locals(ev=dict, sip=dict, headers=dict, v=list, b=bytes, parts=list, seen=list,
               event=dict, network=dict, related=dict, rel=_Related, users=list, hosts=list,
               ips=list, phrase=bytes, auth=list, t=str, method=str, cseq_method=str,
               key=tuple, part=tuple, cs=tuple, name=str, user=str, host=str, allow_v=tuple,
               supported_v=tuple, call_id_v=bytes, ctype=bytes, max_forwards_v=bytes, ua_v=bytes,
               pau_v=bytes, accept_v=bytes, from_v=bytes, to_v=bytes, contact_v=bytes)
cpdef dict to_event(SipMessage msg, cfg, tuple_, int transport)
