"""A study across run folders: quality against compression, per method and reader, across seeds.

Each point of a sweep is an ordinary run folder; this module only reads their
``eval/metrics.json`` and ``eval/predictions.parquet`` and writes the sweep's report:

* ``results.csv``: one row per (point's settings, reader, method): the headline metric's mean over
  seeds with a t-interval across seeds (n_seeds >= 2), its per-seed values, wire bytes (whole
  message), payload bytes (the latent's numbers and scales without the frame; a text method's UTF-8
  text as read), the text's UTF-8 bytes and token compression;
* ``tests.csv``: latent vs each baseline at the same settings, per reader, paired by (seed, example)
  and pooled over seeds (cluster bootstrap by example, or by article where there are articles, with
  every seed's copy of it resampled together: the seeds read the same texts), Holm over the whole family;
* ``summary.md``: the table a paper would print, the tests, and ``quality_vs_bytes.png`` /
  ``quality_vs_compression.png`` (one curve per method and reader).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from latentwire_core.jsonio import read_json
from latentwire_eval.charts import SWEEP_CHARTS, write_charts
from latentwire_eval.stats import holm, paired_bootstrap
from latentwire_eval.tables import markdown_table

__all__ = ["SweepPoint", "aggregate_sweep", "write_sweep_report"]

SweepPoint = Mapping[str, Any]
"""``{"name": str, "dir": Path, "params": {key: value}, "seed": int}``."""


def _settings(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(base)"


def aggregate_sweep(
    points: Sequence[SweepPoint], *, n_resamples: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished points -> (results, paired tests). Unfinished points (no metrics) are skipped."""
    rows: list[dict[str, Any]] = []
    preds: list[pd.DataFrame] = []
    headline = ""
    for pt in points:
        mpath = Path(pt["dir"]) / "eval" / "metrics.json"
        if not mpath.is_file():
            continue
        m = read_json(mpath)
        headline = m["headline"]
        header = float(m.get("wire", {}).get("header_bytes", 0))
        for r in m["results"]:
            if r["metric"] != headline or r.get("subset", "all") != "all":
                continue
            wire = float(r.get("wire_bytes") or 0.0)
            text = r.get("encoded_utf8_bytes")
            rows.append(
                {
                    "settings": _settings(pt["params"]),
                    **{f"param:{k}": v for k, v in pt["params"].items()},
                    "seed": pt["seed"],
                    "model": r["model"],
                    "method": r["method"],
                    "value": r["value"],
                    "n": r["n"],
                    "wire_bytes": wire,
                    # what crosses per example without the message frame: the latent's quantised
                    # numbers and scales; a text method's UTF-8 text as it read it
                    "payload_bytes": wire - header
                    if wire > 0
                    else (float(text) if text is not None else None),
                    "prompt_utf8_bytes": r.get("prompt_utf8_bytes"),
                    "slot_tokens": r.get("slot_tokens"),
                    "token_compression": r.get("token_compression"),
                }
            )
        ppath = Path(pt["dir"]) / "eval" / "predictions.parquet"
        if ppath.is_file():
            cols = ["example_id", "model", "method", "group", headline]
            df = pd.read_parquet(ppath, columns=[c for c in cols if c != "group"] + ["group"])
            df["settings"], df["seed"] = _settings(pt["params"]), pt["seed"]
            preds.append(df)
    if not rows:
        raise FileNotFoundError("no finished point in this sweep (no eval/metrics.json yet)")
    per_seed = pd.DataFrame(rows)
    keys = ["settings", "model", "method"]
    out = []
    for key, g in per_seed.groupby(keys, sort=False):
        v = g["value"].to_numpy(dtype=float)
        lo = hi = float("nan")
        if len(v) >= 2 and float(np.ptp(v)) == 0.0:  # identical values: zero spread
            lo = hi = float(v.mean())
        elif len(v) >= 2:
            lo, hi = (float(x) for x in sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v)))
        first = g.iloc[0]
        out.append(
            {
                **dict(zip(keys, key, strict=True)),
                **{c: first[c] for c in g.columns if c.startswith("param:")},
                "metric": headline,
                "mean": float(v.mean()),
                "ci_low": lo,
                "ci_high": hi,
                "n_seeds": len(v),
                "per_seed": json.dumps(
                    {int(s): round(float(x), 4) for s, x in zip(g["seed"], v, strict=True)}
                ),
                "n_per_seed": int(g["n"].iloc[0]),
                "wire_bytes": float(g["wire_bytes"].mean()),
                "payload_bytes": _mean(g["payload_bytes"]),
                "prompt_utf8_bytes": _mean(g["prompt_utf8_bytes"]),
                "slot_tokens": float(g["slot_tokens"].mean()) if g["slot_tokens"].notna().any() else None,
                "token_compression": float(g["token_compression"].dropna().mean())
                if g["token_compression"].notna().any()
                else None,
            }
        )
    results = pd.DataFrame(out)
    tests = _pooled_tests(pd.concat(preds, ignore_index=True), headline, n_resamples, seed) if preds else None
    return results, tests if tests is not None else pd.DataFrame()


