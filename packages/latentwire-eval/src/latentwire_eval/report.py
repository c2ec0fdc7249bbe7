"""Metrics with CIs and paired tests from ``eval/predictions.parquet``, and ``report/summary.md`` with plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentwire_core.tasks import TaskSpec
from latentwire_eval.methods.base import ALL_READERS, NO_READER
from latentwire_eval.metrics import GOLD_METRICS, METRICS, TASK_METRICS, headline_of
from latentwire_eval.records import MetricResult
from latentwire_eval.stats import holm, mcnemar_test, mean_ci, paired_bootstrap

__all__ = ["compute_metrics", "write_report"]


def _coverage(g: pd.DataFrame) -> dict[str, float | None]:
    """What the method read: tokens/bytes actually encoded and how often the answer was cut away."""
    out: dict[str, float | None] = {}
    for col in ("encoded_utf8_bytes", "encoded_tokens", "answer_in_slot"):
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
    task_metrics = TASK_METRICS[task.kind]
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


def _fmt(v: float) -> str:
    return f"{v:.3f}"


def _plots(rep: Path, metrics: dict[str, Any], curves: pd.DataFrame | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    res = pd.DataFrame(metrics["results"])
    if not res.empty:
        metric = metrics.get("headline", metrics["metrics"][-1])
        r = res[res["metric"] == metric]
        models = [m for m in dict.fromkeys(r["model"]) if m not in (ALL_READERS, NO_READER)]
        methods = list(dict.fromkeys(r["method"]))
        colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
        fig, axes = plt.subplots(
            1, max(len(models), 1), figsize=(4.2 * max(len(models), 1) + 2, 4), sharey=True, squeeze=False
        )
        for ax, model in zip(axes[0], models, strict=False):
            for _, row in r[r["model"] == model].iterrows():
                ax.errorbar(
                    row["slot_tokens"],
                    row["value"],
                    yerr=[[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]],
                    fmt="o",
                    capsize=3,
                    color=colors[row["method"]],
                    label=row["method"],
                )
            if "majority_class" in metrics:
                ax.axhline(
                    metrics["majority_class"]["rate_on_eval"], ls="--", c="grey", label="majority class"
                )
            for _, row in r[r["model"] == NO_READER].iterrows():
                ax.axhline(row["value"], ls=":", c="black", label=f"{row['method']} (no LLM)")
            ax.set_xscale("log")
            ax.set_xlabel("slot length (tokens, log)")
            ax.set_title(model)
        axes[0][0].set_ylabel(f"{metric} (95% BCa CI)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=False))
        fig.legend(uniq.values(), uniq.keys(), loc="center right", fontsize=8)
        fig.suptitle(f"{metrics['task']}: quality vs compression (same prompt builder, same M)")
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        fig.savefig(rep / "quality_vs_compression.png", dpi=120)
        plt.close(fig)
        made.append("quality_vs_compression.png")
    if curves is not None and not curves.empty:
        cols = [c for c in curves.columns if c.endswith("/ce")]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for c in cols:
            ax.plot(curves["step"], curves[c], label=c.replace("/ce", " answer CE"))
        acc_cols = [c for c in curves.columns if c.endswith("/first_token_acc")]
        ax2 = ax.twinx()
        for c in acc_cols:
            ax2.plot(
                curves["step"], curves[c], ls=":", label=c.replace("/first_token_acc", " first-token acc")
            )
        ax.set_xlabel("step")
        ax.set_ylabel("answer cross-entropy")
        ax2.set_ylabel("first-token accuracy")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7)
        ax.set_title("training curves")
        fig.tight_layout()
        fig.savefig(rep / "training_curves.png", dpi=120)
        plt.close(fig)
        made.append("training_curves.png")
    return made


def _diagnostics_lines(diag: dict[str, Any] | None) -> list[str]:
    """The report section on soft-token scale and direction (latentwire_eval.diagnostics)."""
    if not diag:
        return []
    lines = [
        f"Soft tokens against each reader's embeddings (latent, first {diag['n_examples']} evaluation "
        f"examples, calibration `{diag['calibration']}`; 'before' = the adapter's output, 'received' = "
        "what the reader read). RMS per token; nearest cosine = cosine with the closest vocabulary "
        "embedding, beside the same for random directions (chance).",
        "",
        "| model | stage | soft RMS median [p10, p90] | embedding RMS | ratio | nearest cos mean [p10, p90] "
        "| random cos | most frequent nearest tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, d in diag.items():
        if not isinstance(d, dict):
            continue
        for stage in ("before_calibration", "received"):
            x = d.get(stage)
            if not x:
                continue
            r, c = x["soft_rms"], x["nearest_cos"]
            toks = ", ".join(f"{t['token']!r}×{t['count']}" for t in x["nearest_tokens"][:5]).replace(
                "|", "\\|"
            )
            lines.append(
                f"| {model} | {stage.replace('_', ' ')} | {r['median']:.3g} [{r['p10']:.3g}, {r['p90']:.3g}] "
                f"| {x['embed_rms']:.3g} | {x['rms_ratio']:.3g}× | {c['mean']:.3f} [{c['p10']:.3f}, {c['p90']:.3f}] "
                f"| {x['random_cos']['mean']:.3f} | {toks} |"
            )
    lines.append("")
    return lines


def write_report(
    metrics_path: Path, out_dir: Path, *, manifest_path: Path | None = None, curves_path: Path | None = None
) -> Path:
    """Write ``out_dir/summary.md`` (+ PNG plots) from an evaluation's metrics, the run's manifest
    (name, machine, stage times) and its training log, each given by path.

    Raises:
        FileNotFoundError: ``metrics_path`` is missing (evaluate has not run).
    """
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} is missing; run the evaluate stage first")
    metrics = json.loads(metrics_path.read_text())
    manifest = (
        json.loads(manifest_path.read_text()) if manifest_path is not None and manifest_path.is_file() else {}
    )
    curves = (
        pd.read_json(curves_path, lines=True)
        if curves_path is not None and curves_path.is_file() and curves_path.stat().st_size
        else None
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(out_dir, metrics, curves)
    res = pd.DataFrame(metrics["results"])
    lines = [f"# {manifest.get('name', out_dir.parent.name)}: {metrics['task']}", ""]
    machine = manifest.get("machine", {})
    lines.append(
        f"Ran on {machine.get('gpu') or 'CPU'} ({machine.get('platform', '?')}, {machine.get('cpus', '?')} cores), "
        f"seed {manifest.get('seed', '?')}, git {str(manifest.get('git_revision'))[:10]}. "
        f"Config: `experiment.toml`."
    )
    lines.append("")
    if metrics.get("eval_split") == "validation":
        lines.append(
            'Evaluated on a **validation split carved from train** (`[data] eval_split = "validation"`), '
            "not on the task's evaluation split: these numbers are for choosing, not for reporting."
        )
        lines.append("")
    transfer = metrics.get("transfer")
    if transfer:
        lines.append(
            f"A **transfer evaluation** (`[eval] task`): the wire was trained on `{transfer['trained_on']}` "
            f"and is scored here on `{transfer['evaluated_on']}`, whose texts it never saw."
        )
        lines.append("")
    stages = manifest.get("stages", {})
    if stages:
        timed = [f"{k} {v['seconds']} s" for k, v in stages.items() if "seconds" in v]
        lines.append("Stage times: " + ", ".join(timed) + ".")
        lines.append("")
    if "majority_class" in metrics:
        mc = metrics["majority_class"]
        lines.append(
            f"Majority class on the eval split: '{mc['label']}' = {_fmt(mc['rate_on_eval'])} (n = {mc['n']})."
        )
        lines.append("")
    if "subset" in res:
        by_subset = {k: v for k, v in res.groupby("subset", sort=False)}
        res = by_subset.get("all", res)
    else:
        by_subset = {}
    ci_methods = sorted(set(res["ci_method"])) if "ci_method" in res else ["BCa bootstrap"]
    has_read = "encoded_utf8_bytes" in res
    lines.append(
        "| model | method | "
        + " | ".join(f"{m} [95% CI]" for m in metrics["metrics"])
        + " | n | slot tokens | token compression | wire bytes | prompt UTF-8 bytes"
        + (" | bytes read | answer in what was read" if has_read else "")
        + " | byte compression | latency/example (s) |"
    )
    lines.append(
        "|---|---|"
        + "---|" * len(metrics["metrics"])
        + "---|---|---|---|---|"
        + ("---|---|" if has_read else "")
        + "---|---|"
    )
    for (model, method), g in res.groupby(["model", "method"], sort=False):
        cells = []
        for m in metrics["metrics"]:
            hit = g[g["metric"] == m]
            if hit.empty:
                cells.append("–")
                continue
            r = hit.iloc[0]
            cells.append(f"{_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]")
        r0 = g.iloc[0]
        wb = f"{r0['wire_bytes']:.0f}" if r0["wire_bytes"] else "–"
        tc = r0.get("token_compression")
        bc = r0.get("byte_compression")
        tcs = f"{tc:.2f}×" if tc is not None and pd.notna(tc) else "–"
        bcs = f"{bc:.3f}×" if bc is not None and pd.notna(bc) else "–"
        read = ""
        if has_read:
            eb, ais = r0.get("encoded_utf8_bytes"), r0.get("answer_in_slot")
            read = f" | {eb:.0f}" if eb is not None and pd.notna(eb) else " | –"
            read += f" | {ais:.1%}" if ais is not None and pd.notna(ais) else " | –"
        lines.append(
            f"| {model} | {method} | "
            + " | ".join(cells)
            + f" | {int(r0['n'])} | {r0['slot_tokens']:.1f} | {tcs} | {wb} | {r0['prompt_utf8_bytes']:.0f}{read} | {bcs}"
            + f" | {r0['latency_s']:.4f} |"
        )
    lines.append(
        "\nToken compression: the text's slot tokens / this method's slot tokens, per example. Byte compression: "
        "the UTF-8 bytes the method actually read (after truncation) / wire bytes (quantisation scales included); "
        "below 1× the wire is larger than the text. 'Answer in what was read': share of examples whose gold "
        "answer still appears in the text the method read (after truncation or compression)."
    )
    lines.append(
        f"Confidence intervals: {', '.join(ci_methods)} (clustered by article where examples share one; Wilson "
        "for 0/1 metrics otherwise)."
    )
    if metrics.get("no_answer_phrase"):
        lines.append(f"SQuAD v2 scoring: {metrics['no_answer_phrase']}; only the empty answer abstains.")
    if metrics.get("always_abstain"):
        aa = metrics["always_abstain"]
        vals = ", ".join(f"{k} {v:.3f}" for k, v in aa.items() if k not in ("n", "no_answer_share"))
        lines.append(
            f"Reference: always abstaining scores {vals} (n = {aa['n']}, {aa['no_answer_share']:.1%} unanswerable)."
        )
    lines.append("")
    for subset in ("has_answer", "no_answer"):
        if subset in by_subset:
            sub = by_subset[subset]
            head = metrics["headline"]
            lines.append(f"{'HasAns' if subset == 'has_answer' else 'NoAns'} subset ({head}):")
            lines.append("")
            lines.append(f"| model | method | {head} [95% CI] | n |")
            lines.append("|---|---|---|---|")
            for _, r in sub[sub["metric"] == head].iterrows():
                lines.append(
                    f"| {r['model']} | {r['method']} | {_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {int(r['n'])} |"
                )
            lines.append("")
    if metrics.get("comparisons"):
        lines.append(
            "Paired tests, latent vs each baseline on the same examples (difference = latent − baseline; "
            "p Holm-corrected across models and baselines):"
        )
        lines.append("")
        lines.append("| model | metric | vs | diff [95% CI] | p (bootstrap) | p (McNemar) | p Holm | n |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for c in metrics["comparisons"]:
            mcn = f"{c['p_mcnemar']:.3g}" if "p_mcnemar" in c else "–"
            lines.append(
                f"| {c['model']} | {c['metric']} | {c['latent_vs']} | {c['diff']:+.3f} "
                f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['p_value']:.3g} | {mcn} | {c['p_holm']:.3g} | {c['n']} |"
            )
        lines.append("")
    lines.extend(_diagnostics_lines(metrics.get("embedding_diagnostics")))
    for p in plots:
        lines.append(f"![{p}]({p})")
        lines.append("")
    out = out_dir / "summary.md"
    out.write_text("\n".join(lines))
    return out
