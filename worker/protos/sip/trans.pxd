# C types for worker/protos/sip/trans.py when compiled (setup.py, Cython pure
# Python mode, augmenting .pxd). The .py stays the source and runs uncompiled.
import cython
from worker.protos.sip.parser cimport SipMessage

cdef dict _CSEQ_PARTS

@cython.locals(headers=dict, call_id=list, cseq=list, value=bytes, parts=tuple)
cpdef tuple transaction_key(SipMessage msg)

@cython.locals(parts=list, hit=tuple)
cpdef tuple _cseq_parts(bytes value)
