"""Hugging Face backends for LatentWire: frozen causal LMs, frozen feature sources, datasets, training."""

from latentwire_hf.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from latentwire_hf.data import DataError, LoadReport, load_examples, load_train_eval
from latentwire_hf.features import CachedFeatureSource, build_feature_source
from latentwire_hf.frozen_lm import HFFrozenLM, PrefixCache, load_frozen_lm
from latentwire_hf.models import KNOWN_MODELS, cache_root, load_causal_lm, load_encoder, resolve_model_name
from latentwire_hf.training import TrainConfig, Trainer

__all__ = [
    "KNOWN_MODELS",
    "CachedFeatureSource",
    "CheckpointError",
    "DataError",
    "HFFrozenLM",
    "LoadReport",
    "PrefixCache",
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
