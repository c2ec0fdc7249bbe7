"""When a generated answer is complete.

QA answers are scored on their first non-empty line only (``latentwire_eval.metrics.first_line``),
so generation may stop for a row as soon as that line has ended: what follows is never read.
"""

from __future__ import annotations

__all__ = ["line_complete"]


def line_complete(text: str) -> bool:
    """True once ``text`` holds a newline after some non-whitespace (leading blank lines do not count)."""
    return "\n" in text.lstrip()
