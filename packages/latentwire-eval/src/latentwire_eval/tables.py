"""Markdown tables, written one way: a header row, a ``---`` rule, one row per record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["markdown_table"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a GitHub-flavoured markdown table; cells are ``str()``-ed and their ``|`` escaped.

    Raises:
        ValueError: a row has another number of cells than the header (named by its index).
    """
    lines = [_row(header), "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"table row {i} has {len(row)} cells, the header {len(header)}: {list(row)!r}")
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