def _mean(col: pd.Series) -> float | None:
    vals = pd.to_numeric(col, errors="coerce").dropna()
    return float(vals.mean()) if len(vals) else None


def _pooled_tests(preds: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for (settings, model), g in preds.groupby(["settings", "model"], sort=False):
        wide = g.pivot_table(index=["seed", "example_id"], columns="method", values=metric, aggfunc="first")
        if "latent" not in wide:
            continue
        groups = g.drop_duplicates(["seed", "example_id"]).set_index(["seed", "example_id"])["group"]
        for base in wide.columns:
            if base == "latent":
                continue
            pair = wide[["latent", base]].dropna()
            if pair.empty:
                continue
            # every seed reads the same sentences / articles: resample them whole, all seeds together
            clusters = [str(groups.loc[(s, e)]) for s, e in pair.index]
            res = paired_bootstrap(
                pair["latent"].to_numpy(),
                pair[base].to_numpy(),
                groups=clusters,
                n_resamples=n_resamples,
                seed=seed,
            )
            rows.append(
                {
                    "settings": settings,
                    "model": model,
                    "metric": metric,
                    "latent_vs": base,
                    "n": len(pair),
                    "n_seeds": int(pair.index.get_level_values(0).nunique()),
                    **res,
                }
            )
    tests = pd.DataFrame(rows)
    if not tests.empty:
        tests["p_holm"] = holm(tests["p_value"].tolist())
    return tests


def _plots(results: pd.DataFrame, out: Path) -> list[str]:
    """One panel per reader for each of :data:`~latentwire_eval.charts.SWEEP_CHARTS`. A text method's points
    (one per budget) are joined by a line; a wire method's points differ in more than their size (M, d_z,
    precision), so they stand alone, each labelled with its grid values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, drawn = [], []
    metric = str(results["metric"].iloc[0]) if "metric" in results and len(results) else "value"
    for chart in SWEEP_CHARTS:
        x = chart.x
        readers = [m for m in dict.fromkeys(results[chart.panel]) if m != "no reader"]
        sub = results[results[x].notna() & (results[x] > 0)] if x in results else results.iloc[0:0]
        if sub.empty or not readers:
            continue
        x_title, y_title = chart.titles(metric)
        fig, axes = plt.subplots(1, len(readers), figsize=(6.5 * len(readers), 4.8), squeeze=False)
        for ax, model in zip(axes[0], readers, strict=True):
            for method, g in sub[sub[chart.panel] == model].groupby(chart.series, sort=False):
                g = g.sort_values(x)
                yerr = None
                if g[chart.low].notna().all():
                    yerr = np.vstack([g[chart.y] - g[chart.low], g[chart.high] - g[chart.y]])
                wire = bool((g["wire_bytes"] > 0).all()) and g["settings"].nunique() > 1
                ax.errorbar(
                    g[x],
                    g[chart.y],
                    yerr=yerr,
                    marker="o",
                    capsize=3,
                    label=method,
                    ls="-" if chart.joined and not wire else "none",
                )
                if wire and method == "latent":
                    params = [c for c in g.columns if c.startswith("param:")]
                    for _, r in g.iterrows():  # e.g. "1/32/int4": the point's grid values
                        tag = "/".join(str(r[c]) for c in params) or str(r["settings"])
                        ax.annotate(
                            tag, (r[x], r[chart.y]), fontsize=6, xytext=(3, 3), textcoords="offset points"
                        )
            if chart.log_x:
                ax.set_xscale("log")
            ax.set_title(model)
            ax.set_xlabel(x_title, fontsize=8)
            ax.set_ylabel(y_title)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{chart.name}.png", dpi=120)
        plt.close(fig)
        names.append(f"{chart.name}.png")
        drawn.append(chart)
    if drawn:
        write_charts(out, drawn, metric)
    return names


def _num(x: Any) -> bool:
    return x is not None and bool(np.isfinite(float(x))) and float(x) > 0


def write_sweep_report(
    sweep_dir: Path, points: Sequence[SweepPoint], *, title: str = "", n_resamples: int = 2000
) -> Path:
    """Aggregate ``points`` into ``<sweep_dir>/report/`` and return ``summary.md``'s path."""
    results, tests = aggregate_sweep(points, n_resamples=n_resamples)
    out = sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    tests.to_csv(out / "tests.csv", index=False)
    metric = results["metric"].iloc[0]
    done = results["n_seeds"].max()
    lines = [
        f"# Sweep {title or sweep_dir.name}",
        "",
        f"{len({p['name'] for p in points})} points; metric {metric}, mean over seeds with a 95% t-interval "
        f"across seeds (up to {done} seeds; n examples per seed in the table).",
        "",
        "Bytes per example: *message* is the latent's whole wire message (frame included); *payload* is "
        "what it carries without the frame (quantised numbers and scales) or, for a text method, the "
        "UTF-8 bytes of the text it read; *text* is the example's whole compressed text in UTF-8.",
        "",
    ]
    lines += markdown_table(
        [
            "settings",
            "reader",
            "method",
            f"{metric} [95% CI]",
            "seeds",
            "n/seed",
            "message",
            "payload",
            "text",
            "token compression",
        ],
        [
            [
                r.settings,
                r.model,
                r.method,
                f"{r.mean:.3f} " + (f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else "[–]"),
                r.n_seeds,
                r.n_per_seed,
                f"{r.wire_bytes:.0f}" if r.wire_bytes else "–",
                f"{r.payload_bytes:.1f}" if _num(r.payload_bytes) else "–",
                f"{r.prompt_utf8_bytes:.1f}" if _num(r.prompt_utf8_bytes) else "–",
                f"{r.token_compression:.2f}×" if _num(r.token_compression) else "–",
            ]
            for r in results.itertuples()
        ],
    )
    if not tests.empty:
        lines += [
            "",
            "Latent vs each baseline at the same settings, paired by (seed, example) and pooled over seeds; "
            "Holm over the whole family:",
            "",
        ]
        lines += markdown_table(
            ["settings", "reader", "vs", "diff [95% CI]", "p", "p Holm", "n", "seeds"],
            [
                [
                    t.settings,
                    t.model,
                    t.latent_vs,
                    f"{t.diff:+.3f} [{t.ci_low:+.3f}, {t.ci_high:+.3f}]",
                    f"{t.p_value:.3g}",
                    f"{t.p_holm:.3g}",
                    t.n,
                    t.n_seeds,
                ]
                for t in tests.itertuples()
            ],
        )
    for p in _plots(results, out):
        lines += ["", f"![{p}]({p})"]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
