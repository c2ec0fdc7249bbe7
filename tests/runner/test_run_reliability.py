"""Bad input and concurrent use fail with one line naming the problem (exit 2), before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from experiments import experiment, merge_tables
from runner.__main__ import main
from runner.config import ConfigError, load_experiment
from runner.folder import RunLock

REL = {  # tests/assets/tiny.toml cut down: one reader, a 2 x 8 wire, 2 steps
    "name": "rel",
    "data": {"train_limit": 8, "eval_limit": 4},
    "models": {"names": ["tiny-llama"]},
    "wire": {"encoder": {"n_tokens": 2, "d_z": 8, "n_heads": 2}},
    "train": {"steps": 2, "batch_size": 4},
    "eval": {"bootstrap_resamples": 50},
}


def _exp(tmp_path: Path, *, data: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> Path:
    return Path(experiment(tmp_path, **merge_tables(REL, {"data": data or {}, "train": train or {}})))


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    last = err[-1]
    assert "error: " in last  # a progress bar left open may share the line
    return last[last.rfind("error: ") :]


def test_a_binary_toml_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert main([str(p)]) == 2
    assert "bin.toml: not a UTF-8 text file" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"lr": float("inf")}, r"lr must be a finite number"),
        ({"lr": float("nan")}, r"lr must be a finite number"),
        ({"kd_temperature": float("-inf")}, r"kd_temperature must be a finite number"),
    ],
)
def test_non_finite_values_are_refused_at_load(tmp_path: Path, extra: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_experiment(_exp(tmp_path, train=extra))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('name = "x"\n[wire.encoder]\nn_tokens = 100000\n', r"'n_tokens' must be <= 4096"),
        ('name = "x"\n[wire.encoder]\nd_z = 100000000\n', r"'d_z' must be <= 16384"),
        (
            'name = "x"\n[wire.encoder]\nd_z = 30\nn_heads = 4\n',
            r"d_z \(30\) must be divisible by n_heads \(4\)",
        ),
        ('name = "x"\n[wire.encoder]\ndropout = 1.5\n', r"dropout must be in \[0, 1\)"),
        # issue 25, item 3: allowed values that exhausted memory or hung
        ('name = "x"\n[wire.encoder]\nmlp_ratio = 100000000\n', r"wire.encoder.mlp_ratio must be <= 16"),
        ('name = "x"\n[train]\nbatch_size = 100000000\n', r"train.batch_size must be <= 4096"),
        (
            'name = "x"\n[wire.encoder]\nn_tokens = 4096\nd_z = 16384\nn_heads = 4\n',
            r"the wire needs about \d+\.\d GiB to train .* lower \[wire.encoder\] d_z",
        ),
    ],
)
def test_ranges_that_protect_the_machine_fail_at_load(tmp_path: Path, body: str, match: str) -> None:
    """Each is refused at load, within a second of reading the file, before any folder is written."""
    p = tmp_path / "x.toml"
    p.write_text(body)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=match):
        load_experiment(p)
    assert time.perf_counter() - t0 < 5  # refused before any allocation


def test_every_numeric_key_has_a_bound_and_the_shipped_experiments_fit() -> None:
    """No int or float key of an experiment is unbounded (issue 25, item 3); every shipped file is within
    the bounds and its wire's estimated memory fits this machine."""
    import attrs

    from runner.config import Experiment
    from runner.limits import NUMERIC_BOUNDS, wire_memory_bytes

    def numeric(cls: type, prefix: str = "") -> list[str]:
        out = []
        for f in attrs.fields(cls):
            default = f.default
            if isinstance(default, attrs.Factory) and attrs.has(default.factory):  # type: ignore[arg-type]
                out += numeric(default.factory, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            elif f.type in ("int", "float", int, float):
                out.append(f"{prefix}{f.name}")
        return out

    keys = numeric(Experiment)
    assert keys and not sorted(set(keys) - set(NUMERIC_BOUNDS))
    repo = Path(__file__).resolve().parents[2]
    for toml in sorted((repo / "experiments").glob("*.toml")):
        if "init_from" in toml.read_text():
            continue  # needs its source run folder (tests/runner/test_config.py loads it with one)
        exp = load_experiment(toml)  # raises on a bound or a memory refusal
        assert wire_memory_bytes(exp)[0] > 0


def test_unknown_model_and_missing_device_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _exp(tmp_path)
    assert (
        main([str(p), "--runs-dir", str(tmp_path / "runs"), "--set", 'models.names=["tiny-llama", "gpt9"]'])
        == 2
    )
    assert "[models].names[1]: unknown model 'gpt9'" in _one_line_error(capsys)
    # the LLMLingua scorer is a model too: refused at load, before any folder is written (issue 25, item 6)
    assert (
        main([str(p), "--runs-dir", str(tmp_path / "r2"), "--set", 'eval.llmlingua_scorer="os.system"']) == 2
    )
    assert "[eval].llmlingua_scorer: unknown model 'os.system'" in _one_line_error(capsys)
    assert not (tmp_path / "r2").exists()
    if not __import__("torch").cuda.is_available():
        assert main([str(p), "--runs-dir", str(tmp_path / "runs"), "--set", 'models.device="cuda"']) == 2
        line = _one_line_error(capsys)
        assert ("no CUDA device" in line or "no NVIDIA driver" in line) and str(p) in line


def test_an_empty_eval_split_is_refused_in_prepare_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    (data / "dev.tsv").write_text("sentence\tlabel\n")
    (data / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"movie {i}\t{i % 2}\n" for i in range(10)))
    p = _exp(tmp_path, data={"data_dir": str(tmp_path / "data")})
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 2
    line = _one_line_error(capsys)
    assert "the eval split has 0 usable examples" in line and "min_eval" in line
    manifest = json.loads((tmp_path / "runs" / "rel" / "manifest.json").read_text())
    assert manifest["stages"]["prepare"]["status"] == "failed" and "train" not in manifest["stages"]


