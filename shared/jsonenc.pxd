# C declarations for shared/jsonenc.py when compiled (setup.py; pure Python mode).
cimport cython

cpdef bint _has_float(object value) except -1
