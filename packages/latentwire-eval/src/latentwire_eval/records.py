"""The two records evaluation writes: one per prediction (``eval/predictions.parquet``) and one per
metric result (``eval/metrics.json`` ``results``). Every producer builds them here, so the columns a
reader (report, dashboard, sweep aggregation) relies on are named once.

Torch- and pandas-free; ``as_row()`` gives the flat dict a table row holds (optional fields that were
not measured are left out, so a column exists only where some method measured it).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["MetricResult", "Prediction"]


@attrs.define(kw_only=True)
class Prediction:
    """One example answered by one (model, method).

    ``scores`` holds the task's metrics by name (``accuracy``, ``em``, ``f1``, ...), flattened into
    columns; ``extra`` holds method-specific columns (``picked_model`` of a combined method,
    ``features`` of the linear probe, ``nll_per_token`` and first-token ranks of gold scoring).
    """

    example_id: str
    model: str
    method: str
    source: str
    output: str
    gold: str
    slot_tokens: int
    wire_bytes: int
    prompt_utf8_bytes: int
    latency_s: float
    label_logprobs: list[float] = attrs.field(factory=list)
    confidence: float = float("nan")
    raw_output: str | None = None
    has_answer: bool | None = None
    group: str | None = None
    prompt_tokens: int | None = None
    compressed_utf8_bytes: int | None = None
    compressed_zstd_bytes: int | None = (
        None  # what the wire replaces, zstd level 19 (latentwire_eval.bytesize)
    )
    compressed_gzip_bytes: int | None = None  # the same, gzip level 9
    encoded_utf8_bytes: int | None = None
    answer_in_slot: bool | None = None
    scores: dict[str, float] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)

    def as_row(self) -> dict[str, Any]:
        row = {
            f.name: getattr(self, f.name)
            for f in attrs.fields(Prediction)
            if f.name not in ("scores", "extra") and getattr(self, f.name) is not None
        }
        return {**row, **self.extra, **self.scores}


@attrs.define(kw_only=True)
class MetricResult:
    """One metric of one (model, method) on one subset, with its 95% CI and what the method sent."""

    model: str
    method: str
    subset: str
    metric: str
    higher_is_better: bool
    value: float
    ci_low: float
    ci_high: float
    ci_method: str
    n: int
    n_groups: int
    slot_tokens: float
    prompt_tokens: float | None
    wire_bytes: float
    prompt_utf8_bytes: float
    latency_s: float
    token_compression: float | None = None
    byte_compression: float | None = None
    coverage: dict[str, float | None] = attrs.field(factory=dict)  # what the method read (encoded bytes, ...)

    def as_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in attrs.fields(MetricResult) if f.name != "coverage"}
        return {**row, **self.coverage}
