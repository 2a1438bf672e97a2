"""Statement and result text shared by the SQL analysers (MySQL, PostgreSQL).

- :class:`TextCache`: what an event derives from a statement's bytes (its text,
  method, trimmed query), made once per distinct statement: an application
  sends the same few statements again and again. Bounded.
- :func:`remember`: a table of named or prepared statements that keeps the
  ``most`` last stored (the oldest is forgotten first).
- :func:`dump_csv`: result rows as text, Packetbeat's ``DumpInCSVFormat``
  (libbeat, Go ``encoding/csv``), the ``response`` field of both analysers.

Compiled with the analysers (setup.py, the C types in sqltext.pxd): the event
modules call :meth:`TextCache.get` as a C method.
"""
from __future__ import annotations

from typing import Callable

TEXTS_MOST = 4096           # statements a TextCache holds (it is emptied when full)
TEXT_LONGEST = 1024         # bytes of the longest statement it keeps (longer ones: made every time)

_SPACE_START = frozenset(" \t\n\v\f\r\x85\xa0")     # Go's unicode.IsSpace below 0x100


class TextCache:
    """``get(text)`` is ``make(text)``, made once per distinct ``text`` (bytes).

    Bounded: at most ``most`` entries, emptied when full (the statements of
    an application are few; a flood of distinct ones costs one ``make`` each,
    as without the cache); a text longer than ``longest`` bytes is not kept."""
    __slots__ = ("make", "most", "longest", "_known")

    def __init__(self, make: Callable[[bytes], object], most: int = TEXTS_MOST, longest: int = TEXT_LONGEST):
        self.make = make
        self.most = most
        self.longest = longest
        self._known: dict = {}

    def get(self, text: bytes):
        known = self._known.get(text)
        if known is None:
            known = self.make(text)
            if len(text) <= self.longest:
                if len(self._known) >= self.most:
                    self._known.clear()
                self._known[text] = known
        return known

    def __len__(self) -> int:
        return len(self._known)


def remember(table: dict, key, value, most: int) -> None:
    """``table[key] = value`` as the newest entry; the oldest entries are
    dropped beyond ``most``. (A look-up that should count as a use moves its
    key to the end: ``table[key] = table.pop(key)``.)"""
    table.pop(key, None)
    table[key] = value
    if len(table) > most:
        del table[next(iter(table))]


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _csv_field(s: str) -> str:
    """A field as Go's ``csv.Writer`` writes it: quoted when it holds a comma,
    a quote or a line break, is ``\\.``, or starts with white space
    (``unicode.IsSpace``: Python's ``isspace`` also takes \\x1c-\\x1f)."""
    if not s:
        return s
    if s == "\\." or "," in s or '"' in s or "\r" in s or "\n" in s or s[0] in _SPACE_START \
            or (s[0] > "\x7f" and s[0].isspace()):
        return '"' + s.replace('"', '""') + '"'
    return s


def dump_csv(fields: list, rows: list) -> str:
    """Column names (bytes), then the kept rows (lists of bytes), one line
    each: new lines in names become ``\\n``, CR and LF in values ``\\r`` /
    ``\\n``, fields quoted as :func:`_csv_field` says; "" for neither."""
    lines = []
    if fields:
        lines.append(",".join([_csv_field(_s(f).replace("\n", "\\n")) for f in fields]))
    for row in rows:
        lines.append(",".join([_csv_field(_s(v).replace("\n", "\\n").replace("\r", "\\r")) for v in row]))
    return "".join([line + "\n" for line in lines])
