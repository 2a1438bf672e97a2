"""Sans-I/O memcache parser: text and binary protocols, one parser per direction.

Specs: memcached ``doc/protocol.txt`` (text protocol) and "Memcache Binary
Protocol" (``BinaryProtocolRevamped``); Packetbeat 8.x
``packetbeat/protos/memcache/{parse,text,binary,commands,codes}.go`` for what
is reported and how.

Framing
-------
A message starts with its first byte: ``0x80`` (binary request) or ``0x81``
(binary response) selects the binary protocol, anything else the text
protocol (two bytes are needed before deciding, as Packetbeat does).

- Text: a command line ending in CRLF. The first word names the command;
  requests are lower case (``get``, ``set``...), responses upper case
  (``VALUE``, ``STORED``...) or a decimal number (incr/decr result). Storage
  requests (``set/add/replace/append/prepend/cas``) and ``VALUE`` responses
  carry ``<bytes>`` of data followed by CRLF. ``VALUE``/``STAT`` responses are
  single messages here; the correlator merges them up to ``END``.
- Binary: a 24-byte header (magic, opcode, key length, extras length, data
  type, vbucket/status, total body length, opaque, CAS), then extras, key and
  value. The value of counter, version and stat responses is read whole; any
  other value is streamed, keeping at most ``value_keep`` bytes.

A known text request whose arguments memcached refuses (``get`` without a
key, ``incr k abc``, ``set k 0 0 x``, an unknown ``slabs`` sub-command) is
still a message (``nargs``: the arguments that parsed), so that it pairs with
the ``ERROR`` / ``CLIENT_ERROR`` answer; as memcached, no data block is read
after such a storage line, and a data block not followed by CRLF is consumed
(<bytes> + 2) with a note. Only an unknown command word (without
``parse_unknown``), an empty line or a malformed response is a ParseError.

Data bytes are never buffered beyond what is kept, so a large value costs no
memory; a command line, or a binary header with its extras and key, may not
exceed ``max_buffer`` bytes (``ParseError``).

Correlation key (``trans.py``): text messages pair in order; binary messages
pair by (opaque, opcode); over UDP by the frame header's request id.

Every message's ``ts`` is the time of the packet where its first byte came.
The parser raises only :class:`ParseError`; messages completed before the
error travel in ``ParseError.messages``.
"""
from __future__ import annotations

import enum
import struct

from worker.plugin import ParseError as _BaseParseError

MAGIC_REQUEST = 0x80
MAGIC_RESPONSE = 0x81
HEADER_SIZE = 24
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1

DEFAULT_MAX_BUFFER = 10 * 1024 * 1024
NOTE_BAD_CHUNK = "data block not followed by CRLF (bad data chunk)"


