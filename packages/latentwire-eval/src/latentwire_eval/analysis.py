"""The analysis behind a report: per (model, method) metric means with 95% CIs, and the latent against
each baseline in paired tests (paired by example id), Holm-corrected. Rendering is :mod:`.report`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentwire_core.tasks import TaskSpec
from latentwire_eval.methods.base import ALL_READERS, NO_READER
from latentwire_eval.metrics import GOLD_METRICS, METRICS, headline_of
from latentwire_eval.records import MetricResult
from latentwire_eval.stats import holm, mcnemar_test, mean_ci, paired_bootstrap

__all__ = ["compute_metrics"]


def _coverage(g: pd.DataFrame) -> dict[str, float | None]:
    """What the method read: tokens/bytes actually encoded and how often the answer was cut away."""
    out: dict[str, float | None] = {}
    for col in (
        "encoded_utf8_bytes",
        "encoded_tokens",
        "answer_in_slot",
        "compressed_utf8_bytes",
        "compressed_zstd_bytes",
        "compressed_gzip_bytes",
    ):
        if col in g and g[col].notna().any():
            out[col] = float(g[col].astype(float).mean())
    return out


def compute_metrics(
    preds: pd.DataFrame,
    *,
    task: TaskSpec,
    eval_labels: Sequence[int | None] = (),
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per (model, method): metric mean, BCa 95% CI, n; latent vs each baseline: paired tests, Holm-corrected.

    Returns a JSON-ready dict (what ``eval/metrics.json`` holds).
    """
    task_metrics = task.metrics
    metric_names = [*task_metrics, *[m for m in GOLD_METRICS if m in preds.columns]]
    results: list[dict[str, Any]] = []
    # the full text's slot length per (model, example): the reference for token compression
    text_tokens = (
        preds[preds["method"] == "text"].set_index(["model", "example_id"])["slot_tokens"]
        if "text" in set(preds["method"])
        else None
    )
    for (model, method), g in preds.groupby(["model", "method"], sort=False):
        comp: dict[str, float | None] = {"token_compression": None, "byte_compression": None}
        if text_tokens is not None:
            ref = text_tokens.reindex(pd.MultiIndex.from_arrays([g["model"], g["example_id"]])).to_numpy(
                float
            )
            slot = g["slot_tokens"].to_numpy(float)
            ratio = np.where(slot > 0, ref / np.maximum(slot, 1), np.nan)  # an empty slot has no ratio
            if np.isfinite(ratio).any():  # rows with no text reference (probe, joint, oracle) have none
                comp["token_compression"] = float(np.nanmean(ratio))
        if (g["wire_bytes"] > 0).all():
            # bytes the method actually encoded (after truncation), not the whole source
            read = g["encoded_utf8_bytes"] if "encoded_utf8_bytes" in g else g["prompt_utf8_bytes"]
            comp["byte_compression"] = float((read.astype(float) / g["wire_bytes"]).mean())
        subsets: list[tuple[str, pd.DataFrame]] = [("all", g)]
        if "has_answer" in g and task.scoring == "squad_v2":  # SQuAD v2 reports HasAns / NoAns apart
            subsets += [("has_answer", g[g["has_answer"]]), ("no_answer", g[~g["has_answer"]])]
        for subset, sg in subsets:
            for metric in metric_names:
                if metric not in sg or sg[metric].isna().all() or sg.empty:
                    continue
                vals = sg[metric].dropna()
                groups = sg.loc[vals.index, "group"].tolist() if "group" in sg else None
                mean, lo, hi, how = mean_ci(
                    vals.to_numpy(), groups=groups, n_resamples=n_resamples, seed=seed
                )
                results.append(
                    MetricResult(
                        model=str(model),
                        method=str(method),
                        subset=subset,
                        ci_method=how,
                        n_groups=len(set(groups)) if groups is not None else len(vals),
                        metric=metric,
                        higher_is_better=(METRICS | GOLD_METRICS)[metric].higher_is_better,
                        value=mean,
                        ci_low=lo,
                        ci_high=hi,
                        n=len(vals),
                        slot_tokens=float(sg["slot_tokens"].mean()),
                        prompt_tokens=float(sg["prompt_tokens"].mean()) if "prompt_tokens" in sg else None,
                        wire_bytes=float(sg["wire_bytes"].mean()),
                        prompt_utf8_bytes=float(sg["prompt_utf8_bytes"].mean()),
                        latency_s=float(sg["latency_s"].mean()),
                        token_compression=comp["token_compression"],
                        byte_compression=comp["byte_compression"],
                        coverage=_coverage(sg),
                    ).as_row()
                )
    comparisons: list[dict[str, Any]] = []
    refs = preds[
        preds["model"] == NO_READER
    ]  # answered without a reader: compared with every reader's latent
    for model, g in preds.groupby("model", sort=False):
        if "latent" not in set(g["method"]) or model in (ALL_READERS, NO_READER):
            continue
        lat = g[g["method"] == "latent"].set_index("example_id")
        others = {m: g[g["method"] == m] for m in g["method"].unique() if m != "latent"}
        others.update({m: refs[refs["method"] == m] for m in refs["method"].unique()})
        for method, og in others.items():
            other = og.set_index("example_id").reindex(lat.index)  # paired by example id, not row order
            groups = lat["group"].tolist() if "group" in lat else None
            for metric in task_metrics:
                a, b = lat[metric].to_numpy(float), other[metric].to_numpy(float)
                pb = paired_bootstrap(a, b, groups=groups, n_resamples=n_resamples, seed=seed)
                row = {"model": model, "metric": metric, "latent_vs": method, "n": len(a), **pb}
                if set(np.unique(np.concatenate([a, b]))) <= {0.0, 1.0}:
                    mc = mcnemar_test(a, b)
                    row.update(p_mcnemar=mc["p_value"], latent_only=mc["a_only"], baseline_only=mc["b_only"])
                comparisons.append(row)
    for metric in task_metrics:  # Holm across every (model, baseline) comparison of this metric
        rows = [c for c in comparisons if c["metric"] == metric]
        key = "p_mcnemar" if rows and all("p_mcnemar" in c for c in rows) else "p_value"
        for c, adj in zip(rows, holm([c[key] for c in rows]), strict=True):
            c["p_holm"], c["p_holm_of"] = adj, key
    out: dict[str, Any] = {
        "task": task.name,
        "headline": headline_of(task),
        "metrics": list(metric_names),
        "results": results,
        "comparisons": comparisons,
    }
    labels = [lab for lab in eval_labels if lab is not None]
    if task.kind == "classification" and labels:
        counts = np.bincount(labels, minlength=len(task.labels))
        out["majority_class"] = {
            "label": task.labels[int(counts.argmax())].strip(),
            "rate_on_eval": float(counts.max() / counts.sum()),
            "n": int(counts.sum()),
        }
    return out
