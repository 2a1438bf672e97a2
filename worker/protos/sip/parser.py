"""SIP message parser (RFC 3261 section 7 and 18.3; compact header forms of
the IANA "Header Fields" registry; SDP bodies are read in ``event.py``).

Theory of operation
-------------------
A SIP message is a start line, header lines and an optional body, as HTTP:

- request: ``METHOD SP Request-URI SP SIP/2.0 CRLF``; response:
  ``SIP/2.0 SP 3DIGIT SP Reason-Phrase CRLF``;
- headers ``name: value CRLF``, folded onto continuation lines that start
  with a space or a tab; names are case-insensitive and have one-letter
  compact forms (``i`` Call-ID, ``f`` From, ``t`` To, ``v`` Via, ``m``
  Contact, ``l`` Content-Length, ``c`` Content-Type, ...), expanded here;
  a header may appear on several lines (Via, Allow, Supported...);
- an empty line, then ``Content-Length`` bytes of body.

Framing (RFC 3261 18.3):

- **UDP** (:func:`parse_datagram`): one datagram holds the message; without
  ``Content-Length`` the body is the rest of the datagram. A datagram holding
  several messages one after the other gives them all (as Packetbeat).
- **TCP** (:class:`SipStreamParser`, one per direction): messages follow one
  another; ``Content-Length`` (absent: 0) delimits the body, so several
  messages may share a segment and one message may span many. CRLF
  keep-alives between messages (RFC 5626 section 3.5.1) are skipped.

Correlation key: none for the events. Packetbeat 8 publishes one event per
SIP message (a request may get many responses, both sides may send
requests); ``trans.py`` only follows transactions (Call-ID, CSeq) for the
plugin's counters.

Bounds: a head (start line and headers) of at most ``MAX_HEAD`` bytes, a
message of at most ``max_message_size`` bytes (Packetbeat's 10 MiB per
stream). After lost bytes (``on_gap``) a body is completed short with a
note; when a head was hit the parser skips to the next line that is a SIP
start line. Only :class:`ParseError` is raised.
"""
from __future__ import annotations

import enum
import re

from worker.plugin import ParseError as _BaseParseError

MAX_HEAD = 64 * 1024                    # start line + headers
MAX_MESSAGE_SIZE = 10 * 1024 * 1024     # tcp.TCPMaxDataInStream
MAX_HEADERS = 256                       # header lines kept per message
BAD_LENGTH = -2                         # parse_headers: Content-Length is not a number

NOTE_LOSS_REQUEST = "Packet loss while capturing the request"
NOTE_LOSS_RESPONSE = "Packet loss while capturing the response"
NOTE_INCOMPLETE = "Message incomplete when the connection ended"
NOTE_SHORT_DATAGRAM = "Content-Length larger than the datagram: body truncated"
NOTE_NO_BLANK_LINE = "Headers not ended by an empty line"
NOTE_BAD_HEADER = "Malformed header line ignored"
NOTE_TOO_MANY_HEADERS = "Too many header lines: the rest ignored"
NOTE_BAD_LENGTH = "Content-Length is not a number: ignored"

# compact form -> full name (IANA sip-parameters "Header Fields", the forms
# Packetbeat expands)
COMPACT = {
    b"a": b"accept-contact", b"b": b"referred-by", b"c": b"content-type",
    b"d": b"request-disposition", b"e": b"content-encoding", b"f": b"from",
    b"i": b"call-id", b"j": b"reject-contact", b"k": b"supported",
    b"l": b"content-length", b"m": b"contact", b"n": b"identity-info",
    b"o": b"event", b"r": b"refer-to", b"s": b"subject", b"t": b"to",
    b"u": b"allow-events", b"v": b"via", b"x": b"session-expires", b"y": b"identity",
}

# token chars of RFC 3261 section 25.1 (a method is a token)
_REQUEST_LINE = re.compile(rb"([A-Za-z0-9\-.!%*_+`'~]+) +(\S+) +SIP/(\d+\.\d+)\Z")
_STATUS_LINE = re.compile(rb"SIP/(\d+\.\d+) +(\d{3})(?: (.*))?\Z", re.S)


class ParseError(_BaseParseError):
    """The bytes are not SIP. ``messages`` holds those completed before."""

    def __init__(self, msg: str, messages: list | None = None):
        super().__init__(msg)
        self.messages = messages if messages is not None else []


_FIELDS = ("ts", "is_request", "size", "notes", "method", "uri", "code", "phrase", "version",
           "headers", "body", "raw")