class ParseError(_BaseParseError):
    """Bytes that are not memcache. ``messages`` holds the messages completed
    in the same ``feed`` call before the error."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


# What event.py writes for a text argument (Cmd.codes); 0: ``msg.value`` under
# the argument's name (delta, sleep_us, value, verbosity). The _A_ names are
# the same values as C ints when compiled (parser.pxd), for _text_args.
ARG_KEYS = _A_KEYS = 1
ARG_NOREPLY = _A_NOREPLY = 2
ARG_FLAGS = _A_FLAGS = 3
ARG_EXPTIME = _A_EXPTIME = 4
ARG_BYTES = _A_BYTES = 5
ARG_CAS = _A_CAS = 6
ARG_RAW = _A_RAW = 7
ARG_STAT = _A_STAT = 8
ARG_ERRMSG = _A_ERRMSG = 9
ARG_SOURCE_CLASS = _A_SOURCE_CLASS = 10
ARG_DEST_CLASS = _A_DEST_CLASS = 11
ARG_AUTOMOVE = _A_AUTOMOVE = 12
ARG_KEY_LIST = _A_KEY_LIST = 13     # "keys": the rest of the line (the event writes it as ARG_KEYS)
ARG_CODES = {"key": ARG_KEYS, "keys": ARG_KEY_LIST, "noreply": ARG_NOREPLY, "flags": ARG_FLAGS, "exptime": ARG_EXPTIME,
             "bytes": ARG_BYTES, "cas": ARG_CAS, "raw": ARG_RAW, "stat": ARG_STAT, "errmsg": ARG_ERRMSG,
             "source_class": ARG_SOURCE_CLASS, "dest_class": ARG_DEST_CLASS, "automove": ARG_AUTOMOVE}


class Cmd:
    """One command definition. ``name`` is what the event calls it, ``typ``
    its class (Load, Store, ...). ``args``: text arguments, or binary request
    extras; ``resp_args``: binary response extras. ``kind`` selects the body
    handling; ``sub`` holds the sub-commands of ``slabs``/``lru_crawler``.
    A plain class with slots (an extension type when compiled, parser.pxd:
    its fields are then read as struct members, once per message in the
    parser, the correlator and the event) that behaves as the NamedTuple it
    replaces: keyword or positional fields, repr, equality."""
    __slots__ = ("name", "typ", "args", "kind", "resp_args", "sub", "names", "codes", "optional")

    def __init__(self, name: str, typ: str, args: tuple = (), kind: str = "msg", resp_args: tuple = (),
                 sub: dict | None = None):
        self.name = name
        self.typ = typ
        self.args = args
        self.kind = kind
        self.resp_args = resp_args
        self.sub = sub
        # derived, for event.py: the text argument names without the "?" of
        # optional ones, and what the event writes for each (ARG_CODES)
        self.names = tuple([a[:-1] if a[-1:] == "?" else a for a in args])
        self.codes = tuple([ARG_CODES.get(a, 0) for a in self.names])
        self.optional = tuple([a[-1:] == "?" for a in args])

    def _fields(self) -> tuple:
        return (self.name, self.typ, self.args, self.kind, self.resp_args, self.sub)

    def __repr__(self) -> str:
        return "Cmd(name=%r, typ=%r, args=%r, kind=%r, resp_args=%r, sub=%r)" % self._fields()

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.name, self.typ, self.args, self.kind, self.resp_args))


# ------------------------------------------------------------------ text tables
# Argument names (parse and serialise, see event.py); a trailing "?" marks an
# optional argument.
_TEXT_STORE = ("key", "flags", "exptime", "bytes", "noreply?")


def _text_table() -> dict[bytes, Cmd]:
    t: dict[bytes, Cmd] = {}
    for n in ("get", "gets"):
        t[n.encode()] = Cmd(n, "Load", ("keys",))
    for n in ("set", "add", "replace", "append", "prepend"):
        t[n.encode()] = Cmd(n, "Store", _TEXT_STORE, "data")
    t[b"cas"] = Cmd("cas", "Store", ("key", "flags", "exptime", "bytes", "cas", "noreply?"), "data")
    for n in ("incr", "decr"):
        t[n.encode()] = Cmd(n, "Counter", ("key", "delta", "noreply?"))
    t[b"touch"] = Cmd("touch", "Store", ("key", "exptime", "noreply?"))
    t[b"delete"] = Cmd("delete", "Delete", ("key", "noreply?"))
    t[b"flush_all"] = Cmd("flush_all", "Delete", ("exptime?",))
    t[b"slabs"] = Cmd("slabs", "SlabCtrl", (), "sub", sub={
        b"reassign": Cmd("slabs reassign", "SlabCtrl", ("source_class", "dest_class")),
        b"automove": Cmd("slabs automove", "SlabCtrl", ("automove",)),
    })
    t[b"lru_crawler"] = Cmd("lru_crawler", "LRUCrawler", (), "sub", sub={
        b"enable": Cmd("lru_crawler enable", "LRUCrawler"),
        b"disable": Cmd("lru_crawler disable", "LRUCrawler"),
        b"sleep": Cmd("lru_crawler sleep", "LRUCrawler", ("sleep_us",)),
        b"tocrawl": Cmd("lru_crawler tocrawl", "LRUCrawler", ("value",)),
        b"crawl": Cmd("lru_crawler tocrawl", "LRUCrawler", ("raw",)),   # sic, as Packetbeat
    })
    t[b"stats"] = Cmd("stats", "Stats", ("raw",))
    t[b"verbosity"] = Cmd("verbosity", "Info", ("verbosity",))
    t[b"version"] = Cmd("version", "Info")
    t[b"quit"] = Cmd("quit", "Info", ("noreply?",))
    return t


def _text_responses() -> dict[bytes, Cmd]:
    t: dict[bytes, Cmd] = {
        b"VALUE": Cmd("VALUE", "Load", ("key", "flags", "bytes", "cas?"), "resp_data"),
        b"END": Cmd("END", "Load"),
        b"STAT": Cmd("STAT", "Stats", ("stat",)),
        b"VERSION": Cmd("VERSION", "Info"),
    }
    for n in ("STORED", "EXISTS", "TOUCHED", "DELETED", "OK"):
        t[n.encode()] = Cmd(n, "Success")
    for n in ("NOT_STORED", "NOT_FOUND", "ERROR"):
        t[n.encode()] = Cmd(n, "Fail")
    for n in ("CLIENT_ERROR", "SERVER_ERROR", "BUSY", "BADCLASS", "NOSPARE", "NOTFULL", "UNSAFE", "SAME"):
        t[n.encode()] = Cmd(n, "Fail", ("errmsg",))
    return t


TEXT_REQUESTS = _text_table()
TEXT_RESPONSES = _text_responses()
_STAT = TEXT_RESPONSES[b"STAT"]
COUNTER_RESPONSE = Cmd("<counter_op_res>", "Counter", (), "counter")
UNKNOWN_TEXT = Cmd("UNKNOWN", "UNKNOWN", (), "unknown")

# ---------------------------------------------------------------- binary tables
OPCODE_NAMES = {
    0x00: "Get", 0x01: "Set", 0x02: "Add", 0x03: "Replace", 0x04: "Delete",
    0x05: "Increment", 0x06: "Decrement", 0x07: "Quit", 0x08: "Flush", 0x09: "GetQ",
    0x0A: "No-op", 0x0B: "Version", 0x0C: "GetK", 0x0D: "GetKQ", 0x0E: "Append",
    0x0F: "Prepend", 0x10: "Stat", 0x11: "SetQ", 0x12: "AddQ", 0x13: "ReplaceQ",
    0x14: "DeleteQ", 0x15: "IncrementQ", 0x16: "DecrementQ", 0x17: "QuitQ",
    0x18: "FlushQ", 0x19: "AppendQ", 0x1A: "PrependQ", 0x1B: "Verbosity",
    0x1C: "Touch", 0x1D: "GAT", 0x1E: "GATQ", 0x20: "SASL list mechs",
    0x21: "SASL Auth", 0x22: "SASL Step", 0x23: "GatK", 0x24: "GatKQ",
    0x30: "RGet", 0x31: "RSet", 0x32: "RSetQ", 0x33: "RAppend", 0x34: "RAppendQ",
    0x35: "RPrepend", 0x36: "RPrependQ", 0x37: "RDelete", 0x38: "RDeleteQ",
    0x39: "RIncr", 0x3A: "RIncrQ", 0x3B: "RDecr", 0x3C: "RDecrQ",
    0x3D: "Set VBucket", 0x3E: "Get VBucket", 0x3F: "Del VBucket",
    0x40: "TAP Connect", 0x41: "TAP Mutation", 0x42: "TAP Delete", 0x43: "TAP Flush",
    0x44: "TAP Opaque", 0x45: "TAP VBucket Set", 0x46: "TAP Checkpoint Start",
    0x47: "TAP Checkpoint End",
}
QUIET_OPCODES = frozenset((0x09, 0x0D, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                           0x19, 0x1A, 0x1E, 0x24, 0x32, 0x34, 0x36, 0x38, 0x3A, 0x3C))
OPCODE_STAT = 0x10
OPCODE_QUITQ = 0x17

STATUS_NAMES = {
    0x00: "Success", 0x01: "Key not found", 0x02: "Key exists", 0x03: "Value too large",
    0x04: "Invalid arguments", 0x05: "Item not stored", 0x06: "Incr/Decr on non-numeric value.",
    0x07: "The vbucket belongs to another server", 0x20: "Authentication error",
    0x21: "Authentication continue", 0x81: "Unknown command", 0x82: "Out of memory",
    0x83: "Not supported", 0x84: "Internal error", 0x85: "Busy", 0x86: "Temporary failure",
}


def _binary_table() -> dict[int, Cmd]:
    t: dict[int, Cmd] = {}

    def put(codes, cmd):
        for c in codes:
            t[c] = cmd
    put((0x00, 0x0C, 0x0D, 0x09), Cmd("get", "Load", (), "data", ("flags",)))
    put((0x04, 0x14), Cmd("delete", "Delete", (), "data"))
    put((0x08, 0x18), Cmd("delete", "Delete", ("exptime",), "data"))      # flush, sic
    put((0x01, 0x11), Cmd("set", "Store", ("flags", "exptime"), "data"))
    put((0x02, 0x12), Cmd("add", "Store", ("flags", "exptime"), "data"))
    put((0x03, 0x13), Cmd("replace", "Store", ("flags", "exptime"), "data"))
    put((0x0E, 0x19), Cmd("append", "Store", (), "data"))
    put((0x0F, 0x1A), Cmd("prepend", "Store", (), "data"))
    put((0x0A,), Cmd("noop", "Info", (), "data"))
    put((0x05, 0x15), Cmd("incr", "Counter", ("delta", "initial", "exptime"), "counter"))
    put((0x06, 0x16), Cmd("decr", "Counter", ("delta", "initial", "exptime"), "counter"))
    put((0x07, 0x17), Cmd("quit", "Info", (), "data"))
    put((0x0B,), Cmd("version", "Info", (), "version"))
    put((0x1C,), Cmd("touch", "Store", ("exptime",), "data"))
    put((0x1B,), Cmd("verbosity", "Info", ("verbosity",), "data"))
    put((0x20,), Cmd("sasl_list", "Auth", (), "data"))
    put((0x21,), Cmd("sasl_auth", "Auth", (), "data"))
    put((0x22,), Cmd("sasl_step", "Auth", (), "data"))
    put((0x10,), Cmd("stats", "Stats", (), "stat", ("statsvalue",)))
    return t


BINARY_COMMANDS = _binary_table()
UNKNOWN_BINARY = Cmd("UNKNOWN", "UNKNOWN", (), "data")
_EXTRA_SIZE = {"flags": 4, "exptime": 4, "verbosity": 4, "delta": 8, "initial": 8, "statsvalue": 0}


class MemcacheMessage:
    """One message. A plain class with slots (an extension type when compiled,
    parser.pxd) that behaves as the ``@dataclass(slots=True, eq=True)`` it
    replaces: keyword or positional fields, repr, equality."""
    __slots__ = ("ts", "is_request", "is_binary", "cmd", "size", "notes", "command_line", "raw_args",
                 "noreply", "opcode", "status", "vbucket", "opaque", "is_quiet", "keys", "flags", "exptime",
                 "value", "value2", "ivalue", "ivalue2", "version", "error_msg", "data", "values", "bytes",
                 "bytes_lost", "count_values", "stats", "cas_unique", "is_cas", "is_complete", "nargs")

    def __init__(self, ts, is_request, is_binary, cmd, size=0, notes=None, command_line=b"", raw_args=b"",
                 noreply=False, opcode=0, status=0, vbucket=0, opaque=0, is_quiet=False, keys=None, flags=0,
                 exptime=0, value=0, value2=0, ivalue=0, ivalue2=0, version=None, error_msg=None, data=None,
                 values=None, bytes=0, bytes_lost=0, count_values=0, stats=None, cas_unique=0, is_cas=False,
                 is_complete=True, nargs=-1):
        self.ts = ts
        self.is_request = is_request
        self.is_binary = is_binary
        self.cmd = cmd
        self.size = size
        self.notes = notes if notes is not None else []
        self.command_line = command_line
        self.raw_args = raw_args
        self.noreply = noreply
        self.opcode = opcode
        self.status = status
        self.vbucket = vbucket
        self.opaque = opaque
        self.is_quiet = is_quiet
        self.keys = keys
        self.flags = flags
        self.exptime = exptime
        self.value = value
        self.value2 = value2
        self.ivalue = ivalue
        self.ivalue2 = ivalue2
        self.version = version
        self.error_msg = error_msg
        self.data = data  # the (last) value kept, text requests
        self.values = values  # values kept (maxvalues)
        self.bytes = bytes  # value byte count
        self.bytes_lost = bytes_lost
        self.count_values = count_values
        self.stats = stats  # [(name, value)]
        self.cas_unique = cas_unique
        self.is_cas = is_cas
        self.is_complete = is_complete  # False: VALUE/STAT waiting for more
        self.nargs = nargs  # text request rejected: arguments parsed (-1: all)

    def _values(self) -> tuple:
        return tuple([getattr(self, k) for k in MESSAGE_FIELDS])

    def __repr__(self) -> str:
        return "MemcacheMessage(%s)" % ", ".join("%s=%r" % kv for kv in zip(MESSAGE_FIELDS, self._values()))

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # as an unfrozen dataclass


MESSAGE_FIELDS = ("ts", "is_request", "is_binary", "cmd", "size", "notes", "command_line", "raw_args",
                  "noreply", "opcode", "status", "vbucket", "opaque", "is_quiet", "keys", "flags",
                  "exptime", "value", "value2", "ivalue", "ivalue2", "version", "error_msg", "data",
                  "values", "bytes", "bytes_lost", "count_values", "stats", "cas_unique", "is_cas",
                  "is_complete", "nargs")


def _message(ts, is_request: bool, is_binary: bool, cmd, size: int) -> MemcacheMessage:
    """A message with every other field at its default (without the keyword
    handling of ``MemcacheMessage(...)``: this runs once per message)."""
    m = MemcacheMessage.__new__(MemcacheMessage)
    m.ts = ts
    m.is_request = is_request
    m.is_binary = is_binary
    m.cmd = cmd
    m.size = size
    m.notes = []
    m.command_line = b""
    m.raw_args = b""
    m.noreply = False
    m.opcode = 0
    m.status = 0
    m.vbucket = 0
    m.opaque = 0
    m.is_quiet = False
    m.keys = None
    m.flags = 0
    m.exptime = 0
    m.value = 0
    m.value2 = 0
    m.ivalue = 0
    m.ivalue2 = 0
    m.version = None
    m.error_msg = None
    m.data = None
    m.values = None
    m.bytes = 0
    m.bytes_lost = 0
    m.count_values = 0
    m.stats = None
    m.cas_unique = 0
    m.is_cas = False
    m.is_complete = True
    m.nargs = -1
    return m


class State(enum.IntEnum):
    COMMAND = 0      # next message's first bytes
    TEXT_DATA = 1    # data block of a text message
    TEXT_CRLF = 2    # CRLF after a text data block
    BIN_DATA = 3     # value of a binary message


# The parser keeps its state as a plain int (an enum member lookup per step
# costs more than the step); ``MemcacheParser.state`` gives the State.
_COMMAND = 0
_TEXT_DATA = 1
_TEXT_CRLF = 2
_BIN_DATA = 3
# Bytes looked at once for a run of STAT lines (see MemcacheParser._stat_run).
_STAT_WINDOW = 4096


def _baslice(b: bytearray, i: int, j: int) -> bytes:
    """``bytes(b[i:j])`` of a bytearray (compiled, for 0 <= i <= j <= len(b):
    one copy instead of two, no slice object)."""
    if _COMPILED and 0 <= i <= j <= len(b):
        return _baslice_c(b, i, j)
    return bytes(b[i:j])


def _probe():
    pass


# compiled (parser.pxd), a function is a cyfunction/builtin, not a "function"
_COMPILED = type(_probe).__name__ != "function"


class MemcacheParser:
    """One direction of a memcache stream. ``feed`` returns complete messages."""

    __slots__ = ("value_keep", "max_values", "parse_unknown", "max_buffer",
                 "_buf", "_pos", "_scan", "_state", "_msg", "_msg_ts", "_need", "_kept", "_last", "merge_stats")

    def __init__(self, value_keep: int = 0, max_values: int = 0, parse_unknown: bool = False,
                 max_buffer: int = DEFAULT_MAX_BUFFER, merge_stats: bool = False):
        self.value_keep = value_keep          # bytes kept per value (0: values not kept)
        self.max_values = max_values
        self.parse_unknown = parse_unknown
        self.max_buffer = max_buffer
        self._buf = bytearray()
        self._pos = 0
        self._scan = 0
        self._state = _COMMAND
        self._msg: MemcacheMessage | None = None
        self._msg_ts = 0
        self._need = 0                        # data bytes still to come
        self._kept: bytearray | None = None
        # merge_stats: a stat reply continuing the previous message of the same
        # ``feed`` call is folded into it (see _merge_stat) instead of being
        # returned on its own; the events are the same (the correlator merges
        # them anyway), one message object per STAT line is saved
        self.merge_stats = merge_stats
        self._last: MemcacheMessage | None = None

    # ---------------------------------------------------------------- public
    @property
    def state(self) -> State:
        return State(self._state)

    @property
    def pending(self) -> MemcacheMessage | None:
        """The message being read (header or command line done), if any."""
        return self._msg

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def reset(self) -> None:
        self._buf = bytearray()
        self._pos = self._scan = 0
        self._state = _COMMAND
        self._msg = None
        self._need = 0
        self._kept = None

    def feed(self, data, ts: int) -> list[MemcacheMessage]:
        buf = self._buf
        if self._pos == len(buf):
            if self._pos:
                buf.clear()
                self._pos = self._scan = 0
            if self._msg is None:
                self._msg_ts = ts
        buf += data
        out: list[MemcacheMessage] = []
        self._last = None
        try:
            while True:
                st = self._state
                if st == _COMMAND:
                    if len(buf) - self._pos < 2:
                        break
                    b = buf[self._pos]
                    msg = self._binary() if b == MAGIC_REQUEST or b == MAGIC_RESPONSE else self._text()
                elif st == _TEXT_DATA or st == _BIN_DATA:
                    msg = self._data()
                else:
                    msg = self._text_crlf()
                if msg is None:
                    break
                if msg is not _MERGED:
                    last = self._last
                    if last is None or msg.stats is None or not _merge_stat(last, msg):
                        out.append(msg)
                        if self.merge_stats:
                            self._last = msg
                self._msg_ts = ts
        except ParseError as e:
            e.messages = out
            raise
        # compact once per call: keep only unconsumed bytes
        if self._pos:
            if self._pos == len(buf):
                buf.clear()
                self._scan = 0
            else:
                del buf[:self._pos]
                self._scan = max(0, self._scan - self._pos)
            self._pos = 0
        return out

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. True when they fall inside the data block being
        read (parsing resumes after it; call :meth:`drain`); False when the
        stream cannot resynchronise."""
        msg = self._msg
        if msg is None:
            return False
        msg.notes.append("Packet loss while capturing the request" if msg.is_request
                         else "Packet loss while capturing the response")
        if (self._state == _TEXT_DATA or self._state == _BIN_DATA) and nbytes <= self._need:
            self._need -= nbytes
            msg.bytes_lost += nbytes
            return True
        return False

    def drain(self) -> list[MemcacheMessage]:
        """Messages that are complete without further bytes (after a gap that
        ended a binary value exactly)."""
        return self.feed(b"", self._msg_ts)

    # ------------------------------------------------------------------ text
    def _text(self) -> MemcacheMessage | None:
        buf = self._buf
        pos = self._pos
        # parser.pxd's _find_crlf_c when compiled: the same search at C level
        end = _find_crlf_c(buf, max(self._scan, pos)) if _COMPILED else buf.find(b"\r\n", max(self._scan, pos))
        if end < 0:
            if len(buf) - pos > self.max_buffer:
                raise ParseError("command line longer than %d bytes" % self.max_buffer)
            self._scan = max(pos, len(buf) - 1)
            return None
        line = _baslice(buf, pos, end)
        self._pos = end + 2
        self._scan = self._pos
        size = end + 2 - pos
        if line.startswith(b"STAT "):
            # fast path: stats replies are long runs of these
            parts = line.split(b" ")
            if len(parts) >= 2 and parts[1]:
                last = self._last
                if last is not None and last.cmd is _STAT:
                    # a run of STAT lines: no message object per line
                    last.stats.append((parts[1], parts[2] if len(parts) > 2 else b""))
                    last.size += size + self._stat_run(last.stats)
                    return _MERGED
                msg = _message(self._msg_ts, False, False, _STAT, size)
                msg.command_line = line
                msg.raw_args = line[5:]
                msg.stats = [(parts[1], parts[2] if len(parts) > 2 else b"")]
                if self.merge_stats:
                    # feed would fold the next STAT lines into this message
                    msg.size += self._stat_run(msg.stats)
                return msg
        # parser.pxd's _find_byte_c when compiled: memchr over the line
        sp = _find_byte_c(buf, pos, end, 32) if _COMPILED else line.find(b" ")
        if sp < 0:
            command, args = line, b""
        else:
            # the line's own bytes, cut from the buffer (one copy each when compiled)
            command, args = _baslice(buf, pos, pos + sp), _baslice(buf, pos + sp + 1, end)
        if not command:
            # leading spaces: Packetbeat skips them before the command word
            stripped = line.lstrip(b" ")
            if not stripped:
                raise ParseError("empty command line")
            sp = stripped.find(b" ")
            command, args = (stripped, b"") if sp < 0 else (stripped[:sp], stripped[sp + 1:])
        c0 = command[0]
        is_request = 0x61 <= c0 <= 0x7A
        # a typed dict (parser.pxd): a C-level look-up when compiled
        table = TEXT_REQUESTS if is_request else TEXT_RESPONSES
        cmd = table.get(command)
        if not is_request:
            if cmd is None and 0x30 <= c0 <= 0x39:
                cmd = COUNTER_RESPONSE
        if cmd is None:
            if not self.parse_unknown:
                raise ParseError("unknown memcache command %r" % command[:32])
            cmd = UNKNOWN_TEXT
        msg = _message(self._msg_ts, is_request, False, cmd, size)
        msg.command_line = line
        msg.raw_args = args
        kind = cmd.kind
        if kind == "sub":
            sub, _, rest = args.lstrip(b" ").partition(b" ")
            if not sub:
                # memcached answers ERROR: published as the command alone
                return msg
            sub_cmd = cmd.sub.get(sub)
            if sub_cmd is None:
                if self.parse_unknown:
                    msg.cmd = UNKNOWN_TEXT
                # else: a known command with a sub-command memcached rejects
                # (ERROR): published as the command, paired with the error
                return msg
            cmd = sub_cmd
            msg.cmd = cmd
            msg.raw_args = rest
            kind = cmd.kind
        if kind == "counter":
            digits = command
            n = 0
            while n < len(digits) and 0x30 <= digits[n] <= 0x39:
                n += 1
            msg.value = int(digits[:n]) & _M64
            return msg
        if kind == "unknown":
            return msg
        if is_request:
            try:
                _text_args(msg, cmd, len(cmd.names), msg.raw_args)
            except ParseError:
                # arguments memcached rejects (ERROR / CLIENT_ERROR ...): it
                # reads no data block, so neither do we; the request is
                # published with the arguments that parsed (``nargs``) and
                # paired with the error
                msg.nargs = _args_parsed(cmd, msg.raw_args)
                return msg
        else:
            _text_args(msg, cmd, len(cmd.names), msg.raw_args)
        if kind == "data" or kind == "resp_data":
            self._msg = msg
            self._need = msg.bytes
            self._kept = bytearray() if self.value_keep else None
            self._state = _TEXT_DATA
            return self._data()
        return msg

    def _stat_run(self, stats: list) -> int:
        """Fold the complete STAT lines that come next in the buffer into
        ``stats``, as ``_text`` + ``feed`` would one line at a time, and return
        their size. Looks at most ``_STAT_WINDOW`` bytes: the lines are split
        at once, and what follows the run (``END``, anything else) is left to
        ``_text``."""
        buf = self._buf
        pos = self._pos
        if _COMPILED:
            # parser.pxd's _stat_run_c: the same steps at C level, without a list per line
            p = _stat_run_c(buf, pos, _STAT_WINDOW, stats)
            self._pos = self._scan = p
            return p - pos
        end = buf.rfind(b"\r\n", pos, pos + _STAT_WINDOW)
        if end < 0:
            return 0
        p = pos
        for line in _baslice(buf, pos, end).split(b"\r\n"):
            parts = line.split(b" ")
            n = len(parts)
            # the same lines as the fast path of _text: "STAT " and a name
            if n < 2 or parts[0] != b"STAT" or not parts[1]:
                break
            stats.append((parts[1], parts[2] if n > 2 else b""))
            p += len(line) + 2
        self._pos = self._scan = p
        return p - pos

    def _text_crlf(self) -> MemcacheMessage | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 2:
            return None
        if buf[pos] != 0x0D or buf[pos + 1] != 0x0A:
            if not self._msg.is_request:
                raise ParseError("data block not followed by CRLF")
            # memcached reads the two bytes anyway and answers
            # "CLIENT_ERROR bad data chunk"; what follows is parsed anew
            self._msg.notes.append(NOTE_BAD_CHUNK)
        self._pos = self._scan = pos + 2
        self._msg.size += 2
        return self._finish_data()

    # ---------------------------------------------------------------- binary
    def _binary(self) -> MemcacheMessage | None:
        buf = self._buf
        pos = self._pos
        hs = HEADER_SIZE          # a C constant when compiled (parser.pxd)
        avail = len(buf) - pos
        if avail < hs:
            return None
        # the 24-byte header, big-endian (read byte by byte: C reads when compiled)
        magic = buf[pos]
        opcode = buf[pos + 1]
        key_len = (buf[pos + 2] << 8) | buf[pos + 3]
        extra_len = buf[pos + 4]
        vb_status = (buf[pos + 6] << 8) | buf[pos + 7]
        total = (buf[pos + 8] << 24) | (buf[pos + 9] << 16) | (buf[pos + 10] << 8) | buf[pos + 11]
        opaque = (buf[pos + 12] << 24) | (buf[pos + 13] << 16) | (buf[pos + 14] << 8) | buf[pos + 15]
        cas = int.from_bytes(buf[pos + 16:pos + 24], "big") if _any8(buf, pos + 16) else 0
        head = hs + extra_len + key_len
        if head > self.max_buffer:
            raise ParseError("binary header of %d bytes" % head)
        if avail < head:
            return None
        if opcode == OPCODE_STAT and magic == MAGIC_RESPONSE and vb_status == 0 and key_len \
                and total > extra_len + key_len and self._last is not None \
                and total <= self.max_buffer and avail >= hs + total:
            # a keyed stat response continuing a run: folded into the previous
            # one here, without a message object (what _merge_stat does)
            last = self._last
            if last.is_binary and last.opcode == OPCODE_STAT and not last.is_request \
                    and last.opaque == opaque and last.keys and last.stats is not None:
                p = pos + hs + extra_len
                # key and value cut from the buffer (one copy each, no slice object when compiled)
                last.stats.append((_baslice(buf, p, p + key_len), _baslice(buf, p + key_len, pos + hs + total)))
                last.size += hs + total
                self._pos = pos + hs + total
                return _MERGED
        cmd = BINARY_COMMANDS.get(opcode, UNKNOWN_BINARY)
        is_request = magic == MAGIC_REQUEST
        msg = _message(self._msg_ts, is_request, True, cmd, 0)
        msg.opcode = opcode
        msg.is_quiet = opcode in QUIET_OPCODES
        if is_request:
            msg.vbucket = vb_status
        else:
            msg.status = vb_status
        if cas:
            msg.cas_unique = cas
            msg.is_cas = True
        msg.opaque = opaque
        if total == 0:
            # no extras, key or value
            self._pos = pos + hs
            msg.size = hs
            return msg
        value_len = total - extra_len - key_len
        if value_len < 0:
            raise ParseError("binary length fields disagree (total %d < extras %d + key %d)"
                             % (total, extra_len, key_len))
        # counter/version/stat values are read whole; an error status carries
        # a message text instead (Packetbeat would read it as a counter)
        whole = cmd.kind != "data" and value_len > 0 and not is_request and vb_status == 0
        if whole:
            if total > self.max_buffer:
                raise ParseError("binary value of %d bytes" % value_len)
            if avail < hs + total:
                return None
        p = pos + hs
        if extra_len:
            args = cmd.args if is_request and cmd.args else cmd.resp_args
            if args:
                _binary_extras(msg, args, _baslice(buf, p, p + extra_len))
            p += extra_len
        if key_len:
            msg.keys = [_baslice(buf, p, p + key_len)]
            p += key_len
        self._pos = p
        msg.size = p - pos
        if value_len == 0:
            return msg
        msg.bytes = value_len
        if whole:
            value = _baslice(buf, p, p + value_len)
            self._pos = p + value_len
            msg.size += value_len
            kind = cmd.kind
            if kind == "counter":
                if value_len < 8:
                    raise ParseError("counter response value of %d bytes" % value_len)
                msg.value = _U64.unpack_from(value)[0]
            elif kind == "version":
                msg.version = value
            else:   # stat
                if not msg.keys:
                    raise ParseError("stat response with a value but no key")
                msg.stats = [(msg.keys[0], value)]
            return msg
        self._msg = msg
        self._need = value_len
        self._kept = bytearray() if self.value_keep else None
        self._state = _BIN_DATA
        return self._data()

    # ------------------------------------------------------------------ data
    def _data(self) -> MemcacheMessage | None:
        buf = self._buf
        pos = self._pos
        take = min(len(buf) - pos, self._need)
        if take:
            kept = self._kept
            if kept is not None and len(kept) < self.value_keep:
                room = self.value_keep - len(kept)
                kept += buf[pos:pos + min(take, room)]
            self._pos = self._scan = pos + take
            self._need -= take
            self._msg.size += take
        if self._need:
            return None
        if self._state == _TEXT_DATA:
            self._state = _TEXT_CRLF
            return self._text_crlf()
        return self._finish_data()

    def _finish_data(self) -> MemcacheMessage:
        msg = self._msg
        msg.count_values += 1
        if not msg.bytes_lost and self.max_values != 0:
            data = bytes(self._kept) if self._kept is not None else b""
            msg.data = data
            if msg.values is None:
                msg.values = [data]
            else:
                msg.values.append(data)
        self._msg = None
        self._kept = None
        self._state = _COMMAND
        return msg


