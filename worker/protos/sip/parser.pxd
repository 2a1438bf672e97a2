# C types for worker/protos/sip/parser.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython

cdef class SipMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public Py_ssize_t size, code
    cdef public list notes
    cdef public bytes method, uri, phrase, version, body, raw
    cdef public dict headers

cdef dict _STARTS

@cython.locals(headers=dict, content_length=cython.Py_ssize_t, lines=list, unfolded=list,
               cache=dict, ln=bytes, name=bytes, value=bytes, lst=list, folded=cython.bint)
cpdef object parse_headers(msg, bytes block)

@cython.locals(buf=bytes, n=cython.Py_ssize_t, out=list, pos=cython.Py_ssize_t,
               eol=cython.Py_ssize_t, line_end=cython.Py_ssize_t, head_end=cython.Py_ssize_t,
               body_start=cython.Py_ssize_t, end=cython.Py_ssize_t, cl=cython.Py_ssize_t)
cpdef list parse_datagram(data, ts)

cdef class SipStreamParser:
    cdef public Py_ssize_t max_message_size, lost_bytes, gaps, bad_starts
    cdef public bytearray _buf
    cdef public int _state
    cdef public Py_ssize_t _start, _scan, _head_len, _end, _missing
    cdef public object _msg, _ts
    cdef public list _done

    @cython.locals(buf=bytearray, out=list)
    cpdef list feed(self, data, ts)

    @cython.locals(buf=bytearray, n=cython.Py_ssize_t, state=cython.int, pos=cython.Py_ssize_t,
                   eol=cython.Py_ssize_t, hend=cython.Py_ssize_t, first_eol=cython.Py_ssize_t,
                   cl=cython.Py_ssize_t, head_len=cython.Py_ssize_t, skip=cython.Py_ssize_t,
                   line=bytes)
    cpdef _run(self, ts, list out)

    @cython.locals(buf=bytearray, pos=cython.Py_ssize_t)
    cpdef _complete(self, Py_ssize_t end)

@cython.locals(hit=tuple, msg=SipMessage)
cpdef SipMessage parse_start_line(bytes line, msg_ts)
