"""structlog set-up: JSON lines to a file and readable console output."""

from __future__ import annotations

import logging as _stdlib_logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger"]

_FILE: TextIO | None = None


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now* (test runners and notebooks swap it)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def configure_logging(
    log_file: Path | None = None, *, level: str = "info", json_console: bool = False
) -> None:
    """Route structlog events to stderr (console renderer, or JSON lines with ``json_console``: a
    service's logs) and, optionally, a JSONL file."""
    global _FILE
    if _FILE is not None:
        _FILE.close()
        _FILE = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _FILE = log_file.open("a", encoding="utf-8")
    json_render = structlog.processors.JSONRenderer()
    console = structlog.dev.ConsoleRenderer(colors=False)

    def tee(logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        if _FILE is not None:
            _FILE.write(str(json_render(logger, method, dict(event))) + "\n")
            _FILE.flush()
        return str((json_render if json_console else console)(logger, method, event))

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            tee,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            _stdlib_logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