def _any8(buf, p: int) -> bool:
    """Any of the 8 bytes at ``p`` non-zero (the CAS field: mostly zero)."""
    return (buf[p] | buf[p + 1] | buf[p + 2] | buf[p + 3] | buf[p + 4] | buf[p + 5] | buf[p + 6]
            | buf[p + 7]) != 0


_MERGED = object()   # _text: the line was folded into the previous message


def _merge_stat(last: MemcacheMessage, msg: MemcacheMessage) -> bool:
    """Fold stat reply ``msg`` into ``last`` (the previous message of the same
    ``feed`` call) when the correlator would merge them anyway (``trans.try_merge``
    on an incomplete response): text STAT after STAT, or a keyed binary stat
    after a keyed binary stat with the same opaque. What is folded is exactly
    what ``trans._merge_stats`` folds (notes, stats, size)."""
    if msg.is_binary:
        if not (last.is_binary and msg.opcode == OPCODE_STAT and last.opcode == OPCODE_STAT
                and not msg.is_request and not last.is_request and last.opaque == msg.opaque
                and last.keys and msg.keys and last.stats is not None):
            return False
    elif last.cmd is not _STAT or msg.cmd is not _STAT:
        return False
    if msg.notes:
        last.notes.extend(msg.notes)
    last.stats.extend(msg.stats)
    last.size += msg.size
    return True


