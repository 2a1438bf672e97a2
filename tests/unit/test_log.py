"""shared/log.py: where the lines go and how they look (logging.* options)."""
from __future__ import annotations

import json
import logging
import os
import stat

from coordinator.config import validate_tree


def _cfg(tmp_path, **logging_opts):
    tree = {"output": {"console": {}}, "path": {"home": str(tmp_path)}, "logging": logging_opts}
    return validate_tree(tree).logging


def _log(cfg, role="coordinator", to_stderr=False):
    from shared.log import setup_logging
    setup_logging(cfg, role, to_stderr)
    logging.getLogger("packetbeat.test").info("hello %s", role)
    logging.getLogger("packetbeat.test").debug("a debug line")
    for h in logging.getLogger("packetbeat").handlers:
        h.flush()


def teardown_function(_):
    root = logging.getLogger("packetbeat")
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()


def test_files_default_under_path_logs_with_mode_and_rotation_on_start(tmp_path):
    cfg = _cfg(tmp_path, files={"keepfiles": 2})
    for i in range(4):
        _log(cfg)
    logs = tmp_path / "logs"
    assert sorted(os.listdir(logs)) == ["packetbeat", "packetbeat.1", "packetbeat.2"]
    assert stat.S_IMODE((logs / "packetbeat").stat().st_mode) == 0o600
    assert "hello coordinator" in (logs / "packetbeat").read_text() and "debug" not in (logs / "packetbeat").read_text()
    _log(cfg, role="worker-0")                         # a child appends to the coordinator's file
    assert (logs / "packetbeat").read_text().count("hello") == 2


def test_no_rotation_on_start_size_rotation_name_and_level(tmp_path):
    cfg = _cfg(tmp_path, level="debug", files={"path": str(tmp_path / "l"), "name": "pb.log",
                                              "rotateonstartup": False, "rotateeverybytes": 200,
                                              "permissions": 0o640})
    _log(cfg)
    _log(cfg)
    names = sorted(os.listdir(tmp_path / "l"))
    assert names[0] == "pb.log" and len(names) >= 2          # 200 bytes: rotated by size, not at start
    text = "".join((tmp_path / "l" / n).read_text() for n in names)
    assert text.count("hello coordinator") == 2 and "a debug line" in text
    assert stat.S_IMODE((tmp_path / "l" / "pb.log").stat().st_mode) == 0o640


def test_json_lines_ecs_and_legacy(tmp_path):
    cfg = _cfg(tmp_path, json=True)
    _log(cfg, role="publisher")
    doc = json.loads((tmp_path / "logs" / "packetbeat").read_text().splitlines()[-1])
    assert doc["log.level"] == "info" and doc["log.logger"] == "test" and doc["message"] == "hello publisher"
    assert doc["@timestamp"].endswith("Z") and doc["log.origin"]["file.name"] == "test_log.py"
    assert doc["packetbeat.process"] == "publisher" and doc["service.name"] == "packetbeat"
    cfg = _cfg(tmp_path, json=True, ecs=False, files={"name": "legacy"})
    _log(cfg)
    doc = json.loads((tmp_path / "logs" / "legacy").read_text().splitlines()[-1])
    assert doc["level"] == "info" and doc["logger"] == "test" and doc["caller"].startswith("test_log.py:")


def test_stderr_and_nowhere(tmp_path, capfd):
    _log(_cfg(tmp_path, to_stderr=True))
    assert "hello coordinator" in capfd.readouterr().err and not (tmp_path / "logs").exists()
    _log(_cfg(tmp_path), to_stderr=True)               # -e
    assert "hello coordinator" in capfd.readouterr().err and not (tmp_path / "logs").exists()
    _log(_cfg(tmp_path, to_files=False))               # neither: nothing, as Beats
    assert capfd.readouterr().err == "" and not (tmp_path / "logs").exists()
