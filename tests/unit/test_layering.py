"""``shared/`` is the bottom layer: nothing in it imports the coordinator
(at module level or inside a function, directly or through importlib)."""
from __future__ import annotations

import ast

from tests.helpers import ROOT


def _coordinator_imports(path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found += ["%d: import %s" % (n.lineno, a.name) for a in n.names
                      if a.name == "coordinator" or a.name.startswith("coordinator.")]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module and \
                (n.module == "coordinator" or n.module.startswith("coordinator.")):
            found.append("%d: from %s import ..." % (n.lineno, n.module))
        elif isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant) and \
                isinstance(n.args[0].value, str) and n.args[0].value.startswith("coordinator") and \
                getattr(n.func, "attr", getattr(n.func, "id", "")) in ("import_module", "__import__"):
            found.append("%d: import_module(%r)" % (n.lineno, n.args[0].value))
    return found


def test_shared_does_not_import_the_coordinator():
    files = sorted((ROOT / "shared").rglob("*.py"))
    assert len(files) > 10
    bad = {str(p.relative_to(ROOT)): hits for p in files if (hits := _coordinator_imports(p))}
    assert not bad, bad


def test_the_check_sees_local_and_dynamic_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from coordinator.publisher.outputs import encode_event\n"
                 "import importlib\nimportlib.import_module('coordinator.setup')\nimport coordinator\n")
    assert len(_coordinator_imports(p)) == 3
