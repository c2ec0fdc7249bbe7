"""Layer-k hidden-state features of a frozen LM (latentwire_hf.features) on a tiny model."""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_wire import TEXTS

from latentwire_hf.features import LMHiddenFeatureSource
from latentwire_hf.models import KNOWN_MODELS


def test_layer_k_features_equal_hugging_face_hidden_states(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, tok = KNOWN_MODELS["tiny-llama"]()
    ref_model, _ = KNOWN_MODELS["tiny-llama"]()
    ref_model.load_state_dict(model.state_dict())
    src = LMHiddenFeatureSource(model, tok, name="tiny-llama", layer=1, max_length=64)
    assert len(src._body.layers) == 1  # the layers above k are dropped, not run
    feats, mask = src.features(TEXTS[:2])
    for i, text in enumerate(TEXTS[:2]):
        ids = tok([text], add_special_tokens=False, return_tensors="pt")["input_ids"][
            :, :64
        ]  # truncated alike
        ref = ref_model(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
        torch.testing.assert_close(feats[i][mask[i]], ref, atol=1e-5, rtol=1e-4)
    # a byte-level tokenizer: 64 tokens read = the first 64 characters
    assert src.read_text(TEXTS[0] * 10) == (TEXTS[0] * 10)[:64]
