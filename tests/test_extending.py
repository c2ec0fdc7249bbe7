"""The "Extending" examples of docs/extending.md, each registered here exactly as it would be in its module.

An encoder, a calibration, a metric and a task are each one registration; the runner's config and
the library pick them up by name. (The evaluation-method example runs end to end through the runner
in tests/eval/test_methods.py.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from latentwire_core import LatentWire
from latentwire_core.calibration import CALIBRATIONS, RMSCalibration
from latentwire_core.config import INTERLINGUAS, InterlinguaConfig, LatentWireConfig
from latentwire_core.interlingua import chunk_weights, slot_counts, zero_past_counts


@pytest.fixture
def max_pool() -> Iterator[str]:
    @INTERLINGUAS.register("max_pool")
    class MaxPoolEncoder(nn.Module):
        """Max of the features in M contiguous chunks (or one chunk per ``ratio`` tokens), then to d_z."""

        def __init__(self, cfg: InterlinguaConfig) -> None:
            super().__init__()
            self.n_tokens, self.d_z, self.ratio = cfg.n_tokens, cfg.d_z, cfg.ratio
            self.proj = nn.Linear(cfg.d_in, cfg.d_z)

        def forward(
            self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
        ) -> torch.Tensor:
            if counts is None and self.ratio > 0:
                counts = slot_counts(mask, n_tokens=self.n_tokens, ratio=self.ratio)
            w = chunk_weights(mask, self.n_tokens if counts is None else counts)  # (B, M, T)
            inside = (w > 0)[..., None]  # (B, M, T, 1)
            x = features[:, None].masked_fill(~inside, float("-inf")).amax(dim=2)  # (B, M, d_f)
            return zero_past_counts(self.proj(torch.nan_to_num(x, neginf=0.0)), counts)

    yield "max_pool"
    INTERLINGUAS._items.pop("max_pool")


@pytest.fixture
def clipped() -> Iterator[str]:
    @CALIBRATIONS.register("clipped")
    class ClippedRMS(RMSCalibration):
        """RMS calibration, then every value clipped to three times the reader's embedding RMS."""

        def forward(
            self, soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None
        ) -> torch.Tensor:
            out = super().forward(soft, target_rms=target_rms, counts=counts)
            return out.clamp(-3 * target_rms, 3 * target_rms)

    yield "clipped"
    CALIBRATIONS._items.pop("clipped")


def test_a_new_encoder_and_calibration_are_picked_by_name(max_pool: str, clipped: str) -> None:
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind=max_pool, d_in=8, d_z=16, n_tokens=3), calibration=clipped
    )
    wire = LatentWire(cfg, {"reader": (12, 0.5)})
    feats, mask = torch.randn(2, 7, 8), torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    soft = wire(feats, mask, ["reader"]).soft["reader"]
    assert soft.shape == (2, 3, 12) and soft.abs().max() <= 1.5 + 1e-6
    feats2 = feats.clone()
    feats2[1, 4:] = 99.0  # padding content never reaches the latent
    torch.testing.assert_close(wire(feats2, mask, ["reader"]).soft["reader"], soft)


def test_the_runner_config_accepts_the_new_names(max_pool: str, clipped: str, tmp_path) -> None:
    from runner.config import load_experiment

    p = tmp_path / "x.toml"
    p.write_text(f'name = "x"\n[wire]\ncalibration = "{clipped}"\n[wire.encoder]\nkind = "{max_pool}"\n')
    exp = load_experiment(p)
    assert (exp.wire.encoder.kind, exp.wire.calibration) == (max_pool, clipped)


def test_a_new_metric_is_scored_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import attrs
    import pandas as pd

    from latentwire_core.tasks import TASK_KINDS, get_task
    from latentwire_eval.analysis import compute_metrics
    from latentwire_eval.metrics import METRICS, MetricSpec, metric_fns, normalize_answer

    def contains_gold(pred: str, golds: list[str]) -> float:
        """1 when a normalised gold answer occurs inside the normalised prediction."""
        p = normalize_answer(pred)
        return float(any(normalize_answer(g) and normalize_answer(g) in p for g in golds))

    monkeypatch.setitem(METRICS, "contains", MetricSpec("contains", contains_gold))
    monkeypatch.setitem(TASK_KINDS, "qa", attrs.evolve(TASK_KINDS["qa"], metrics=("em", "f1", "contains")))
    assert get_task("squad").metrics[-1] == "contains"
    fns = metric_fns(get_task("squad"))
    assert (
        fns["contains"]("in Denver, Colorado", ["Denver"]) == 1.0
        and fns["em"]("in Denver", ["Denver"]) == 0.0
    )
    # SQuAD v2 wraps every QA metric, an added one too (it raised KeyError before)
    v2 = metric_fns(get_task("squad_v2"))
    assert v2["contains"]("in Denver, Colorado", ["Denver"]) == 1.0
    assert v2["contains"]("unanswerable", []) == 0.0 and v2["em"]("unanswerable", []) == 1.0
    rows = [
        {"example_id": f"e{i}", "model": "m", "method": k, "group": f"g{i}", "has_answer": True,
         "em": 0.0, "f1": 0.5, "contains": float(i % 2), "slot_tokens": 4, "wire_bytes": 0,
         "prompt_utf8_bytes": 10, "latency_s": 0.0}
        for i in range(20)
        for k in ("latent", "text")
    ]  # fmt: skip
    out = compute_metrics(pd.DataFrame(rows), task=get_task("squad"), n_resamples=200)
    got = {(r["method"], r["metric"]): r["value"] for r in out["results"]}
    assert got[("latent", "contains")] == pytest.approx(0.5)
    tested = {(c["latent_vs"], c["metric"]) for c in out["comparisons"]}
    assert ("text", "contains") in tested  # paired test and Holm like every other metric
