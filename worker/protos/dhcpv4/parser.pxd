# C types for worker/protos/dhcpv4/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython

@cython.locals(opts=dict, n=cython.Py_ssize_t, repeated=cython.bint, code=cython.int,
               start=cython.Py_ssize_t)
cpdef dict parse_options(bytes data, Py_ssize_t pos)
