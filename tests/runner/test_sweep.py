"""`python -m runner sweep`: plan, run, resume, aggregate, and the SLURM array script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from experiments import experiment, tiny_experiment
from latentwire_core.message import HEADER_BYTES
from runner.__main__ import main
from runner.config import LEGACY_WIRE_KEYS
from runner.folder import training_identity

STUDY = {  # tests/assets/tiny.toml, one reader, 2 steps, 10 dev sentences
    "name": "study",
    "data": {"train_limit": 16, "eval_limit": 10},
    "models": {"names": ["tiny-llama"]},
    "features": {"max_length": 32},
    "wire": {"encoder": {"n_tokens": 2}},
    "train": {"steps": 2, "log_every": 1},
    "eval": {"methods": ["latent", "token_budget"], "bootstrap_resamples": 50},
}


@pytest.fixture
def exp(tmp_path: Path, data_dir: Path) -> Path:
    return Path(experiment(tmp_path, **STUDY))


def test_dry_run_prints_the_plan_and_writes_nothing(exp: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    code = main(
        [
            "sweep",
            str(exp),
            "--grid",
            "wire.encoder.n_tokens=1,2",
            "--grid",
            "codec.precision=int8,int4",
            "--seeds",
            "0,1",
            "--runs-dir",
            str(runs),
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "8 points" in out and "n_tokens=1__precision=int4__seed=1" in out
    assert not runs.exists()


def test_a_bad_grid_key_or_value_fails_before_any_work(exp: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["sweep", str(exp), "--grid", "wire.encoder.n_tokns=1,2", "--runs-dir", str(runs)]) == 2
    assert "n_tokns" in capsys.readouterr().err
    assert main(["sweep", str(exp), "--grid", "wire.encoder.n_tokens=1,-3", "--runs-dir", str(runs)]) == 2
    assert "n_tokens" in capsys.readouterr().err
    assert main(["sweep", str(exp), "--grid", "wire.encoder.n_tokens", "--runs-dir", str(runs)]) == 2
    assert main(["sweep", str(exp), "--seeds", "a,b", "--runs-dir", str(runs)]) == 2
    assert not runs.exists()


def _m_sweep(exp: Path, runs: Path, *extra: str) -> list[str]:
    """``runner sweep`` over M = 1, 2 (seed 0 unless ``extra`` says otherwise)."""
    return ["sweep", str(exp), "--grid", "wire.encoder.n_tokens=1,2", "--runs-dir", str(runs), *extra]


def _two_by_two(exp: Path, runs: Path) -> list[str]:
    """M = 1, 2 x seeds 0, 1."""
    return _m_sweep(exp, runs, "--seeds", "0,1")


def test_sweep_runs_resumes_and_aggregates_over_seeds(exp: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    args = _two_by_two(exp, runs)
    assert main(args) == 0
    root = runs / "study"
    manifest = json.loads((root / "sweep.json").read_text())
    assert manifest["grid"] == {"wire.encoder.n_tokens": ["1", "2"]} and len(manifest["points"]) == 4
    for pt in manifest["points"]:
        assert (Path(pt["dir"]) / "report" / "summary.md").is_file()
    res = pd.read_csv(root / "report" / "results.csv")
    assert set(res["method"]) == {"latent", "token_budget"} and (res["n_seeds"] == 2).all()
    assert (res["ci_low"] <= res["mean"]).all() and (res["mean"] <= res["ci_high"]).all()
    lat = res[res["method"] == "latent"].set_index("param:wire.encoder.n_tokens")
    assert lat.loc[2, "wire_bytes"] > lat.loc[1, "wire_bytes"]  # the wire grows with M
    # payload: the latent's message without its frame; a text method's UTF-8 text as it read it
    assert (lat["payload_bytes"] == lat["wire_bytes"] - HEADER_BYTES).all()
    tb = res[res["method"] == "token_budget"]
    assert (tb["wire_bytes"] == 0).all() and (tb["payload_bytes"] > 0).all()
    assert (tb["payload_bytes"] <= tb["prompt_utf8_bytes"]).all()
    tests = pd.read_csv(root / "report" / "tests.csv")
    assert (tests["n"] == 20).all() and (tests["n_seeds"] == 2).all()  # pooled over 2 seeds x 10 examples
    assert "p_holm" in tests and (tests["p_holm"] >= tests["p_value"] - 1e-12).all()
    summary = (root / "report" / "summary.md").read_text()
    assert "quality_vs_bytes.png" in summary and (root / "report" / "quality_vs_bytes.png").is_file()
    capsys.readouterr()
    # a re-run skips finished points (nothing retrained) and aggregates again
    before = {p["name"]: (Path(p["dir"]) / "manifest.json").stat().st_mtime_ns for p in manifest["points"]}
    assert main(args) == 0
    assert capsys.readouterr().out.count("done ") == 4
    after = {p["name"]: (Path(p["dir"]) / "manifest.json").stat().st_mtime_ns for p in manifest["points"]}
    assert before == after


def test_points_differing_only_in_evaluation_keys_train_once(exp: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["sweep", str(exp), "--grid", "codec.precision=int8,int4", "--runs-dir", str(runs)]
    assert main(args) == 0
    root = runs / "study"
    points = json.loads((root / "sweep.json").read_text())["points"]
    assert [p.get("reuses_training_of") for p in points] == [None, points[0]["name"]]
    lead, other = (json.loads((Path(p["dir"]) / "manifest.json").read_text()) for p in points)
    stages = other["stages"]
    for stage in ("prepare", "pretrain", "train"):
        assert stages[stage]["adopted_from"] == points[0]["dir"] and stages[stage]["seconds"] == 0.0
        assert stages[stage]["source_seconds"] == lead["stages"][stage]["seconds"]
    assert "adopted_from" not in stages["evaluate"]  # each precision is evaluated on its own
    a, b = (Path(p["dir"]) / "checkpoints" for p in points)
    assert sorted(f.name for f in a.iterdir()) == sorted(f.name for f in b.iterdir())
    # the same trained wire, sent at two precisions: int4 messages are smaller
    preds = [pd.read_parquet(Path(p["dir"]) / "eval" / "predictions.parquet") for p in points]
    lat = [df[df["method"] == "latent"]["wire_bytes"].mean() for df in preds]
    assert lat[1] < lat[0]


def test_reusing_training_of_a_run_that_differs_beyond_evaluation_is_refused(
    exp: Path, tmp_path: Path, capsys
) -> None:
    runs = tmp_path / "runs"
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "prepare"]) == 0
    capsys.readouterr()
    code = main(
        [
            str(exp),
            "--runs-dir",
            str(runs),
            "--set",
            "name=other",
            "--set",
            "wire.encoder.d_z=16",
            "--reuse-training",
            str(runs / "study"),
        ]
    )
    assert code == 2 and "differs beyond [codec]/[eval] and the evaluation examples (in wire)" in (
        capsys.readouterr().err
    )


def test_a_wire_chosen_on_validation_is_evaluated_on_the_eval_split_without_training_again(
    exp: Path, tmp_path: Path
) -> None:
    # eval_split only chooses the evaluation examples: the eval-split run takes the validation run's
    # trained wire (pretrain, train) and prepares its own evaluation examples
    runs = tmp_path / "runs"
    assert main([str(exp), "--runs-dir", str(runs), "--set", 'data.eval_split="validation"']) == 0
    val = runs / "study"
    assert main([str(exp), "--runs-dir", str(runs), "--set", "name=test", "--reuse-training", str(val)]) == 0
    stages = json.loads((runs / "test" / "manifest.json").read_text())["stages"]
    assert stages["train"]["adopted_from"] == str(val) and "adopted_from" not in stages["prepare"]
    a, b = (pd.read_parquet(r / "eval" / "predictions.parquet") for r in (val, runs / "test"))
    assert not set(a["example_id"]) & set(b["example_id"])
    ckpts = sorted(f.name for f in (val / "checkpoints").iterdir())
    assert ckpts == sorted(f.name for f in (runs / "test" / "checkpoints").iterdir())
    # an older run folder that lacks a key added since (here eval_split) compares at its default
    old = (val / "experiment.toml").read_text().replace('eval_split = "validation"\n', "")
    assert training_identity(old) == training_identity((runs / "test" / "experiment.toml").read_text())
    # ... and one written in the flat [wire] layout (before [wire.encoder] / [wire.lm_pool])
    cfg = tomllib.loads(old)
    wire = cfg["wire"]
    tables = {"encoder": wire.pop("encoder"), "lm_pool": wire.pop("lm_pool")}
    for flat, (table, key) in LEGACY_WIRE_KEYS.items():
        wire[flat] = tables[table].pop(key)
    assert tables == {"encoder": {"mlp_ratio": 2}, "lm_pool": {}}  # mlp_ratio: not a flat key
    flat_toml = tomli_w.dumps(cfg)
    assert "n_tokens" in flat_toml and "[wire.encoder]" not in flat_toml
    assert training_identity(flat_toml) == training_identity((runs / "test" / "experiment.toml").read_text())
    # a run folder written in the flat layout resumes under today's code (its config is the same)
    (val / "experiment.toml").write_text(
        tomli_w.dumps({**cfg, "data": {**cfg["data"], "eval_split": "validation"}})
    )
    assert main([str(exp), "--runs-dir", str(runs), "--set", 'data.eval_split="validation"']) == 0


def test_slurm_script_runs_every_point_under_a_fake_sbatch(exp: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    code = main(
        _m_sweep(exp, runs, "--launcher", "slurm", "--launch", sys.executable, "--sbatch=--gres=gpu:1")
    )
    assert code == 0
    root = runs / "study"
    script = (root / "sweep.sbatch").read_text()
    assert "#SBATCH --array=0-1" in script and "#SBATCH --gres=gpu:1" in script
    assert f"{sys.executable} -m runner" in script and "SLURM_ARRAY_TASK_ID" in script
    assert f"submit with: sbatch {root / 'sweep.sbatch'}" in capsys.readouterr().out
    assert not any((root / n).exists() for n in ("n_tokens=1__seed=0", "n_tokens=2__seed=0"))  # nothing ran
    default = main(["sweep", str(exp), "--runs-dir", str(tmp_path / "r2"), "--launcher", "slurm"])
    assert (
        default == 0
        and "accelerate launch -m runner" in (tmp_path / "r2" / "study" / "sweep.sbatch").read_text()
    )
    # a fake sbatch: run each array task locally, as SLURM would on the nodes
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/bash\nset -e\nr=$(grep -o "array=[0-9]*-[0-9]*" "$1" | cut -d= -f2)\n'
        'for i in $(seq ${r%-*} ${r#*-}); do SLURM_ARRAY_TASK_ID=$i bash "$1"; done\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    done = subprocess.run(["sbatch", str(root / "sweep.sbatch")], env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    for name in ("n_tokens=1__seed=0", "n_tokens=2__seed=0"):
        assert (root / name / "eval" / "metrics.json").is_file()
    assert main(_m_sweep(exp, runs, "--report-only")) == 0
    assert (root / "report" / "results.csv").is_file()


def test_dashboard_shows_a_real_sweep_and_its_points_content_probe(
    exp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "apps" / "dashboard" / "src" / "dashboard" / "app.py"
    runs = tmp_path / "runs"
    args = _two_by_two(exp, runs)
    assert main(args) == 0
    monkeypatch.setenv("LATENTWIRE_RUNS", str(runs))  # holds only the sweep folder
    at = AppTest.from_file(str(app), default_timeout=60).run()
    assert not at.exception and any("only sweeps" in i.value for i in at.info)
    at.sidebar.radio[0].set_value("Sweep").run()
    assert not at.exception and at.header[0].value == "Sweeps"
    assert any(s.value == "Points: 4 of 4 done" for s in at.subheader)
    table = at.table[0].value
    expected = pd.read_csv(runs / "study" / "report" / "results.csv")
    assert len(table) == len(expected) and set(table["method"]) == {"latent", "token_budget"}
    assert sorted(table["mean"].round(3)) == sorted(expected["mean"].round(3))
    assert any("Holm" in s.value for s in at.subheader)  # the pooled paired tests
    # one point as a run: its training logged the content probe, and the run view charts it
    monkeypatch.setenv("LATENTWIRE_RUNS", str(runs / "study"))
    at = AppTest.from_file(str(app), default_timeout=60).run()
    at.sidebar.radio[0].set_value("Run").run()
    at.sidebar.selectbox[0].set_value("n_tokens=2__seed=0").run()
    assert not at.exception
    assert any(s.value.startswith("Content probe") for s in at.subheader)


@pytest.mark.parametrize(
    ("seeds", "why"), [("0,0", "seed 0 given twice"), ("", "no seed"), ("1,-2", "seeds must be >= 0")]
)
def test_repeated_missing_or_negative_seeds_are_refused_before_any_run(
    tmp_path: Path, capsys, seeds: str, why: str
) -> None:
    """One folder counted as two seeds gave a zero-width interval: seeds must be distinct."""
    exp = tiny_experiment(tmp_path)
    assert main(["sweep", str(exp), "--seeds", seeds, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert why in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_an_empty_runs_dir_and_a_negative_seed_are_refused(tmp_path: Path, capsys) -> None:
    exp = tiny_experiment(tmp_path)
    with pytest.raises(SystemExit) as e:
        main([str(exp), "--runs-dir", ""])
    assert e.value.code == 2 and "needs a folder, got an empty value" in capsys.readouterr().err
    assert main([str(exp), "--runs-dir", str(tmp_path / "r"), "--set", "seed=-1"]) == 2
    assert "seed" in capsys.readouterr().err and not (tmp_path / "r").exists()
