"""Two runs compared example by example (the add-a-reader study's statistics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentwire_eval.compare import paired_runs
from latentwire_eval.stats import mcnemar_test


def _preds(model: str, scores: list[float], ids: list[str] | None = None) -> pd.DataFrame:
    ids = ids or [f"e{i}" for i in range(len(scores))]
    return pd.DataFrame(
        {"example_id": ids, "model": model, "method": "latent", "accuracy": scores, "group": ids}
    )


def test_pairs_by_example_id_not_row_order() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 200).astype(float).tolist()
    b = rng.integers(0, 2, 200).astype(float).tolist()
    pa, pb = _preds("gemma3-270m", a), _preds("gemma3-270m", b)
    ref = paired_runs(pa, pb, model_a="gemma3-270m")
    shuffled = paired_runs(pa.sample(frac=1.0, random_state=1), pb, model_a="gemma3-270m")
    assert ref["diff"] == shuffled["diff"] and ref["p_mcnemar"] == shuffled["p_mcnemar"]
    assert ref["n"] == 200 and ref["a"]["value"] == pytest.approx(np.mean(a))
    assert ref["ratio"]["value"] == pytest.approx(np.mean(a) / np.mean(b))
    assert ref["ratio"]["ci_low"] < ref["ratio"]["value"] < ref["ratio"]["ci_high"]
    assert ref["p_mcnemar"] == pytest.approx(mcnemar_test(a, b)["p_value"])
    assert ref["a"]["ci_method"] == "Wilson"  # one example per group: 0/1 outcomes


def test_identical_answers_give_ratio_one_and_no_difference() -> None:
    s = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0] * 20
    out = paired_runs(_preds("smollm2-135m", s), _preds("smollm2-135m", s), model_a="smollm2-135m")
    assert out["identical"] == 1.0 and out["diff"]["diff"] == 0.0 and out["ratio"]["value"] == 1.0
    assert out["ratio"]["ci_low"] == out["ratio"]["ci_high"] == 1.0
    assert out["p_mcnemar"] == 1.0


def test_only_shared_examples_count_and_bad_requests_are_named() -> None:
    a = _preds("m", [1.0, 0.0, 1.0], ["x", "y", "z"])
    b = _preds("m", [1.0, 1.0], ["y", "z"])
    assert paired_runs(a, b, model_a="m", n_resamples=200)["n"] == 2
    with pytest.raises(KeyError, match="no rows for model 'other'"):
        paired_runs(a, b, model_a="other")
    with pytest.raises(KeyError, match="no metric 'f1'"):
        paired_runs(a, b, model_a="m", metric="f1")
    with pytest.raises(ValueError, match="share no example"):
        paired_runs(a, _preds("m", [1.0], ["w"]), model_a="m")
