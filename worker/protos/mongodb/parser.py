"""MongoDB wire protocol parser
(https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/ and the
driver specifications ``OP_MSG`` and ``Wire Compression``).

Theory of operation
-------------------
One :class:`MongodbParser` reads one direction of a TCP connection. ``feed``
appends bytes and returns every message that is complete.

Framing: every message starts with a 16-byte little-endian header
``messageLength, requestID, responseTo, opCode``; ``messageLength`` counts
the header. A message longer than ``max_message_size`` is not buffered: its
header becomes a message with a note and the rest of its bytes are skipped.
A length below 16 or an opcode that is not MongoDB's is a :class:`ParseError`
(the plugin then forgets the buffer and starts again with the next segment,
as Packetbeat does); OP_COMMAND / OP_COMMANDREPLY (2010/2011, internal to
old clusters) are skipped and counted.

Opcodes, read as Packetbeat 8 reads them (``mongodb_parser.go``):

- OP_QUERY (2004): flags, ``fullCollectionName``, ``numberToSkip``,
  ``numberToReturn`` (both unsigned, as Packetbeat prints them), the query
  and an optional ``returnFieldsSelector``. On ``<db>.$cmd`` the method is
  the first key naming a command of Packetbeat's table whose value is a
  string or the double 1 (the collection, when a string, replaces ``$cmd``
  in the resource), else ``otherCommand``; elsewhere the method is ``find``.
- OP_REPLY (1): ``cursorId``, ``startingFrom``, ``numberReturned``, the
  documents; the first one's ``$err`` / ``writeErrors`` (and here also
  ``ok: 0`` with ``errmsg``, and the CursorNotFound flag) is the error.
- OP_GET_MORE (2005), OP_INSERT (2002), OP_UPDATE (2001), OP_DELETE (2006),
  OP_KILL_CURSORS (2007), the old OP_MSG (1000): their fields; only OP_QUERY
  and OP_GET_MORE wait for a reply.
- OP_MSG (2013): flag bits (``checksumPresent`` strips the CRC-32C,
  ``moreToCome``, ``exhaustAllowed``), a kind-0 body and kind-1 document
  sequences. A message with ``responseTo`` 0 is a command: the method is the
  body's first key (``find``, ``insert``, ``hello``, ...), the resource
  ``<$db>.<collection>`` (the command's string value; ``collection`` for
  getMore) or ``<$db>.$cmd``. Otherwise it is a reply: ``ok: 0`` (``errmsg``),
  ``writeErrors`` or ``writeConcernError`` make it an error; ``cursor.id``
  and the batch length fill ``cursorId`` / ``numberReturned``.
- OP_COMPRESSED (2012): ``originalOpcode``, ``uncompressedSize``,
  ``compressorId`` (0 noop, 1 snappy, 2 zlib, 3 zstd); the decompressed body
  is read as the original opcode with the outer header.

BSON is decoded with pymongo's ``bson``: a command's body entirely, a reply's
top level only (``RawBSONDocument``), other documents when an event needs
their text.

Correlation key: a reply's ``responseTo`` is the ``requestID`` of its
request (``trans.py``); a reply flagged moreToCome (exhaust) is followed by
one whose ``responseTo`` is this reply's ``requestID``.

Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import struct
import zlib

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

from worker.plugin import ParseError as _BaseParseError
from worker.protos.glue import LOSS_NOTES
from worker.protos.mongodb.gojson import dumps as doc2str

try:                                      # maintained bindings of snappy and zstd
    import cramjam as _cramjam
except ImportError:                       # pragma: no cover - a dependency
    _cramjam = None
try:
    import zstandard as _zstd
    _ZSTD = _zstd.ZstdDecompressor()
except ImportError:                       # pragma: no cover - a dependency
    _zstd = _ZSTD = None

OP_REPLY = 1
OP_MSG_LEGACY = 1000
OP_UPDATE = 2001
OP_INSERT = 2002
OP_RESERVED = 2003
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMMAND = 2010
OP_COMMANDREPLY = 2011
OP_COMPRESSED = 2012
OP_MSG = 2013

OPCODE_NAMES = {
    OP_REPLY: "OP_REPLY", OP_MSG_LEGACY: "OP_MSG", OP_UPDATE: "OP_UPDATE", OP_INSERT: "OP_INSERT",
    OP_RESERVED: "RESERVED", OP_QUERY: "OP_QUERY", OP_GET_MORE: "OP_GET_MORE",
    OP_DELETE: "OP_DELETE", OP_KILL_CURSORS: "OP_KILL_CURSORS", OP_COMMAND: "OP_COMMAND",
    OP_COMMANDREPLY: "OP_COMMANDREPLY", OP_COMPRESSED: "OP_COMPRESSED", OP_MSG: "OP_MSG",
}
_SKIPPED_OPCODES = frozenset((OP_COMMAND, OP_COMMANDREPLY))

# OP_MSG flag bits
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16
# OP_QUERY flag bit
QUERY_EXHAUST = 1 << 6
# OP_REPLY flag bits
REPLY_CURSOR_NOT_FOUND = 1 << 0
REPLY_QUERY_FAILURE = 1 << 1

HEADER = struct.Struct("<iiii")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_REPLY = struct.Struct("<iqii")
_COMPRESSED = struct.Struct("<iiB")

NOTE_TOO_LARGE = "Message too large (%d bytes): not analysed"
# an awaitable hello (streaming heartbeats) or a tailable getMore is answered
# after up to maxAwaitTimeMS; any command may run for its maxTimeMS
_WAIT_KEYS = frozenset(("maxAwaitTimeMS", "maxTimeMS"))
_MAX_WAIT_MS = 3_600_000

CODEC = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO,
                     unicode_decode_error_handler="replace")
RAW_CODEC = CodecOptions(document_class=RawBSONDocument,
                         datetime_conversion=DatetimeConversion.DATETIME_AUTO,
                         unicode_decode_error_handler="replace")

# Packetbeat's table of commands (mongodb_structs.go ``databaseCommands``),
# compared case-insensitively: the method of a legacy OP_QUERY on ``db.$cmd``.
DATABASE_COMMANDS = frozenset(c.lower() for c in (
    "getLastError", "connPoolSync", "top", "dropIndexes", "explain", "grantRolesToRole", "dropRole",
    "dropAllRolesFromDatabase", "listCommands", "replSetReconfig", "replSetFresh", "writebacklisten",
    "setParameter", "update", "replSetGetStatus", "find", "resync", "appendOplogNote",
    "revokeRolesFromRole", "compact", "createUser", "replSetElect", "getPrevError", "serverStatus",
    "getShardVersion", "updateRole", "replSetFreeze", "getCmdLineOpts", "applyOps", "count",
    "aggregate", "copydbsaslstart", "distinct", "repairDatabase", "profile", "replSetStepDown",
    "findAndModify", "_transferMods", "filemd5", "forceerror", "getnonce", "saslContinue", "clone",
    "saslStart", "_getUserCacheGeneration", "_recvChunkCommit", "whatsmyuri", "repairCursor",
    "validate", "dbHash", "planCacheListFilters", "touch", "mergeChunks", "cursorInfo",
    "_recvChunkStart", "unsetSharding", "revokePrivilegesFromRole", "logout", "group",
    "shardConnPoolStats", "listDatabases", "buildInfo", "availableQueryOptions", "_isSelf",
    "splitVector", "geoSearch", "dbStats", "connectionStatus", "currentOpCtx", "copydb", "insert",
    "reIndex", "moveChunk", "cleanupOrphaned", "driverOIDTest", "isMaster", "getParameter",
    "replSetHeartbeat", "ping", "listIndexes", "dropUser", "dropDatabase", "dataSize",
    "convertToCapped", "planCacheSetFilter", "usersInfo", "grantPrivilegesToRole", "handshake",
    "_mergeAuthzCollections", "mapreduce.shardedfinish", "_recvChunkAbort", "authSchemaUpgrade",
    "replSetGetConfig", "replSetSyncFrom", "collStats", "replSetMaintenance", "createRole",
    "copydbgetnonce", "cloneCollectionAsCapped", "_migrateClone", "parallelCollectionScan",
    "connPoolStats", "revokeRolesFromUser", "authenticate", "create", "shutdown",
    "invalidateUserCache", "shardingState", "renameCollection", "replSetGetRBID", "splitChunk",
    "createIndexes", "updateUser", "cloneCollection", "logRotate", "planCacheListPlans", "medianKey",
    "hostInfo", "geoNear", "fsync", "checkShardingIndex", "getShardMap", "planCacheClear",
    "listCollections", "collMod", "_recvChunkStatus", "planCacheListQueryShapes", "delete",
    "planCacheClearFilters", "mapReduce", "rolesInfo", "eval", "drop", "grantRolesToUser",
    "resetError", "getLog", "dropAllUsersFromDatabase", "diagLogging", "replSetUpdatePosition",
    "setShardVersion", "replSetInitiate",
))


class DocSequence(list):
    """An OP_MSG kind-1 section: raw BSON documents, decoded when needed."""
    __slots__ = ()


class ParseError(_BaseParseError):
    """The bytes are not MongoDB wire protocol. ``messages`` holds the
    messages that were complete before the error was found."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


