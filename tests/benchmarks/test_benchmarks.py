"""The efficiency benchmark runs on a finished run folder and writes its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from experiments import TALK, experiment, tiny_experiment
from runner.__main__ import main

REPO = Path(__file__).resolve().parents[2]


def test_latency_benchmark_writes_its_figures(tmp_path: Path, data_dir: Path) -> None:
    runs = tmp_path / "runs"
    assert (
        main(
            [
                str(tiny_experiment(tmp_path)),
                "--runs-dir",
                str(runs),
                "--stage",
                "prepare",
                "--stage",
                "train",
            ]
        )
        == 0
    )
    before = {p: p.stat().st_mtime_ns for p in (runs / "tiny").rglob("*") if p.is_file()}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "latency.py"),
            str(runs / "tiny"),
            "--n",
            "4",
            "--batch",
            "2",
            "--new-tokens",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((runs / "tiny" / "report" / "efficiency.json").read_text())
    assert {(r["model"], r["method"]) for r in data["results"]} == {
        (m, k) for m in ("tiny-llama", "tiny-gemma3") for k in ("text", "latent")
    }
    for r in data["results"]:
        assert r["ttft_s_batch1"] > 0 and r["throughput_examples_per_s"] > 0 and r["peak_memory_mb"] > 0
    assert "TTFT" in (runs / "tiny" / "report" / "efficiency.md").read_text()
    assert data["meta"]["run"] == str(runs / "tiny") and data["meta"]["wall_s"] > 0  # provenance
    assert len(data["meta"]["git_revision"] or "0" * 40) == 40
    after = {p: t for p, t in ((p, p.stat().st_mtime_ns) for p in (runs / "tiny").rglob("*") if p.is_file())}
    report = {p for p in after if p.parent.name == "report"}
    assert {p: t for p, t in after.items() if p not in report} == before  # manifest and log untouched


def test_efficiency_by_prompt_length_writes_its_figures_and_leaves_the_run_alone(
    tmp_path: Path, data_dir: Path
) -> None:

    exp = experiment(tmp_path, "content", **TALK)
    runs = tmp_path / "runs"
    assert main([str(exp), "--runs-dir", str(runs), "--stage", "prepare", "--stage", "train"]) == 0
    run = runs / "talk"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    out = tmp_path / "bench"
    cmd = [sys.executable, str(REPO / "benchmarks" / "efficiency.py"), str(run), "--lengths", "16,48"]
    cmd += ["--reps", "1", "--batch", "2", "--new-tokens", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "efficiency_lengths.json").read_text())
    assert data["meta"]["weights"].endswith("step_000002")  # the run's trained checkpoint
    gen = {(r["reader"], r["prompt_tokens"], r["method"]): r for r in data["rows"]}
    assert set(gen) == {
        (m, n, k)
        for m in ("tiny-llama", "tiny-gemma3")
        for n in (16, 48)
        for k in ("text", "latent", "train_step")
    }
    for (_, _, k), r in gen.items():
        if k == "train_step":
            assert r["train_step_s"] > 0 and r["reader_fwd_bwd_s"] > 0 and r["train_step_overhead"] > 0
            assert r["wire_fwd_bwd_s"] > 0 and r["optimizer_s"] > 0  # where the rest of the step goes
        else:
            assert r["ttft_s"] > 0 and r["throughput_examples_per_s"] > 0 and r["peak_memory_mb"] > 0
    assert (
        gen[("tiny-llama", 48, "latent")]["slot_tokens"] == 12
    )  # ceil(48 / 4): the whole prompt at the ratio
    assert "TTFT" in (out / "efficiency_lengths.md").read_text()
    assert before == {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}  # read-only

    # a what-if: the same wire's encoder with one LoRA-trained layer, untrained, timed on one reader
    what_if = [*cmd[:-1], str(tmp_path / "bench-lora"), "--readers", "tiny-llama", "--lengths", "16"]
    what_if += ["--train-step-only", "--lm-encoder", "n_layers=1", "--lm-encoder", "train=lora"]
    proc = subprocess.run(what_if, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "bench-lora" / "efficiency_lengths.json").read_text())
    assert data["meta"]["weights"].startswith("untrained, lm_encoder {'n_layers': 1, 'train': 'lora'}")
    assert data["meta"]["lm_encoder_overrides"] == ["n_layers=1", "train=lora"]
    assert [r["method"] for r in data["rows"]] == ["train_step"]
    assert "| tiny-llama | 16 | 4 | – |" in (tmp_path / "bench-lora" / "efficiency_lengths.md").read_text()
    bad = subprocess.run([*what_if[:-1], "layers=1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--lm-encoder 'layers=1': expected KEY=VALUE with KEY one of" in bad.stderr


def test_quickstart_benchmark_times_a_cold_then_a_warm_run(tmp_path: Path, data_dir: Path) -> None:
    exp = experiment(tmp_path, name="qs", eval={"methods": ["text", "latent", "token_budget"]})
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "quickstart.py"),
            "--experiment",
            str(exp),
            "--out",
            str(out),
            "--keep",
            str(tmp_path / "kept"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "quickstart_time.json").read_text())
    for run in ("cold", "warm"):
        assert data[run]["wall_seconds"] > 0
        assert set(data[run]["stage_seconds"]) >= {"prepare", "train", "evaluate", "report"}
        assert set(data[run]["evaluate_seconds_by_method"]) == {
            f"{m} / {k}" for m in ("tiny-llama", "tiny-gemma3") for k in ("text", "latent", "token_budget")
        }
    assert data["warm_accuracy_equals_cold"] is True and data["device"].startswith("CPU")
    assert "| cold |" in (out / "quickstart_time.md").read_text()
    assert (tmp_path / "kept" / "qs" / "report" / "summary.md").is_file()  # the cold run, kept


def test_quickstart_profile_takes_the_training_step_apart(tmp_path: Path, data_dir: Path) -> None:
    exp = experiment(tmp_path, name="qs", eval={"methods": ["text", "latent", "token_budget"]})
    out = tmp_path / "prof"
    cmd = [sys.executable, str(REPO / "benchmarks" / "quickstart_profile.py"), "--experiment", str(exp)]
    cmd += ["--out", str(out), "--keep", str(tmp_path / "kept")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "quickstart_profile.json").read_text())
    parts = {r["part"].strip(): r for r in data["train"]}
    train = parts["train stage (Trainer.train)"]
    assert train["seconds"] > 0 and train["share"] == 1.0
    # every part of the step was found, and each is a part of the stage it belongs to
    for r in data["train"]:
        assert r["seconds"] is not None and r["calls"] >= 1, r
        assert 0 <= r["seconds"] <= train["seconds"] + 1e-6, r
    step = parts["one micro step: forward + backward (Trainer._micro_step)"]
    assert step["calls"] >= 1
    assert data["evaluate"][0]["share"] == 1.0
    assert all(data["top_own_time"][stage][0]["own_s"] > 0 for stage in ("train", "evaluate"))
    assert set(data["stage_seconds"]) >= {"prepare", "train", "evaluate", "report"}
    md = (out / "quickstart_profile.md").read_text()
    assert "## The train stage" in md and "backward (Accelerator.backward)" in md
    # the profiled run lived in a temporary folder, and --keep copied it out whole
    assert [p.relative_to(tmp_path) for p in tmp_path.glob("**/quickstart-profile")] == [
        Path("kept/quickstart-profile")
    ]
    assert (tmp_path / "kept" / "quickstart-profile" / "eval" / "metrics.json").is_file()
