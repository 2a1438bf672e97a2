# C types for worker/protos/amqp/parser.py when compiled (setup.py, Cython
# pure Python mode, augmenting .pxd): the .py stays the source and runs
# uncompiled. A message is an extension type: made without a Python __init__.
# The parser is an extension type too: its frame loop and the argument readers
# are C-level calls, buffer positions and wire integers C integers, the
# frame's arguments a bytearray indexed without Python integer objects.
import cython
from worker.protos.glue cimport SegmentParser

cdef class AmqpMessage:
    cdef public object ts
    cdef public object direction
    cdef public object channel
    cdef public object class_id
    cdef public object method_id
    cdef public object method
    cdef public object kind
    cdef public object answers
    cdef public object size
    cdef public list notes
    cdef public dict fields
    cdef public object request
    cdef public object hidden
    cdef public object body
    cdef public object body_size
    cdef public object body_seen
    cdef public object has_header


@cython.locals(m=AmqpMessage)
cdef AmqpMessage _message(ts, direction, channel, class_id, method_id, method, kind, size)


@cython.locals(e=Py_ssize_t)
cdef tuple _shortstr(bytearray d, Py_ssize_t o)

@cython.locals(e=Py_ssize_t)
cdef tuple _longstr(bytearray d, Py_ssize_t o)

cdef long _u8(bytearray d, Py_ssize_t o) except -1

@cython.locals(b0=cython.long, b1=cython.long)
cdef long _u16(bytearray d, Py_ssize_t o) except -1

@cython.locals(b0=cython.longlong, b1=cython.longlong, b2=cython.longlong, b3=cython.longlong)
cdef long long _u32(bytearray d, Py_ssize_t o) except -1

@cython.locals(hi=cython.ulonglong, lo=cython.ulonglong)
cdef unsigned long long _u64(bytearray d, Py_ssize_t o) except? 0xFFFFFFFFFFFFFFFF

cdef long _bits(bytearray d, Py_ssize_t o) except -1

@cython.locals(t=cython.long, n=Py_ssize_t, e=Py_ssize_t, i=Py_ssize_t)
cdef tuple _value(bytearray d, Py_ssize_t o, Py_ssize_t end, int depth)

@cython.locals(e=Py_ssize_t, n=Py_ssize_t, ko=Py_ssize_t)
cdef Py_ssize_t _table_into(dict out, bytearray d, Py_ssize_t o, Py_ssize_t end, int depth=*) except -1

cdef _arguments(AmqpMessage m, bytearray d, Py_ssize_t o, bint parse)

cpdef _connection_start(AmqpMessage m, bytearray d, pa)
cpdef _connection_start_ok(AmqpMessage m, bytearray d, pa)
cpdef _connection_tune_ok(AmqpMessage m, bytearray d, pa)
cpdef _connection_open(AmqpMessage m, bytearray d, pa)
cpdef _close(AmqpMessage m, bytearray d, pa)
cpdef _reason(AmqpMessage m, bytearray d, pa)
cpdef _update_secret(AmqpMessage m, bytearray d, pa)
cpdef _channel_flow_ok(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _queue_declare(AmqpMessage m, bytearray d, bint pa)
cpdef _queue_declare_ok(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _queue_bind(AmqpMessage m, bytearray d, bint pa)
cpdef _queue_unbind(AmqpMessage m, bytearray d, bint pa)
@cython.locals(b=cython.long)
cpdef _queue_purge(AmqpMessage m, bytearray d, pa)
cpdef _message_count(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _queue_delete(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _exchange_declare(AmqpMessage m, bytearray d, bint pa)
@cython.locals(b=cython.long)
cpdef _exchange_delete(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _exchange_bind(AmqpMessage m, bytearray d, bint pa)
cpdef _basic_qos(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _basic_consume(AmqpMessage m, bytearray d, bint pa)
cpdef _consumer_tag(AmqpMessage m, bytearray d, pa)
cpdef _basic_cancel(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _basic_publish(AmqpMessage m, bytearray d, pa)
cpdef _basic_return(AmqpMessage m, bytearray d, pa)
cpdef _basic_deliver(AmqpMessage m, bytearray d, pa)
cpdef _basic_get(AmqpMessage m, bytearray d, pa)
cpdef _basic_get_ok(AmqpMessage m, bytearray d, pa)
cpdef _basic_ack(AmqpMessage m, bytearray d, pa)
@cython.locals(b=cython.long)
cpdef _basic_nack(AmqpMessage m, bytearray d, pa)
cpdef _basic_reject(AmqpMessage m, bytearray d, pa)
cpdef _requeue(AmqpMessage m, bytearray d, pa)
cpdef _confirm_select(AmqpMessage m, bytearray d, pa)
cpdef _nothing(AmqpMessage m, bytearray d, pa)

cpdef tuple _answers(class_id, method_id)

@cython.locals(p1=cython.long, p2=cython.long, flags=cython.long, mode=cython.long)
cdef decode_properties(dict f, bytearray d, Py_ssize_t o)


cdef class AmqpParser(SegmentParser):
    cdef public object direction
    cdef public Py_ssize_t max_body_length
    cdef public bint parse_headers
    cdef public bint parse_arguments
    cdef public bint hide
    cdef public Py_ssize_t max_frame_size
    cdef public bytearray _buf
    cdef public Py_ssize_t _pos
    cdef public object _ts
    cdef public Py_ssize_t _body_left
    cdef public AmqpMessage _body_msg
    cdef public bint _body_end
    cdef public dict _content
    cdef public Py_ssize_t unknown_methods
    cdef public Py_ssize_t stray_frames
    cdef public Py_ssize_t heartbeats
    cdef public bint foreign
    cdef public Py_ssize_t skipped_bytes

    @cython.locals(buf=bytearray, out=list, pos=Py_ssize_t)
    cpdef list feed(self, data, ts)

    @cython.locals(buf=bytearray, n=Py_ssize_t, pos=Py_ssize_t, ftype=cython.long, channel=cython.long,
                   size=cython.longlong, end=Py_ssize_t, msg=AmqpMessage)
    cdef _parse(self, list out, ts)

    @cython.locals(class_id=cython.long, method_id=cython.long, spec=tuple, kind=cython.long,
                   m=AmqpMessage, pending=AmqpMessage)
    cdef _method(self, bytearray buf, Py_ssize_t start, Py_ssize_t end, long channel, Py_ssize_t size,
                 list out)

    @cython.locals(m=AmqpMessage, body_size=cython.ulonglong, props=dict)
    cdef _header(self, bytearray payload, long channel, list out)

    @cython.locals(m=AmqpMessage)
    cdef _body_start(self, long channel, Py_ssize_t size)

    @cython.locals(take=Py_ssize_t, keep=Py_ssize_t, m=AmqpMessage)
    cdef Py_ssize_t _body_bytes(self, Py_ssize_t pos, Py_ssize_t n, list out) except -1

    cdef _content_done(self, AmqpMessage m, list out)
