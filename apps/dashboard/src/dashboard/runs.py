"""Reading run folders (docs/design.md "The run folder") with pandas only: no torch, no model code.

Every function copes with a run that is still in progress or incomplete and says
what is missing instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

__all__ = [
    "RunData",
    "content_probe_curves",
    "disagreement_mask",
    "filter_examples",
    "headline_table",
    "list_runs",
    "load_run",
    "read_json",
    "wide_examples",
]

EXPECTED = {
    "experiment.toml": "resolved config",
    "manifest.json": "manifest",
    "train/metrics.jsonl": "training curves (train stage)",
    "eval/predictions.parquet": "predictions (evaluate stage)",
    "eval/metrics.json": "metrics (evaluate stage)",
    "report/summary.md": "report (report stage)",
}


@attrs.define
class RunData:
    path: Path
    manifest: dict[str, Any]
    config_text: str
    metrics: dict[str, Any] | None
    predictions: pd.DataFrame | None
    curves: pd.DataFrame | None
    missing: list[str]
    pretrain_curves: pd.DataFrame | None = None
    charts: list[dict[str, Any]] = attrs.field(factory=list)  # report/charts.json: what each chart shows

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        stages = self.manifest.get("stages", {})
        if not stages:
            return "not started"
        if any(s.get("status") == "failed" for s in stages.values()):
            return "failed"
        if any(s.get("status") == "running" for s in stages.values()):
            return "running"
        done = [k for k, s in stages.items() if s.get("status") == "done"]
        return "finished" if "report" in done else f"done: {', '.join(done)}"

    def results(self, subset: str = "all") -> pd.DataFrame:
        """Per (model, method, metric) rows; SQuAD v2 runs also hold ``has_answer``/``no_answer`` subsets."""
        if not self.metrics:
            return pd.DataFrame()
        res = pd.DataFrame(self.metrics.get("results", []))
        if "subset" in res:
            res = res[res["subset"] == subset].reset_index(drop=True)
        return res


def read_json(path: Path, problems: list[str], rel: str, *, kind: type = dict) -> Any:
    """The file's JSON, or ``None`` with a line in ``problems`` saying what is wrong with it."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        # RecursionError: JSON nested deeper than Python's json can parse (a damaged or hostile file)
        problems.append(f"{rel} is unreadable ({type(e).__name__}: {e})")
        return None
    if not isinstance(data, kind):
        problems.append(f"{rel} is not a {kind.__name__} (got {type(data).__name__})")
        return None
    return data


def load_run(path: Path) -> RunData:
    """Load whatever a run folder holds; ``missing`` lists the rest in words."""
    missing = [f"{rel} ({what})" for rel, what in EXPECTED.items() if not (path / rel).is_file()]
    manifest = read_json(path / "manifest.json", missing, "manifest.json") or {}
    try:
        cfg = (
            (path / "experiment.toml").read_text(encoding="utf-8")
            if (path / "experiment.toml").is_file()
            else ""
        )
    except (OSError, UnicodeDecodeError) as e:
        cfg = ""
        missing.append(f"experiment.toml is unreadable ({e})")
    metrics = read_json(path / "eval" / "metrics.json", missing, "eval/metrics.json")
    if metrics is not None and not isinstance(metrics.get("results", []), list):
        missing.append("eval/metrics.json has no list of results")
        metrics = None
    preds = None
    if (path / "eval" / "predictions.parquet").is_file():
        try:
            preds = pd.read_parquet(path / "eval" / "predictions.parquet")
        except Exception as e:
            missing.append(f"eval/predictions.parquet is unreadable ({type(e).__name__}: {e})")
    curves = _read_jsonl(path / "train" / "metrics.jsonl")
    return RunData(
        path=path,
        manifest=manifest,
        config_text=cfg,
        metrics=metrics,
        predictions=preds,
        curves=curves,
        missing=missing,
        pretrain_curves=_read_jsonl(path / "pretrain" / "metrics.jsonl"),
        charts=read_charts(path / "report", missing),
    )


