"""The lm_pool encoder (latentwire_hf.encoders.lm_pool) on tiny models: padding, attention, training, standardisation, config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import TEXTS
from tiny_wire import feature_source as _feature_source

from latentwire_core import InterlinguaConfig
from latentwire_hf.encoders.lm_pool import LMPoolEncoder
from latentwire_hf.models import KNOWN_MODELS


def _lm_pool(ratio: float = 4.0, **kw: object) -> LMPoolEncoder:
    torch.manual_seed(0)
    lm, _ = KNOWN_MODELS["tiny-llama"]()
    cfg = InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=64, ratio=ratio)
    return LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("causal", [False, True])
def test_lm_pool_is_invariant_to_padding_content_and_amount(causal: bool) -> None:
    enc = _lm_pool(causal=causal).eval()
    lengths = [5, 13, 9]
    feats = torch.randn(3, 16, 32)
    mask = torch.zeros(3, 16, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    feats[~mask] = float("nan")
    z = enc(feats, mask)  # (B, M_max, d_z)
    assert z.shape == (3, 4, 16) and bool(torch.isfinite(z).all())  # ceil(13 / 4) = 4
    for i, n in enumerate(lengths):
        c = -(-n // 4)
        solo = enc(feats[i, :n][None], torch.ones(1, n, dtype=torch.bool))[0]
        torch.testing.assert_close(solo, z[i, :c], atol=1e-5, rtol=1e-4)
        assert bool((z[i, c:] == 0).all())


def test_lm_pool_non_causal_attention_sees_later_tokens() -> None:
    enc, causal = _lm_pool(ratio=1.0).eval(), _lm_pool(ratio=1.0, causal=True).eval()
    x = torch.randn(1, 6, 32)
    y = x.clone()
    y[0, 5] += 1.0  # change only the last token
    m = torch.ones(1, 6, dtype=torch.bool)
    assert not torch.allclose(enc(x, m)[0, 0], enc(y, m)[0, 0])  # the first slot sees the last token
    torch.testing.assert_close(causal(x, m)[0, 0], causal(y, m)[0, 0])  # ... only when non-causal


def test_lm_pool_trains_copies_and_leaves_the_lm_alone() -> None:
    lm, _ = KNOWN_MODELS["tiny-llama"]()
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    cfg = InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=8, ratio=2.0)
    enc = LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1)
    assert all(p.requires_grad for p in enc.parameters())
    enc(torch.randn(2, 6, 32), torch.ones(2, 6, dtype=torch.bool)).sum().backward()
    torch.optim.SGD(enc.parameters(), lr=1.0).step()
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in before.items())
    lora = LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1, train="lora", lora_rank=2)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith(("norm", "proj")) for n in trainable)
    with pytest.raises(ValueError, match="do not fit"):
        LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=2)


def test_standardization_centres_and_scales_pooled_slots_on_training_texts(tmp_path: Path) -> None:
    fs = _feature_source(tmp_path)
    plain = _lm_pool()
    assert not any("feat_" in k for k in plain.state_dict())  # older checkpoints keep their exact keys
    enc = _lm_pool(standardize=True).eval()
    enc.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(
        enc(*fs.features(TEXTS)), plain.eval()(*fs.features(TEXTS))
    )  # identity before fit
    n = enc.fit_standardization([fs.features(TEXTS[:2]), fs.features(TEXTS[2:])])
    feats, mask = fs.features(TEXTS)
    counts = enc(feats, mask).abs().sum(-1).ne(0).sum(1)  # real slots per text
    assert n == int(counts.sum())
    pooled = enc._pooled(feats, mask, counts)
    real = torch.arange(pooled.shape[1])[None] < counts[:, None]
    rows = (pooled[real] - enc.feat_mean) / enc.feat_std  # (N, d_in)
    torch.testing.assert_close(rows.mean(0), torch.zeros(32), atol=1e-4, rtol=0)
    torch.testing.assert_close(rows.std(0, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)
    assert {"feat_mean", "feat_std"} <= set(enc.state_dict())  # saved with the checkpoint and the wire
    # still invariant to padding: the statistics are per dimension, applied per slot
    z = enc(feats, mask)
    solo = enc(*fs.features(TEXTS[1:2]))[0]
    torch.testing.assert_close(solo, z[1, : solo.shape[0]], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="without standardize"):
        plain.fit_standardization([fs.features(TEXTS)])


def test_the_hf_encoder_kind_is_known_to_config_validation_without_torch() -> None:
    """latentwire_hf.config makes lm_pool a known encoder name, read from encoders/lm_pool.py's source."""
    import subprocess
    import sys

    code = (
        "import sys; import latentwire_hf.config; from latentwire_core.config import INTERLINGUAS;"
        "print(INTERLINGUAS.names(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['chunk_mean', 'lm_pool', 'perceiver'] False", out.stderr


def test_lm_encoder_config_gives_the_encoder_its_arguments_as_wire_json_stores_them(tmp_path: Path) -> None:
    """``LMPoolConfig.encoder_kwargs`` is what wire.json's ``lm_encoder`` holds and what
    ``LMPoolEncoder`` takes; ``standardize`` appears only when on, so earlier wires keep their
    identity (and fingerprint)."""
    from latentwire_hf.config import LMPoolConfig

    plain = LMPoolConfig(n_layers=1).encoder_kwargs(1)
    assert plain == {"start_layer": 1, "n_layers": 1, "causal": False, "train": "full", "lora_rank": 8}
    kw = LMPoolConfig(n_layers=1, causal=True, standardize=True).encoder_kwargs(1)
    assert kw == {**plain, "causal": True, "standardize": True}
    model, _ = KNOWN_MODELS["tiny-llama"]()
    cfg = InterlinguaConfig(kind="lm_pool", d_in=model.config.hidden_size, d_z=16, n_tokens=4, ratio=2.0)
    enc = LMPoolEncoder(cfg, lm=model, **kw)
    assert enc.causal and enc.standardize and len(enc._layer_list()) == 1
    with pytest.raises(ValueError, match="train must be one of"):
        LMPoolConfig(train="half")
