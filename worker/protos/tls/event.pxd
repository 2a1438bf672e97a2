# C types for worker/protos/tls/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The connection, its sides and the hellos are typed: their
# fields are read as C struct members.
import cython

from worker.protos.tls.handshake cimport Hello
from worker.protos.tls.trans cimport Side, TlsConnection


cdef tuple _shape(Hello h)

cdef tuple _derived(Hello h)

@cython.locals(m=dict)
cdef dict _hello_map(Hello h, exts)

cdef object _negotiated_version(Hello ch, Hello sh)

cdef _side_certs(dict side_obj, dict detailed, str prefix, list ders, cfg)

@cython.locals(cdir=cython.int, client=Side, server=Side, ch=Hello, sh=Hello, ev=dict, tls=dict,
               tclient=dict, tserver=dict, detailed=dict, established=cython.bint, tls13=cython.bint,
               resumed=cython.bint, alerts=list, types=list)
cpdef dict to_event(TlsConnection conn, cfg, tcptuple, list notes)
