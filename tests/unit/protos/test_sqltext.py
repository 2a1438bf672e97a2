"""worker/protos/sqltext.py, shared by the MySQL and PostgreSQL analysers: the
bounded statement-text cache, the bounded table of named statements, and the
CSV text of result rows (Packetbeat's DumpInCSVFormat)."""
from __future__ import annotations

from worker.protos.sqltext import TEXT_LONGEST, TEXTS_MOST, TextCache, dump_csv, remember


def test_text_cache_makes_each_text_once():
    made = []

    def make(q: bytes):
        made.append(q)
        return (q.decode().upper(), len(q))

    c = TextCache(make)
    assert (c.most, c.longest) == (TEXTS_MOST, TEXT_LONGEST)
    assert c.get(b"select 1") == ("SELECT 1", 8)
    assert c.get(b"select 1") == ("SELECT 1", 8)
    assert c.get(b"select 2") == ("SELECT 2", 8)
    assert made == [b"select 1", b"select 2"] and len(c) == 2


def test_text_cache_is_bounded():
    made = []
    c = TextCache(lambda q: made.append(q) or q.upper(), most=3, longest=8)
    for q in (b"a", b"b", b"c"):
        c.get(q)
    assert len(c) == 3
    assert c.get(b"d") == b"D" and len(c) == 1          # full: emptied, then the new one kept
    assert c.get(b"a") == b"A" and len(c) == 2          # forgotten, made again
    assert c.get(b"123456789") == b"123456789" and len(c) == 2    # longer than 8 bytes: not kept
    c.get(b"123456789")
    assert made == [b"a", b"b", b"c", b"d", b"a", b"123456789", b"123456789"]


def test_remember_keeps_the_most_recent():
    t: dict = {}
    for i in range(6):
        remember(t, i, "q%d" % i, 4)
    assert list(t) == [2, 3, 4, 5]
    remember(t, 3, "again", 4)          # stored again: the newest
    assert list(t) == [2, 4, 5, 3] and t[3] == "again"
    remember(t, 6, "q6", 4)             # the oldest goes
    assert list(t) == [4, 5, 3, 6]


def test_dump_csv_as_go_encoding_csv():
    assert dump_csv([], []) == ""
    assert dump_csv([b"id", b"name"], []) == "id,name\n"
    assert dump_csv([b"a\nb", b"c"], [[b"1\r\n", b'q"uote'], [b"", b"\\."], [b"x,y", b"ok"]]) == \
        'a\\nb,c\n1\\r\\n,"q""uote"\n,"\\."\n"x,y",ok\n'
    # a leading space as unicode.IsSpace has it: blanks, NEL, NBSP, U+3000; not the separators \x1c-\x1f
    # (Python's isspace takes them, Go's IsSpace does not)
    assert dump_csv([], [[b" a", b"\ta", "\x85a".encode(), "\xa0a".encode(), "\u3000a".encode()]]) == \
        '" a","\ta","\x85a","\xa0a","\u3000a"\n'
    assert dump_csv([], [[b"\x1ca", b"\x1fa", b"a "]]) == "\x1ca,\x1fa,a \n"
    assert dump_csv([], [[b"\xff"]]) == "\ufffd\n"        # not UTF-8: replaced
