"""Hugging Face backends for LatentWire: frozen causal LMs, frozen feature sources, datasets, training.

Names are imported lazily (PEP 562), so ``latentwire_hf.config`` loads without torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latentwire_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from latentwire_hf.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
    from latentwire_hf.config import PretrainConfig, TrainConfig, resolve_model_name
    from latentwire_hf.data import DataError, LoadReport, load_examples, load_train_eval
    from latentwire_hf.decoding import PrefixCache
    from latentwire_hf.features import CachedFeatureSource, build_feature_source
    from latentwire_hf.frozen_lm import HFFrozenLM, load_frozen_lm
    from latentwire_hf.models import KNOWN_MODELS, cache_root, load_causal_lm, load_encoder
    from latentwire_hf.pretrained import PretrainedWire
    from latentwire_hf.training import Trainer

_WHERE: dict[str, str] = {
    "CachedFeatureSource": "latentwire_hf.features",
    "CheckpointError": "latentwire_hf.checkpoint",
    "DataError": "latentwire_hf.data",
    "HFFrozenLM": "latentwire_hf.frozen_lm",
    "KNOWN_MODELS": "latentwire_hf.models",
    "LoadReport": "latentwire_hf.data",
    "PrefixCache": "latentwire_hf.decoding",
    "PretrainConfig": "latentwire_hf.config",
    "PretrainedWire": "latentwire_hf.pretrained",
    "TrainConfig": "latentwire_hf.config",
    "Trainer": "latentwire_hf.training",
    "build_feature_source": "latentwire_hf.features",
    "cache_root": "latentwire_hf.models",
    "latest_checkpoint": "latentwire_hf.checkpoint",
    "load_causal_lm": "latentwire_hf.models",
    "load_checkpoint": "latentwire_hf.checkpoint",
    "load_encoder": "latentwire_hf.models",
    "load_examples": "latentwire_hf.data",
    "load_frozen_lm": "latentwire_hf.frozen_lm",
    "load_train_eval": "latentwire_hf.data",
    "resolve_model_name": "latentwire_hf.config",
    "save_checkpoint": "latentwire_hf.checkpoint",
}

__all__ = [
    "KNOWN_MODELS",
    "CachedFeatureSource",
    "CheckpointError",
    "DataError",
    "HFFrozenLM",
    "LoadReport",
    "PrefixCache",
    "PretrainConfig",
    "PretrainedWire",
    "TrainConfig",
    "Trainer",
    "build_feature_source",
    "cache_root",
    "latest_checkpoint",
    "load_causal_lm",
    "load_checkpoint",
    "load_encoder",
    "load_examples",
    "load_frozen_lm",
    "load_train_eval",
    "resolve_model_name",
    "save_checkpoint",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())  # import the defining module on first use