# ------------------------------------------------------------------ arguments

def _uint(tok: bytes, what: str) -> int:
    if _COMPILED:
        # parser.pxd's _digits_c: 1 to 19 ASCII digits read at C level (below 2**64:
        # the mask changes nothing); anything else goes the Python way
        v = _digits_c(tok)
        if v is not None:
            return v
    if not tok.isdigit():
        raise ParseError("expected a number for %s, got %r" % (what, tok[:32]))
    return int(tok) & _M64


def _int(tok: bytes, what: str) -> int:
    t = tok[1:] if tok[:1] == b"-" else tok
    if not t.isdigit():
        raise ParseError("expected a number for %s, got %r" % (what, tok[:32]))
    v = int(t)
    return -v if tok[:1] == b"-" else v


def _args_parsed(cmd: Cmd, raw: bytes) -> int:
    """How many of ``cmd``'s arguments parse from ``raw`` before the first
    that does not (error path only: nothing is kept)."""
    count = len(cmd.names)
    for k in range(count):
        try:
            _text_args(MemcacheMessage(0, True, False, cmd), cmd, k + 1, raw)
        except ParseError:
            return k
    return count


def _text_args(msg: MemcacheMessage, cmd: Cmd, count: int, raw: bytes) -> None:
    """Parse the first ``count`` text arguments of ``cmd`` from ``raw`` into
    ``msg`` (by their codes, Cmd.codes)."""
    if not count:
        return
    names = cmd.names
    codes = cmd.codes
    optional = cmd.optional
    toks = [t for t in raw.split(b" ") if t] if raw else []
    i = 0
    n = len(toks)
    for j in range(count):
        code = codes[j]
        if code == _A_KEY_LIST:
            if i >= n:
                raise ParseError("message has no keys")
            msg.keys = toks[i:]
            i = n
            continue
        if code == _A_ERRMSG:
            msg.error_msg = raw
            continue
        if code == _A_RAW:
            continue
        if i >= n:
            if optional[j]:
                continue
            if code == _A_STAT:
                raise ParseError("STAT line without a name")
            raise ParseError("no more command arguments (expected %s)" % names[j])
        tok = toks[i]
        i += 1
        if code == _A_KEYS:
            msg.keys = [tok]
        elif code == _A_NOREPLY:
            # memcached looks for "noreply" in the last token only (``delete
            # k 0 noreply``); another word is no parse error (memcached
            # ignores it or answers ERROR)
            if toks[n - 1].startswith(b"noreply"):
                msg.noreply = True
        elif code == _A_FLAGS:
            msg.flags = _uint(tok, "flags") & _M32
        elif code == _A_EXPTIME:
            msg.exptime = _uint(tok, "exptime") & _M32
        elif code == _A_BYTES:
            msg.bytes = _uint(tok, "bytes") & _M32
        elif code == _A_CAS:
            msg.cas_unique = _uint(tok, "cas")
            msg.is_cas = True
        elif code == _A_SOURCE_CLASS:
            msg.ivalue = _int(tok, "source_class")
        elif code == _A_DEST_CLASS:
            msg.ivalue2 = _int(tok, "dest_class")
        elif code == _A_STAT:
            value = toks[i] if i < n else b""
            i += 1
            msg.stats = [(tok, value)]
        else:   # delta, sleep_us, value, verbosity, automove
            msg.value = _uint(tok, names[j])


