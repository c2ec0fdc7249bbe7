"""End to end on tiny random models and the real SST-2 / SQuAD files (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments import experiment, tiny_experiment
from runner.__main__ import main


@pytest.mark.parametrize("task", ["sst2", "squad"])
def test_full_run_produces_the_run_folder_contract(tmp_path: Path, data_dir: Path, task: str) -> None:
    runs = tmp_path / "runs"
    assert main([str(tiny_experiment(tmp_path, task)), "--runs-dir", str(runs)]) == 0
    run = runs / "tiny"
    for rel in [
        "experiment.toml",
        "manifest.json",
        "log.jsonl",
        "train/metrics.jsonl",
        "checkpoints/latest.json",
        "eval/predictions.parquet",
        "eval/metrics.json",
        "report/summary.md",
        "report/quality_vs_compression.png",
        "report/training_curves.png",
    ]:
        assert (run / rel).is_file(), rel
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(manifest["stages"][s]["status"] == "done" for s in ("prepare", "train", "evaluate", "report"))
    assert manifest["versions"]["torch"].startswith("2.13") and manifest["seed"] == 0
    assert isinstance(manifest["git_dirty"], bool)  # this checkout is a git repository
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    assert len(preds) == 2 * 3 * 12  # models x methods x examples
    assert set(preds["method"]) == {"text", "latent", "token_budget"}
    lat = preds[preds["method"] == "latent"]
    # a format-v1 message: 28 bytes of header + CRC32, then int8 M*d_z values + one fp16 scale per 32
    assert (lat["wire_bytes"] == 28 + 4 * 32 + 2 * 4).all()
    assert (preds[preds["method"] == "token_budget"]["slot_tokens"] <= 4).all()
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert {r["method"] for r in metrics["results"]} == {"text", "latent", "token_budget"}
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in metrics["results"])
    assert {c["latent_vs"] for c in metrics["comparisons"]} == {"text", "token_budget"}
    summary = (run / "report" / "summary.md").read_text()
    assert "| tiny-llama | latent |" in summary and "Paired tests" in summary
    events = [json.loads(x)["event"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert "stage_done" in events


def test_a_run_evaluated_on_the_validation_split_never_reads_the_eval_split(
    tmp_path: Path, data_dir: Path
) -> None:
    # [data] eval_split = "validation": evaluation examples are held-out training sentences (after the
    # first train_limit), the report says so, and the training examples are those of an ordinary run
    from latentwire_hf.data import load_examples

    runs = tmp_path / "runs"
    exp = experiment(tmp_path, name="val", data={"eval_split": "validation"}, eval={"methods": ["latent"]})
    assert main([str(exp), "--runs-dir", str(runs)]) == 0
    preds = pd.read_parquet(runs / "val" / "eval" / "predictions.parquet")
    train_ids = [e.id for e in load_examples("sst2", "train", data_dir=data_dir)]
    dev_ids = {e.id for e in load_examples("sst2", "eval", data_dir=data_dir)}
    used = set(preds["example_id"])
    assert len(used) == 12 and used <= set(train_ids[24:]) and not used & dev_ids
    assert json.loads((runs / "val" / "eval" / "metrics.json").read_text())["eval_split"] == "validation"
    assert "validation split carved from train" in (runs / "val" / "report" / "summary.md").read_text()
    assert json.loads((runs / "val" / "prepare" / "data.json").read_text())["n_train"] == 24


def test_rerun_skips_finished_stages_and_fresh_starts_over(tmp_path: Path, data_dir: Path) -> None:
    runs, exp = tmp_path / "runs", tiny_experiment(tmp_path)
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "prepare", "--stage", "train"]) == 0
    manifest = json.loads((runs / "tiny" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"prepare", "train"}
    first_end = manifest["stages"]["train"]["end"]
    assert main([str(exp), "--runs-dir", str(runs)]) == 0
    manifest = json.loads((runs / "tiny" / "manifest.json").read_text())
    assert manifest["stages"]["train"]["end"] == first_end  # skipped, not redone
    assert manifest["stages"]["report"]["status"] == "done"
    assert main([str(exp), "--runs-dir", str(runs), "--fresh", "--stage", "prepare"]) == 0
    manifest = json.loads((runs / "tiny" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"prepare"}


def test_interrupted_evaluation_resumes_per_model_and_method(tmp_path: Path, data_dir: Path) -> None:
    runs, exp = tmp_path / "runs", tiny_experiment(tmp_path)
    assert main([str(exp), "--runs-dir", str(runs)]) == 0
    run = runs / "tiny"
    partial = sorted((run / "eval" / "partial").glob("*.parquet"))
    assert len(partial) == 6
    # simulate a kill during evaluate: stage marked running, one pair not yet written
    m = json.loads((run / "manifest.json").read_text())
    m["stages"]["evaluate"]["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(m))
    before = {p.name: p.stat().st_mtime_ns for p in partial}
    partial[0].unlink()
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "evaluate"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (run / "eval" / "partial").glob("*.parquet")}
    assert len(after) == 6
    assert [n for n in after if after[n] != before.get(n)] == [partial[0].name]
    # a torn partial file (the kill came while it was written) is redone, not a pyarrow traceback
    m["stages"]["evaluate"]["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(m))
    partial[1].write_bytes(b"PAR1 torn")
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "evaluate"]) == 0
    assert len(list((run / "eval" / "partial").glob("*.parquet"))) == 6


def test_changed_config_on_existing_run_is_refused_and_nothing_is_lost(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    runs, exp = tmp_path / "runs", tiny_experiment(tmp_path)
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "prepare"]) == 0
    before = (runs / "tiny" / "experiment.toml").read_text()
    assert main([str(exp), "--runs-dir", str(runs), "--set", "train.steps=9"]) == 2
    assert "holds a run of a different config" in capsys.readouterr().err
    assert (runs / "tiny" / "experiment.toml").read_text() == before


def test_bad_config_exits_2_before_any_work(tmp_path: Path, capsys) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('name = "bad"\n[train]\nlr = "fast"\n')
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "'train.lr' must be a number" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_unknown_model_name_is_reported(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                str(tiny_experiment(tmp_path)),
                "--runs-dir",
                str(tmp_path / "r"),
                "--set",
                "models.names=['gpt-7']",
            ]
        )
        == 2
    )
    assert "unknown model 'gpt-7'; known:" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["squad", "squad_v2"])
def test_the_content_recipe_runs_end_to_end_with_its_controls(
    tmp_path: Path, data_dir: Path, task: str
) -> None:
    """Pretrain -> train -> control -> evaluate on tiny readers: variable M, question in text, controls."""
    p = experiment(tmp_path, "content", data={"task": task})
    runs = tmp_path / "runs"
    assert main([str(p), "--runs-dir", str(runs)]) == 0
    run = runs / "content"
    manifest = json.loads((run / "manifest.json").read_text())
    assert [manifest["stages"][s]["status"] for s in ("pretrain", "train", "control")] == ["done"] * 3
    assert manifest["stages"]["train"]["initialised_from"].endswith("step_000002")
    # how much text each stage saw: 2 steps x 4 rows of the 16 training questions (distinct draws)
    tr, pre = manifest["stages"]["train"], manifest["stages"]["pretrain"]
    assert tr["examples_seen"] == 8 and 1 <= tr["distinct_texts_seen"] <= 8 and tr["groups_seen"] >= 1
    assert pre["distinct_windows_seen"] <= 8 and pre["source_texts"] >= 1
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    lat = preds[preds["method"] == "latent"].set_index(["model", "example_id"])
    for method in ("token_budget", "mean_pool", "latent_shuffled"):  # the same per-example budget M_i
        other = preds[preds["method"] == method].set_index(["model", "example_id"])
        assert (other.loc[lat.index, "slot_tokens"] <= lat["slot_tokens"]).all(), method
    assert (preds[preds["method"] == "no_context"]["slot_tokens"] == 0).all()
    # the controls go through the same prompt builder: same prompt around the slot
    pt = preds.set_index(["model", "method", "example_id"])
    for (model, ex), row in lat.iterrows():
        nc = pt.loc[(model, "no_context", ex)]
        assert row["prompt_tokens"] - row["slot_tokens"] == nc["prompt_tokens"]
    sp = preds[preds["method"] == "text_soft_prompt"]
    txt = preds[preds["method"] == "text"]
    assert (sp["slot_tokens"].to_numpy() > txt["slot_tokens"].to_numpy()).all()  # soft prompt + full text
    assert (lat["wire_bytes"] == lat["latent_wire_bytes_int8"]).all()
    assert preds["answer_in_slot"].notna().any()
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["wire"]["ratio"] == 4 and metrics["wire"]["compress"] == "context"
    if task == "squad_v2":
        assert {r.get("subset") for r in metrics["results"]} == {"all", "has_answer", "no_answer"}
        aa = metrics["always_abstain"]
        assert aa["f1"] == pytest.approx(aa["no_answer_share"])
        assert "always abstaining" in (run / "report" / "summary.md").read_text()
    # soft-token scale and nearest-vocabulary diagnostics, per reader, before and after calibration
    diag = metrics["embedding_diagnostics"]
    readers = set(preds["model"]) - {"all readers", "no reader"}
    assert readers <= set(diag)
    for name in readers:
        for stage in ("before_calibration", "received"):
            d = diag[name][stage]
            assert d["n_soft_tokens"] == int(lat.loc[name].head(diag["n_examples"])["slot_tokens"].sum())
            assert -1.0 <= d["nearest_cos"]["mean"] <= 1.0 and d["embed_rms"] > 0
        # calibration rms: what the reader received sits at its embedding scale
        assert diag[name]["received"]["soft_rms"]["median"] == pytest.approx(
            diag[name]["received"]["embed_rms"], rel=0.5
        )
    assert "Soft tokens against each reader's embeddings" in (run / "report" / "summary.md").read_text()


@pytest.mark.parametrize("base", ["tiny", "content"])
def test_the_runner_builds_its_wire_by_the_one_constructor_whatever_the_process_loaded_before(
    tmp_path: Path, data_dir: Path, base: str
) -> None:
    # a train stage in a fresh process (nothing loaded yet) starts from the same weights as one after
    # prepare in the same process; PretrainedWire's constructor rebuilds the same tensors from wire.json
    # (wire.json lists the readers sorted, so its fresh initialisation is another draw: weights are loaded)
    from latentwire_hf.pretrained import SPEC_FILE, WireSpec, build_wire
    from runner.config import load_experiment
    from runner.run import Run

    exp = load_experiment(experiment(tmp_path, base))
    warm = Run(exp, root=tmp_path / "a")
    warm.readers(), warm.features()
    ref = warm.build_wire().state_dict()
    cold = Run(exp, root=tmp_path / "b")
    built = cold.build_wire().state_dict()
    rebuilt = build_wire(WireSpec.read(tmp_path / "b" / exp.name / SPEC_FILE)).state_dict()
    assert built.keys() == ref.keys() and all(torch.equal(built[k], ref[k]) for k in ref)
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in ref.items()}
