"""Tiny content-pretraining set-ups shared by the hf tests (a tiny Llama's features and lm_pool wire)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_hf.encoders.lm_pool import LMPoolEncoder
from latentwire_hf.features import CachedFeatureSource, LMHiddenFeatureSource
from latentwire_hf.models import KNOWN_MODELS
from latentwire_hf.objectives import ContentObjective, PretrainConfig, content_items

TEXTS = [
    "The Broncos defeated the Panthers to win the game in Santa Clara on February seventh of that year.",
    "Tesla was born in Smiljan and later moved to New York where he worked on alternating current.",
    "The river flows through three countries before it reaches the sea near the old harbour town.",
    "Oxygen is a chemical element with symbol O and atomic number eight in the periodic table.",
]


def feature_source(tmp: Path, layer: int = 1) -> CachedFeatureSource:
    model, tok = KNOWN_MODELS["tiny-llama"]()
    return CachedFeatureSource(
        LMHiddenFeatureSource(model, tok, name="tiny-llama", layer=layer, max_length=64), tmp
    )


def content_setup(
    tmp: Path, readers: dict[str, Any], **pretrain: Any
) -> tuple[LatentWire, ContentObjective, PretrainConfig]:
    fs = feature_source(tmp)
    pc = PretrainConfig(
        **{
            "steps": 4,
            "batch_size": 2,
            "ckpt_every": 2,
            "log_every": 1,
            "encode_words": 6,
            "continue_words": 4,
            "rec_fraction": 0.5,
            **pretrain,
        }
    )
    items = content_items(TEXTS, pc)
    torch.manual_seed(0)
    lm_src, _ = KNOWN_MODELS["tiny-llama"]()
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=16, ratio=4.0),
        content_tokens=True,
    )
    enc = LMPoolEncoder(cfg.interlingua, lm=lm_src, start_layer=1, n_layers=1)
    wire = LatentWire(cfg, {n: (lm.d_model, lm.embed_rms) for n, lm in readers.items()}, encoder=enc)
    obj = ContentObjective(readers=readers, features=fs, items=items, cfg=pc, texts=TEXTS)
    return wire, obj, pc


def qa_examples() -> list[Any]:
    """Three SQuAD-shaped questions of different lengths (the slot tests' batch; the context is a stub)."""
    from latentwire_core.tasks import Example

    return [
        Example(id=str(i), task="squad", source="", question=q, context="x", answers=("a",))
        for i, q in enumerate(["Who won?", "Where was it?", "Why?"])
    ]


def random_slots(counts: list[int], width: int, rms: float, seed: int) -> list[torch.Tensor]:
    """One random slot ``(M_i, width)`` per count, at the reader's scale ``rms``."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(m, width, generator=g) * rms for m in counts]
