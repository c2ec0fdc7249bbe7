from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from run_fixtures import MODELS, make_finished_run, make_running_run
from streamlit.testing.v1 import AppTest

from dashboard.runs import filter_examples, headline_table, list_runs, load_run, wide_examples

APP = Path(__file__).resolve().parents[2] / "apps" / "dashboard" / "src" / "dashboard" / "app.py"


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    make_finished_run(tmp_path)
    make_finished_run(tmp_path, "gamma", n_tokens=8)
    make_running_run(tmp_path)
    monkeypatch.setenv("LATENTWIRE_RUNS", str(tmp_path))
    return tmp_path


def test_reading_runs_copes_with_incomplete_folders(runs_dir: Path) -> None:
    runs = {r.name: r for r in list_runs(runs_dir)}
    assert runs["alpha"].status == "finished" and not runs["alpha"].missing
    beta = runs["beta"]
    assert beta.status == "running"
    assert any("predictions" in m for m in beta.missing) and beta.curves is not None and len(beta.curves) == 1
    table = headline_table(list(runs.values()))
    assert set(table["run"]) == {"alpha", "beta", "gamma"}
    first = json.loads((runs_dir / "alpha" / "eval" / "metrics.json").read_text())["results"][0]
    row = table[
        (table["run"] == "alpha") & (table["model"] == first["model"]) & (table["method"] == first["method"])
    ]
    assert row["95% CI"].iloc[0] == f"[{first['ci_low']:.3f}, {first['ci_high']:.3f}]"


def test_example_filters(runs_dir: Path) -> None:
    run = load_run(runs_dir / "alpha")
    wide = wide_examples(run.predictions, "tiny-llama")
    assert {"gold", "text", "latent", "token_budget", "latent accuracy"} <= set(wide.columns)
    assert len(wide) == 12
    methods = ["text", "latent", "token_budget"]
    dis = filter_examples(wide, methods, disagree=True)
    assert len(dis) == int((wide[methods].nunique(axis=1) > 1).sum())
    wrong = filter_examples(wide, methods, wrong_method="latent")
    assert (wrong["latent accuracy"] < 1).all() and len(wrong) == int((wide["latent accuracy"] < 1).sum())
    # a text search matches the gold label and every method's output
    mentions = (wide[["gold", *methods]] == "positive").any(axis=1)
    assert len(filter_examples(wide, methods, text="positive")) == int(mentions.sum())


def test_examples_are_scored_by_the_runs_headline_metric() -> None:
    """The examples view scores by the headline metrics.json names (the task's record says which: ``em``
    for recall, whose rows also hold ``f1``); without a report it falls back to the first score column."""
    import pandas as pd

    from dashboard.runs import score_column

    preds = pd.DataFrame(
        [
            {
                "example_id": "e0",
                "model": "m",
                "method": "latent",
                "gold": "rum",
                "output": "rum",
                "em": 1.0,
                "f1": 1.0,
            }
        ]
    )
    assert score_column(preds, "em") == "em" and score_column(preds) == "f1"
    assert "latent em" in wide_examples(preds, "m", "em").columns


def test_across_runs_points_and_holm(runs_dir: Path) -> None:
    from dashboard.runs import across_runs

    points, tests = across_runs(list_runs(runs_dir))
    assert set(points["M"]) == {4, 8} and set(points["run"]) == {"alpha", "gamma"}
    assert len(tests) == 8 and (tests["p_holm_across_runs"] >= tests["p_mcnemar"]).all()


def test_app_pages_render(runs_dir: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.header[0].value == "Runs"
    assert "alpha" in at.table[0].value["run"].tolist()
    at.sidebar.radio[0].set_value("Run").run()
    assert at.header[0].value.startswith("Run: ")
    at.sidebar.selectbox[0].set_value("alpha").run()
    assert not at.exception
    metrics_table = at.table[0].value
    assert "latent" in metrics_table["method"].tolist()
    assert at.main.selectbox[0].value == "accuracy"  # the headline metric is shown first
    assert set(metrics_table["metric"]) == {"accuracy"}
    assert str(metrics_table["n"].dtype) == "Int64"  # counts and bytes are integers, not 8,704.0000
    # the soft-token diagnostics panel: one row per (reader, stage)
    assert any(s.value == "Soft tokens against each reader's embeddings" for s in at.subheader)
    diag = next(d.value for d in at.dataframe if "RMS ratio" in d.value.columns)
    written = json.loads((runs_dir / "alpha" / "eval" / "metrics.json").read_text())["embedding_diagnostics"]
    want = [written[m][s]["rms_ratio"] for m in MODELS for s in ("before_calibration", "received")]
    assert diag["stage"].tolist() == ["before calibration", "received"] * len(MODELS)
    assert diag["RMS ratio"].tolist() == pytest.approx(want, rel=1e-3)
    at.sidebar.selectbox[0].set_value("beta").run()
    assert any("not there yet" in i.value for i in at.info)
    at.sidebar.radio[0].set_value("Examples").run()
    at.sidebar.selectbox[0].set_value("alpha").run()
    assert not at.exception
    assert any("of 12 examples" in c.value for c in at.caption)
    at.checkbox[0].check().run()
    assert any("examples" in c.value for c in at.caption)
    at.sidebar.radio[0].set_value("Compare").run()
    assert not at.exception and at.header[0].value == "Compare two runs"


def test_app_with_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTWIRE_RUNS", str(tmp_path / "none"))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "No run folders" in at.warning[0].value
    assert os.environ["LATENTWIRE_RUNS"].endswith("none")


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("eval/metrics.json", b"{not json"),
        ("eval/metrics.json", b"[1, 2, 3]"),
        ("eval/predictions.parquet", b"PAR1 this is not parquet"),
        ("manifest.json", b"\xff\xfe garbage"),
    ],
)
def test_corrupted_run_files_are_named_not_a_crash(runs_dir: Path, rel: str, content: bytes) -> None:
    (runs_dir / "alpha" / rel).write_bytes(content)
    run = load_run(runs_dir / "alpha")
    assert any(rel in m and ("unreadable" in m or "not a" in m) for m in run.missing), run.missing
    headline_table(list_runs(runs_dir))  # the overview still builds
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    at.sidebar.radio[0].set_value("Run").run()
    at.sidebar.selectbox[0].set_value("alpha").run()
    assert not at.exception
    assert any(rel in e.value for e in at.error)
    at.sidebar.radio[0].set_value("Examples").run()
    assert not at.exception


def test_charts_are_drawn_from_the_reports_own_description(runs_dir: Path) -> None:
    """The run view draws the quality chart from report/charts.json (latentwire_eval.charts describes it once
    for the report's PNG and the dashboard): its x, y, interval and log axis; without a description it
    draws nothing rather than a chart of its own."""
    from dashboard.app import quality_chart

    run = load_run(runs_dir / "alpha")
    assert [c["name"] for c in run.charts] == ["quality_vs_compression"]
    spec = quality_chart(run).to_dict()  # type: ignore[union-attr]
    layer = spec["layer"][1]["encoding"]
    assert layer["x"]["field"] == "slot_tokens" and layer["x"]["scale"]["type"] == "log"
    assert layer["y"]["field"] == "value" and spec["layer"][0]["encoding"]["y"]["field"] == "ci_low"
    (runs_dir / "alpha" / "report" / "charts.json").unlink()
    assert quality_chart(load_run(runs_dir / "alpha")) is None
