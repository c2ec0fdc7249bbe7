"""Reading JSON the project did not write itself: nesting depth and size checked before parsing.

Python's ``json`` recurses once per nesting level, so a hostile or damaged file of a few kilobytes
(``[[[[...]]]]``) ends in a ``RecursionError`` traceback wherever it is read. :func:`loads` scans the
text first (brackets outside strings, linear time, no recursion) and refuses a document nested deeper
than ``max_depth`` with a :class:`JSONDepthError` (a ``ValueError``) naming where it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MAX_DEPTH", "JSONDepthError", "loads", "read_json"]

MAX_DEPTH = 64  # every JSON file this project writes nests under 10 levels


class JSONDepthError(ValueError):
    """A JSON document nested deeper than allowed, or not JSON at all; the message names its source."""


def _depth(text: str, limit: int) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, *, where: str = "JSON", max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` after the depth check.

    Raises:
        JSONDepthError: nested deeper than ``max_depth``, not UTF-8, or not JSON (named by ``where``).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONDepthError(f"{where}: not valid UTF-8 (byte offset {e.start})") from None
    if _depth(text, max_depth) > max_depth:
        raise JSONDepthError(
            f"{where}: JSON nested deeper than {max_depth} levels (a damaged or hostile file)"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JSONDepthError(f"{where}:{e.lineno}: not JSON ({e.msg})") from None


def read_json(path: Path, *, max_bytes: int = 256 * 2**20, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON file, its size checked before it is read (at most ``max_bytes``) and its depth before parsing.

    Raises:
        JSONDepthError: too large, too deep, or not JSON (the message names the file).
        OSError: the file cannot be read.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise JSONDepthError(f"{path}: {size} bytes, over the {max_bytes}-byte cap for a JSON file")
    return loads(path.read_bytes(), where=str(path), max_depth=max_depth)
