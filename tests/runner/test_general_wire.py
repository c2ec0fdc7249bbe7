"""The general wire's long run on tiny readers: general-corpus pretraining writes a snapshot at every
checkpoint; with the run folder gone (a new machine), the same command continues from the snapshot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from experiments import ASSETS, experiment
from latentwire_hf.data import corpus as corpus_mod
from latentwire_hf.snapshot import read_snapshot
from latentwire_hf.training import Trainer
from runner.__main__ import main

STAGES = ["--stage", "prepare", "--stage", "pretrain"]


def _exp(tmp_path: Path, snapshot: Path) -> Path:
    return experiment(
        tmp_path,
        "content",
        name="general",
        data={"task": "reconstruct_16", "data_dir": str(ASSETS / "data"), "eval_limit": 4},
        wire={"compress": "source"},
        pretrain={
            "corpus": "general",
            "steps": 4,
            "ckpt_every": 2,
            "lr_schedule": "constant",
            "warmup_steps": 1,
            "rec_eos": True,
            "curriculum": [4, 6],
            "curriculum_steps": 1,
            "snapshot": str(snapshot),
            "curve_every": 2,
            "curve_n": 4,
            "curve_words": 4,
        },
    )


def _rows(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines() if r.strip()]


def test_a_new_machine_continues_the_committed_snapshot(tmp_path: Path, monkeypatch) -> None:
    # the test slices hold ~170 corpus texts: one in four (not one in a hundred) is validation, so the
    # held-out curves have spans to read
    monkeypatch.setattr(corpus_mod, "VALIDATION_EVERY", 4)
    snap_dir = tmp_path / "wires" / "general"
    exp = _exp(tmp_path, snap_dir)
    assert main([str(exp), "--runs-dir", str(tmp_path / "a"), *STAGES]) == 0
    snap = read_snapshot(snap_dir)
    assert snap is not None and snap.step == 4
    meta = snap.meta
    assert (
        meta["tokens_encoded"] > 0 and meta["windows_seen"] == 16 and meta["data_position"]["next_step"] == 4
    )
    assert meta["cpu_seconds"] > 0 and len(meta["sittings"]) == 1 and meta["run"] == "general"
    assert [r["step"] for r in _rows(snap_dir / "curves.jsonl")] == [2, 4]
    assert {"tiny-llama/nll", "tiny-llama/nll_shuffled", "tiny-gemma3/em", "n"} <= set(
        _rows(snap_dir / "curves.jsonl")[0]
    )
    run = tmp_path / "a" / "general"
    counts = json.loads((run / "pretrain" / "corpus_counts.json").read_text())
    assert counts["train"]["tokens"]["tiny-llama"] > 0 and "squad_train" in counts["parts"]

    # a new machine: the run folder is gone, only the snapshot (committed) is there
    shutil.rmtree(tmp_path / "a")
    adopted: list[dict[str, torch.Tensor]] = []
    real_adopt = Trainer.adopt

    def spy(self: Trainer, state, step: int, **kw) -> None:
        real_adopt(self, state, step, **kw)
        adopted.append({k: v.clone() for k, v in self.acc.unwrap_model(self.wire).state_dict().items()})

    monkeypatch.setattr(Trainer, "adopt", spy)
    assert main([str(exp), "--runs-dir", str(tmp_path / "b"), *STAGES, "--set", "pretrain.steps=8"]) == 0
    (loaded,) = adopted
    for k, v in snap.weights.items():  # the weights it started from are the snapshot's
        assert torch.equal(loaded[k].to(v.dtype), v), k
    again = read_snapshot(snap_dir)
    assert again is not None and again.step == 8
    assert again.meta["windows_seen"] == 32 and again.meta["tokens_encoded"] > meta["tokens_encoded"]
    assert again.meta["cpu_seconds"] > meta["cpu_seconds"] and len(again.meta["sittings"]) == 2
    assert [r["step"] for r in _rows(snap_dir / "curves.jsonl")] == [2, 4, 6, 8]  # the curves append
    assert [r["step"] for r in _rows(snap_dir / "metrics.jsonl")] == list(range(1, 9))
    manifest = json.loads((tmp_path / "b" / "general" / "manifest.json").read_text())
    assert manifest["stages"]["pretrain"]["steps"] == 8


def test_general_corpus_without_a_data_folder_is_named(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LATENTWIRE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data beside the working folder
    exp = _exp(tmp_path, tmp_path / "snap")
    cfg = exp.read_text().replace(f'data_dir = "{ASSETS / "data"}"', 'data_dir = ""')
    exp.write_text(cfg)
    assert main([str(exp), "--runs-dir", str(tmp_path / "r"), "--stage", "pretrain"]) == 2
    assert "set LATENTWIRE_DATA or [data].data_dir" in capsys.readouterr().err
    from latentwire_hf.data import DataError
    from latentwire_hf.general import general_corpus

    with pytest.raises(
        DataError, match="corpus = 'general' reads the offline data folder: set LATENTWIRE_DATA"
    ):
        general_corpus(None, tmp_path / "out", {})
