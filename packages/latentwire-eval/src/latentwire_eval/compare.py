"""Two runs' answers to the same examples, compared per example: the add-a-reader study and any A/B.

:func:`paired_runs` takes two prediction tables (``eval/predictions.parquet``), one (model, method)
of each, pairs their rows by example id, and reports each side's mean with its CI, the paired
difference (bootstrap CI and p, exact McNemar for 0/1 metrics) and the ratio ``a / b`` of the means
with a paired BCa bootstrap CI (scipy; examples resampled one by one, so for QA the ratio's CI
ignores the clustering by article that the means' and the difference's CIs respect): e.g. the quality a reader reaches through a frozen encoder
as a share of the jointly trained one (ARC-Encoder reports 85% for OLMo).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from latentwire_eval.stats import mcnemar_test, mean_ci, paired_bootstrap

__all__ = ["paired_runs"]

_CI = ("value", "ci_low", "ci_high", "ci_method")


def _pick(preds: pd.DataFrame, model: str, method: str, metric: str) -> pd.DataFrame:
    rows = preds[(preds["model"] == model) & (preds["method"] == method)]
    if rows.empty:
        have = sorted({(str(m), str(k)) for m, k in zip(preds["model"], preds["method"], strict=True)})
        raise KeyError(f"no rows for model {model!r}, method {method!r}; have {have}")
    if metric not in rows:
        raise KeyError(f"no metric {metric!r} in the predictions; columns: {sorted(rows.columns)}")
    if rows["example_id"].duplicated().any():
        raise ValueError(f"{model}/{method}: an example id appears twice")
    cols = [metric, "group"] if "group" in rows else [metric]
    out: pd.DataFrame = rows.set_index("example_id")[cols]
    return out


def paired_runs(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    model_a: str,
    model_b: str | None = None,
    method: str = "latent",
    metric: str = "accuracy",
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare ``a``'s (model_a, method) with ``b``'s (model_b, method) on the examples both answered.

    Returns:
        ``n``, ``a`` / ``b`` (mean and 95% CI each), ``diff`` (a - b: paired bootstrap CI and p),
        ``p_mcnemar`` (0/1 metrics), ``ratio`` (mean a / mean b with a paired BCa bootstrap CI),
        ``identical`` (share of examples with exactly equal scores).

    Raises:
        KeyError: a side has no rows for its (model, method) or lacks ``metric``.
        ValueError: the two sides share no example, or an id is repeated.
    """
    sa = _pick(a, model_a, method, metric)
    sb = _pick(b, model_b or model_a, method, metric)
    ids = sa.index.intersection(
        sb.index
    ).sort_values()  # a canonical order: results do not depend on row order
    if len(ids) == 0:
        raise ValueError("the two runs share no example id")
    x, y = sa.loc[ids, metric].to_numpy(float), sb.loc[ids, metric].to_numpy(float)
    # examples that share a group (a SQuAD article) are resampled together
    groups = sa.loc[ids, "group"].astype(str).tolist() if "group" in sa else None
    diff = paired_bootstrap(x, y, groups=groups, n_resamples=n_resamples, seed=seed)
    binary = bool(np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all())
    if np.array_equal(x, y):  # every resample gives ratio 1 (BCa is undefined on a constant statistic)
        lo = hi = 1.0 if y.mean() else float("nan")
    else:
        res = sps.bootstrap(
            (x, y),
            lambda u, v, axis=-1: u.mean(axis=axis) / v.mean(axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            method="BCa",
            random_state=np.random.default_rng(seed),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    out: dict[str, Any] = {
        "n": len(ids),
        "metric": metric,
        "method": method,
        "a": dict(zip(_CI, mean_ci(x, groups=groups, n_resamples=n_resamples, seed=seed), strict=True)),
        "b": dict(zip(_CI, mean_ci(y, groups=groups, n_resamples=n_resamples, seed=seed), strict=True)),
        "diff": diff,
        "p_mcnemar": mcnemar_test(x, y)["p_value"] if binary else None,
        "ratio": {
            "value": float(x.mean() / y.mean()) if y.mean() else float("nan"),
            "ci_low": lo,
            "ci_high": hi,
        },
        "identical": float((x == y).mean()),
    }
    return out
