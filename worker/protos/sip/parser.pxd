# C types for worker/protos/sip/parser.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython

@cython.locals(headers=dict, content_length=cython.Py_ssize_t, lines=list, unfolded=list,
               cache=dict, ln=bytes, name=bytes, value=bytes, lst=list)
cpdef object parse_headers(msg, bytes block)

@cython.locals(buf=bytes, n=cython.Py_ssize_t, out=list, pos=cython.Py_ssize_t,
               eol=cython.Py_ssize_t, line_end=cython.Py_ssize_t, head_end=cython.Py_ssize_t,
               body_start=cython.Py_ssize_t, end=cython.Py_ssize_t, cl=cython.Py_ssize_t)
cpdef list parse_datagram(data, ts)
