"""``report/summary.md`` with plots, rendered from an evaluation's metrics (:mod:`.analysis` computes them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from latentwire_core.jsonio import read_json
from latentwire_eval.charts import QUALITY_VS_COMPRESSION, write_charts
from latentwire_eval.methods.base import ALL_READERS, NO_READER
from latentwire_eval.tables import markdown_table

__all__ = ["write_report"]


def _fmt(v: float) -> str:
    return f"{v:.3f}"


def _ci(r: Any) -> str:
    """A metric row's value and 95% CI, ``0.827 [0.790, 0.860]``."""
    return f"{_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"


def _plots(rep: Path, metrics: dict[str, Any], curves: pd.DataFrame | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    res = pd.DataFrame(metrics["results"])
    if not res.empty:
        chart = QUALITY_VS_COMPRESSION
        metric = metrics.get("headline", metrics["metrics"][-1])
        x_title, y_title = chart.titles(metric)
        r = res[res["metric"] == metric]
        models = [m for m in dict.fromkeys(r[chart.panel]) if m not in (ALL_READERS, NO_READER)]
        methods = list(dict.fromkeys(r[chart.series]))
        colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
        fig, axes = plt.subplots(
            1, max(len(models), 1), figsize=(4.2 * max(len(models), 1) + 2, 4), sharey=True, squeeze=False
        )
        for ax, model in zip(axes[0], models, strict=False):
            for _, row in r[r[chart.panel] == model].iterrows():
                ax.errorbar(
                    row[chart.x],
                    row[chart.y],
                    yerr=[[row[chart.y] - row[chart.low]], [row[chart.high] - row[chart.y]]],
                    fmt="o",
                    capsize=3,
                    color=colors[row[chart.series]],
                    label=row[chart.series],
                )
            if "majority_class" in metrics:
                ax.axhline(
                    metrics["majority_class"]["rate_on_eval"], ls="--", c="grey", label="majority class"
                )
            for _, row in r[r[chart.panel] == NO_READER].iterrows():
                ax.axhline(row[chart.y], ls=":", c="black", label=f"{row[chart.series]} (no LLM)")
            if chart.log_x:
                ax.set_xscale("log")
            ax.set_xlabel(x_title)
            ax.set_title(model)
        axes[0][0].set_ylabel(y_title)
        handles, labels = axes[0][0].get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=False))
        fig.legend(uniq.values(), uniq.keys(), loc="center right", fontsize=8)
        fig.suptitle(f"{metrics['task']}: {chart.title}")
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        fig.savefig(rep / f"{chart.name}.png", dpi=120)
        plt.close(fig)
        made.append(f"{chart.name}.png")
        write_charts(rep, [chart], metric)
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
    ]
    rows = []
    for model, d in diag.items():
        if not isinstance(d, dict):
            continue
        for stage in ("before_calibration", "received"):
            x = d.get(stage)
            if not x:
                continue
            r, c = x["soft_rms"], x["nearest_cos"]
            rows.append(
                [
                    model,
                    stage.replace("_", " "),
                    f"{r['median']:.3g} [{r['p10']:.3g}, {r['p90']:.3g}]",
                    f"{x['embed_rms']:.3g}",
                    f"{x['rms_ratio']:.3g}×",
                    f"{c['mean']:.3f} [{c['p10']:.3f}, {c['p90']:.3f}]",
                    f"{x['random_cos']['mean']:.3f}",
                    ", ".join(f"{t['token']!r}×{t['count']}" for t in x["nearest_tokens"][:5]),
                ]
            )
    lines += markdown_table(
        [
            "model",
            "stage",
            "soft RMS median [p10, p90]",
            "embedding RMS",
            "ratio",
            "nearest cos mean [p10, p90]",
            "random cos",
            "most frequent nearest tokens",
        ],
        rows,
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
    metrics = read_json(metrics_path)
    manifest = read_json(manifest_path) if manifest_path is not None and manifest_path.is_file() else {}
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
    header = [
        "model",
        "method",
        *[f"{m} [95% CI]" for m in metrics["metrics"]],
        "n",
        "slot tokens",
        "token compression",
        "wire bytes",
        "prompt UTF-8 bytes",
        *(["bytes read", "answer in what was read"] if has_read else []),
        "byte compression",
        "latency/example (s)",
    ]
    rows = []
    for (model, method), g in res.groupby(["model", "method"], sort=False):
        cells = []
        for m in metrics["metrics"]:
            hit = g[g["metric"] == m]
            cells.append("–" if hit.empty else _ci(hit.iloc[0]))
        r0 = g.iloc[0]
        tc, bc = r0.get("token_compression"), r0.get("byte_compression")
        read = []
        if has_read:
            eb, ais = r0.get("encoded_utf8_bytes"), r0.get("answer_in_slot")
            read = [
                f"{eb:.0f}" if eb is not None and pd.notna(eb) else "–",
                f"{ais:.1%}" if ais is not None and pd.notna(ais) else "–",
            ]
        rows.append(
            [
                model,
                method,
                *cells,
                int(r0["n"]),
                f"{r0['slot_tokens']:.1f}",
                f"{tc:.2f}×" if tc is not None and pd.notna(tc) else "–",
                f"{r0['wire_bytes']:.0f}" if r0["wire_bytes"] else "–",
                f"{r0['prompt_utf8_bytes']:.0f}",
                *read,
                f"{bc:.3f}×" if bc is not None and pd.notna(bc) else "–",
                f"{r0['latency_s']:.4f}",
            ]
        )
    lines += markdown_table(header, rows)
    lines.append(
        "\nToken compression: the text's slot tokens / this method's slot tokens, per example. Byte compression: "
        "the UTF-8 bytes the method actually read (after truncation) / wire bytes (quantisation scales included); "
        "below 1× the wire is larger than the text. 'Answer in what was read': share of examples whose gold "
        "answer still appears in the text the method read (after truncation or compression)."
    )
    if "compressed_zstd_bytes" in res and res["compressed_zstd_bytes"].notna().any():
        zb = res[res["compressed_zstd_bytes"].notna()].iloc[0]
        lines.append(
            f"The text the wire replaces, compressed well: {zb['compressed_utf8_bytes']:.0f} UTF-8 bytes on average, "
            f"{zb['compressed_zstd_bytes']:.0f} with zstd (level 19), {zb['compressed_gzip_bytes']:.0f} with gzip "
            "(level 9), whole streams per example: the byte budget a message must beat to be a compressor."
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
            lines += markdown_table(
                ["model", "method", f"{head} [95% CI]", "n"],
                [
                    [r["model"], r["method"], _ci(r), int(r["n"])]
                    for _, r in sub[sub["metric"] == head].iterrows()
                ],
            )
            lines.append("")
    if metrics.get("comparisons"):
        lines.append(
            "Paired tests, latent vs each baseline on the same examples (difference = latent − baseline; "
            "p Holm-corrected across models and baselines):"
        )
        lines.append("")
        lines += markdown_table(
            ["model", "metric", "vs", "diff [95% CI]", "p (bootstrap)", "p (McNemar)", "p Holm", "n"],
            [
                [
                    c["model"],
                    c["metric"],
                    c["latent_vs"],
                    f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
                    f"{c['p_value']:.3g}",
                    f"{c['p_mcnemar']:.3g}" if "p_mcnemar" in c else "–",
                    f"{c['p_holm']:.3g}",
                    c["n"],
                ]
                for c in metrics["comparisons"]
            ],
        )
        lines.append("")
    lines.extend(_diagnostics_lines(metrics.get("embedding_diagnostics")))
    for p in plots:
        lines.append(f"![{p}]({p})")
        lines.append("")
    out = out_dir / "summary.md"
    out.write_text("\n".join(lines))
    return out
