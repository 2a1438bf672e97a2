# C types for worker/protos/dns/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs uncompiled.
import cython
from worker.protos.dns.parser cimport DnsMessage
from worker.protos.dns.trans cimport Transaction
from worker.ecs cimport transaction_event

cdef dict _FLAGS_MEMO, _QUESTION_MEMO, _RECORD_MEMO, _RCODE_TEXT, _QUERY_MEMO, _OPT_MEMO
cdef list _OPCODE_TEXT

@cython.locals(text=str)
cpdef str _rcode_text(code)

@cython.locals(hit=tuple, qname=str)
cpdef tuple _query(tuple q)
cdef int T_A, T_AAAA, T_CNAME, T_NS, T_PTR, T_OPT
cdef int _FLAG_MASK

@cython.locals(req=DnsMessage, resp=DnsMessage, first=DnsMessage, ev=dict, dns=dict, ips=list,
               related=list, qname=str, query=str, status=str)
cpdef dict to_event(Transaction trans, cfg, psl)

@cython.locals(bits=cython.int, rrs=list, ips=list, extra=list, flags=dict, hf=list, q=tuple)
cpdef list _add_message(dict d, DnsMessage msg, cfg, psl)

@cython.locals(key=tuple, hit=tuple)
cpdef tuple _flags(int bits, do)

@cython.locals(key=tuple, hit=dict, q=dict)
cpdef dict question(name, qtype, qclass, psl)

cdef object _memo_key(tuple rr)

@cython.locals(out=list, memo=dict, rtype=cython.int, hit=dict, fields=dict, name=str, rr=tuple)
cpdef list records(list rrs, ips)

@cython.locals(key=tuple, hit=dict)
cpdef dict opt_fields(tuple opt)