def _binary_extras(msg: MemcacheMessage, names: tuple, extras: bytes) -> None:
    """Binary extras; a short extras block is a note, as Packetbeat does."""
    off = 0
    n = len(extras)
    for name in names:
        size = _EXTRA_SIZE[name]
        if not size:
            continue
        if off + size > n:
            msg.notes.append("no more bytes for extra %s" % name)
            return
        v = 0
        for k in range(off, off + size):     # big-endian, 4 or 8 bytes (a C loop when compiled)
            v = (v << 8) | extras[k]
        off += size
        if name == "flags":
            msg.flags = v
        elif name == "exptime":
            msg.exptime = v
        elif name == "initial":
            msg.value2 = v
        else:   # delta, verbosity
            msg.value = v


def parse_datagram(payload: bytes, ts: int, value_keep: int = 0, max_values: int = 0,
                   parse_unknown: bool = False, merge_stats: bool = False) -> list[MemcacheMessage]:
    """Every message of one reassembled UDP payload; an incomplete message at
    the end is a ParseError (as Packetbeat's ``errUDPIncompleteMessage``)."""
    p = MemcacheParser(value_keep, max_values, parse_unknown, max_buffer=max(len(payload), 64),
                       merge_stats=merge_stats)
    msgs = p.feed(payload, ts)
    if p.pending is not None or p.buffered:
        raise ParseError("incomplete message in UDP payload", msgs)
    if not msgs:
        raise ParseError("no message in UDP payload")
    return msgs
