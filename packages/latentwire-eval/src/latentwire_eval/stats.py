"""Statistics with scipy / statsmodels: confidence intervals, paired tests, Holm correction.

Which interval a mean gets (:func:`mean_ci`):

* examples grouped in clusters (SQuAD questions share an article; they are not independent):
  a cluster bootstrap, resampling whole clusters (``scipy.stats.bootstrap``, BCa, on the
  per-cluster sums and counts, statistic = ratio of their totals);
* binary values (EM, accuracy) without clusters: the Wilson score interval
  (``statsmodels.stats.proportion.proportion_confint``), which stays honest at 0/n and n/n;
* anything else: the BCa bootstrap of the mean.

Paired tests pair by example id (the caller aligns rows); the paired bootstrap resamples
clusters of per-example differences when clusters are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

Values: TypeAlias = Sequence[float] | np.ndarray

__all__ = [
    "bootstrap_ci",
    "cluster_bootstrap_ci",
    "holm",
    "mcnemar_test",
    "mean_ci",
    "paired_bootstrap",
    "paired_permutation",
    "wilson_ci",
]


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def wilson_ci(values: Values, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of 0/1 values and its Wilson score interval (non-zero width at 0/n and n/n)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if not _is_binary(x):
        raise ValueError("wilson_ci needs 0/1 values")
    k = int(x.sum())
    lo, hi = proportion_confint(k, x.size, alpha=1 - confidence, method="wilson")
    mean = float(x.mean())
    return mean, min(float(lo), mean), max(float(hi), mean)  # float rounding at 0/n and n/n


def bootstrap_ci(
    values: Values, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and its BCa bootstrap CI (``scipy.stats.bootstrap``).

    A constant sample has no sampling variability the bootstrap can see: binary values then get the
    Wilson interval, others a zero-width interval (use :func:`mean_ci` to pick the method).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return wilson_ci(x, confidence=confidence) if _is_binary(x) else (mean, mean, mean)
    lo, hi = _scipy_ci((x,), np.mean, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return mean, lo, hi


def _scipy_ci(
    data: tuple[np.ndarray, ...], statistic: Any, *, confidence: float, n_resamples: int, seed: int, **kw: Any
) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` BCa interval, falling back to percentile where BCa degenerates."""
    lo = hi = float("nan")
    for method in ("BCa", "percentile"):  # BCa can degenerate on near-constant data
        res = sps.bootstrap(
            data,
            statistic,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method=method,
            random_state=np.random.default_rng(seed),
            **kw,
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            break
    return lo, hi


def _cluster_totals(x: np.ndarray, groups: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    keys = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    idx = np.fromiter((keys[g] for g in groups), dtype=np.int64, count=len(groups))
    sums = np.bincount(idx, weights=x, minlength=len(keys))
    counts = np.bincount(idx, minlength=len(keys)).astype(float)
    return sums, counts


def cluster_bootstrap_ci(
    values: Values,
    groups: Sequence[object],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean over examples and a CI that resamples whole clusters (articles, documents).

    The statistic is ``sum(values in drawn clusters) / count(examples in drawn clusters)``:
    scipy's BCa bootstrap over the paired per-cluster (sum, count) arrays.
    """
    x = np.asarray(values, dtype=float)
    if len(groups) != x.size:
        raise ValueError(f"{x.size} values but {len(groups)} group labels")
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    sums, counts = _cluster_totals(x, groups)
    if sums.size < 2 or np.all(x == x[0]):
        return bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, seed=seed)

    def ratio(s: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        out: np.ndarray = s.sum(axis=axis) / c.sum(axis=axis)
        return out

    lo, hi = _scipy_ci(
        (sums, counts), ratio, confidence=confidence, n_resamples=n_resamples, seed=seed, paired=True
    )
    return mean, lo, hi


def mean_ci(
    values: Values,
    *,
    groups: Sequence[object] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, str]:
    """Mean, CI and the name of the method used (see the module docstring for the rule)."""
    x = np.asarray(values, dtype=float)
    if groups is not None and 1 < len(set(groups)) < x.size:
        return (
            *cluster_bootstrap_ci(x, groups, confidence=confidence, n_resamples=n_resamples, seed=seed),
            "cluster bootstrap (BCa)",
        )
    if x.size and _is_binary(x):
        return (*wilson_ci(x, confidence=confidence), "Wilson")
    return (*bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, seed=seed), "BCa bootstrap")


def paired_bootstrap(
    a: Values,
    b: Values,
    *,
    groups: Sequence[object] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Mean difference ``a - b`` on the same examples, its CI and a two-sided bootstrap p-value.

    With ``groups``, whole clusters of differences are resampled (the CI and the p-value).
    The p-value is the share of recentred bootstrap means at least as far from 0 as the observed one.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    d = x - y
    if d.size == 0:
        return {
            "diff": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "p_value": float("nan"),
        }
    rng = np.random.default_rng(seed)
    clustered = groups is not None and 1 < len(set(groups)) < d.size
    if clustered:
        assert groups is not None
        mean, lo, hi = cluster_bootstrap_ci(
            d, groups, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
        sums, counts = _cluster_totals(d, groups)
        idx = rng.integers(0, sums.size, size=(n_resamples, sums.size))
        boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    else:
        mean, lo, hi = bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
        idx = rng.integers(0, d.size, size=(n_resamples, d.size))
        boot = d[idx].mean(axis=1)
    if np.all(d == d[0]):
        # identical differences everywhere: nothing varies (a proportion's Wilson interval does not
        # apply to a difference, clustered or not)
        lo = hi = mean
    p = float(np.mean(np.abs(boot - d.mean()) >= abs(d.mean())))
    return {"diff": mean, "ci_low": lo, "ci_high": hi, "p_value": max(p, 1.0 / (n_resamples + 1))}


def paired_permutation(a: Values, b: Values, *, n_resamples: int = 5000, seed: int = 0) -> float:
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


def mcnemar_test(correct_a: Values, correct_b: Values) -> dict[str, float]:
    """McNemar's exact test on paired binary outcomes (statsmodels); only discordant pairs matter."""
    a, b = np.asarray(correct_a) > 0.5, np.asarray(correct_b) > 0.5
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    res = mcnemar(table, exact=True)
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "a_only": table[0][1],
        "b_only": table[1][0],
    }


def holm(p_values: Values, *, alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests``)."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]