class MongodbMessage:
    """One message of either direction (a plain class rather than a dataclass:
    compiled, it is an extension type whose construction costs no Python
    ``__init__``)."""
    __slots__ = ("ts", "is_request", "size", "notes", "request_id", "response_to", "opcode",
                 "compressor", "flags", "method", "resource", "_params", "_body", "_seqs", "event", "documents",
                 "error", "expects_response", "more_to_come", "exhaust", "wait_ns")

    def __init__(self, ts: int, is_request: bool, size: int = 0, notes: list | None = None,
                 request_id: int = 0, response_to: int = 0, opcode: int = 0, compressor: int = -1):
        self.ts = ts                              # ns, packet where the message began
        self.is_request = is_request
        self.size = size                          # messageLength (bytes on the wire)
        self.notes = notes if notes is not None else []
        self.request_id = request_id
        self.response_to = response_to
        self.opcode = opcode                      # the opcode read (the original one under OP_COMPRESSED)
        self.compressor = compressor              # OP_COMPRESSED compressorId, -1: not compressed
        self.flags = 0
        self.method = ""
        self.resource = ""
        self._params = None                       # request: command or query without the command key
        self._body = None                         # OP_MSG command read in place: its body and
        self._seqs = None                         # sequences, decoded when params is asked for
        self.event = {}                           # the ``mongodb.*`` fields
        self.documents = []                       # raw BSON (bytes) or decoded documents
        self.error = ""
        self.expects_response = False             # a request a reply will answer
        self.more_to_come = False                 # reply: another reply follows (exhaust)
        self.exhaust = False                      # request asked for exhaust replies
        self.wait_ns = 0                          # request: the server may take this long on purpose
                                                  # (maxAwaitTimeMS / maxTimeMS), on top of the timeout

    @property
    def params(self):
        """A request's parameters (the command or query without the command
        key); an OP_MSG command read in place is decoded here, once."""
        if self._body is not None:
            self._params = command_params(self._body, self._seqs)
            self._body = self._seqs = None
        return self._params

    @params.setter
    def params(self, value) -> None:
        self._params = value
        self._body = self._seqs = None

    def continuation(self, ts: int) -> "MongodbMessage":
        """The same request kept for the next exhaust reply: its start ``ts``,
        no bytes, no notes (other fields shared, as ``dataclasses.replace``)."""
        m = MongodbMessage(ts, self.is_request, 0, [], self.request_id, self.response_to,
                           self.opcode, self.compressor)
        m.flags = self.flags
        m.method = self.method
        m.resource = self.resource
        m._params = self._params
        m._body = self._body
        m._seqs = self._seqs
        m.event = self.event
        m.documents = self.documents
        m.error = self.error
        m.expects_response = self.expects_response
        m.more_to_come = self.more_to_come
        m.exhaust = self.exhaust
        m.wait_ns = self.wait_ns
        return m

    def __repr__(self) -> str:
        return "MongodbMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def _new_message(ts, size: int, request_id: int, response_to: int, opcode: int,
                 compressor: int) -> MongodbMessage:
    """``MongodbMessage(ts, True, size, [], request_id, response_to, opcode,
    compressor)`` without the call of its ``__init__`` (compiled: the
    extension type's fields set directly)."""
    m = MongodbMessage.__new__(MongodbMessage)
    m.ts = ts
    m.is_request = True
    m.size = size
    m.notes = []
    m.request_id = request_id
    m.response_to = response_to
    m.opcode = opcode
    m.compressor = compressor
    m.flags = 0
    m.method = ""
    m.resource = ""
    m._params = None
    m._body = None
    m._seqs = None
    m.event = {}
    m.documents = []
    m.error = ""
    m.expects_response = False
    m.more_to_come = False
    m.exhaust = False
    m.wait_ns = 0
    return m


