"""LatentWire dashboard: ``streamlit run apps/dashboard/src/dashboard/app.py -- --runs-dir runs``.

Reads run folders only (pandas / pyarrow); never imports torch or model code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.display import for_display, styled
from dashboard.guard import problem
from dashboard.runs import (
    RunData,
    across_runs,
    content_probe_curves,
    diagnostics_table,
    filter_examples,
    headline_table,
    list_runs,
    load_run,
    wide_examples,
)
from dashboard.sweeps import SweepData, list_sweeps


def _runs_dir() -> Path:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--runs-dir", default=os.environ.get("LATENTWIRE_RUNS", "runs"))
    args, _ = p.parse_known_args(sys.argv[1:])
    return Path(args.runs_dir)


def _missing(run: RunData) -> None:
    broken = [m for m in run.missing if "unreadable" in m or " is not a " in m or "has no list" in m]
    absent = [m for m in run.missing if m not in broken]
    if broken:
        st.error(f"Run '{run.name}': " + "; ".join(broken))
    if absent:
        st.info(f"Run '{run.name}' is {run.status}; not there yet: " + "; ".join(absent))


def pin_first(df: pd.DataFrame) -> dict[str, Any]:
    """Keep a wide table's first column in view while it scrolls sideways."""
    return {str(df.columns[0]): st.column_config.Column(pinned=True)} if len(df.columns) else {}


def overview(runs: list[RunData]) -> None:
    st.header("Runs")
    table = headline_table(runs)
    st.table(table)  # a static HTML table: small, and readable without a canvas


def draw_chart(desc: dict[str, Any], data: pd.DataFrame) -> alt.Chart:
    """A chart as its description says (``charts.json``, written by the report from latentwire_eval.charts):
    x, y and its interval, one colour per series, one shape per panel, a log x axis where it says so."""
    x = alt.X(
        f"{desc['x']}:Q",
        scale=alt.Scale(type="log" if desc.get("log_x", True) else "linear"),
        title=desc["x_title"],
    )
    tooltip = [c for c in desc.get("tooltip", []) if c in data.columns]
    base = alt.Chart(data).encode(
        x=x, color=f"{desc['series']}:N", shape=f"{desc['panel']}:N", tooltip=tooltip
    )
    y = alt.Y(f"{desc['y']}:Q", title=desc["y_title"])
    marks = base.mark_line(point=True) if desc.get("joined") else base.mark_point(size=80, filled=True)
    if desc.get("joined"):  # one line per (series, panel)
        marks = marks.encode(detail=f"{desc['panel']}:N")
    bars = base.mark_rule().encode(y=f"{desc['low']}:Q", y2=f"{desc['high']}:Q")
    return (bars + marks.encode(y=y)).properties(height=320, title=desc["title"])


def quality_chart(run: RunData) -> alt.Chart | None:
    """The report's quality-vs-compression chart, from its description; ``None`` without one (a report
    written by older versions: its ``--stage report`` writes it) or without results."""
    desc = next((c for c in run.charts if c["name"] == "quality_vs_compression"), None)
    res = run.results()
    if desc is None or res.empty:
        return None
    return draw_chart(desc, res[res["metric"] == desc.get("metric")])