def read_charts(report: Path, problems: list[str]) -> list[dict[str, Any]]:
    """The chart descriptions a report wrote (``charts.json``; latentwire_eval.charts describes each chart
    once, for the report's PNGs and these views alike); ``[]`` where there are none."""
    data = read_json(report / "charts.json", problems, f"{report.name}/charts.json", kind=list)
    return [c for c in data or [] if isinstance(c, dict) and {"name", "x", "y", "low", "high"} <= set(c)]


def _read_jsonl(path: Path) -> pd.DataFrame | None:
    """A stage's ``metrics.jsonl`` as a frame; ``None`` when absent or empty."""
    if not path.is_file() or not path.stat().st_size:
        return None
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            continue  # a line being written right now, or a damaged one
    return pd.DataFrame(rows) if rows else None


def content_probe_curves(run: RunData) -> pd.DataFrame:
    """The content probe of each stage in long form: ``stage, step, reader, series, value``.

    ``content_gap`` is the loss with another example's latent minus the loss with this example's
    (nats per target token): about 0 means the reader does not use what the latent says.
    """
    out = []
    for stage, df in (("pretrain", run.pretrain_curves), ("train", run.curves)):
        if df is None or "step" not in df:
            continue
        cols = [c for c in df.columns if c.endswith(("/content_gap", "/probe_ce", "/ce_shuffled"))]
        if not cols:
            continue
        long = df.melt(id_vars="step", value_vars=cols, var_name="key", value_name="value").dropna()
        long["reader"] = long["key"].str.rsplit("/", n=1).str[0]
        long["series"] = long["key"].str.rsplit("/", n=1).str[1]
        long["stage"] = stage
        out.append(long.drop(columns="key"))
    cols = ["step", "value", "reader", "series", "stage"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def list_runs(root: Path) -> list[RunData]:
    """Every run folder under ``root`` (a folder with a manifest or a config), newest first."""
    if not root.is_dir():
        return []
    runs = [
        load_run(p)
        for p in root.iterdir()
        if p.is_dir() and ((p / "manifest.json").is_file() or (p / "experiment.toml").is_file())
    ]
    return sorted(runs, key=lambda r: str(r.manifest.get("created", "")), reverse=True)


def headline_table(runs: list[RunData]) -> pd.DataFrame:
    """One row per (run, model, method): the task's headline metric with its CI."""
    rows: list[dict[str, Any]] = []
    for r in runs:
        res = r.results()
        if res.empty:
            rows.append(
                {
                    "run": r.name,
                    "status": r.status,
                    "task": "",
                    "model": "",
                    "method": "",
                    "metric": "",
                    "value": None,
                    "95% CI": "",
                    "n": None,
                }
            )
            continue
        metric = r.metrics.get("headline", r.metrics["metrics"][-1]) if r.metrics else ""
        for _, x in res[res["metric"] == metric].iterrows():
            rows.append(
                {
                    "run": r.name,
                    "status": r.status,
                    "task": r.metrics.get("task", "") if r.metrics else "",
                    "model": x["model"],
                    "method": x["method"],
                    "metric": metric,
                    "value": round(x["value"], 4),
                    "95% CI": f"[{x['ci_low']:.3f}, {x['ci_high']:.3f}]",
                    "n": int(x["n"]),
                }
            )
    return pd.DataFrame(rows)


def across_runs(runs: list[RunData]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Latent quality against M across runs, and every run's paired tests Holm-corrected together.

    Returns ``(points, tests)``: one row per (run, model) with the headline metric, its CI and the run's
    ``M``; and the latent-vs-baseline tests of all runs with ``p_holm_across_runs`` (statsmodels).
    """
    from statsmodels.stats.multitest import multipletests

    points, tests = [], []
    for r in runs:
        if not r.metrics:
            continue
        headline = r.metrics.get("headline", r.metrics["metrics"][-1])
        m = (r.metrics.get("wire") or {}).get("n_tokens")
        for x in r.metrics.get("results", []):
            if x["method"] == "latent" and x["metric"] == headline:
                points.append(
                    {
                        "run": r.name,
                        "task": r.metrics.get("task"),
                        "model": x["model"],
                        "M": m,
                        "value": x["value"],
                        "ci_low": x["ci_low"],
                        "ci_high": x["ci_high"],
                        "n": x["n"],
                    }
                )
        for c in r.metrics.get("comparisons", []):
            if c["metric"] == headline:
                tests.append({"run": r.name, "task": r.metrics.get("task"), **c})
    tdf = pd.DataFrame(tests)
    if not tdf.empty:
        key = "p_mcnemar" if "p_mcnemar" in tdf and tdf["p_mcnemar"].notna().all() else "p_value"
        tdf["p_holm_across_runs"] = multipletests(tdf[key].to_numpy(float), method="holm")[1]
    return pd.DataFrame(points), tdf


def score_column(preds: pd.DataFrame, headline: str | None = None) -> str:
    """The column an example is scored by: the run's headline metric (``metrics.json`` says which, from
    the task's record), else, for a run whose report is not written yet, the first score column found."""
    if headline and headline in preds.columns:
        return headline
    for c in ("accuracy", "f1", "gsm8k_accuracy", "rouge_l", "em"):
        if c in preds.columns:
            return c
    raise KeyError("predictions have no score column")


def wide_examples(preds: pd.DataFrame, model: str, headline: str | None = None) -> pd.DataFrame:
    """One row per example for ``model``: gold, then each method's output and score (``headline``: the
    run's headline metric, see :func:`score_column`) side by side."""
    p = preds[preds["model"] == model]
    score = score_column(preds, headline)
    out = p.pivot_table(index="example_id", columns="method", values="output", aggfunc="first")
    sc = p.pivot_table(index="example_id", columns="method", values=score, aggfunc="first")
    sc.columns = [f"{c} {score}" for c in sc.columns]
    gold = p.groupby("example_id")["gold"].first()
    return pd.concat([gold, out, sc], axis=1).reset_index()


def disagreement_mask(wide: pd.DataFrame, methods: list[str]) -> pd.Series:
    outs = wide[[m for m in methods if m in wide.columns]].astype(str)
    return outs.nunique(axis=1) > 1


def filter_examples(
    wide: pd.DataFrame,
    methods: list[str],
    *,
    disagree: bool = False,
    wrong_method: str | None = None,
    text: str = "",
    sources: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Filters of the example browser: methods disagree, a method is wrong, a text search."""
    keep = pd.Series(True, index=wide.index)
    if disagree:
        keep &= disagreement_mask(wide, methods)
    if wrong_method:
        col = next((c for c in wide.columns if c.startswith(f"{wrong_method} ") and c != wrong_method), None)
        if col is not None:
            keep &= wide[col] < 1.0
    if text:
        t = text.lower()
        hay = wide.astype(str).apply(lambda r: " ".join(r).lower(), axis=1)
        if sources:
            hay = hay + " " + wide["example_id"].map(lambda i: sources.get(i, "").lower())
        keep &= hay.str.contains(t, regex=False)
    return wide[keep]


def diagnostics_table(metrics: dict[str, Any] | None) -> pd.DataFrame | None:
    """``embedding_diagnostics`` of a run's metrics as one row per (reader, stage), or ``None``."""
    diag = (metrics or {}).get("embedding_diagnostics")
    if not isinstance(diag, dict):
        return None
    rows = []
    for model, d in diag.items():
        if not isinstance(d, dict):
            continue
        for stage in ("before_calibration", "received"):
            x = d.get(stage)
            if not isinstance(x, dict):
                continue
            rows.append(
                {
                    "model": model,
                    "stage": stage.replace("_", " "),
                    "soft RMS (median)": x["soft_rms"]["median"],
                    "soft RMS p10": x["soft_rms"]["p10"],
                    "soft RMS p90": x["soft_rms"]["p90"],
                    "embedding RMS": x["embed_rms"],
                    "RMS ratio": x["rms_ratio"],
                    "nearest cos (mean)": x["nearest_cos"]["mean"],
                    "random cos (mean)": x["random_cos"]["mean"],
                    "nearest tokens": ", ".join(
                        f"{t['token']!r}×{t['count']}" for t in x["nearest_tokens"][:5]
                    ),
                }
            )
    return pd.DataFrame(rows) if rows else None
