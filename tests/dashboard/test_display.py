"""How the dashboard's tables read (issue 24, section 6): no index column, three decimals, '–' where a
method sent nothing, '< 1e-4' for tiny p-values, integers for counts."""

from __future__ import annotations

import pandas as pd

from dashboard.display import fmt_p, styled


def test_p_values_read_as_people_read_them() -> None:
    assert fmt_p(3e-9) == "< 1e-4" and fmt_p(0.0) == "< 1e-4"
    assert fmt_p(0.012345) == "0.01235" and fmt_p(1.0) == "1"
    assert fmt_p(float("nan")) == "–" and fmt_p(None) == "–"


def test_the_metrics_table_renders_without_index_with_dashes_and_three_decimals() -> None:
    df = pd.DataFrame(
        {
            "model": ["m", "m"],
            "method": ["text", "latent"],
            "value": [0.827, 0.5],
            "n": pd.array([300, 300], dtype="Int64"),
            "wire_bytes": pd.array([0, 46], dtype="Int64"),
            "p_holm": [1e-7, 0.25],
        }
    )
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.cells: list[str] = []
            self._in = False

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self._in = tag == "td"
            if self._in:
                self.cells.append("")

        def handle_endtag(self, tag: str) -> None:
            self._in = False

        def handle_data(self, data: str) -> None:
            if self._in:
                self.cells[-1] += data

    html = styled(df).to_html()
    parser = Cells()
    parser.feed(html)
    cells = [c.strip() for c in parser.cells]
    assert cells == ["m", "text", "0.827", "300", "–", "< 1e-4", "m", "latent", "0.500", "300", "46", "0.25"]
    assert "row_heading" not in html  # no index column
    assert df["wire_bytes"].tolist() == [0, 46]  # only the display changes
