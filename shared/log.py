"""Logging set-up shared by every process (Packetbeat's logging.* options).

Loggers are named ``packetbeat.<selector>``; ``-d SELECTORS`` (or
``logging.selectors``) turns on debug for those selectors, ``*`` for all.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

FORMAT = "%(asctime)s %(levelname)-5s [{role}] %(name)s: %(message)s"


def setup_logging(cfg: dict, role: str, to_stderr: bool = False, selectors: list[str] | None = None) -> None:
    root = logging.getLogger("packetbeat")
    root.handlers.clear()
    root.propagate = False
    level = getattr(logging, str(cfg.get("level", "info")).upper(), logging.INFO)
    sels = list(selectors or []) + list(cfg.get("selectors") or [])
    if sels:
        level = min(level, logging.INFO)
    root.setLevel(logging.DEBUG if "*" in sels else level)
    for sel in sels:
        if sel != "*":
            logging.getLogger("packetbeat." + sel).setLevel(logging.DEBUG)
    fmt = logging.Formatter(FORMAT.replace("{role}", role))
    if to_stderr or cfg.get("to_stderr") or not cfg.get("to_files", True):
        h: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        files = cfg.get("files") or {}
        path = files.get("path") or "logs"
        name = files.get("name") or "packetbeat"
        os.makedirs(path, exist_ok=True)
        h = logging.handlers.RotatingFileHandler(
            os.path.join(path, name), maxBytes=int(files.get("rotateeverybytes", 10 * 1024 * 1024)),
            backupCount=int(files.get("keepfiles", 7)))
    h.setFormatter(fmt)
    root.addHandler(h)
