"""Logging set-up shared by every process (Packetbeat's ``logging.*`` options).

Loggers are named ``packetbeat.<selector>``; ``-d SELECTORS`` (or
``logging.selectors``) turns on debug for those selectors, ``*`` for all.

Where the lines go, as Beats: ``-e`` or ``logging.to_stderr: true`` writes to
stderr only (Beats: "equivalent to -e", which disables the file output);
otherwise ``logging.to_files`` (default true) writes ``<files.path>/<files.name>``
(``files.path`` defaults to ``path.logs``), rotated at ``rotateeverybytes`` to
``<name>.1`` ... keeping ``keepfiles`` rotated files, created with
``permissions`` (0600), and rotated once at start-up (``rotateonstartup``, by
the coordinator only: the children append to the file it opened); with both
false, nothing is logged (the fatal ``Exiting:`` lines still go to stderr).

``logging.json: true`` writes one JSON object per line: ECS names
(``@timestamp``, ``log.level``, ``log.logger``, ``log.origin``, ``message``,
``service.name``) as Beats 8 does, or with ``logging.ecs: false`` the 7.x
names (``timestamp``, ``level``, ``logger``, ``caller``, ``message``).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

FORMAT = "%(asctime)s %(levelname)-5s [{role}] %(name)s: %(message)s"
ECS_VERSION = "1.6.0"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (Beats' JSON log lines)."""

    def __init__(self, role: str, ecs: bool = True):
        super().__init__()
        self.role = role
        self.ecs = ecs

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % int(record.msecs)
        logger = record.name.removeprefix("packetbeat.") if record.name != "packetbeat" else "packetbeat"
        level = record.levelname.lower()
        msg = record.getMessage()
        if self.ecs:
            doc = {"log.level": level, "@timestamp": ts, "log.logger": logger,
                   "log.origin": {"file.name": os.path.basename(record.pathname), "file.line": record.lineno,
                                  "function": record.funcName},
                   "message": msg, "service.name": "packetbeat", "process.pid": record.process,
                   "packetbeat.process": self.role, "ecs.version": ECS_VERSION}
        else:
            doc = {"level": level, "timestamp": ts, "logger": logger,
                   "caller": "%s:%d" % (os.path.basename(record.pathname), record.lineno), "message": msg,
                   "process": self.role}
        if record.exc_info:
            doc["error.message" if self.ecs else "error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)


_FILE_HANDLER: type | None = None


def _mode_file_handler() -> type:
    """The class of a size-rotated file created with ``mode`` (logging.files.permissions),
    made on first use: logging.handlers (and socket, pickle, queue) costs ~4 ms of start-up
    in every process, and a process logging to stderr (-e) or nowhere never needs it."""
    global _FILE_HANDLER
    if _FILE_HANDLER is None:
        import logging.handlers

        class _ModeFileHandler(logging.handlers.RotatingFileHandler):
            def __init__(self, filename: str, mode_bits: int, **kw):
                self.mode_bits = mode_bits
                super().__init__(filename, **kw)

            def _open(self):
                fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.mode_bits)
                os.fchmod(fd, self.mode_bits)
                return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)

        _FILE_HANDLER = _ModeFileHandler
    return _FILE_HANDLER


def log_file(cfg: dict) -> str:
    files = cfg.get("files") or {}
    return os.path.join(files.get("path") or "logs", files.get("name") or "packetbeat")


def setup_logging(cfg: dict, role: str, to_stderr: bool = False, selectors: list[str] | None = None) -> None:
    """``cfg``: the resolved ``logging`` section (shared/config.py LoggingConfig);
    OSError when the log file cannot be created."""
    root = logging.getLogger("packetbeat")
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.propagate = False
    level = getattr(logging, str(cfg.get("level", "info")).upper(), logging.INFO)
    sels = list(selectors or []) + list(cfg.get("selectors") or [])
    if sels:
        level = min(level, logging.INFO)
    root.setLevel(logging.DEBUG if "*" in sels else level)
    for sel in sels:
        if sel != "*":
            logging.getLogger("packetbeat." + sel).setLevel(logging.DEBUG)
    if cfg.get("json"):
        fmt: logging.Formatter = JsonFormatter(role, bool(cfg.get("ecs", True)))
    else:
        fmt = logging.Formatter(FORMAT.replace("{role}", role))
    if to_stderr or cfg.get("to_stderr"):
        h: logging.Handler = logging.StreamHandler(sys.stderr)
    elif cfg.get("to_files", True):
        files = cfg.get("files") or {}
        path = log_file(cfg)
        os.makedirs(os.path.dirname(path), 0o750, exist_ok=True)
        h = _mode_file_handler()(path, int(files.get("permissions", 0o600)),
                             maxBytes=int(files.get("rotateeverybytes", 10 * 1024 * 1024)),
                             backupCount=int(files.get("keepfiles", 7)), encoding="utf-8")
        if role == "coordinator" and files.get("rotateonstartup", True) and os.path.getsize(path) > 0:
            h.doRollover()
    else:
        h = logging.NullHandler()
    h.setFormatter(fmt)
    root.addHandler(h)
