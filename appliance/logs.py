"""Logging set-up: text or JSON lines on stderr, journald-friendly under systemd.

Code logs with `logging.getLogger(__name__)`, %-style arguments and structured
`extra={"tenant": ..., "integration": ...}`; both formats carry those fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

# Fields a record may carry through `extra=`; shown by both formatters.
CONTEXT_FIELDS = ("tenant", "integration", "worker", "pid_child", "node")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# syslog priorities, which journald reads from a "<N>" prefix.
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def _context(record: logging.LogRecord) -> dict:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)}


class TextFormatter(logging.Formatter):
    def __init__(self, journald: bool):
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        context = " ".join(f"{k}={v}" for k, v in _context(record).items())
        if context:
            message = f"{message} [{context}]"
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if self.journald:  # journald adds the time and the pid itself
            return f"<{_SYSLOG.get(record.levelno, 6)}>{record.name}: {message}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        return f"{stamp}.{int(record.msecs):03d} {record.levelname:<7} {record.name}[{record.process}]: {message}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(level: str = "info", fmt: str = "text") -> None:
    """(Re)configure the root logger. Safe to call again, e.g. on SIGHUP or in a forked child."""
    handler = logging.StreamHandler(sys.stderr)
    journald = bool(os.environ.get("JOURNAL_STREAM")) and fmt == "text"
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(journald))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # Library chatter stays at warning unless we are debugging.
    for noisy in ("asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(_LEVELS.get(level, logging.INFO))