def test_a_corrupt_manifest_names_the_file(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _exp(tmp_path)
    run = tmp_path / "runs" / "rel"
    assert main([str(p), "--runs-dir", str(tmp_path / "runs"), "--stage", "prepare"]) == 0
    (run / "manifest.json").write_text("{not json")
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 2
    line = _one_line_error(capsys)
    assert f"{run / 'manifest.json'}: corrupted" in line and "remove this file and run again" in line
    (run / "manifest.json").unlink()  # what the message says is enough: prepare's files are reused
    assert main([str(p), "--runs-dir", str(tmp_path / "runs"), "--stage", "prepare"]) == 0


def test_a_second_runner_on_the_same_folder_is_refused_naming_the_holder(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from runner.folder import RunLock; "
            f"lock = RunLock(Path({str(runs / 'rel')!r})); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main([str(_exp(tmp_path)), "--runs-dir", str(runs)]) == 2
        assert f"in use by another runner (PID {holder.pid})" in _one_line_error(capsys)
        assert not (runs / "rel").exists()  # nothing was written
        # and the refusal comes before torch is even imported (issue 25, item 6: it took ~8 s)
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from runner.__main__ import main; "
                f"rc = main([{str(_exp(tmp_path))!r}, '--runs-dir', {str(runs)!r}]); "
                "print(rc, 'torch' in sys.modules)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.stdout.split() == ["2", "False"], probe.stderr[-1000:]
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock is stale and is taken over safely
    lock = RunLock(runs / "rel")
    assert (runs / ".rel.lock").read_text() == str(os.getpid())
    lock.release()


def test_a_corrupted_finished_artefact_is_noticed_and_remade(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _exp(tmp_path)
    runs = tmp_path / "runs"
    assert main([str(p), "--runs-dir", str(runs)]) == 0
    run = runs / "rel"

    def scores(m: dict) -> list:
        return [(r["model"], r["method"], r["metric"], r["value"]) for r in m["results"]]  # not latency

    good = scores(json.loads((run / "eval" / "metrics.json").read_text()))
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["stages"]["evaluate"]["outputs"]) == {"eval/predictions.parquet", "eval/metrics.json"}
    (run / "eval" / "predictions.parquet").write_bytes(b"PAR1 garbage")
    (run / "eval" / "metrics.json").write_text("{")
    capsys.readouterr()
    assert main([str(p), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr()
    assert "stage_output_damaged_rerunning" in out.out + out.err
    assert scores(json.loads((run / "eval" / "metrics.json").read_text())) == good  # remade, same scores
    # the report was made from the old evaluation: it is made again, not left stale (issue 25, item 7)
    assert "later_stages_stale" in out.out + out.err
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert after["report"]["status"] == "done" and after["report"]["start"] >= after["evaluate"]["end"]
    # (the manifest's times are to the second: the files say which was written last)
    assert (run / "report" / "summary.md").stat().st_mtime_ns >= (
        run / "eval" / "metrics.json"
    ).stat().st_mtime_ns
    # a damaged wire.json (what PretrainedWire rebuilds the wire from) is noticed and written again
    spec = (run / "wire.json").read_text()
    assert "wire.json" in after["train"]["outputs"]
    (run / "wire.json").write_text(spec.replace('"d_z": 8', '"d_z": 9'))
    assert (run / "wire.json").read_text() != spec
    assert main([str(p), "--runs-dir", str(runs)]) == 0
    assert (run / "wire.json").read_text() == spec


def test_config_validation_imports_nothing_heavy(tmp_path: Path) -> None:
    """A bad file is refused before torch, transformers, accelerate or pandas load (so in well under 2 s)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[train]\nlr = -1.0\n[features]\nsource = "no-such-model"\n')
    code = (
        "import sys\n"
        "from runner.__main__ import main\n"
        f"rc = main([{str(bad)!r}])\n"
        "heavy = [m for m in ('torch', 'transformers', 'accelerate', 'pandas', 'datasets') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr
    assert "lr must be > 0" in out.stderr and "[features].source: unknown model 'no-such-model'" in out.stderr
    assert str(bad) in out.stderr


def test_a_diverging_run_stops_with_a_named_error_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _exp(tmp_path, train={"lr": 1e6, "grad_clip": 1e6, "ckpt_every": 1, "warmup_steps": 0})
    assert main([str(p), "--runs-dir", str(tmp_path / "runs"), "--set", "train.steps=6"]) == 2
    line = _one_line_error(capsys)
    assert "non-finite" in line and "last good checkpoint" in line
    run = tmp_path / "runs" / "rel"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "failed" and "evaluate" not in manifest["stages"]
    assert not (run / "eval" / "metrics.json").exists()  # no metrics of a NaN model
    import torch
    from safetensors.torch import load_file

    from latentwire_hf.checkpoint import latest_checkpoint

    ck = latest_checkpoint(run / "checkpoints")
    if ck is not None:  # whatever was saved is finite
        assert all(bool(torch.isfinite(t).all()) for t in load_file(ck / "wire.safetensors").values())


def test_a_checkpoint_that_cannot_be_used_is_one_line_exit_2(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _exp(tmp_path, train={"ckpt_every": 2})
    runs = tmp_path / "runs"
    assert main([str(p), "--runs-dir", str(runs), "--stage", "prepare", "--stage", "train"]) == 0
    (runs / "rel" / "checkpoints" / "step_000002" / "wire.safetensors").write_bytes(b"\0" * 64)
    assert main([str(p), "--runs-dir", str(runs)]) == 2
    assert "corrupted" in _one_line_error(capsys)


KILL = """
name = "kill"
[data]
task = "sst2"
train_limit = 64
eval_limit = 4
[models]
names = ["tiny-llama"]
[wire.encoder]
n_tokens = 2
d_z = 8
n_heads = 2
[train]
steps = 400
batch_size = 4
ckpt_every = 10
log_every = 10
kd_weight = 0.0
"""


@pytest.mark.slow
def test_kill_9_during_training_resumes_to_the_same_weights(tmp_path: Path, data_dir: Path) -> None:
    """A real SIGKILL of the runner process mid-training, then the same command: bit-identical weights."""
    import signal

    import torch
    from safetensors.torch import load_file

    exp = tmp_path / "kill.toml"
    exp.write_text(KILL)
    env = {**os.environ, "LATENTWIRE_DATA": str(data_dir)}

    def cmd(runs: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "runner",
            str(exp),
            "--runs-dir",
            str(runs),
            "--stage",
            "prepare",
            "--stage",
            "train",
        ]

    ref = subprocess.run(cmd(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    victim = subprocess.Popen(
        cmd(tmp_path / "k"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpts = tmp_path / "k" / "kill" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not any(ckpts.glob("step_00004*")):
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    again = subprocess.run(cmd(tmp_path / "k"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    a = load_file(tmp_path / "ref" / "kill" / "checkpoints" / "step_000400" / "wire.safetensors")
    b = load_file(ckpts / "step_000400" / "wire.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_reader_given_as_a_folder_writes_only_inside_its_run_and_is_never_reused_across_runs(
    tmp_path: Path, data_dir: Path
) -> None:
    """Issue 25, item 1: the partial evaluation results of a reader named by its folder path used to land
    next to that folder (``Path("eval/partial") / "/abs/path__text.parquet"``), and a second run then
    reported the first run's predictions as its own."""
    import pandas as pd

    from latentwire_hf.models import load_causal_lm

    model, tok = load_causal_lm("tiny-llama")
    folder = tmp_path / "models" / "my llama"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*"))
    runs = tmp_path / "runs"
    for name, seed, limit in (("first", 0, 6), ("second", 1, 3)):
        p = _exp(tmp_path)
        sets = [
            f"name={name}",
            f"seed={seed}",
            f"data.eval_limit={limit}",
            f'models.names=["{folder}"]',
            f'features.source="{folder}"',
            "features.layer=1",
            'eval.methods=["text", "latent"]',
        ]
        assert main([str(p), "--runs-dir", str(runs), *[a for s in sets for a in ("--set", s)]]) == 0
        preds = pd.read_parquet(runs / name / "eval" / "predictions.parquet")
        assert len(preds) == 2 * limit  # its own examples, never another run's
        partial = (
            list((runs / name / "eval" / "partial").glob("*.parquet"))
            if (runs / name / "eval" / "partial").exists()
            else []
        )
        assert all(q.parent == runs / name / "eval" / "partial" for q in partial)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*")) == before
