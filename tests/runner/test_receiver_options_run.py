"""A wire with a receiver-side option (a latent refiner, latent adapters, a coprocessor) runs every stage, records it in
wire.json, reloads, and a killed run resumes to the same weights (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from killing import killed_after
from safetensors.torch import load_file

from experiments import experiment
from latentwire_hf.pretrained import PretrainedWire
from runner.__main__ import main


def _gates(wire: Any, option: str) -> float:
    if option == "refiner_layers":
        assert wire.refiner is not None
        return float(wire.refiner.blocks[0].gate.detach().abs().sum())
    if option == "inject":
        assert wire.coprocessors is not None
        return sum(float(c.gate.detach().abs()) for c in wire.coprocessors.values())
    assert wire.latent_adapters is not None
    return sum(float(r.blocks["1"].gate.detach().abs()) for r in wire.latent_adapters.values())


@pytest.mark.parametrize(
    ("option", "value", "prefix"),
    [
        ("refiner_layers", 1, "refiner."),
        ("latent_adapter_layers", [1], "latent_adapters."),
        ("inject", "coprocessor", "coprocessors."),
    ],
)
def test_a_wire_with_a_receiver_option_trains_reloads_and_resumes_bit_identically(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: Any, prefix: str
) -> None:
    p = experiment(
        tmp_path,
        "tiny",
        name="ref",
        wire={option: value, **({"adapter": "linear"} if option == "inject" else {})},
        eval={"methods": ["latent", "latent_shuffled"], "bootstrap_resamples": 50},
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "a")]) == 0
    run = tmp_path / "a" / "ref"
    assert json.loads((run / "wire.json").read_text())["wire"][option] == value
    wire = PretrainedWire.from_pretrained(run)
    assert _gates(wire.wire, option) > 0  # training opened the gates
    with killed_after(monkeypatch, 3):
        main([str(p), "--runs-dir", str(tmp_path / "b"), "--stage", "prepare", "--stage", "train"])
    assert main([str(p), "--runs-dir", str(tmp_path / "b"), "--stage", "prepare", "--stage", "train"]) == 0
    last = Path("checkpoints") / "step_000004" / "wire.safetensors"
    a, b = load_file(tmp_path / "a" / "ref" / last), load_file(tmp_path / "b" / "ref" / last)
    assert a.keys() == b.keys() and any(k.startswith(prefix) for k in a)
    assert all((a[k] == b[k]).all() for k in a)


def test_a_latent_adapter_layer_past_a_reader_depth_is_refused_before_training(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    p = experiment(tmp_path, "tiny", name="deep", wire={"latent_adapter_layers": [0, 40]})
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "latent_adapter_layers [40]" in err and "decoder layers" in err
    assert not (tmp_path / "runs" / "deep" / "checkpoints").exists()