def _cstr(data: bytes, off: int, end: int) -> tuple[str, int]:
    z = data.find(b"\0", off, end)
    if z < 0:
        raise ParseError("cstring not finished")
    return data[off:z].decode("utf-8", "replace"), z + 1


def _doc_bounds(data: bytes, off: int, end: int) -> int:
    """End offset of the BSON document at ``off``."""
    if off + 5 > end:
        raise ParseError("document out of bounds")
    n = _i32_c(data, off) if _COMPILED and type(data) is bytes and end <= len(data) else _I32.unpack_from(data, off)[0]
    stop = off + n
    if n < 5 or stop > end or data[stop - 1] != 0:
        raise ParseError("document out of bounds")
    return stop


# bson.decode is a Python wrapper that checks its options and calls this C
# function of the package (the same one when the C extension is missing)
_bson_to_dict = getattr(bson, "_bson_to_dict", None) or bson.decode


def decode(raw: bytes) -> dict:
    """A whole BSON document (ParseError on bad BSON)."""
    try:
        return _bson_to_dict(raw, CODEC)
    except Exception as e:             # the bson package raises InvalidBSON and others
        raise ParseError("invalid BSON: %s" % e) from None


_SMALL_DOC = 1024


def _top(raw: bytes) -> dict:
    """A document's top level. Small documents are decoded whole (the C
    decoder is cheapest there); larger ones keep their nested documents raw
    (``RawBSONDocument``), so a big batch of results is not decoded."""
    try:
        if len(raw) <= _SMALL_DOC:
            return _bson_to_dict(raw, CODEC)
        return dict(RawBSONDocument(raw, RAW_CODEC).items())
    except Exception as e:
        raise ParseError("invalid BSON: %s" % e) from None


# bytes after the name of a top-level BSON element of a fixed-size type, by type
# (-1: sized by its value, or not a type)
_FIXED_SIZE = bytes(255 if t not in (1, 6, 7, 8, 9, 10, 16, 17, 18, 19, 0x7F, 0xFF) else
                    {1: 8, 6: 0, 7: 12, 8: 1, 9: 8, 10: 0, 16: 4, 17: 8, 18: 8, 19: 16,
                     0x7F: 0, 0xFF: 0}[t] for t in range(256))
_LSID = b"\x03lsid\x00"


def _lsid_at(body: bytes) -> int:
    """Where the top-level ``lsid`` document of an OP_MSG command body starts,
    when it has one that is not its first element; else -1 (also when the
    elements before it do not read as BSON: the whole body is then decoded,
    and refused, as before). The logical session id (a UUID ``Binary``, whose
    Python object is costly to make) is then not decoded: the session
    envelope is never written into an event."""
    p = body.find(_LSID, 5)
    if p < 0:
        return -1
    end = len(body) - 1
    pos = 4
    while pos < p:
        t = body[pos]
        z = body.find(b"\0", pos + 1, end)
        if z < 0:
            return -1
        q = z + 1
        f = _FIXED_SIZE[t]
        if f != 255:
            q += f
        else:
            if q + 4 > end:
                return -1
            n = _I32.unpack_from(body, q)[0]
            if n < 0:
                return -1
            if t == 2 or t == 13 or t == 14:
                q += 4 + n
            elif t == 3 or t == 4 or t == 15:
                q += n
            elif t == 5:
                q += 5 + n
            elif t == 12:
                q += 16 + n
            else:
                return -1                     # regex (11) or not a type: not looked into
        pos = q
    if pos != p:
        return -1
    q = p + 6
    if q + 4 > end:
        return -1
    n = _I32.unpack_from(body, q)[0]
    stop = q + n
    if n < 5 or stop > end or body[stop - 1] != 0:
        return -1
    return p


