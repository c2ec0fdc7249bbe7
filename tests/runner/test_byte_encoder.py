"""The byte encoder (issue 22): ``[features] source = "bytes"`` reads UTF-8 bytes and embeds them with a
trainable front inside the wire's encoder, trained from scratch with it; it runs every stage, travels in
``wire.json`` and the checkpoints, and sends the same messages after a reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from experiments import experiment
from latentwire_core.bytes_features import (
    ByteFeatureConfig,
    ByteFeatureSource,
    ByteFrontEncoder,
    ByteIdSource,
)
from latentwire_core.config import InterlinguaConfig
from latentwire_core.interlingua import build_interlingua
from latentwire_hf.pretrained import PretrainedWire
from runner.__main__ import main
from runner.config import ConfigError, load_experiment


def test_the_byte_front_trains_with_the_encoder_and_ignores_padding() -> None:
    src = ByteIdSource(ByteFeatureConfig(max_bytes=32, d_f=16))
    feats, mask = src.features(["héllo", "a longer text here"])
    assert (
        feats.shape[:2] == mask.shape and feats.shape[2] == 1 and int(mask[0].sum()) == len("héllo".encode())
    )
    inner = build_interlingua(InterlinguaConfig(kind="mean_pool", d_in=16, d_z=8, n_tokens=2))
    enc = ByteFrontEncoder(ByteFeatureSource(ByteFeatureConfig(max_bytes=32, d_f=16, n_heads=2)), inner)
    z = enc(feats, mask)
    z.pow(2).sum().backward()
    assert z.shape == (2, 2, 8)
    assert enc.front.embed.weight.grad is not None and enc.front.embed.weight.grad.abs().sum() > 0
    # what sits in padded positions never matters
    junk = feats.clone()
    junk[~mask] = 77.0
    enc.eval()
    torch.testing.assert_close(enc(junk, mask), enc(feats, mask))


def test_a_byte_wire_runs_every_stage_and_reloads_to_the_same_messages(
    tmp_path: Path, data_dir: Path
) -> None:
    p = experiment(
        tmp_path,
        "tiny",
        name="bytes",
        features={"source": "bytes", "max_length": 128},
        eval={"methods": ["text", "latent", "latent_shuffled"], "bootstrap_resamples": 50},
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "bytes"
    spec = json.loads((run / "wire.json").read_text())
    assert spec["features"]["source"] == "bytes"
    wire = PretrainedWire.from_pretrained(run)
    assert any(k.startswith("encoder.front.") for k in wire.wire.state_dict())
    texts = ["a charming and often affecting journey", "dull"]
    again = PretrainedWire.from_pretrained(wire.save_pretrained(tmp_path / "saved"))
    assert again.encode(texts) == wire.encode(texts)
    res = json.loads((run / "eval" / "metrics.json").read_text())["results"]
    assert {r["method"] for r in res} >= {"latent", "latent_shuffled"}


def test_the_lm_pool_encoder_needs_a_causal_lm_not_bytes(tmp_path: Path) -> None:
    p = experiment(
        tmp_path,
        "tiny",
        name="x",
        features={"source": "bytes"},
        wire={"encoder": {"kind": "lm_pool", "ratio": 4}},
    )
    with pytest.raises(ConfigError, match=r"lm_pool' needs \[features\].source to be a causal LM"):
        load_experiment(p)
