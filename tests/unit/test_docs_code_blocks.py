"""docs/adding-a-protocol.md shows real code: every ``python`` block in it is taken from a
file of the project (its lines appear in that file in the same order; a line ``...`` stands
for lines left out, a trailing ``...`` for the rest of a line; comments at the end of a line
and runs of blanks do not count), so the guide cannot drift from the code it explains."""
from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

DOC = ROOT / "docs" / "adding-a-protocol.md"
SOURCES = ("worker/**/*.py", "examples/**/*.py", "deploy/kibana/protos/*.py", "coordinator/**/*.py", "shared/*.py")


def _norm(line: str) -> str:
    s = line.strip()
    if not s.startswith(("#", '"', "'")):
        s = re.sub(r"\s+#.*$", "", s)
    return " ".join(s.split())


def _blocks() -> list[tuple[int, list[str]]]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^([ \t]*)```python\n(.*?)^\1```", text, re.S | re.M):
        indent = m.group(1)
        lines = [ln[len(indent):] if ln.startswith(indent) else ln for ln in m.group(2).splitlines()]
        out.append((text[:m.start()].count("\n") + 1, lines))
    return out


def _found_in(block: list[str], lines: list[str]) -> bool:
    i = 0
    for pat in (_norm(b) for b in block if b.strip()):
        if pat == "...":
            continue
        if pat.endswith("...") and pat != "...":
            prefix = pat[:-3].strip()
            while i < len(lines) and not lines[i].startswith(prefix):
                i += 1
        else:
            while i < len(lines) and lines[i] != pat:
                i += 1
        if i >= len(lines):
            return False
        i += 1
    return True


FILES = {p: [_norm(ln) for ln in p.read_text(encoding="utf-8").splitlines()]
         for pattern in SOURCES for p in ROOT.glob(pattern)}


@pytest.mark.parametrize("line,block", _blocks(), ids=lambda v: "line%d" % v if isinstance(v, int) else "")
def test_code_block_is_taken_from_a_real_file(line, block):
    assert any(_found_in(block, lines) for lines in FILES.values()), \
        "docs/adding-a-protocol.md line %d: this block is not in any source file:\n%s" % (line, "\n".join(block))


def test_the_guide_has_code_blocks_and_the_checker_can_fail():
    blocks = _blocks()
    assert len(blocks) >= 10
    line, block = blocks[0]
    assert not any(_found_in(block + ["this_line_is_in_no_file()"], lines) for lines in FILES.values())
