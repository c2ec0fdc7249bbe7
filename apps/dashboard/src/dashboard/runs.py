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
    "SweepData",
    "content_probe_curves",
    "disagreement_mask",
    "filter_examples",
    "for_display",
    "headline_table",
    "list_runs",
    "list_sweeps",
    "load_run",
    "load_sweep",
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


def _read_json(path: Path, problems: list[str], rel: str, *, kind: type = dict) -> Any:
    """The file's JSON, or ``None`` with a line in ``problems`` saying what is wrong with it."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems.append(f"{rel} is unreadable ({type(e).__name__}: {e})")
        return None
    if not isinstance(data, kind):
        problems.append(f"{rel} is not a {kind.__name__} (got {type(data).__name__})")
        return None
    return data


INT_COLUMNS = (
    "n",
    "n_groups",
    "wire_bytes",
    "prompt_utf8_bytes",
    "encoded_utf8_bytes",
    "compressed_utf8_bytes",
)


def for_display(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Counts and bytes as integers (not ``8,704.0000``), other numbers rounded."""
    out = df.copy()
    for c in out.columns:
        if c in INT_COLUMNS and pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].round().astype("Int64")
        elif pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


P_COLUMNS = ("p_value", "p_holm", "p_holm_across_runs", "p_mcnemar", "p")


def fmt_p(p: object) -> str:
    """A p-value as people read it: 4 significant digits, and '< 1e-4' below that (never a bare 0)."""
    if p is None or pd.isna(p):  # type: ignore[call-overload]
        return "–"
    v = float(p)  # type: ignore[arg-type]
    return "< 1e-4" if v < 1e-4 else f"{v:.4g}"


def _fmt_int(v: object) -> str:
    return "–" if v is None or pd.isna(v) else str(round(float(v)))  # type: ignore[call-overload,arg-type]


def _fmt_bytes(v: object) -> str:
    """Wire bytes; 0 means nothing was sent (a text method), shown as '–'."""
    s = _fmt_int(v)
    return "–" if s == "0" else s


def display_formats(df: pd.DataFrame, digits: int = 3) -> dict[str, Any]:
    """Per-column formatters for a Styler: integers for counts and bytes, wire bytes 0 as '–' (nothing was
    sent: a text method), p-values with '< 1e-4', other numbers to ``digits`` decimals."""

    def fmt_float(v: object) -> str:
        return "–" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"  # type: ignore[call-overload,arg-type]

    out: dict[str, Any] = {}
    for c in df.columns:
        if c == "wire_bytes":
            out[c] = _fmt_bytes
        elif c in P_COLUMNS:
            out[c] = fmt_p
        elif c in INT_COLUMNS and pd.api.types.is_numeric_dtype(df[c]):
            out[c] = _fmt_int
        elif pd.api.types.is_float_dtype(df[c]):
            out[c] = fmt_float
    return out


def styled(df: pd.DataFrame, digits: int = 3) -> Any:
    """``df`` for display: no index column, and :func:`display_formats` (the data itself is unchanged)."""
    return df.style.hide(axis="index").format(display_formats(df, digits), escape="html")


def load_run(path: Path) -> RunData:
    """Load whatever a run folder holds; ``missing`` lists the rest in words."""
    missing = [f"{rel} ({what})" for rel, what in EXPECTED.items() if not (path / rel).is_file()]
    manifest = _read_json(path / "manifest.json", missing, "manifest.json") or {}
    try:
        cfg = (
            (path / "experiment.toml").read_text(encoding="utf-8")
            if (path / "experiment.toml").is_file()
            else ""
        )
    except (OSError, UnicodeDecodeError) as e:
        cfg = ""
        missing.append(f"experiment.toml is unreadable ({e})")
    metrics = _read_json(path / "eval" / "metrics.json", missing, "eval/metrics.json")
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
    )


def _read_jsonl(path: Path) -> pd.DataFrame | None:
    """A stage's ``metrics.jsonl`` as a frame; ``None`` when absent or empty."""
    if not path.is_file() or not path.stat().st_size:
        return None
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
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


@attrs.define
class SweepData:
    """What ``python -m runner sweep`` left in ``<runs>/<sweep>/``: its plan, points and report."""

    path: Path
    spec: dict[str, Any]
    points: pd.DataFrame  # name, status, settings
    results: pd.DataFrame | None
    tests: pd.DataFrame | None
    summary: str
    missing: list[str]

    @property
    def name(self) -> str:
        return self.path.name


def list_sweeps(root: Path) -> list[SweepData]:
    """Every sweep folder (one holding ``sweep.json``) under ``root``, by name."""
    if not root.is_dir():
        return []
    return [load_sweep(p) for p in sorted(root.iterdir()) if (p / "sweep.json").is_file()]


def _point_status(path: Path) -> str:
    if not (path / "manifest.json").is_file():
        return "not started"
    try:
        stages = json.loads((path / "manifest.json").read_text()).get("stages", {})
    except (OSError, json.JSONDecodeError):
        return "manifest unreadable"
    return "done" if stages.get("report", {}).get("status") == "done" else "partial"


def load_sweep(path: Path) -> SweepData:
    """Read a sweep folder; ``missing`` names what is not there (yet) or cannot be read."""
    missing: list[str] = []
    spec = _read_json(path / "sweep.json", missing, "sweep.json") or {}
    rows = []
    for pt in spec.get("points", []):
        d = Path(pt.get("dir", path / str(pt.get("name", ""))))
        d = d if d.is_dir() else path / str(pt.get("name", ""))
        params = ", ".join(f"{k}={v}" for k, v in sorted(pt.get("params", {}).items())) or "(base)"
        rows.append(
            {
                "point": pt.get("name", "?"),
                "settings": params,
                "seed": pt.get("seed"),
                "status": _point_status(d),
            }
        )
    tables: dict[str, pd.DataFrame | None] = {}
    for name in ("results", "tests"):
        f = path / "report" / f"{name}.csv"
        tables[name] = None
        if not f.is_file():
            missing.append(f"report/{name}.csv (aggregate with `python -m runner sweep ... --report-only`)")
            continue
        try:
            tables[name] = pd.read_csv(f)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
        except (OSError, ValueError) as e:
            missing.append(f"report/{name}.csv is unreadable ({type(e).__name__}: {e})")
    summary = path / "report" / "summary.md"
    return SweepData(
        path=path,
        spec=spec,
        points=pd.DataFrame(rows, columns=["point", "settings", "seed", "status"]),
        results=tables["results"],
        tests=tables["tests"],
        summary=summary.read_text(encoding="utf-8", errors="replace") if summary.is_file() else "",
        missing=missing,
    )


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


def score_column(preds: pd.DataFrame) -> str:
    for c in ("accuracy", "f1", "gsm8k_accuracy", "rouge_l", "em"):
        if c in preds.columns:
            return c
    raise KeyError("predictions have no score column")


def wide_examples(preds: pd.DataFrame, model: str) -> pd.DataFrame:
    """One row per example for ``model``: gold, then each method's output and score side by side."""
    p = preds[preds["model"] == model]
    score = score_column(preds)
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