def run_view(run: RunData) -> None:
    st.header(f"Run: {run.name}")
    st.caption(f"status: {run.status}")
    _missing(run)
    res = run.results()
    if not res.empty:
        st.subheader("Metrics")
        names = list(dict.fromkeys(res["metric"]))
        headline = run.metrics.get("headline", names[0]) if run.metrics else names[0]
        metric = st.selectbox("metric", names, index=names.index(headline) if headline in names else 0)
        table = res[res["metric"] == metric]
        cols = [
            "model",
            "method",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "n",
            "slot_tokens",
            "prompt_tokens",
            "token_compression",
            "wire_bytes",
            "prompt_utf8_bytes",
            "byte_compression",
            "latency_s",
        ]
        show = table[[c for c in cols if c in table.columns]]  # older runs lack the newer columns
        # static HTML: selectable, searchable text; integers for counts and bytes, no index column,
        # '–' for wire bytes where nothing was sent
        st.table(styled(for_display(show)))
        if run.metrics and run.metrics.get("majority_class"):
            mc = run.metrics["majority_class"]
            st.caption(f"majority class on eval: {mc['label']} = {mc['rate_on_eval']:.3f} (n = {mc['n']})")
        if run.metrics and run.metrics.get("comparisons"):
            st.subheader("Paired tests: latent vs baselines")
            comp = pd.DataFrame(run.metrics["comparisons"])
            st.dataframe(
                styled(for_display(comp, 4), 4),
                hide_index=True,
                width="stretch",
                column_config=pin_first(comp),
            )
        chart = quality_chart(run)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
        elif not run.results().empty:
            st.caption(
                "No chart description (report/charts.json): re-run the report stage to draw the chart."
            )
        diag = diagnostics_table(run.metrics)
        if diag is not None:
            cal = (run.metrics or {}).get("embedding_diagnostics", {}).get("calibration", "?")
            st.subheader("Soft tokens against each reader's embeddings")
            st.caption(
                f"Latent on the first evaluation examples, calibration '{cal}'. 'before calibration' is the "
                "adapter's output, 'received' what the reader read. Nearest cos: cosine with the closest "
                "vocabulary embedding; random cos: the same for random directions (chance)."
            )
            st.dataframe(for_display(diag, 4), hide_index=True, width="stretch")
    if run.curves is not None and "step" in run.curves:
        st.subheader("Training curves")
        cols = [c for c in run.curves.columns if c.endswith("/ce") or c.endswith("/first_token_acc")]
        long = run.curves.melt(id_vars="step", value_vars=cols, var_name="series", value_name="value")
        st.altair_chart(
            alt.Chart(long)
            .mark_line()
            .encode(x="step:Q", y="value:Q", color="series:N")
            .properties(height=280),
            width="stretch",
        )
    probe = content_probe_curves(run)
    if not probe.empty:
        st.subheader("Content probe: does the reader use this text's latent?")
        st.caption(
            "Logged while training, on the next batch, no gradient: the loss with each example's own latent "
            "and with another example's (shuffled). content_gap = shuffled − own, nats per target token; "
            "about 0 means the wire carries nothing the reader uses about this particular text."
        )
        gap = probe[probe["series"] == "content_gap"]
        st.altair_chart(
            alt.Chart(gap)
            .mark_line(point=True)
            .encode(x="step:Q", y=alt.Y("value:Q", title="content gap (nats/token)"), color="reader:N")
            .properties(height=240)
            .facet(column="stage:N"),
        )
    with st.expander("experiment.toml"):
        st.code(run.config_text or "(missing)", language="toml")


def examples_view(run: RunData) -> None:
    st.header("Examples")
    if run.predictions is None:
        _missing(run)
        return
    preds = run.predictions
    models = list(dict.fromkeys(preds["model"]))
    model = st.selectbox("model", models)
    methods = list(dict.fromkeys(preds[preds["model"] == model]["method"]))
    wide = wide_examples(preds, model, run.metrics.get("headline") if run.metrics else None)
    probe = (
        preds[preds["method"] == "linear_probe"].set_index("example_id")["output"]
        if ("linear_probe" in set(preds["method"]))
        else None
    )
    c1, c2, c3 = st.columns(3)
    disagree = c1.checkbox("methods disagree")
    wrong = c2.selectbox("wrong answers of", ["(any)", *methods])
    text = c3.text_input("search text")
    sources = dict(zip(preds["example_id"], preds["source"], strict=False)) if "source" in preds else {}
    shown = filter_examples(
        wide,
        methods,
        disagree=disagree,
        wrong_method=None if wrong == "(any)" else wrong,
        text=text,
        sources=sources,
    )
    st.caption(f"{len(shown)} of {len(wide)} examples")
    st.dataframe(shown, hide_index=True, width="stretch")
    if len(shown):
        ex_id = st.selectbox("example", shown["example_id"].tolist())
        row = shown[shown["example_id"] == ex_id].iloc[0]
        st.markdown(f"**Example** `{ex_id}` — source text")
        st.text(sources.get(ex_id, "(not recorded)"))
        st.markdown(f"**Gold:** {row['gold']}")
        shown_methods = [*methods, *(["linear_probe"] if probe is not None else [])]
        cols = st.columns(len(shown_methods))
        for col, m in zip(cols, shown_methods, strict=True):
            out = probe.get(ex_id, "") if m == "linear_probe" and probe is not None else row.get(m, "")
            col.markdown(f"**{m}**" + (" (no LLM)" if m == "linear_probe" else ""))
            col.markdown(f"output: {out}")


def compare_view(runs: list[RunData]) -> None:
    st.header("Compare two runs")
    names = [r.name for r in runs]
    if len(names) < 2:
        st.info("Need at least two runs to compare.")
        return
    a, b = st.columns(2)
    ra = a.selectbox("run A", names, index=0)
    rb = b.selectbox("run B", names, index=1)
    ta, tb = (headline_table([r for r in runs if r.name == n]) for n in (ra, rb))
    merged = ta.merge(tb, on=["model", "method", "metric"], how="outer", suffixes=(f" {ra}", f" {rb}"))
    if f"value {ra}" in merged and f"value {rb}" in merged:
        merged["B − A"] = merged[f"value {rb}"] - merged[f"value {ra}"]
    st.dataframe(merged, hide_index=True, width="stretch")
    st.subheader("Across runs: latent quality vs M, tests Holm-corrected over runs")
    chosen = st.multiselect("runs", names, default=names)
    points, tests = across_runs([r for r in runs if r.name in chosen])
    if not points.empty and points["M"].notna().any():
        base = alt.Chart(points).encode(
            x=alt.X("M:Q", scale=alt.Scale(type="log"), title="soft tokens M"),
            color="model:N",
            tooltip=["run", "task", "model", "M", "value", "ci_low", "ci_high", "n"],
        )
        chart = base.mark_line(point=True).encode(y=alt.Y("value:Q", title="latent headline metric"))
        st.altair_chart(chart + base.mark_rule().encode(y="ci_low:Q", y2="ci_high:Q"), width="stretch")
    if not tests.empty:
        st.dataframe(styled(tests, 4), hide_index=True, width="stretch", column_config=pin_first(tests))


