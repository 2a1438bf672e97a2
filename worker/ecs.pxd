# C types for worker/ecs.py when compiled (setup.py, Cython pure Python mode:
# the .py stays the source and runs uncompiled).
import cython


cdef tuple _MS3

cdef str _frac3(frac)

@cython.locals(v=cython.longlong)
cdef str _frac9(frac)
