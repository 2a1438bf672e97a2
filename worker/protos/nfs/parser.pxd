# C types for worker/protos/nfs/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type: made without a Python __init__.

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
