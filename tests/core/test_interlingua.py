from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core import (
    InterlinguaConfig,
    LatentWire,
    LatentWireConfig,
    UnknownNameError,
    build_interlingua,
    calibrate_rms,
    example_rms,
)
from latentwire_core.interlingua import INTERLINGUAS, chunk_weights


@given(st.lists(st.integers(0, 12), min_size=1, max_size=4), st.integers(1, 6), st.booleans())
def test_chunk_weights_partition_real_tokens(lengths: list[int], m: int, left: bool) -> None:
    t = max(max(lengths), 1)
    mask = torch.zeros(len(lengths), t, dtype=torch.bool)
    for i, n in enumerate(lengths):
        if n:
            if left:
                mask[i, t - n :] = True
            else:
                mask[i, :n] = True
    w = chunk_weights(mask, m)  # (B, M, T)
    assert bool((w[~mask[:, None, :].expand_as(w)] == 0).all())
    for i, n in enumerate(lengths):
        sums = w[i].sum(-1)
        if n == 0:
            assert bool((sums == 0).all())
            continue
        torch.testing.assert_close(sums, torch.ones(m))
        # chunks are contiguous and in order over the real tokens
        real = w[i][:, mask[i]]  # (M, n)
        firsts = [int(torch.nonzero(r)[0]) for r in real]
        lasts = [int(torch.nonzero(r)[-1]) for r in real]
        assert firsts == sorted(firsts) and lasts == sorted(lasts)
        assert all(int((r > 0).sum()) == last - first + 1 for r, first, last in zip(real, firsts, lasts))
        if n >= m:  # a true partition when there are enough tokens
            assert torch.equal((real > 0).sum(0), torch.ones(n, dtype=torch.long))


@settings(deadline=None, max_examples=25)
@given(
    kind=st.sampled_from(["perceiver", "chunk_mean"]),
    lengths=st.lists(st.integers(1, 10), min_size=1, max_size=3),
    extra=st.integers(0, 5),
    left=st.booleans(),
)
def test_encoders_ignore_padding_content(kind: str, lengths: list[int], extra: int, left: bool) -> None:
    torch.manual_seed(0)
    enc = build_interlingua(InterlinguaConfig(kind=kind, d_in=12, d_z=16, n_tokens=3, n_heads=2)).eval()
    t = max(lengths) + extra
    feats = torch.randn(len(lengths), t, 12)
    mask = torch.zeros(len(lengths), t, dtype=torch.bool)
    for i, n in enumerate(lengths):
        sl = slice(t - n, t) if left else slice(0, n)
        mask[i, sl] = True
    z = enc(feats, mask)
    assert z.shape == (len(lengths), 3, 16)
    garbage = feats.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 12) * 1e3
    garbage[~mask][:, 0] = float("nan")
    torch.testing.assert_close(enc(garbage, mask), z, atol=1e-5, rtol=1e-5)
    # the same row with no padding at all gives the same Z
    for i, n in enumerate(lengths):
        alone = feats[i][mask[i]][None]
        torch.testing.assert_close(
            enc(alone, torch.ones(1, n, dtype=torch.bool))[0], z[i], atol=1e-5, rtol=1e-4
        )


def test_unknown_encoder_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match=r"known: chunk_mean, (lm_pool, )?perceiver"):
        INTERLINGUAS.get("qformer")


def test_config_range_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="n_tokens must be > 0"):
        InterlinguaConfig(n_tokens=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        InterlinguaConfig(kind="nope")
    with pytest.raises(ValueError, match="'n_tokens' must be <= 4096"):
        InterlinguaConfig(n_tokens=4097)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        InterlinguaConfig(dropout=1.0)


@given(st.floats(0.01, 10.0), st.integers(1, 4))
def test_rms_calibration_is_one_gain_per_example(target: float, b: int) -> None:
    x = torch.randn(b, 5, 7) * torch.rand(b, 1, 1) * 3 + 0.01
    y = calibrate_rms(x, target_rms=target)
    torch.testing.assert_close(example_rms(y).flatten(), torch.full((b,), target), rtol=1e-4, atol=1e-6)
    # one gain per example: the ratio between any two tokens of an example is kept
    ratio = y / x
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-4, atol=1e-6)


def test_latent_wire_serves_several_models_at_their_scale() -> None:
    cfg = LatentWireConfig(interlingua=InterlinguaConfig(d_in=12, d_z=16, n_tokens=4, n_heads=2))
    wire = LatentWire(cfg, {"small": (24, 0.12), "gemma-like": (40, 1.03)})
    z = wire.encode(torch.randn(3, 9, 12), torch.ones(3, 9, dtype=torch.bool))
    assert z.shape == (3, 4, 16)
    a, g = wire.to_model(z, "small"), wire.to_model(z, "gemma-like")
    assert a.shape == (3, 4, 24) and g.shape == (3, 4, 40)
    torch.testing.assert_close(example_rms(a).flatten(), torch.full((3,), 0.12), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(example_rms(g).flatten(), torch.full((3,), 1.03), rtol=1e-4, atol=1e-6)
    with pytest.raises(KeyError, match="no adapter for model 'llama'"):
        wire.to_model(z, "llama")


def test_a_wire_saved_with_the_encoders_old_name_builds_the_renamed_encoder() -> None:
    """``mean_pool`` (the chunk-mean encoder's name until 2026-12-04, so in older wire.json files) is read as
    ``chunk_mean``: the config carries the new name and the same module is built."""
    from latentwire_core import ChunkMeanEncoder, build_interlingua

    cfg = InterlinguaConfig(kind="mean_pool", d_in=8, d_z=8, n_tokens=2)
    assert cfg.kind == "chunk_mean" and cfg == InterlinguaConfig(kind="chunk_mean", d_in=8, d_z=8, n_tokens=2)
    assert isinstance(build_interlingua(cfg), ChunkMeanEncoder)
    assert "mean_pool" not in INTERLINGUAS.names()  # one name per kind in what is listed
