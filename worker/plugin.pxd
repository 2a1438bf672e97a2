# C declarations for worker/plugin.py when compiled (setup.py): Packet is built
# once per payload segment, an extension type makes that a C-level allocation.

cdef class Packet:
    cdef public object ts
    cdef public object tuple
    cdef public object payload
