"""Statistics with scipy / statsmodels: BCa bootstrap CIs, paired tests, Holm correction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

__all__ = ["bootstrap_ci", "holm", "mcnemar_test", "paired_bootstrap", "paired_permutation"]


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and its BCa bootstrap CI (``scipy.stats.bootstrap``); a constant sample gives a zero-width CI."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return mean, mean, mean
    for method in ("BCa", "percentile"):  # BCa can degenerate on near-constant data
        res = sps.bootstrap(
            (x,),
            np.mean,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method=method,
            random_state=np.random.default_rng(seed),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            break
    return mean, lo, hi


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Mean difference ``a - b`` on the same examples, its BCa CI and a two-sided bootstrap p-value."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    d = x - y
    mean, lo, hi = bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    boot = d[idx].mean(axis=1)
    # p: how often the recentred bootstrap mean is as extreme as the observed mean
    p = float(np.mean(np.abs(boot - d.mean()) >= abs(d.mean()))) if d.size else float("nan")
    return {"diff": mean, "ci_low": lo, "ci_high": hi, "p_value": max(p, 1.0 / (n_resamples + 1))}


def paired_permutation(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 5000, seed: int = 0
) -> float:
    """Two-sided paired permutation (sign-flip) test p-value (``scipy.stats.permutation_test``)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.all(x == y):
        return 1.0
    res = sps.permutation_test(
        (x, y),
        lambda u, v, axis: np.mean(u - v, axis=axis),
        permutation_type="samples",
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def mcnemar_test(correct_a: Sequence[float], correct_b: Sequence[float]) -> dict[str, float]:
    """McNemar's exact test on paired binary outcomes (statsmodels)."""
    a, b = np.asarray(correct_a) > 0.5, np.asarray(correct_b) > 0.5
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    res = mcnemar(table, exact=True)
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "a_only": table[0][1],
        "b_only": table[1][0],
    }


def holm(p_values: Sequence[float], *, alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests``)."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]