# _elem_end / _reply_scan: nesting looked into before giving up (the decoder is then asked)
_MAX_DEPTH = 32
_F64 = struct.Struct("<d")
_ERROR_NAMES = frozenset((b"$err", b"writeErrors", b"writeConcernError"))


def _elem_end(b: bytes, pos: int, end: int, depth: int) -> int:
    """Where the BSON element at ``pos`` (its type byte) of a document whose
    terminating NUL is at ``end`` ends; -1 when not sure that bson's decoder
    would accept it. Only common types are read (double, string, document,
    array, binary but the old subtype 2, ObjectId, bool, datetime, null,
    int32, timestamp, int64), each with every check the decoder makes on it,
    nested documents and arrays whole; anything else is -1."""
    t = b[pos]
    z = b.find(b"\0", pos + 1, end)
    if z < 0:
        return -1
    q = z + 1
    if t == 1 or t == 9 or t == 17 or t == 18:
        n = 8
    elif t == 16:
        n = 4
    elif t == 7:
        n = 12
    elif t == 10:
        n = 0
    elif t == 8:
        if q >= end or b[q] > 1:
            return -1
        n = 1
    elif t == 2:
        if q + 4 > end:
            return -1
        n = _I32.unpack_from(b, q)[0]
        if n < 1 or q + 4 + n > end or b[q + 3 + n] != 0:
            return -1
        n += 4
    elif t == 3 or t == 4:
        if depth >= _MAX_DEPTH or q + 5 > end:
            return -1
        n = _I32.unpack_from(b, q)[0]
        stop = q + n - 1
        if n < 5 or q + n > end or b[stop] != 0:
            return -1
        p = q + 4
        while p < stop:
            p = _elem_end(b, p, stop, depth + 1)
            if p < 0:
                return -1
    elif t == 5:
        if q + 5 > end:
            return -1
        n = _I32.unpack_from(b, q)[0]
        if n < 0 or b[q + 4] == 2:
            return -1
        n += 5
    else:
        return -1
    q += n
    return q if q <= end else -1


def _reply_scan(body: bytes):
    """``(cursor id or None, batch length or -1)`` of an OP_MSG reply body
    read in place, without decoding it, when it is the common answer:
    ``ok`` equal to 1, none of ``$err`` / ``writeErrors`` /
    ``writeConcernError``, every element read by :func:`_elem_end` (so the
    decoder would accept the body; its error is then ""). None: not sure,
    the body is decoded as before. Duplicate names: the last one counts, as
    in the decoded dict. Compiled, parser.pxd's ``_reply_scan_c`` takes the
    same steps."""
    end = len(body) - 1
    if end < 4 or end >= _SMALL_DOC or _I32.unpack_from(body, 0)[0] != end + 1 or body[end] != 0:
        return None
    ok = False
    cur = -1
    pos = 4
    while pos < end:
        nxt = _elem_end(body, pos, end, 0)
        if nxt < 0:
            return None
        t = body[pos]
        z = body.find(b"\0", pos + 1, end)
        name = body[pos + 1:z]
        q = z + 1
        if name == b"ok":
            ok = ((t == 1 and _F64.unpack_from(body, q)[0] == 1.0) or (t == 16 and _I32.unpack_from(body, q)[0] == 1)
                  or (t == 18 and _I64.unpack_from(body, q)[0] == 1) or (t == 8 and body[q] == 1))
        elif name == b"cursor":
            cur = q if t == 3 else -2
        elif name in _ERROR_NAMES:
            return None
        pos = nxt
    if not ok or cur == -2:
        return None
    cid = None
    nret = -1
    if cur >= 0:
        stop = cur + _I32.unpack_from(body, cur)[0] - 1
        first = after = -1
        p = cur + 4
        while p < stop:
            nxt = _elem_end(body, p, stop, 1)
            t = body[p]
            z = body.find(b"\0", p + 1, stop)
            name = body[p + 1:z]
            if name == b"id":
                if t == 16:
                    cid = _I32.unpack_from(body, z + 1)[0]
                elif t == 18:
                    cid = _I64.unpack_from(body, z + 1)[0]
                elif t == 10:
                    cid = None
                else:
                    return None
            elif name == b"firstBatch":
                first = p
            elif name == b"nextBatch":
                after = p
            elif name[:1] == b"$":
                return None                    # a DBRef would not be a cursor document
            p = nxt
        if first >= 0 and body[first] == 10:
            first = -1                         # null: cursor.get("firstBatch") is None
        if first < 0 and after >= 0 and body[after] != 10:
            first = after
        if first >= 0 and body[first] == 4:
            q = body.find(b"\0", first + 1, stop) + 1
            stop = q + _I32.unpack_from(body, q)[0] - 1
            p = q + 4
            nret = 0
            while p < stop:
                p = _elem_end(body, p, stop, 2)
                nret += 1
    return cid, nret


