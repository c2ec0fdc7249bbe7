"""A wire with a latent refiner runs every stage, records it in wire.json, reloads, and a killed run
resumes to the same weights (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from killing import killed_after  # type: ignore[import-not-found]
from safetensors.torch import load_file

from experiments import experiment  # type: ignore[import-not-found]
from latentwire_hf.pretrained import PretrainedWire
from runner.__main__ import main


def test_a_refined_wire_trains_reloads_and_resumes_bit_identically(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = experiment(
        tmp_path,
        "tiny",
        name="ref",
        wire={"refiner_layers": 1},
        eval={"methods": ["latent", "latent_shuffled"], "bootstrap_resamples": 50},
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "a")]) == 0
    run = tmp_path / "a" / "ref"
    assert json.loads((run / "wire.json").read_text())["wire"]["refiner_layers"] == 1
    wire = PretrainedWire.from_pretrained(run)
    assert wire.wire.refiner is not None
    assert float(wire.wire.refiner.blocks[0].gate.detach().abs().sum()) > 0  # training opened it
    with killed_after(monkeypatch, 3):
        main([str(p), "--runs-dir", str(tmp_path / "b"), "--stage", "prepare", "--stage", "train"])
    assert main([str(p), "--runs-dir", str(tmp_path / "b"), "--stage", "prepare", "--stage", "train"]) == 0
    last = Path("checkpoints") / "step_000004" / "wire.safetensors"
    a, b = load_file(tmp_path / "a" / "ref" / last), load_file(tmp_path / "b" / "ref" / last)
    assert a.keys() == b.keys() and any(k.startswith("refiner.") for k in a)
    assert all((a[k] == b[k]).all() for k in a)
