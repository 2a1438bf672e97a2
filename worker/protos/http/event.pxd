# C types for worker/protos/http/event.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The
# messages are the parser's extension type: their fields are C fields here.
import cython
from worker.protos.http.parser cimport HttpMessage


@cython.locals(notes=list, http=dict, request=dict, response=dict, rh=dict, ev=dict, related=dict,
               related_ip=list, related_hosts=list, rips=list, dport=object, port=object)
cpdef dict to_event(HttpMessage req, HttpMessage resp, cfg, tcptuple)

@cython.locals(out=dict, raw=bytes, redact_auth=cython.bint)
cpdef tuple _headers_and_raw(HttpMessage msg, cfg)

@cython.locals(shown=cython.bint, out=dict)
cpdef _put_body(dict side, HttpMessage msg, body)

@cython.locals(is_form=cython.bint)
cpdef tuple extract_parameters(bytes uri, HttpMessage msg, body, secret_keys)

@cython.locals(values=dict, canonical=cython.bint, part=bytes, k=bytes, eq=bytes, v=bytes, lst=list)
cpdef _plain_query(bytes q)

cpdef tuple _split_target(bytes uri)

cpdef tuple extract_host_header(str header)

@cython.locals(url=dict)
cpdef dict make_url(str domain, port, str path, str query)
