"""Reader-anchored start (issue 21, section 3): each reader's adapter starts as the least-squares map from
the slots to its own mean_pool group means, its residual at zero; the runner fits it on a fresh wire only,
so a killed anchored run resumes to the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from killing import killed_after
from safetensors.torch import load_file
from tiny_wire import TEXTS, feature_source

from experiments import experiment
from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.adapters import AdapterConfig, LinearAdapter, ResidualMLPAdapter
from latentwire_core.anchor import anchor_adapter, anchor_wire, mean_pool_slot, ridge
from latentwire_hf.encoders.lm_pool import LMPoolEncoder
from latentwire_hf.models import KNOWN_MODELS
from runner.__main__ import main


def test_ridge_recovers_an_exact_affine_map_and_reports_its_r2() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    w, b = torch.randn(4, 6, generator=g), torch.randn(4, generator=g)
    weight, bias, r2 = ridge(x, x @ w.T + b, l2=1e-9)
    torch.testing.assert_close(weight, w, atol=1e-4, rtol=0)
    torch.testing.assert_close(bias, b, atol=1e-4, rtol=0)
    assert r2 == pytest.approx(1.0, abs=1e-8)
    _, _, r2_noise = ridge(x, torch.randn(200, 4, generator=g))
    assert r2_noise < 0.1  # nothing to explain
    with pytest.raises(ValueError, match="same N"):
        ridge(x, torch.zeros(3, 4))


def test_anchoring_makes_an_adapter_exactly_the_fitted_affine_map() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 3, 8)
    weight, bias = torch.randn(12, 8), torch.randn(12)
    for kind, cls in (("linear", LinearAdapter), ("mlp", ResidualMLPAdapter)):
        adapter = cls(AdapterConfig(kind=kind, d_z=8, d_model=12))
        anchor_adapter(adapter, weight, bias)
        torch.testing.assert_close(adapter(z), z @ weight.T + bias)  # the residual MLP adds exactly 0
    normed = LinearAdapter(AdapterConfig(kind="linear", d_z=8, d_model=12, out_norm=True))
    with pytest.raises(ValueError, match="adapter_out_norm"):
        anchor_adapter(normed, weight, bias)
    with pytest.raises(ValueError, match="do not match"):
        anchor_adapter(LinearAdapter(AdapterConfig(kind="linear", d_z=8, d_model=12)), weight.T, bias)


def test_an_anchored_wire_starts_nearer_each_readers_mean_pool_than_a_fresh_one(
    tmp_path: Path, tiny_llama, tiny_gemma3
) -> None:
    readers = {"tiny-llama": tiny_llama, "tiny-gemma3": tiny_gemma3}
    fs = feature_source(tmp_path)

    def wire() -> LatentWire:
        torch.manual_seed(0)
        cfg = LatentWireConfig(
            interlingua=InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=16, ratio=4.0),
            calibration="none",
        )
        lm_src, _ = KNOWN_MODELS["tiny-llama"]()
        enc = LMPoolEncoder(cfg.interlingua, lm=lm_src, start_layer=1, n_layers=1)
        return LatentWire(cfg, {n: (lm.d_model, lm.embed_rms) for n, lm in readers.items()}, encoder=enc)

    def error(w: LatentWire, name: str) -> float:
        """Mean squared distance of the step-0 soft tokens from the reader's mean_pool slots, on TEXTS."""
        feats, mask = fs.features(TEXTS)
        counts = w.counts(mask)
        with torch.no_grad():
            soft = w.to_model(w.encode(feats, mask, counts), name, counts=counts)
        rows = [
            (soft[i, :m] - mean_pool_slot(readers[name], readers[name].tokenize([t])[0], m)).pow(2).mean()
            for i, (t, m) in enumerate(zip(TEXTS, counts.tolist(), strict=True))
        ]
        return float(torch.stack(rows).mean())

    fresh, anchored = wire(), wire()
    fit = anchor_wire(anchored, fs, readers, TEXTS + TEXTS[:1], max_text_tokens=512)
    assert set(fit) == set(readers) and all(0.0 < f["r2"] <= 1.0 for f in fit.values())
    assert all(f["texts"] == len(TEXTS) for f in fit.values())  # duplicates fitted once
    for name in readers:
        assert error(anchored, name) < 0.5 * error(fresh, name), name
    # the shared encoder is untouched: only the adapters moved
    for (k, a), (_, b) in zip(
        fresh.encoder.state_dict().items(), anchored.encoder.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    kv = LatentWire(
        LatentWireConfig(
            interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=4),
            inject="kv",
            adapter_kind="linear",
        ),
        {"tiny-llama": (tiny_llama.d_model, tiny_llama.embed_rms)},
        kv={"tiny-llama": (tiny_llama.kv_width, tiny_llama.kv_rms)},
    )
    with pytest.raises(ValueError, match="inject = 'embeddings'"):
        anchor_wire(kv, fs, {"tiny-llama": tiny_llama}, TEXTS, max_text_tokens=512)


def test_an_anchored_run_killed_mid_pretraining_resumes_to_the_same_weights(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = experiment(
        tmp_path,
        "content",
        name="anc",
        wire={"anchor": True, "calibration": "none"},
        pretrain={"steps": 4, "ckpt_every": 2},
    )
    stages = ["--stage", "prepare", "--stage", "pretrain"]
    assert main([str(p), "--runs-dir", str(tmp_path / "a"), *stages]) == 0
    fit = json.loads((tmp_path / "a" / "anc" / "pretrain" / "anchor.json").read_text())
    assert set(fit) == {"tiny-llama", "tiny-gemma3"} and all(0 < f["r2"] <= 1 for f in fit.values())

    with killed_after(monkeypatch, 3):  # past the step-2 checkpoint, before the step-4 one
        main([str(p), "--runs-dir", str(tmp_path / "b"), *stages])
    assert main([str(p), "--runs-dir", str(tmp_path / "b"), *stages]) == 0  # resumes: no second fit
    last = Path("pretrain") / "checkpoints" / "step_000004" / "wire.safetensors"
    a, b = load_file(tmp_path / "a" / "anc" / last), load_file(tmp_path / "b" / "anc" / last)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
