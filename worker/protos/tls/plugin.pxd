# C types for worker/protos/tls/plugin.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The per-segment work is C-level calls on the typed connection,
# parser and messages.
import cython

from worker.protos.tls.parser cimport TlsMessage, TlsParser
from worker.protos.tls.trans cimport TlsConnection


@cython.locals(conn=TlsConnection, parser=TlsParser, msgs=list, resynced=cython.bint)
cdef object _parse(plugin, pkt, tcptuple, int direction, state)

@cython.locals(msg=TlsMessage)
cdef _handle(plugin, TlsConnection conn, tcptuple, int direction, list msgs)