def _decode_command(body: bytes) -> dict:
    """An OP_MSG command body decoded, its top-level ``lsid`` (the session id)
    cut out before decoding and kept as its raw bytes: see _lsid_at."""
    p = _lsid_at_c(body, _FIXED_SIZE) if _COMPILED else _lsid_at(body)
    if p < 0:
        return decode(body)
    stop = p + 6 + _I32.unpack_from(body, p + 6)[0]
    cmd = decode(_I32.pack(len(body) - (stop - p)) + body[4:p] + body[stop:])
    cmd["lsid"] = body[p + 6:stop]      # kept raw: the session envelope is never shown
    return cmd


def _params_of(cmd: dict, name: str, seqs) -> dict:
    """A command's parameters: the decoded body without the command's own
    key, the kind-1 sequences (raw: decoded when an event needs their text)
    under their identifiers."""
    del cmd[name]
    for ident, docs in seqs:
        cmd[ident] = docs
    return cmd


def command_params(body: bytes, seqs) -> dict:
    """The parameters of a command whose body was read in place (_cmd_scan:
    the decoder accepts it, and it is not empty)."""
    cmd = _decode_command(body)
    return _params_of(cmd, next(iter(cmd)), seqs)


# the top-level fields of a command that _msg_command reads besides the first
_CMD_KEYS = frozenset((b"$db", b"collection", b"batchSize", b"maxAwaitTimeMS", b"maxTimeMS", b"skip", b"limit"))


class _Other:
    """A value _cmd_scan does not read (a document, an array, a binary ...):
    neither a string nor a number for _msg_command, as the decoded one."""
    __slots__ = ()


_OTHER = _Other()


def _scalar(b: bytes, t: int, q: int):
    """The value of type ``t`` at ``q`` (an element _elem_end accepted) as
    the decoder gives it where _msg_command looks at it: strings, numbers,
    booleans and null; anything else :data:`_OTHER`."""
    if t == 2:
        return b[q + 4:q + 3 + _I32.unpack_from(b, q)[0]].decode("utf-8", "replace")
    if t == 16:
        return _I32.unpack_from(b, q)[0]
    if t == 18:
        return _I64.unpack_from(b, q)[0]
    if t == 1:
        return _F64.unpack_from(b, q)[0]
    if t == 8:
        return b[q] == 1
    if t == 10:
        return None
    return _OTHER


def _cmd_scan(body: bytes):
    """``(command name, its value, {field: value})`` of an OP_MSG command
    body read in place, the fields being those of :data:`_CMD_KEYS` it holds,
    when every element reads by :func:`_elem_end` (so the decoder accepts the
    body) and it is not empty; None: not sure, the body is decoded at once.
    Duplicate names: the last value counts, as in the decoded dict. Compiled,
    parser.pxd's ``_cmd_scan_c`` takes the same steps."""
    end = len(body) - 1
    if end < 5 or _I32.unpack_from(body, 0)[0] != end + 1 or body[end] != 0:
        return None
    first = None
    val = None
    fields: dict = {}
    pos = 4
    while pos < end:
        nxt = _elem_end(body, pos, end, 0)
        if nxt < 0:
            return None
        t = body[pos]
        z = body.find(b"\0", pos + 1, end)
        key = body[pos + 1:z]
        if first is None:
            first = key
            val = _scalar(body, t, z + 1)
        elif key == first:
            val = _scalar(body, t, z + 1)
        if key in _CMD_KEYS:
            fields[key.decode("ascii")] = _scalar(body, t, z + 1)
        pos = nxt
    if first is None:
        return None
    return first.decode("utf-8", "replace"), val, fields


def _read_doc(data: bytes, off: int, end: int) -> tuple[dict, int]:
    stop = _doc_bounds(data, off, end)
    return decode(data[off:stop]), stop


def _u32(v: int) -> int:
    return v & 0xFFFFFFFF


def _is_cmd_value(v) -> bool:
    # Packetbeat: a string, or a float64 equal to 1 (mgo decodes int32 as int)
    return isinstance(v, str) or (type(v) is float and v == 1)


def _num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v)


def _ok_zero(doc) -> bool:
    ok = doc.get("ok", 1)
    return not isinstance(ok, str) and ok is not None and not ok


_ERROR_KEYS = frozenset(("$err", "writeErrors", "writeConcernError"))


def reply_error(doc, legacy: bool) -> str:
    """The error a reply document carries, or ""."""
    if doc.get("ok") == 1 and _ERROR_KEYS.isdisjoint(doc):
        return ""                      # the common answer
    err = ""
    try:
        if "$err" in doc:
            err = doc2str(doc["$err"])
        # in an OP_REPLY the first document may be a user's (a find result):
        # there ``ok: 0`` counts only with the ``errmsg`` of a command reply
        if _ok_zero(doc) and (not legacy or isinstance(doc.get("errmsg"), str)):
            msg = doc.get("errmsg")
            if isinstance(msg, str) and msg:
                err = msg
            elif not err:
                name = doc.get("codeName")
                err = name if isinstance(name, str) and name else "ok: 0"
        we = doc.get("writeErrors")
        if we is not None and (legacy or we):
            err = doc2str(we)
        if not err:
            wce = doc.get("writeConcernError")
            if wce is not None:
                err = doc2str(wce)
    except ParseError:
        raise
    except Exception as e:             # nested raw documents decode here
        raise ParseError("invalid BSON: %s" % e) from None
    return err