def sweep_chart(results: pd.DataFrame, desc: dict[str, Any]) -> alt.Chart | None:
    """One of the sweep report's charts, from its description; ``None`` where no row has its x."""
    x = desc["x"]
    if x not in results:
        return None
    data = results[results[x].notna() & (results[x] > 0)]
    return None if data.empty else draw_chart(desc, data)


def sweep_view(sweeps: list[SweepData]) -> None:
    st.header("Sweeps")
    if not sweeps:
        st.info(
            "No sweep here. `python -m runner sweep experiment.toml --grid key=v1,v2 --seeds 0,1,2` makes one."
        )
        return
    names = [s.name for s in sweeps]
    q = st.query_params.get("sweep")
    name = st.selectbox("sweep", names, index=names.index(q) if q in names else 0)
    sw = next(s for s in sweeps if s.name == name)
    broken = [m for m in sw.missing if "unreadable" in m or " is not a " in m]
    if broken:
        st.error(f"Sweep '{sw.name}': " + "; ".join(broken))
    grid = ", ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in sw.spec.get("grid", {}).items())
    st.caption(
        f"{sw.spec.get('experiment', '?')}; grid: {grid or '(none)'}; seeds: {sw.spec.get('seeds', [])}"
    )
    done = int((sw.points["status"] == "done").sum())
    st.subheader(f"Points: {done} of {len(sw.points)} done")
    st.dataframe(sw.points, hide_index=True, width="stretch")
    if sw.results is None or sw.results.empty:
        st.info(
            f"Sweep '{sw.name}' has no report yet: " + "; ".join(m for m in sw.missing if m not in broken)
        )
        return
    res = sw.results
    st.subheader(f"{res['metric'].iloc[0]}: mean over seeds with a 95% t-interval")
    cols = ["settings", "model", "method", "mean", "ci_low", "ci_high", "n_seeds", "n_per_seed"]
    cols += ["wire_bytes", "slot_tokens", "token_compression"]
    st.table(for_display(res[[c for c in cols if c in res.columns]]))
    for desc in sw.charts:
        chart = sweep_chart(res, desc)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
    if sw.tests is not None and not sw.tests.empty:
        st.subheader("Latent vs each baseline: paired by (seed, example), pooled over seeds, Holm over all")
        st.dataframe(for_display(sw.tests, 4), hide_index=True, width="stretch")


def main() -> None:
    st.set_page_config(page_title="LatentWire runs", layout="wide")
    from streamlit import config

    refusal = problem(
        config.get_option("server.address"), bool(config.get_option("browser.gatherUsageStats"))
    )
    if refusal is not None:
        st.error(refusal)
        st.stop()
    root = _runs_dir()
    st.sidebar.title("LatentWire")
    st.sidebar.caption(f"runs directory: {root.resolve()}")
    runs = list_runs(root)
    sweeps = list_sweeps(root)
    if not runs and not sweeps:
        st.warning(
            f"No run folders in {root.resolve()}. Run `python -m runner experiments/quickstart.toml` first."
        )
        return
    views = ["Overview", "Run", "Examples", "Compare", "Sweep"]
    # ?view=Run&run=<name> links straight to a page (and lets a browser test open one)
    q_view, q_run = st.query_params.get("view", "Overview"), st.query_params.get("run")
    page = st.sidebar.radio("view", views, index=views.index(q_view) if q_view in views else 0)
    if page == "Overview":
        if runs:
            overview(runs)
        else:
            st.info("No single runs here (only sweeps): open the Sweep view.")
        return
    if page == "Compare":
        compare_view(runs)
        return
    if page == "Sweep":
        sweep_view(sweeps)
        return
    if not runs:
        st.info("No single runs here (only sweeps): open the Sweep view.")
        return
    names = [r.name for r in runs]
    name = st.sidebar.selectbox("run", names, index=names.index(q_run) if q_run in names else 0)
    run = load_run(root / name)
    if page == "Run":
        run_view(run)
    else:
        examples_view(run)


main()
