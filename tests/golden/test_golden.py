"""Golden files: the whole pipeline over the project's captures, compared field by field.

Setting UPDATE_GOLDEN=1 rewrites expected/<name>.json from the current output
(Packetbeat's test_0099_golden_files.py with GENERATE); review the diff before
committing it.
"""
from __future__ import annotations

import json
import os
import pathlib

import pytest
import yaml

from tests.helpers import canonical, run_packetbeat

HERE = pathlib.Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "cases.yml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden(case, tmp_path):
    proc, events = run_packetbeat(tmp_path, HERE / case["pcap"], protocols=case["protocols"], workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [json.loads(s) for s in canonical(events)]
    path = HERE / "expected" / ("%s.json" % case["name"])
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g == e
