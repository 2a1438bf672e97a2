# C types for worker/protos/mongodb/event.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. The messages' fields are read as struct members.
import cython
from worker.protos.mongodb.parser cimport MongodbMessage


cpdef str reconstruct_query(MongodbMessage req, dict ev, bint full)

@cython.locals(mongodb=dict)
cpdef dict to_event(MongodbMessage req, MongodbMessage resp, cfg, tcptuple)
