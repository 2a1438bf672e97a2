# C types for worker/protos/cassandra/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The messages' fields are read as struct members.
import cython
from worker.protos.cassandra.parser cimport CassandraMessage


@cython.locals(cass=dict, data=dict)
cpdef dict to_event(CassandraMessage req, CassandraMessage resp, cfg, tcptuple)
