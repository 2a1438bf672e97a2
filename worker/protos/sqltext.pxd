# C types for worker/protos/sqltext.py when compiled (setup.py, Cython pure
# Python mode: the .py stays the source and runs uncompiled). TextCache is an
# extension type: the event modules cimport it and call ``get`` in C.
import cython

cdef frozenset _SPACE_START


@cython.final
cdef class TextCache:
    cdef public object make
    cdef public Py_ssize_t most
    cdef public Py_ssize_t longest
    cdef dict _known

    @cython.locals(known=object)
    cpdef object get(self, bytes text)


cpdef remember(dict table, key, value, Py_ssize_t most)

cpdef str _s(bytes b)

cpdef str _csv_field(str s)

@cython.locals(lines=list)
cpdef str dump_csv(list fields, list rows)
