"""The linear probe reference."""

from __future__ import annotations

import numpy as np

from latentwire_eval.methods.reference import fit_linear_probe


def test_linear_probe_learns_separable_features() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 8)) + y[:, None] * 2.0
    predict = fit_linear_probe(x[:150], y[:150])
    labels, proba = predict(x[150:])
    assert (labels == y[150:]).mean() > 0.9 and proba.shape == (50, 2)
