# C types for worker/protos/http/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The
# messages are the parser's extension type: their fields are C fields here.
import cython
from worker.protos.http.parser cimport HttpMessage
from worker.ecs cimport transaction_event, tuple_item


@cython.locals(notes=list, http=dict, request=dict, response=dict, rh=dict, ev=dict, related=dict,
               related_ip=list, related_hosts=list, rips=list, dport=object, port=object, fl=tuple,
               fast=tuple, hi=tuple, path=str, params=str, phrase=str)
cpdef dict to_event(HttpMessage req, HttpMessage resp, cfg, tcptuple)

@cython.locals(out=dict, raw=bytes, redact_auth=cython.bint, fl=tuple)
cpdef tuple _headers_and_raw(HttpMessage msg, cfg)

@cython.locals(shown=cython.bint, out=dict)
cpdef _put_body(dict side, HttpMessage msg, body)

cdef _side_body(HttpMessage msg, bint alone, str unmatched, bint decode, max_size, list notes)

@cython.locals(is_form=cython.bint)
cpdef tuple extract_parameters(bytes uri, HttpMessage msg, body, secret_keys)

@cython.locals(values=dict, canonical=cython.bint, part=bytes, k=bytes, eq=bytes, v=bytes, lst=list)
cpdef _plain_query(bytes q)

cpdef tuple _split_target(bytes uri)

cpdef tuple extract_host_header(str header)

@cython.locals(url=dict)
cpdef dict make_url(str domain, port, str path, str query)

cdef str _host_port(str host, port)

cdef dict _HOSTS
cdef Py_ssize_t _HOSTS_MAX

cpdef str _s(b)
cdef str _sb(bytes b)
cdef dict _PHRASES

@cython.locals(key=tuple, hi=tuple, base=dict, t=dict, mismatch=cython.bint, is_ip=cython.bint)
cdef tuple _host_info(host_value, dport)

@cython.locals(url=dict, path=str, query=str, full=str, templates=tuple)
cdef dict _fast_url(tuple hi, tuple fast)

cdef inline bint _query_char(unsigned char c)
cdef inline bint _path_char(unsigned char c)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, x=cython.uchar, y=cython.uchar)
cdef bint _key_greater(bytes uri, Py_ssize_t a0, Py_ssize_t a1, Py_ssize_t b0, Py_ssize_t b1)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, c=cython.uchar, slash=Py_ssize_t, dot=Py_ssize_t,
               pend=Py_ssize_t, q0=Py_ssize_t, part=Py_ssize_t, eq=Py_ssize_t, pk0=Py_ssize_t,
               pk1=Py_ssize_t, path=str, ext=object)
cdef tuple _fast_target(bytes uri)
