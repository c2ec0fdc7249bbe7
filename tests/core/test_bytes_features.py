from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core import ByteFeatureConfig, ByteFeatureSource, ByteTokenizer
from latentwire_core.bytes_features import PAD_ID


@given(st.lists(st.text(max_size=40), min_size=1, max_size=5), st.integers(1, 64))
def test_byte_roundtrip_and_truncation(texts: list[str], max_bytes: int) -> None:
    tok = ByteTokenizer(max_bytes)
    ids, mask = tok.encode(texts)
    assert ids.shape == mask.shape and ids.shape[1] <= max(max_bytes, 1)
    for text, out, row_ids, row_mask in zip(texts, tok.decode(ids, mask), ids, mask, strict=True):
        raw = text.encode("utf-8")
        assert int(row_mask.sum()) == min(len(raw), max_bytes)
        assert bool((row_ids[~row_mask] == PAD_ID).all())
        # mask is a prefix: real bytes first, then padding
        assert bool(row_mask[: int(row_mask.sum())].all())
        assert out == raw[:max_bytes].decode("utf-8", errors="ignore")
        if len(raw) <= max_bytes:
            assert out == text


@settings(deadline=None, max_examples=15)
@given(st.lists(st.text(min_size=0, max_size=20), min_size=2, max_size=4))
def test_byte_features_zero_on_padding_and_independent_of_batchmates(texts: list[str]) -> None:
    torch.manual_seed(0)
    src = ByteFeatureSource(ByteFeatureConfig(max_bytes=32, d_f=16, n_layers=1, n_heads=2)).eval()
    feats, mask = src.features(texts)
    assert feats.shape[:2] == mask.shape and feats.shape[2] == 16
    assert torch.isfinite(feats).all()
    assert bool((feats[~mask] == 0).all())
    # each row's features do not depend on how much padding its batch-mates forced
    for i, t in enumerate(texts):
        alone, m1 = src.features([t])
        n = int(m1.sum())
        torch.testing.assert_close(feats[i, :n], alone[0, :n], atol=1e-5, rtol=1e-4)