def _snappy_length(data: bytes) -> int:
    """The uncompressed length a raw snappy block announces (its varint)."""
    n = shift = 0
    for i in range(min(5, len(data))):
        b = data[i]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n
        shift += 7
    raise ParseError("bad snappy length")


def decompress(compressor: int, data: bytes, size: int, limit: int) -> bytes:
    if size < 0 or size > limit:
        raise ParseError("uncompressed size %d out of bounds" % size)
    try:
        if compressor == 0:
            out = data
        elif compressor == 1:
            if _cramjam is None:
                raise ParseError("snappy is not available")
            if _snappy_length(data) != size:
                raise ParseError("snappy length does not match uncompressedSize")
            out = bytes(_cramjam.snappy.decompress_raw(data))
        elif compressor == 2:
            d = zlib.decompressobj()
            out = d.decompress(data, size + 1)
        elif compressor == 3:
            if _ZSTD is None:
                raise ParseError("zstd is not available")
            # a frame that states its size is decompressed to that size,
            # whatever max_output_size says: refuse a size over the announced one
            if _zstd.frame_content_size(data) > size:
                raise ParseError("zstd frame larger than uncompressedSize")
            out = _ZSTD.decompress(data, max_output_size=size + 1)
        else:
            raise ParseError("unknown compressor %d" % compressor)
    except ParseError:
        raise
    except Exception as e:             # zlib.error, zstd.ZstdError, cramjam errors
        raise ParseError("cannot decompress: %s" % e) from None
    if len(out) != size:
        raise ParseError("decompressed %d bytes, announced %d" % (len(out), size))
    return out


def _probe():
    pass


# True when this module runs compiled (setup.py): _lsid_at is then parser.pxd's C version.
_COMPILED = type(_probe).__name__ != "function"


