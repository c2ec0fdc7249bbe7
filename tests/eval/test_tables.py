"""Markdown tables: one header, one rule, one line per row, pipes escaped, ragged rows refused."""

from __future__ import annotations

import pytest

from latentwire_eval.tables import markdown_table


def test_a_table_has_a_header_a_rule_and_one_line_per_row() -> None:
    lines = markdown_table(["model", "EM"], [["smollm2", "0.990"], ["gemma3", 1]])
    assert lines == ["| model | EM |", "|---|---|", "| smollm2 | 0.990 |", "| gemma3 | 1 |"]


def test_a_pipe_in_a_cell_is_escaped_so_the_columns_stay() -> None:
    (row,) = markdown_table(["tokens"], [["'a|b'"]])[2:]
    assert row == "| 'a\\|b' |"


def test_a_ragged_row_is_refused_with_its_index() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        markdown_table(["a", "b"], [["1", "2"], ["3"]])
