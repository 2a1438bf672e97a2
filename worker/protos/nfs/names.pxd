# C types for worker/protos/nfs/names.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the name look-ups are C-level calls
# from the event builder.

cpdef str nfs_status(code)

cpdef str auth_flavor(flavor)

cdef dict AUTH_FLAVORS
cdef dict NFS_STATUS