class SipMessage:
    """One message: a plain class with slots (a C class when compiled, see
    parser.pxd: made and read without Python attribute look-ups)."""
    __slots__ = _FIELDS

    def __init__(self, ts: int, is_request: bool, size: int = 0, notes: list | None = None,
                 method: bytes = b"", uri: bytes = b"", code: int = 0, phrase: bytes = b"",
                 version: bytes = b"", headers: dict | None = None, body: bytes = b"",
                 raw: bytes = b""):
        self.ts = ts                    # ns, packet where the message began
        self.is_request = is_request
        self.size = size                # bytes on the wire
        self.notes = notes if notes is not None else []
        self.method = method            # request
        self.uri = uri                  # request: Request-URI
        self.code = code                # response: status code
        self.phrase = phrase            # response: reason phrase
        self.version = version          # "2.0"
        self.headers = headers if headers is not None else {}   # lower-case full name -> [values], in order
        self.body = body
        self.raw = raw                  # the whole message as captured

    def __repr__(self) -> str:
        return "SipMessage(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in _FIELDS)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in _FIELDS)

    def header(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (as Packetbeat keeps it), or None."""
        v = self.headers.get(name)
        return v[-1] if v else None

    def first(self, name: bytes) -> bytes | None:
        v = self.headers.get(name)
        return v[0] if v else None


# start line -> its parts (status lines, and the request lines of a dialog,
# repeat from message to message): one dict look-up instead of a regular
# expression. Bounded (cleared when full); lines that are not start lines
# are not kept.
_STARTS: dict[bytes, tuple] = {}
_STARTS_MAX = 4096


def _start_parts(line: bytes) -> tuple:
    """(is_request, method, uri, version, code, phrase) of a start line; ParseError if it is none."""
    if line.startswith(b"SIP/"):
        m = _STATUS_LINE.match(line)
        if m is None:
            raise ParseError("bad status line %r" % line[:80])
        hit = (False, b"", b"", m.group(1), int(m.group(2)), (m.group(3) or b"").strip())
    else:
        m = _REQUEST_LINE.match(line)
        if m is None:
            raise ParseError("bad request line %r" % line[:80])
        hit = (True, m.group(1), m.group(2), m.group(3), 0, b"")
    if len(line) <= 256:
        if len(_STARTS) >= _STARTS_MAX:
            _STARTS.clear()
        _STARTS[line] = hit
    return hit


def parse_start_line(line: bytes, msg_ts: int) -> SipMessage:
    """A message from its start line (without CRLF); ParseError if it is none."""
    hit = _STARTS.get(line)
    if hit is None:
        hit = _start_parts(line)
    # fields set directly: compiled, C struct stores without the constructor's
    # call (the same message as SipMessage(msg_ts, hit[0], 0, [], hit[1], ...))
    msg = SipMessage.__new__(SipMessage)
    msg.ts = msg_ts
    msg.is_request = hit[0]
    msg.size = 0
    msg.notes = []
    msg.method = hit[1]
    msg.uri = hit[2]
    msg.code = hit[4]
    msg.phrase = hit[5]
    msg.version = hit[3]
    msg.headers = {}
    msg.body = b""
    msg.raw = b""
    return msg


# header line -> (lower-case full name, value), or None for a malformed line.
# The lines of a dialog repeat from message to message (From, To, Call-ID,
# Via, CSeq...): one dict look-up instead of partition, strip, lower and the
# compact-form expansion. Bounded (cleared when full).
_LINES: dict[bytes, tuple | None] = {}
_LINES_MAX = 8192


def _header_line(ln: bytes) -> tuple | None:
    raw, colon, value = ln.partition(b":")
    name = raw.strip().lower()
    if not colon or not name:
        hit = None
    else:
        if len(name) == 1:
            name = COMPACT.get(name, name)
        hit = (name, value.strip())
    if len(ln) <= 256:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[ln] = hit
    return hit


def parse_headers(msg: SipMessage, block: bytes) -> int:
    """Read the header lines of ``block`` (CRLF separated, no final empty
    line) into ``msg.headers``; returns the Content-Length (-1: absent,
    ``BAD_LENGTH``: not a number)."""
    headers = msg.headers
    content_length = -1
    lines = block.split(b"\r\n")
    # unfold continuation lines (RFC 3261 7.3.1): a line that starts with a
    # space or a tab (looked for in the lines: two substring searches of the
    # block cost more than reading the first byte of each line)
    folded = False
    for ln in lines:
        if ln and (ln[0] == 32 or ln[0] == 9):
            folded = True
            break
    if folded:
        unfolded: list[bytes] = []
        for ln in lines:
            if ln[:1] in (b" ", b"\t") and unfolded:
                unfolded[-1] = unfolded[-1].rstrip() + b" " + ln.strip()
            else:
                unfolded.append(ln)
        lines = unfolded
    if len(lines) > MAX_HEADERS:
        lines = [ln for ln in lines if ln]
        if len(lines) > MAX_HEADERS:
            msg.notes.append(NOTE_TOO_MANY_HEADERS)
            del lines[MAX_HEADERS:]
    cache = _LINES
    for ln in lines:
        hit = cache.get(ln, False)
        if hit is False:
            if not ln:
                continue
            hit = _header_line(ln)
        if hit is None:
            if NOTE_BAD_HEADER not in msg.notes:
                msg.notes.append(NOTE_BAD_HEADER)
            continue
        name, value = hit
        lst = headers.get(name)
        if lst is None:
            headers[name] = [value]
        else:
            lst.append(value)
        if name == b"content-length":
            if value.isdigit() and len(value) <= 10:
                content_length = int(value)
            else:
                content_length = BAD_LENGTH
    return content_length


def _loss_note(msg: SipMessage) -> str:
    return NOTE_LOSS_REQUEST if msg.is_request else NOTE_LOSS_RESPONSE


def parse_datagram(data, ts: int) -> list[SipMessage]:
    """The SIP messages of one UDP datagram (RFC 3261 18.3). A datagram of
    CRLFs only (a keep-alive) gives none. ParseError when the first message
    is not SIP; bytes after a valid message that are not SIP are ignored
    (noted on that message)."""
    buf = bytes(data)
    n = len(buf)
    out: list[SipMessage] = []
    pos = 0
    while True:
        while pos < n and buf[pos] in (13, 10):
            pos += 1
        if pos >= n:
            return out
        eol = buf.find(b"\r\n", pos)
        line_end = eol if eol >= 0 else n
        try:
            msg = parse_start_line(buf[pos:line_end], ts)
        except ParseError:
            if not out:
                raise
            out[-1].notes.append("Trailing bytes after the message ignored")
            return out
        head_end = buf.find(b"\r\n\r\n", pos) if eol >= 0 else -1
        if head_end < 0:
            # lenient: the headers run to the end of the datagram
            if eol >= 0:
                msg.notes.append(NOTE_NO_BLANK_LINE)
            cl = parse_headers(msg, buf[line_end + 2:] if eol >= 0 else b"")
            body_start = n
        else:
            cl = parse_headers(msg, buf[line_end + 2:head_end])
            body_start = head_end + 4
        if cl == BAD_LENGTH:
            msg.notes.append(NOTE_BAD_LENGTH)
        if cl < 0:
            end = n
        else:
            end = body_start + cl
            if end > n:
                msg.notes.append(NOTE_SHORT_DATAGRAM)
                end = n
        msg.body = buf[body_start:end]
        msg.raw = buf[pos:end]
        msg.size = end - pos
        out.append(msg)
        pos = end
        if pos >= n:
            return out


class _State(enum.IntEnum):
    START = 0       # between messages: skip CRLFs, wait for the start line
    HEAD = 1        # start line read, waiting for the end of the headers
    BODY = 2        # headers read, waiting for Content-Length bytes
    SYNC = 3        # bytes were lost: skip to the next line that is a start line


# the states as plain ints on the hot path (an IntEnum member look-up costs
# more than the comparison)
_START_S, _HEAD_S, _BODY_S, _SYNC_S = (int(x) for x in _State)


class SipStreamParser:
    """Sans-I/O SIP parser for one direction of a TCP connection."""

    __slots__ = ("max_message_size", "_buf", "_state", "_start", "_scan", "_msg",
                 "_head_len", "_end", "_missing", "_ts", "_done", "lost_bytes", "gaps", "bad_starts")

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE):
        self.max_message_size = max_message_size
        self.lost_bytes = 0     # bytes skipped to find a start line again
        self.gaps = 0           # gaps reported by the TCP layer
        self.bad_starts = 0     # lines that were not a start line where a message should begin
        self._done: list[SipMessage] = []
        self._reset(_START_S)

    def _reset(self, state: int) -> None:
        self._buf = bytearray()
        self._state = state
        self._start = 0         # first byte of the current message in _buf
        self._scan = 0          # where to resume looking for the end of the head
        self._msg: SipMessage | None = None
        self._head_len = 0
        self._end = 0           # _buf offset where the current message's body ends
        self._missing = 0       # body bytes lost in gaps
        self._ts: int | None = None

    def reset(self) -> None:
        """Forget the buffer (after a ParseError): look for a start line again."""
        self._reset(_SYNC_S)

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._start

    def feed(self, data, ts: int) -> list[SipMessage]:
        if not data:
            return []
        buf = self._buf
        if self._ts is None:
            self._ts = ts
        buf += data
        out: list[SipMessage] = []
        try:
            self._run(ts, out)
        except ParseError as e:
            e.messages = out
            raise
        if self._start:
            del buf[:self._start]
            self._scan = max(0, self._scan - self._start)
            self._end = max(0, self._end - self._start)
            self._start = 0
        return out

    def _run(self, ts: int, out: list) -> None:
        buf = self._buf
        while True:
            n = len(buf)
            state = self._state
            if state == _START_S or state == _SYNC_S:
                pos = self._start
                while pos < n and buf[pos] in (13, 10):
                    pos += 1
                self._start = pos
                if pos >= n:
                    self._ts = None
                    return
                if self._ts is None:
                    self._ts = ts
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if n - pos > MAX_HEAD:
                        if state == _SYNC_S:
                            self.lost_bytes += n - pos
                            self._start = n
                            continue
                        raise ParseError("start line longer than %d bytes" % MAX_HEAD)
                    return
                if eol - pos > MAX_HEAD and state == _START_S:
                    raise ParseError("start line longer than %d bytes" % MAX_HEAD)
                line = bytes(buf[pos:eol])
                try:
                    msg = parse_start_line(line, self._ts)
                except ParseError:
                    if state != _SYNC_S:
                        # not SIP where a message should begin (a capture
                        # that started mid-message, garbage): resynchronise
                        self.bad_starts += 1
                        self._state = _SYNC_S
                    # not a start line: skip the line (a start line begins a line)
                    skip = eol + 2 - pos
                    self.lost_bytes += skip
                    self._start = pos + skip
                    self._ts = ts
                    continue
                self._msg = msg
                self._state = _HEAD_S
                self._scan = pos
            elif state == _HEAD_S:
                pos = self._start
                hend = buf.find(b"\r\n\r\n", max(self._scan, pos))
                if hend < 0:
                    if n - pos > MAX_HEAD:
                        raise ParseError("headers longer than %d bytes" % MAX_HEAD)
                    self._scan = max(pos, n - 3)
                    return
                if hend + 4 - pos > MAX_HEAD:
                    raise ParseError("headers longer than %d bytes" % MAX_HEAD)
                msg = self._msg
                first_eol = buf.find(b"\r\n", pos)
                cl = parse_headers(msg, bytes(buf[first_eol + 2:hend])) if hend > first_eol else -1
                if cl == BAD_LENGTH:
                    raise ParseError("Content-Length is not a number: the message cannot be framed")
                if cl < 0:
                    cl = 0
                head_len = hend + 4 - pos
                if head_len + cl > self.max_message_size:
                    raise ParseError("message of %d bytes, more than %d" % (head_len + cl, self.max_message_size))
                self._head_len = head_len
                self._end = hend + 4 + cl
                self._missing = 0
                self._state = _BODY_S
            else:  # BODY
                if n < self._end:
                    return
                out.append(self._complete(self._end))

    def _complete(self, end: int) -> SipMessage:
        """The current message ends at ``end`` (its body may be short by the
        bytes lost in gaps)."""
        buf = self._buf
        msg = self._msg
        pos = self._start
        end = min(end, len(buf))
        msg.raw = bytes(buf[pos:end])
        msg.body = msg.raw[self._head_len:]
        msg.size = end - pos + self._missing
        if self._missing and _loss_note(msg) not in msg.notes:
            msg.notes.append(_loss_note(msg))
        self._msg = None
        self._start = end
        self._state = _START_S
        self._ts = None
        return msg

    # ------------------------------------------------------------------ stream events

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` were lost. Inside a body the message goes on, short;
        otherwise the parser looks for the next start line. Always True: SIP
        can resynchronise."""
        self.gaps += 1
        if self._state == _BODY_S:
            have = len(self._buf)
            remaining = self._end - have
            if nbytes < remaining:
                self._missing += nbytes
                self._end -= nbytes
                return True
            self._missing += remaining
            self._end = have
            self._done.append(self._complete(have))
            nbytes -= remaining
            if nbytes <= 0:
                return True
        elif self._state == _HEAD_S:
            self.lost_bytes += len(self._buf) - self._start
        del self._buf[:]
        self._start = self._scan = self._end = 0
        self._msg = None
        self._ts = None
        self._state = _SYNC_S
        return True

    def drain(self) -> list[SipMessage]:
        """Messages that a gap completed."""
        out, self._done = self._done, []
        return out

    def flush(self) -> list[SipMessage]:
        """The connection ends: a message whose headers were read is given
        with what arrived of its body, noted; a partial head is dropped."""
        out = self.drain()
        if self._state == _BODY_S and self._msg is not None:
            msg = self._complete(len(self._buf))
            msg.notes.append(NOTE_INCOMPLETE)
            out.append(msg)
        else:
            self.lost_bytes += len(self._buf) - self._start
        self._reset(_START_S)
        return out
