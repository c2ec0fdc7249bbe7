"""Each chart described once. A :class:`Chart` says what a chart shows: which columns are x, y and its
interval, what colours the series and what splits the panels, which axis is logarithmic, and the titles.
Two renderers draw it: the report's matplotlib PNGs (:mod:`.report`, :mod:`.sweep`) and the dashboard's
altair charts, which read the description the report writes beside its plots (``charts.json``), since the
dashboard reads run folders only. No third place says what a chart shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["CHARTS_FILE", "QUALITY_VS_COMPRESSION", "SWEEP_CHARTS", "Chart", "write_charts"]

CHARTS_FILE = "charts.json"
"""The descriptions a report writes into its folder (a list of :meth:`Chart.as_json` objects)."""


@attrs.frozen(kw_only=True)
class Chart:
    """Args:
    name: the PNG's stem in the report folder (``<name>.png``).
    title: the chart's title.
    x, y, low, high: columns of the chart's rows: position, value and its interval.
    x_title, y_title: axis titles; ``{metric}`` in either is the metric the chart shows.
    log_x: a logarithmic x axis (the points sit at 1-1,000 tokens or bytes).
    series: the column whose values get one colour each.
    panel: the column whose values get one panel each (the dashboard marks them by shape).
    joined: a series' points are joined by a line (one series, several budgets).
    tooltip: the columns the dashboard shows on hover.
    """

    name: str
    title: str
    x: str
    x_title: str
    y: str
    y_title: str
    low: str = "ci_low"
    high: str = "ci_high"
    log_x: bool = True
    series: str = "method"
    panel: str = "model"
    joined: bool = False
    tooltip: tuple[str, ...] = ()

    def titles(self, metric: str) -> tuple[str, str]:
        """``(x_title, y_title)`` with the metric filled in."""
        return self.x_title.format(metric=metric), self.y_title.format(metric=metric)

    def as_json(self, metric: str) -> dict[str, Any]:
        """The description with its metric, as ``charts.json`` holds it."""
        x_title, y_title = self.titles(metric)
        return {
            **attrs.asdict(self),
            "tooltip": list(self.tooltip),
            "x_title": x_title,
            "y_title": y_title,
            "metric": metric,
        }


QUALITY_VS_COMPRESSION = Chart(
    name="quality_vs_compression",
    title="quality vs compression (same prompt builder, same M)",
    x="slot_tokens",
    x_title="slot length (tokens, log)",
    y="value",
    y_title="{metric} (95% CI)",
    tooltip=("model", "method", "value", "ci_low", "ci_high", "n", "wire_bytes"),
)
"""A run's headline metric per (reader, method) against the slot's length (``eval/metrics.json`` results)."""


def _sweep_chart(name: str, title: str, x: str, x_title: str, *, log_x: bool) -> Chart:
    """A sweep's metric (mean over seeds, 95% t-interval) against ``x``, one line per method and reader."""
    return Chart(
        name=name,
        title=title,
        x=x,
        x_title=x_title,
        y="mean",
        y_title="{metric} (mean over seeds, 95% t-CI)",
        log_x=log_x,
        joined=True,
        tooltip=("settings", "model", "method", "mean", "ci_low", "ci_high", "n_seeds", x),
    )


SWEEP_CHARTS = (
    _sweep_chart(
        "quality_vs_bytes",
        "quality vs bytes per example",
        "payload_bytes",
        "bytes per example, log (latent: quantised numbers + scales; text methods: UTF-8 read)",
        log_x=True,
    ),
    _sweep_chart(
        "quality_vs_compression",
        "quality vs token compression",
        "token_compression",
        "token compression (text tokens / slot tokens)",
        log_x=False,
    ),
)
"""A sweep's metric (mean over seeds) per (reader, method, settings) against its size (``report/results.csv``)."""


def write_charts(out_dir: Path, charts: Sequence[Chart], metric: str) -> Path:
    """Write the descriptions of the charts a report drew into ``out_dir/charts.json``."""
    path = out_dir / CHARTS_FILE
    path.write_text(json.dumps([c.as_json(metric) for c in charts], indent=1) + "\n", encoding="utf-8")
    return path
