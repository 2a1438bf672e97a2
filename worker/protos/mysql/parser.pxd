# C types for worker/protos/mysql/parser.py when compiled (setup.py, Cython
# pure Python mode: the .py stays the source and runs uncompiled). The parser
# and the message are extension types: attribute access is a C field access
# instead of a slot descriptor look-up; positions, lengths and states are C ints.
import cython

cdef int _K_AUTH_ERR, _K_AUTH_OK, _K_COMMAND, _K_GREETING, _K_INFILE_REQUEST, _K_LOGIN, _K_RESPONSE, _K_SSL_REQUEST
cdef int _R_ANY, _R_AUTH, _R_EXECUTE, _R_FETCH, _R_FIELD_LIST, _R_GUESS, _R_NONE, _R_PREPARE, _R_QUERY, _R_SIMPLE, _R_STREAM
cdef int _S_AUTH, _S_COLUMNS, _S_FIELD_LIST, _S_FIRST, _S_IDLE, _S_INFILE, _S_PREP_COLS, _S_PREP_COLS_EOF
cdef int _S_PREP_PARAMS, _S_PREP_PARAMS_EOF, _S_ROWS, _S_STOPPED
cdef Py_ssize_t MAX_PAYLOAD, LONG_RESPONSE, MAX_COLUMNS, MAX_EXPECTED


@cython.final
cdef class MysqlMessage:
    cdef public object ts
    cdef public bint is_request
    cdef public int kind
    cdef public Py_ssize_t size
    cdef public list notes
    cdef public int command
    cdef public object query
    cdef public object statement_id
    cdef public object payload
    cdef public object params
    cdef public bint truncated
    cdef public int answers
    cdef public bint is_ok
    cdef public bint is_error
    cdef public object error_code
    cdef public object sql_state
    cdef public object error_message
    cdef public object affected_rows
    cdef public object insert_id
    cdef public Py_ssize_t num_fields
    cdef public Py_ssize_t num_rows
    cdef public Py_ssize_t num_params
    cdef public list tables
    cdef public list fields
    cdef public list rows
    cdef public Py_ssize_t long_size
    cdef public object server_version
    cdef public object capabilities
    cdef public object user
    cdef public object database
    cdef public object auth_plugin


@cython.locals(m=MysqlMessage)
cpdef MysqlMessage _message(ts, bint is_request, int kind, Py_ssize_t size)

@cython.locals(b=cython.int)
cpdef tuple read_lenenc(p, Py_ssize_t off)

@cython.locals(end=Py_ssize_t)
cpdef tuple read_lenenc_str(p, Py_ssize_t off)

cdef inline Py_ssize_t _keep(list row, bytes text, Py_ssize_t taken, Py_ssize_t max_len) except -1

@cython.locals(row=list, taken=Py_ssize_t, off=Py_ssize_t, n=Py_ssize_t, b=cython.int, end=Py_ssize_t,
               text=bytes, start=Py_ssize_t)
cpdef list decode_text_row(bytearray p, Py_ssize_t max_len)


@cython.final
cdef class MysqlParser:
    cdef public bint is_client
    cdef public Py_ssize_t keep
    cdef public Py_ssize_t max_rows
    cdef public Py_ssize_t max_row_length
    cdef public bint keep_rows
    cdef public bytearray _buf
    cdef public object _carry_ts
    cdef public list _out
    cdef public bint _in_lp
    cdef public Py_ssize_t _rem
    cdef public bint _cont
    cdef public bytearray _part
    cdef public Py_ssize_t _keep_left
    cdef public object _lp_ts
    cdef public int _lp_seq
    cdef public Py_ssize_t _lp_size
    cdef public bint _lp_trunc
    cdef public bint _z
    cdef public bytearray _cbuf
    cdef public Py_ssize_t _crem
    cdef public object _zobj
    cdef public Py_ssize_t _zleft
    cdef public bint _switch
    cdef public int state
    cdef public bint stopped
    cdef public object expected
    cdef public object client_flags
    cdef public object server_flags
    cdef public bint _login_seen
    cdef public bint _infile
    cdef public MysqlMessage _msg
    cdef public int _cur
    cdef public Py_ssize_t _left
    cdef public bint _eof_pending
    cdef public list _types
    cdef public bint _render
    cdef public Py_ssize_t _prep_cols

    cpdef int _deof(self) except -2

    @cython.locals(out=list)
    cpdef list feed(self, data, ts)

    @cython.locals(buf=bytearray, chunk_start=Py_ssize_t, n=Py_ssize_t, off=Py_ssize_t, keep=Py_ssize_t,
                   client=bint, take=Py_ssize_t, k=Py_ssize_t, length=Py_ssize_t, end=Py_ssize_t,
                   part=bytearray)
    cdef _feed_plain(self, data, ts)

    @cython.locals(msg=MysqlMessage, keep=Py_ssize_t, rows=Py_ssize_t, size=Py_ssize_t,
                   long_size=Py_ssize_t, length=Py_ssize_t, end=Py_ssize_t, first=cython.int)
    cdef Py_ssize_t _skip_rows(self, bytearray buf, Py_ssize_t off, Py_ssize_t n) except -1

    @cython.locals(cmd=cython.int, msg=MysqlMessage, caps=object, off=Py_ssize_t)
    cdef _client_packet(self, bytearray p, int seq, Py_ssize_t size, ts, bint trunc)

    @cython.locals(msg=MysqlMessage)
    cdef MysqlMessage _new(self, ts, int kind)

    @cython.locals(msg=MysqlMessage)
    cdef _done(self)

    @cython.locals(st=cython.int, first=cython.int, msg=MysqlMessage, kind=cython.int)
    cdef _server_packet(self, bytearray p, int seq, Py_ssize_t size, ts, bint trunc)

    cdef _err(self, MysqlMessage msg, bytearray p)

    @cython.locals(off=Py_ssize_t)
    cdef int _ok(self, MysqlMessage msg, bytearray p) except -1

    @cython.locals(msg=MysqlMessage, kind=cython.int, first=cython.int, status=cython.int)
    cdef _first(self, bytearray p, Py_ssize_t size, ts)

    cdef _after_prep_params(self)
    cdef _after_prep_params_eof(self)

    @cython.locals(off=Py_ssize_t)
    cdef _column(self, bytearray p, MysqlMessage msg)

    @cython.locals(msg=MysqlMessage, first=cython.int, status=cython.int)
    cdef _rows_packet(self, bytearray p, Py_ssize_t size)
