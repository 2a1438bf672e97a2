# C types for worker/protos/amqp/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type: made without a Python __init__.

cdef class AmqpMessage:
    cdef public object ts
    cdef public object direction
    cdef public object channel
    cdef public object class_id
    cdef public object method_id
    cdef public object method
    cdef public object kind
    cdef public object answers
    cdef public object size
    cdef public list notes
    cdef public dict fields
    cdef public object request
    cdef public object hidden
    cdef public object body
    cdef public object body_size
    cdef public object body_seen
    cdef public object has_header
