# C types for worker/protos/nfs/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type: made without a Python __init__.
import cython
from worker.protos.glue cimport SegmentParser

cdef class RpcMessage:
    cdef public object ts
    cdef public object is_call
    cdef public object xid
    cdef public object size
    cdef public list notes
    cdef public object ts_first
    cdef public object prog
    cdef public object prog_vers
    cdef public object proc
    cdef public object auth_flavor
    cdef public object cred
    cdef public object malformed
    cdef public object tag
    cdef public object minor_version
    cdef public object opcode
    cdef public object reply_stat
    cdef public object accept_stat
    cdef public object reject_stat
    cdef public object status_word
    cdef public object integ_status
    cdef public object gss_service


# The XDR reader: words and offsets are C integers, the message is read as
# bytes indexed at C level.
cdef long long MAX_OPAQUE, MAX_COMPOUND_OPS, SIZE_MASK, LAST_FRAGMENT
cdef int _HEADER, _BODY

@cython.locals(b0=cython.longlong, b1=cython.longlong, b2=cython.longlong, b3=cython.longlong)
cdef long long _w(bytes b, Py_ssize_t off) except -1

cdef bytes _as_bytes(data)

@cython.locals(n=cython.longlong, start=Py_ssize_t, nxt=Py_ssize_t)
cdef tuple _opaque_end(bytes buf, Py_ssize_t off, Py_ssize_t end)

@cython.locals(count=cython.longlong, op=cython.longlong, words=cython.longlong, skip=object)
cdef str _main_opcode(bytes buf, Py_ssize_t off, Py_ssize_t end)

@cython.locals(m=RpcMessage)
cdef RpcMessage _message(ts, is_call, xid, size)

@cython.locals(end=Py_ssize_t, stamp=cython.longlong, mlen=cython.longlong, off=Py_ssize_t,
               uid=cython.longlong, gid=cython.longlong, ngids=cython.longlong, k=Py_ssize_t)
cdef tuple _unix_cred(bytes body)

@cython.locals(head=bytes, end=Py_ssize_t, xid=cython.longlong, mtype=cython.longlong,
               rpcvers=cython.longlong, prog=cython.longlong, vers=cython.longlong,
               proc=cython.longlong, msg=RpcMessage, stat=cython.longlong, off=Py_ssize_t)
cpdef RpcMessage decode_message(data, ts, size, bint cut=*)

@cython.locals(flavor=cython.longlong, clen=cython.longlong, off=Py_ssize_t, vlen=cython.longlong,
               gss_proc=cython.longlong, _seq=cython.longlong, service=cython.longlong,
               tlen=cython.longlong, tstart=Py_ssize_t)
cdef _decode_nfs_call(RpcMessage msg, bytes head, Py_ssize_t end, bint cut)

@cython.locals(count=cython.longlong, op=cython.longlong, sub=Py_ssize_t)
cdef str _last_op_before(bytes head, Py_ssize_t off, Py_ssize_t end)

@cython.locals(op=cython.longlong)
cdef Py_ssize_t _main_opcode_step(bytes head, Py_ssize_t off, Py_ssize_t end) except? -2


cdef class RecordParser(SegmentParser):
    cdef public Py_ssize_t max_message_size
    cdef public int _state
    cdef public bytes _hdr
    cdef public Py_ssize_t _remaining
    cdef public bint _last
    cdef public bytearray _head
    cdef public Py_ssize_t _head_max
    cdef public Py_ssize_t _size
    cdef public object _ts_first
    cdef public bint _cut
    cdef public bint _lost
    cdef public list _done
    cdef public Py_ssize_t dropped_bytes
    cdef public Py_ssize_t lost_messages
    cdef public bint _hunting
    cdef public Py_ssize_t skipped_bytes

    @cython.locals(out=list, start=Py_ssize_t, n=Py_ssize_t, i=Py_ssize_t, limit=Py_ssize_t,
                   word=cython.longlong, length=Py_ssize_t, end=Py_ssize_t, head_end=Py_ssize_t,
                   need=Py_ssize_t, take=Py_ssize_t, head=bytearray, room=Py_ssize_t, had=Py_ssize_t,
                   msg=RpcMessage, b=bytes)
    cpdef list feed(self, data, ts)

    @cython.locals(mtype=cython.longlong, word=cython.longlong)
    cdef _check_start(self, bytearray head)

    @cython.locals(head=bytearray, size=Py_ssize_t, cut=cython.bint, lost=cython.bint, msg=RpcMessage)
    cdef RpcMessage _complete(self, ts)
