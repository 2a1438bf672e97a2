# C types for worker/protos/thrift/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. Positions, lengths and wire bytes are C integers; the buffer is
# a bytearray indexed without Python integer objects; the one-pass reader's
# helpers are C-level calls.
import cython

cdef int MAX_DEPTH
cdef int T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64
cdef int T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST, T_UUID
cdef int _STRUCT, _LIST, _SET, _MAP
cdef bytes _FIXED_B, _FIXED_C, _BINARY_OK, _COMPACT_OF
cdef object _NEED_MORE


cdef class ThriftMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public object size
    cdef public list notes
    cdef public object mtype
    cdef public object method
    cdef public object seqid
    cdef public list fields
    cdef public object nfields
    cdef public object transport
    cdef public object protocol
    cdef public bint decoded
    cdef public int direction
    cdef public bint oneway


cpdef str format_struct(list items, Py_ssize_t nfields, Py_ssize_t limit, names=*)


cdef class _Frame:
    cdef public int kind
    cdef public bint render
    cdef public list items
    cdef public Py_ssize_t count
    cdef public Py_ssize_t remaining
    cdef public int etype
    cdef public int vtype
    cdef public Py_ssize_t fid
    cdef public int ftype
    cdef public Py_ssize_t last_fid
    cdef public object key


@cython.locals(v=cython.longlong)
cdef long long _i32(bytearray buf, Py_ssize_t p) except? -1

@cython.locals(b0=cython.ulonglong, b1=cython.ulonglong, b2=cython.ulonglong, b3=cython.ulonglong)
cdef unsigned long long _u32(bytearray buf, Py_ssize_t p) except? 0xFFFFFFFFFFFFFFFF

@cython.locals(result=cython.ulonglong, shift=cython.int, b=cython.ulonglong)
cdef tuple _fast_varint(bytearray buf, Py_ssize_t p, Py_ssize_t end)

cdef tuple _varint_wide(object result, object b, Py_ssize_t p)

@cython.locals(k=Py_ssize_t, q=Py_ssize_t, ln=cython.longlong, shift=cython.int, b=cython.longlong,
               wide=cython.bint)
cdef tuple _skip_strings(bytearray buf, Py_ssize_t p, Py_ssize_t end, Py_ssize_t n, bint compact)


cdef class ThriftParser:
    cdef public object transport
    cdef public object protocol
    cdef public object forced_transport
    cdef public object forced_protocol
    cdef public Py_ssize_t string_max_size
    cdef public Py_ssize_t collection_max_size
    cdef public Py_ssize_t max_fields
    cdef public bint obfuscate
    cdef public bint capture_reply
    cdef public Py_ssize_t max_message_size
    cdef public bytearray _buf
    cdef public Py_ssize_t _start
    cdef public Py_ssize_t _pos
    cdef public Py_ssize_t _end
    cdef public Py_ssize_t _need
    cdef public Py_ssize_t _skip
    cdef public object _ts
    cdef public object _msg
    cdef public list _stack
    cdef public Py_ssize_t _frame_end
    cdef public object _gap_msg
    cdef public Py_ssize_t too_large

    @cython.locals(buf=bytearray, out=list, rest=cython.bint)
    cpdef list feed(self, data, ts)

    @cython.locals(pos=Py_ssize_t)
    cpdef _compact(self)

    cpdef _new_message(self)

    @cython.locals(buf=bytearray, need=Py_ssize_t, length=Py_ssize_t)
    cpdef object _step(self)

    cpdef object _finish(self)

    @cython.locals(buf=bytearray, end=Py_ssize_t, compact=cython.bint, limit=Py_ssize_t,
                   max_fields=Py_ssize_t, render_all=cython.bint, first_shown=cython.bint,
                   items=list, count=Py_ssize_t, last=Py_ssize_t, p=Py_ssize_t, b=cython.int,
                   t=cython.int, fid=Py_ssize_t, delta=cython.int, render=cython.bint)
    cpdef _fast_body(self)

    cpdef str _render_collection(self, int kind, list items, Py_ssize_t count)

    @cython.locals(n=Py_ssize_t, q=Py_ssize_t, size=cython.int, limit=Py_ssize_t, items=list,
                   count=Py_ssize_t, max_fields=Py_ssize_t, ft=cython.int, fid=Py_ssize_t,
                   r=cython.bint, kt=cython.int, vt=cython.int, kind=cython.int)
    cpdef tuple _fb_value(self, bytearray buf, int t, Py_ssize_t p, Py_ssize_t end, bint render, int depth)

    @cython.locals(limit=Py_ssize_t, sizes=bytes, i=Py_ssize_t, r=cython.bint, ks=cython.int,
                   vs=cython.int, size=Py_ssize_t, q=Py_ssize_t, k=Py_ssize_t)
    cpdef Py_ssize_t _fast_elements(self, bytearray buf, int kind, int kt, int vt, Py_ssize_t n,
                                    Py_ssize_t p, Py_ssize_t end, bint render, int depth, list items,
                                    bint compact) except -1

    @cython.locals(q=Py_ssize_t, size=cython.int, limit=Py_ssize_t, items=list, count=Py_ssize_t,
                   last=Py_ssize_t, max_fields=Py_ssize_t, b=cython.int, ft=cython.int,
                   delta=cython.int, fid=Py_ssize_t, r=cython.bint, kt=cython.int, vt=cython.int,
                   kind=cython.int)
    cpdef tuple _fc_value(self, bytearray buf, int t, Py_ssize_t p, Py_ssize_t end, bint render, int depth)

    @cython.locals(buf=bytearray, end=Py_ssize_t)
    cpdef _element(self, _Frame parent, int t, bint compact)

    cpdef bint _element_render(self, _Frame parent) except -1

    cpdef _deliver(self, _Frame parent, text)

    @cython.locals(maxs=Py_ssize_t)
    cpdef str _string(self, Py_ssize_t p, Py_ssize_t n)
