# C types for worker/protos/mongodb/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type (no Python __init__ per
# message); header fields and offsets are C integers.
import cython


@cython.locals(n=cython.longlong, stop=Py_ssize_t)
cdef Py_ssize_t _doc_bounds(data, Py_ssize_t off, Py_ssize_t end) except -1

@cython.locals(z=Py_ssize_t)
cdef tuple _cstr(data, Py_ssize_t off, Py_ssize_t end)

cdef bytes _FIXED_SIZE

@cython.locals(p=Py_ssize_t, end=Py_ssize_t, pos=Py_ssize_t, t=cython.int, z=Py_ssize_t,
               q=Py_ssize_t, f=cython.int, n=cython.longlong, stop=Py_ssize_t)
cpdef Py_ssize_t _lsid_at(bytes body) except -2


cdef class MongodbMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public object size
    cdef public list notes
    cdef public object request_id
    cdef public object response_to
    cdef public object opcode
    cdef public object compressor
    cdef public object flags
    cdef public object method
    cdef public object resource
    cdef public object params
    cdef public dict event
    cdef public list documents
    cdef public object error
    cdef public bint expects_response
    cdef public bint more_to_come
    cdef public bint exhaust
    cdef public object wait_ns

    cpdef MongodbMessage continuation(self, ts)


cdef class MongodbParser:
    cdef public Py_ssize_t max_message_size
    cdef public bytearray _buf
    cdef public object _ts
    cdef public Py_ssize_t _skip
    cdef public list _pending
    cdef public Py_ssize_t skipped_opcodes
    cdef public Py_ssize_t too_large
    cdef public Py_ssize_t compressed

    @cython.locals(out=list, n=Py_ssize_t, buf=bytearray, pos=Py_ssize_t, length=cython.longlong,
                   opcode=cython.longlong)
    cpdef list feed(self, data, ts)

    @cython.locals(m=MongodbMessage, end=Py_ssize_t, off=Py_ssize_t)
    cpdef MongodbMessage parse_message(self, data, ts)

    @cython.locals(kind=cython.int, stop=Py_ssize_t, size=cython.longlong,
                   sec_end=Py_ssize_t, p=Py_ssize_t)
    cpdef _op_msg(self, MongodbMessage m, data, Py_ssize_t off, Py_ssize_t end)

    @cython.locals(p=Py_ssize_t, stop=Py_ssize_t)
    cpdef _msg_command(self, MongodbMessage m, bytes body, seqs)

    cpdef _msg_reply(self, MongodbMessage m, body, seqs)