class MongodbParser:
    """Sans-I/O MongoDB parser for one direction of a connection."""

    __slots__ = ("max_message_size", "_buf", "_ts", "_skip", "_pending",
                 "skipped_opcodes", "too_large", "compressed")

    def __init__(self, max_message_size: int = 10 * 1024 * 1024):
        self.max_message_size = max_message_size
        self.skipped_opcodes = 0      # OP_COMMAND / OP_COMMANDREPLY messages passed over
        self.too_large = 0            # messages skipped for their size
        self.compressed = 0           # OP_COMPRESSED messages read
        self.reset()

    def reset(self) -> None:
        self._buf = bytearray()
        self._ts: int | None = None
        self._skip = 0                # bytes of a skipped message still to come
        self._pending: list[MongodbMessage] = []   # made by a gap, for drain()

    def feed(self, data, ts: int) -> list[MongodbMessage]:
        out: list[MongodbMessage] = []
        if not data:
            return out
        if self._skip:
            n = len(data)
            if n <= self._skip:
                self._skip -= n
                return out
            data = data[self._skip:]
            self._skip = 0
        buf = self._buf
        if not buf:
            self._ts = ts
            data = bytes(data)
            n = len(data)
            if n >= 16 and (_i32_c(data, 0) if _COMPILED else _I32.unpack_from(data, 0)[0]) == n \
                    <= self.max_message_size:
                # the common case: the segment is one whole message
                opcode = _i32_c(data, 12) if _COMPILED else _I32.unpack_from(data, 12)[0]
                if opcode in OPCODE_NAMES and opcode != OP_RESERVED and opcode not in _SKIPPED_OPCODES:
                    return [self.parse_message(data, ts)]
        buf += data
        pos = 0
        n = len(buf)
        try:
            while n - pos >= 4:
                length = _I32.unpack_from(buf, pos)[0]
                if length < 16:
                    raise ParseError("message length %d" % length)
                if n - pos < 16:
                    break
                opcode = _I32.unpack_from(buf, pos + 12)[0]
                if opcode not in OPCODE_NAMES or opcode == OP_RESERVED:
                    raise ParseError("unknown opcode %d" % opcode)
                if length > self.max_message_size:
                    self.too_large += 1
                    out.append(self._skeleton(buf, pos, length, NOTE_TOO_LARGE % length))
                    if n - pos >= length:
                        pos += length
                        self._ts = ts
                        continue
                    self._skip = length - (n - pos)
                    pos = n
                    break
                if n - pos < length:
                    break
                if opcode in _SKIPPED_OPCODES:
                    self.skipped_opcodes += 1
                else:
                    out.append(self.parse_message(bytes(buf[pos:pos + length]), self._ts))
                pos += length
                self._ts = ts
        except ParseError as e:
            e.messages = out
            raise
        if pos:
            del buf[:pos]
        return out

    def _skeleton(self, buf, pos: int, length: int, note: str) -> MongodbMessage:
        """What a header says of a message whose body is not read."""
        _, rid, rto, opcode = HEADER.unpack_from(buf, pos)
        is_reply = opcode == OP_REPLY or (rto != 0 and opcode in (OP_MSG, OP_COMPRESSED))
        m = MongodbMessage(self._ts, not is_reply, length, [note], rid, rto, opcode)
        more = False
        if opcode == OP_MSG and len(buf) - pos >= 20:
            m.flags = _U32.unpack_from(buf, pos + 16)[0]
            more = bool(m.flags & MORE_TO_COME)
        if is_reply:
            m.more_to_come = more
        else:
            m.expects_response = opcode in (OP_QUERY, OP_GET_MORE, OP_COMPRESSED) or (opcode == OP_MSG and not more)
        return m

    # ------------------------------------------------------------------ messages

    def parse_message(self, data: bytes, ts) -> MongodbMessage:
        """One whole message (header included)."""
        if _COMPILED and type(data) is bytes and len(data) >= 16:
            length, rid, rto, opcode = _i32_c(data, 0), _i32_c(data, 4), _i32_c(data, 8), _i32_c(data, 12)
        else:
            length, rid, rto, opcode = HEADER.unpack_from(data, 0)
        compressor = -1
        flags = 0
        end = len(data)
        off = 16
        if opcode == OP_COMPRESSED:
            if end < 25:
                raise ParseError("OP_COMPRESSED too short")
            opcode, size, compressor = _COMPRESSED.unpack_from(data, 16)
            if opcode not in OPCODE_NAMES or opcode in (OP_COMPRESSED, OP_RESERVED):
                raise ParseError("compressed opcode %d" % opcode)
            data = decompress(compressor, data[25:], size, self.max_message_size)
            end = len(data)
            off = 0
            self.compressed += 1
        m = _new_message(ts, length, rid, rto, opcode, compressor)
        if opcode == OP_MSG:
            self._op_msg(m, data, off, end)
        elif opcode == OP_REPLY:
            self._op_reply(m, data, off, end)
        elif opcode == OP_QUERY:
            self._op_query(m, data, off, end)
        elif opcode == OP_GET_MORE:
            m.method = "getMore"
            m.expects_response = True
            if off + 4 > end:
                raise ParseError("OP_GET_MORE too short")
            m.event["fullCollectionName"], off = _cstr(data, off + 4, end)
            if off + 12 > end:
                raise ParseError("OP_GET_MORE too short")
            m.event["numberToReturn"] = _u32(_I32.unpack_from(data, off)[0])
            m.event["cursorId"] = _I64.unpack_from(data, off + 4)[0]
        elif opcode == OP_INSERT:
            m.method = "insert"
            if off + 4 > end:
                raise ParseError("OP_INSERT too short")
            m.event["fullCollectionName"], off = _cstr(data, off + 4, end)
        elif opcode == OP_UPDATE or opcode == OP_DELETE:
            m.method = "update" if opcode == OP_UPDATE else "delete"
            if off + 4 > end:
                raise ParseError("OP_UPDATE/OP_DELETE too short")
            m.event["fullCollectionName"], off = _cstr(data, off + 4, end)
            if off + 4 > end:
                raise ParseError("OP_UPDATE/OP_DELETE too short")
            doc, off = _read_doc(data, off + 4, end)
            m.event["selector"] = doc2str(doc)
            if opcode == OP_UPDATE:
                doc, off = _read_doc(data, off, end)
                m.event["update"] = doc2str(doc)
        elif opcode == OP_KILL_CURSORS:
            m.method = "killCursors"
        elif opcode == OP_MSG_LEGACY:
            m.method = "msg"
            m.event["message"], off = _cstr(data, off, end)
        return m

    def _op_query(self, m: MongodbMessage, data: bytes, off: int, end: int) -> None:
        m.expects_response = True
        if off + 4 > end:
            raise ParseError("OP_QUERY too short")
        m.flags = _I32.unpack_from(data, off)[0]
        m.exhaust = bool(m.flags & QUERY_EXHAUST)
        ns, off = _cstr(data, off + 4, end)
        m.event["fullCollectionName"] = ns
        if off + 8 > end:
            raise ParseError("OP_QUERY too short")
        m.event["numberToSkip"] = _u32(_I32.unpack_from(data, off)[0])
        m.event["numberToReturn"] = _u32(_I32.unpack_from(data, off + 4)[0])
        query, off = _read_doc(data, off + 8, end)
        if off < end:
            sel, off = _read_doc(data, off, end)
            m.event["returnFieldsSelector"] = doc2str(sel)
        if ns.endswith(".$cmd"):
            m.method = "otherCommand"
            m.resource = ns
            for key in list(query):
                val = query[key]
                if key.lower() in DATABASE_COMMANDS and _is_cmd_value(val):
                    if isinstance(val, str):
                        m.resource = ns[:-4] + val
                    del query[key]
                    m.method = key
                    break
        else:
            m.method = "find"
            m.resource = ns
        m.params = query

    def _op_reply(self, m: MongodbMessage, data: bytes, off: int, end: int) -> None:
        m.is_request = False
        if off + 20 > end:
            raise ParseError("OP_REPLY too short")
        flags, cursor, start, count = _REPLY.unpack_from(data, off)
        m.flags = flags
        m.event["cursorId"] = cursor
        m.event["startingFrom"] = _u32(start)
        m.event["numberReturned"] = _u32(count)
        off += 20
        docs = m.documents
        count = _u32(count)
        while off < end and len(docs) < count:
            stop = _doc_bounds(data, off, end)
            docs.append(data[off:stop])
            off = stop
        if docs:
            m.error = reply_error(_top(docs[0]), True)
        if not m.error and flags & REPLY_CURSOR_NOT_FOUND:
            m.error = "CursorNotFound"
        m.more_to_come = cursor != 0

    def _op_msg(self, m: MongodbMessage, data: bytes, off: int, end: int) -> None:
        if off + 4 > end:
            raise ParseError("OP_MSG too short")
        flags = m.flags = _U32.unpack_from(data, off)[0]
        off += 4
        if flags & CHECKSUM_PRESENT:
            end -= 4
        body = None
        seqs: list[tuple[str, list[bytes]]] = []
        while off < end:
            kind = data[off]
            off += 1
            if kind == 0:
                if body is not None:
                    raise ParseError("OP_MSG with two bodies")
                stop = _doc_bounds(data, off, end)
                body = data[off:stop]
                off = stop
            elif kind == 1:
                if off + 4 > end:
                    raise ParseError("OP_MSG section out of bounds")
                size = _I32.unpack_from(data, off)[0]
                sec_end = off + size
                if size < 5 or sec_end > end:
                    raise ParseError("OP_MSG section out of bounds")
                ident, p = _cstr(data, off + 4, sec_end)
                docs = DocSequence()
                while p < sec_end:
                    stop = _doc_bounds(data, p, sec_end)
                    docs.append(data[p:stop])
                    p = stop
                seqs.append((ident, docs))
                off = sec_end
            else:
                raise ParseError("OP_MSG section kind %d" % kind)
        if body is None:
            raise ParseError("OP_MSG without a body")
        m.more_to_come = bool(flags & MORE_TO_COME)
        if m.response_to != 0:
            self._msg_reply(m, body, seqs)
        else:
            self._msg_command(m, body, seqs)

    def _msg_command(self, m: MongodbMessage, body: bytes, seqs) -> None:
        m.exhaust = bool(m.flags & EXHAUST_ALLOWED)
        m.expects_response = not m.more_to_come
        # a body read in place (see _cmd_scan) is decoded only if its parameters are asked for
        scan = (_cmd_scan_c(body, _OTHER) if _COMPILED else _cmd_scan(body)) if type(body) is bytes else None
        if scan is not None:
            name, val, cmd = scan
            m._body = body
            m._seqs = seqs
        else:
            cmd = _decode_command(body)
            if not cmd:
                m.method = ""
                m.params = {}
                return
            name, val = next(iter(cmd.items()))
        m.method = name
        db = cmd.get("$db")
        db = db if isinstance(db, str) else ""
        coll = ""
        if name == "getMore":
            c = cmd.get("collection")
            coll = c if isinstance(c, str) else ""
            cid = _num(val)
            if cid is not None:
                m.event["cursorId"] = cid
            n = _num(cmd.get("batchSize"))
            if n is not None:
                m.event["numberToReturn"] = n
        elif isinstance(val, str):
            coll = val
        if not _WAIT_KEYS.isdisjoint(cmd):
            for key in _WAIT_KEYS:
                n = _num(cmd.get(key))
                if n is not None and n > 0:
                    m.wait_ns = max(m.wait_ns, min(n, _MAX_WAIT_MS) * 1_000_000)
        if name == "find":
            n = _num(cmd.get("skip"))
            if n is not None:
                m.event["numberToSkip"] = n
            n = _num(cmd.get("limit"))
            if n is not None:
                m.event["numberToReturn"] = n
        if db:
            m.resource = db + "." + (coll or "$cmd")
        else:
            m.resource = coll
        if scan is None:
            m.params = _params_of(cmd, name, seqs)

    def _msg_reply(self, m: MongodbMessage, body: bytes, seqs) -> None:
        m.is_request = False
        # the common answer is read in place (no decoding: see _reply_scan)
        scan = (_reply_scan_c(body) if _COMPILED else _reply_scan(body)) if type(body) is bytes else None
        if scan is not None:
            m.error = ""
            cid, nret = scan
            if cid is not None:
                m.event["cursorId"] = cid
            if nret >= 0:
                m.event["numberReturned"] = nret
        else:
            top = _top(body)
            m.error = reply_error(top, False)
            cur = top.get("cursor")
            if cur is not None and hasattr(cur, "get"):
                try:
                    cid = _num(cur.get("id"))
                    if cid is not None:
                        m.event["cursorId"] = cid
                    batch = cur.get("firstBatch")
                    if batch is None:
                        batch = cur.get("nextBatch")
                    if isinstance(batch, list):
                        m.event["numberReturned"] = len(batch)
                except Exception as e:
                    raise ParseError("invalid BSON: %s" % e) from None
        m.documents.append(body)
        for _ident, docs in seqs:
            m.documents.extend(docs)

    # ------------------------------------------------------------------ stream events

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. Inside a message whose header was read, that
        message is reported from its header (with a note) and the rest of it
        skipped; elsewhere the buffer is dropped and parsing restarts at the
        next segment that starts with a valid header."""
        buf = self._buf
        if self._skip:
            if nbytes <= self._skip:
                self._skip -= nbytes
                return True
            self.reset()
            return True
        if len(buf) >= 16:
            length = _I32.unpack_from(buf, 0)[0]
            rest = length - len(buf)
            if 0 < rest and nbytes <= rest:
                m = self._skeleton(buf, 0, length, "")
                m.notes = [LOSS_NOTES[0 if m.is_request else 1]]
                self._pending.append(m)
                self._buf = bytearray()
                self._skip = rest - nbytes
                return True
        self._buf = bytearray()
        self._skip = 0
        return True

    def drain(self) -> list[MongodbMessage]:
        out, self._pending = self._pending, []
        return out

    def flush(self) -> list[MongodbMessage]:
        self.reset()
        return []
